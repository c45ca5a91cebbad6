/* ps.c — `locara ps`: asks a running `locara serve` (GET /api/ps) which models are loaded and
 * prints one row each: memory, requests in flight, idle time and when it will be unloaded, then
 * the memory budget. --json prints the server's answer as is. --url or --port pick the server.
 */
#include "cli.h"

#include "base/base.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    return lc_str_append(ud, p, size * n) ? size * n : 0;
}

/* "2m05s", "45s", "1h02m" */
static void fmt_secs(double s, char *buf, size_t cap) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

int cmd_ps(int argc, char **argv) {
    const char *url = NULL;
    int port = 0;
    bool json = false;
    const cli_opt opts[] = {
        {"--url", NULL, CLI_STR, &url, "server address (default http://127.0.0.1:8080)"},
        {"--port", NULL, CLI_INT, &port, "port of a server on 127.0.0.1"},
        {"--json", NULL, CLI_BOOL, &json, "print the server's JSON answer"},
    };
    int npos = 0;
    int rc = cli_parse(argc, argv, opts, (int)LC_ARRAY_LEN(opts), NULL, 0, &npos,
                       "locara ps [--url URL | --port P] [--json]\n"
                       "Shows the models a running `locara serve` holds (GET /api/ps).");
    if (rc) return rc == 1 ? 0 : rc;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "locara: ps: --port must be 1..65535\n");
        return 2;
    }
    char full[1024];
    if (url) {
        size_t n = strlen(url);
        while (n && url[n - 1] == '/') n--;
        snprintf(full, sizeof full, "%.*s/api/ps", (int)n, url);
    } else {
        snprintf(full, sizeof full, "http://127.0.0.1:%d/api/ps", port ? port : 8080);
    }

    lc_str body = {0};
    CURL *h = curl_easy_init();
    if (!h) return 1;
    curl_easy_setopt(h, CURLOPT_URL, full);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK || status != 200) {
        fprintf(stderr, "locara: ps: %s: %s\n", full, cc != CURLE_OK ? curl_easy_strerror(cc) : "the server answered an error (is it locara serve?)");
        lc_str_free(&body);
        return 1;
    }
    if (json) {
        printf("%s\n", body.buf);
        lc_str_free(&body);
        return 0;
    }
    json_error_t je;
    json_t *root = json_loadb(body.buf ? body.buf : "", body.len, 0, &je);
    lc_str_free(&body);
    json_t *models = json_object_get(root, "models");
    if (!json_is_array(models)) {
        fprintf(stderr, "locara: ps: %s did not answer a model list\n", full);
        json_decref(root);
        return 1;
    }
    printf("%-28s %-9s %10s %8s %8s %-12s %6s %s\n", "ID", "STATE", "MEMORY", "REQUESTS", "IDLE", "UNLOADS IN", "CTX", "KV");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        char idle[32] = "-", until[32];
        json_t *exp = json_object_get(m, "expires_in_s");
        json_int_t refs = json_integer_value(json_object_get(m, "requests"));
        double keep = json_number_value(json_object_get(m, "keep_alive_s"));
        if (refs) snprintf(until, sizeof until, "in use");
        else if (json_is_null(json_object_get(m, "keep_alive_s"))) snprintf(until, sizeof until, "never");
        else if (json_is_number(exp)) fmt_secs(json_number_value(exp), until, sizeof until);
        else snprintf(until, sizeof until, "%s", keep == 0 ? "now" : "-");
        if (!refs) fmt_secs(json_number_value(json_object_get(m, "idle_s")), idle, sizeof idle);
        printf("%-28s %-9s %6.1f MiB %8lld %8s %-12s %6lld %s\n", json_string_value(json_object_get(m, "id")),
               json_string_value(json_object_get(m, "state")),
               (double)json_integer_value(json_object_get(m, "memory_bytes")) / 1048576.0, (long long)refs, idle, until,
               (long long)json_integer_value(json_object_get(m, "n_ctx")), json_string_value(json_object_get(m, "kv_type")));
    }
    if (!json_array_size(models)) printf("(no model loaded)\n");
    json_t *mem = json_object_get(root, "memory");
    printf("memory: %.1f MiB used of a %.1f MiB budget (process baseline %.1f MiB, counted once)\n",
           (double)json_integer_value(json_object_get(mem, "used_bytes")) / 1048576.0,
           (double)json_integer_value(json_object_get(mem, "budget_bytes")) / 1048576.0,
           (double)json_integer_value(json_object_get(mem, "runtime_bytes")) / 1048576.0);
    json_decref(root);
    return 0;
}
