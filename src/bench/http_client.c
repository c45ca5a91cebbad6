/* http_client.c — the benchmark's HTTP side: streamed chat completions over curl multi with an
 * incremental SSE parser that stamps the arrival of every token-bearing chunk, plus /tokenize
 * and health polls.
 *
 * Timing is taken in the write callback (lc_time_sec) as bytes arrive, so TTFT is wall-clock
 * from the request's send to the first chunk with generated text. Not here: what the numbers
 * mean for a report (lc_stream_to_row computes them; http.c aggregates).
 */
#include "bench/http.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_ERROR_BODY 600

void lc_stream_result_init(lc_stream_result *r) {
    memset(r, 0, sizeof *r);
    r->prompt_tokens = r->completion_tokens = r->cached_tokens = -1;
}

void lc_stream_result_free(lc_stream_result *r) {
    lc_str_free(&r->text);
    lc_str_free(&r->line);
    lc_str_free(&r->body);
}

static void set_error(lc_stream_result *r, const char *fmt, ...) LC_PRINTF(2, 3);
static void set_error(lc_stream_result *r, const char *fmt, ...) {
    if (r->error[0]) return; /* keep the first cause */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
}

/* ==== SSE parsing ==== */

static int nonempty_str(json_t *v) { return json_is_string(v) && json_string_length(v) > 0; }

/* Reads an error object ({"error": {"message": ...}} or {"error": "..."}) into r->error. */
static void take_error(lc_stream_result *r, json_t *err) {
    json_t *msg = json_is_object(err) ? json_object_get(err, "message") : err;
    if (json_is_string(msg)) set_error(r, "server error in stream: %s", json_string_value(msg));
    else set_error(r, "server error in stream");
}

/* Handles one complete SSE line (without its newline). */
static void sse_line(lc_stream_result *r, char *line, size_t len, double now) {
    if (len && line[len - 1] == '\r') line[--len] = 0;
    if (!strncmp(line, "error:", 6)) {
        json_t *j = json_loads(line + 6, 0, NULL);
        if (j) take_error(r, json_object_get(j, "error") ? json_object_get(j, "error") : j);
        else set_error(r, "server error in stream: %.200s", line + 6);
        json_decref(j);
        return;
    }
    if (strncmp(line, "data:", 5)) return; /* comments, event:, id:, blank lines */
    const char *p = line + 5;
    if (*p == ' ') p++;
    if (!strcmp(p, "[DONE]")) {
        r->done = 1;
        return;
    }
    json_t *j = json_loads(p, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        set_error(r, "malformed SSE data: %.120s", p);
        return;
    }
    json_t *err = json_object_get(j, "error");
    if (err && !json_is_null(err)) take_error(r, err);
    json_t *choices = json_object_get(j, "choices");
    json_t *c0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    if (json_is_object(c0)) {
        json_t *d = json_object_get(c0, "delta");
        if (!json_is_object(d)) d = c0; /* /v1/completions style: choices[0].text */
        json_t *content = json_object_get(d, "content");
        if (!json_is_string(content)) content = json_object_get(d, "text");
        int carries = nonempty_str(content) || nonempty_str(json_object_get(d, "reasoning_content")) ||
                      nonempty_str(json_object_get(d, "reasoning")) ||
                      (json_is_array(json_object_get(d, "tool_calls")) &&
                       json_array_size(json_object_get(d, "tool_calls")) > 0);
        if (carries) {
            if (r->n_chunks == 0) r->t_first = now;
            r->t_last = now;
            r->n_chunks++;
            if (nonempty_str(content))
                lc_str_append(&r->text, json_string_value(content), json_string_length(content));
        }
        if (json_is_string(json_object_get(c0, "finish_reason"))) r->finished = 1;
    }
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage)) {
        json_t *pt = json_object_get(usage, "prompt_tokens");
        json_t *ct = json_object_get(usage, "completion_tokens");
        if (json_is_integer(pt)) r->prompt_tokens = (int)json_integer_value(pt);
        if (json_is_integer(ct)) r->completion_tokens = (int)json_integer_value(ct);
        json_t *det = json_object_get(usage, "prompt_tokens_details");
        json_t *cached = json_is_object(det) ? json_object_get(det, "cached_tokens") : NULL;
        if (json_is_integer(cached)) r->cached_tokens = (int)json_integer_value(cached);
    }
    json_t *timings = json_object_get(j, "timings"); /* llama-server's own numbers */
    json_t *cache_n = json_is_object(timings) ? json_object_get(timings, "cache_n") : NULL;
    if (r->cached_tokens < 0 && json_is_integer(cache_n)) r->cached_tokens = (int)json_integer_value(cache_n);
    json_decref(j);
}

void lc_sse_feed(lc_stream_result *r, const char *data, size_t n, double now) {
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (data + i)) : n - i;
        if (!lc_str_append(&r->line, data + i, take)) {
            set_error(r, "out of memory reading the stream");
            return;
        }
        i += take;
        if (!nl) break;
        i++; /* the newline */
        sse_line(r, r->line.buf, r->line.len, now);
        lc_str_clear(&r->line);
    }
}

/* ==== Streaming requests ==== */

typedef struct xfer {
    CURL *easy;
    struct curl_slist *headers;
    lc_stream_result *r;
    int status_known;
} xfer;

/* curl's write callback: stamps arrival, routes bytes to the SSE parser or the error body. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t n = size * nmemb;
    double now = lc_time_sec();
    if (!x->status_known) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->r->http_status);
        x->status_known = 1;
    }
    if (x->r->http_status >= 400) {
        if (x->r->body.len < MAX_ERROR_BODY)
            lc_str_append(&x->r->body, ptr, LC_MIN(n, MAX_ERROR_BODY - x->r->body.len));
        return n;
    }
    lc_sse_feed(x->r, ptr, n, now);
    return n;
}

static struct curl_slist *make_headers(const char *api_key, int sse) {
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (sse) h = curl_slist_append(h, "Accept: text/event-stream");
    if (api_key && *api_key) {
        char auth[512];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
        h = curl_slist_append(h, auth);
    }
    return h;
}

/* Turns a finished transfer's outcome into ok / error. */
static void finish_xfer(xfer *x, CURLcode rc, double timeout_s) {
    lc_stream_result *r = x->r;
    r->t_end = lc_time_sec();
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
    if (r->line.len) sse_line(r, r->line.buf, r->line.len, r->t_end); /* unterminated last line */
    lc_str_clear(&r->line);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        set_error(r, "timeout after %.0f s (%d chunks received)", timeout_s, r->n_chunks);
    else if (rc != CURLE_OK) set_error(r, "transport: %s", curl_easy_strerror(rc));
    else if (r->http_status >= 400) {
        char snippet[200];
        snprintf(snippet, sizeof snippet, "%s", r->body.buf ? r->body.buf : "");
        for (char *c = snippet; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
        set_error(r, "HTTP %ld: %s", r->http_status, snippet);
    } else if (!r->done && !r->finished) set_error(r, "stream ended before [DONE] (%d chunks received)", r->n_chunks);
    else if (r->n_chunks == 0) set_error(r, "the stream carried no tokens");
    r->ok = r->error[0] == 0;
}

lc_status lc_http_stream_many(const char *base_url, const char *api_key, char *const *bodies, int n,
                              double timeout_s, lc_stream_result *out) {
    char url[2048];
    snprintf(url, sizeof url, "%s/v1/chat/completions", base_url);
    xfer *xs = lc_calloc((size_t)n, sizeof *xs);
    CURLM *multi = curl_multi_init();
    lc_status st = LC_OK;
    for (int i = 0; i < n; i++) lc_stream_result_init(&out[i]);
    if (!xs || !multi) {
        st = lc_fail(LC_ERR_OOM, "cannot set up %d HTTP transfers", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        xfer *x = &xs[i];
        x->r = &out[i];
        x->easy = curl_easy_init();
        x->headers = make_headers(api_key, 1);
        if (!x->easy || !x->headers) {
            st = lc_fail(LC_ERR_OOM, "cannot set up HTTP transfer");
            goto done;
        }
        curl_easy_setopt(x->easy, CURLOPT_URL, url);
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
        curl_multi_add_handle(multi, x->easy);
    }
    double t0 = lc_time_sec();
    for (int i = 0; i < n; i++) out[i].t_send = t0;
    int running = n;
    while (running > 0) {
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc == CURLM_OK && running) mc = curl_multi_poll(multi, NULL, 0, 100, NULL);
        if (mc != CURLM_OK) {
            st = lc_fail(LC_ERR_IO, "curl multi: %s", curl_multi_strerror(mc));
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (x) finish_xfer(x, msg->data.result, timeout_s);
        }
    }
done:
    for (int i = 0; xs && i < n; i++) {
        if (xs[i].easy) {
            if (multi) curl_multi_remove_handle(multi, xs[i].easy);
            curl_easy_cleanup(xs[i].easy);
        }
        curl_slist_free_all(xs[i].headers);
        if (!out[i].ok && !out[i].error[0]) snprintf(out[i].error, sizeof out[i].error, "%s",
                                                     st != LC_OK ? lc_last_error() : "not finished");
    }
    if (multi) curl_multi_cleanup(multi);
    lc_free(xs);
    return st;
}

/* ==== Small requests ==== */

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud) {
    lc_str *s = ud;
    size_t n = size * nmemb;
    if (s->len < (1u << 24) && !lc_str_append(s, ptr, n)) return 0;
    return n;
}

/* One plain request: POST body (or GET when body is NULL); returns the status, 0 on no answer. */
static long simple_request(const char *url, const char *api_key, const char *body, double timeout_s,
                           lc_str *resp) {
    CURL *e = curl_easy_init();
    if (!e) return 0;
    struct curl_slist *h = make_headers(api_key, 0);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

int lc_http_tokenize(const char *base_url, const char *api_key, const char *text, double timeout_s) {
    char url[2048];
    snprintf(url, sizeof url, "%s/tokenize", base_url);
    json_t *req = json_pack("{s:s}", "content", text);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) return -1;
    lc_str resp = {0};
    long status = simple_request(url, api_key, body, timeout_s, &resp);
    free(body); /* jansson's allocation */
    int n = -1;
    if (status == 200 && resp.buf) {
        json_t *j = json_loads(resp.buf, 0, NULL);
        json_t *toks = json_object_get(j, "tokens");
        if (json_is_array(toks)) n = (int)json_array_size(toks);
        json_decref(j);
    }
    lc_str_free(&resp);
    return n;
}

long lc_http_get_status(const char *base_url, const char *path, const char *api_key, double timeout_s) {
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    lc_str resp = {0};
    long status = simple_request(url, api_key, NULL, timeout_s, &resp);
    lc_str_free(&resp);
    return status;
}

/* ==== From a stream to a measurement ==== */

void lc_stream_to_row(const lc_stream_result *r, int est_prompt, lc_bench_row *row) {
    row->ok = r->ok;
    snprintf(row->error, sizeof row->error, "%s", r->ok ? "" : r->error);
    row->prompt_tokens = r->prompt_tokens >= 0 ? r->prompt_tokens : est_prompt;
    row->completion_tokens = r->completion_tokens >= 0 ? r->completion_tokens : r->n_chunks;
    row->cached_tokens = r->cached_tokens;
    row->est_prompt_tokens = est_prompt;
    row->total_ms = r->t_end > r->t_send ? (r->t_end - r->t_send) * 1e3 : NAN;
    if (r->n_chunks > 0) {
        double ttft = r->t_first - r->t_send;
        row->ttft_ms = ttft * 1e3;
        row->prefill_tps = ttft > 0 && row->prompt_tokens > 0 ? row->prompt_tokens / ttft : NAN;
        double span = r->t_last - r->t_first;
        row->decode_tps = span > 0 && row->completion_tokens > 1 ? (row->completion_tokens - 1) / span : NAN;
    }
    if (!r->ok) row->decode_tps = row->prefill_tps = NAN; /* a broken stream's speed means nothing */
}
