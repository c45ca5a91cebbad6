/* test_bench_http.c — the HTTP benchmark's pure parts: the SSE parser fed in every possible split,
 * the measurement formulas on known timestamps, list parsing, the config file, the prompt
 * builder (depth reached, deterministic, nonce only at the start) and the report writers
 * (every chart has its points). The network side is covered by tests/e2e/test_bench_http.py.
 */
#include "bench/http.h"
#include "bench/prompts.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char stream[] =
    ": keep-alive comment\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n"
    "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":812,\"completion_tokens\":21,"
    "\"prompt_tokens_details\":{\"cached_tokens\":800}}}\n\n"
    "data: [DONE]\n\n";

/* Feeds the stream cut at position cut; every byte gets the time of its own index. */
static void feed_split(lc_stream_result *r, size_t cut) {
    size_t n = sizeof stream - 1;
    lc_stream_result_init(r);
    lc_sse_feed(r, stream, cut, (double)cut);
    lc_sse_feed(r, stream + cut, n - cut, (double)n);
}

static void test_sse(void) {
    size_t n = sizeof stream - 1;
    int all_ok = 1;
    for (size_t cut = 0; cut <= n; cut++) {
        lc_stream_result r;
        feed_split(&r, cut);
        all_ok &= r.n_chunks == 3 && r.done && r.finished && r.prompt_tokens == 812 &&
                  r.completion_tokens == 21 && r.cached_tokens == 800 && r.error[0] == 0 &&
                  r.text.buf && !strcmp(r.text.buf, "Hello world");
        lc_stream_result_free(&r);
    }
    CHECKF(all_ok, "the SSE parser must give the same result for every split of the stream");

    lc_stream_result r;
    lc_stream_result_init(&r);
    const char *err = "data: {\"error\":{\"message\":\"context overflow\",\"code\":400}}\n";
    lc_sse_feed(&r, err, strlen(err), 1.0);
    CHECK(strstr(r.error, "context overflow") != NULL);
    lc_stream_result_free(&r);
    lc_stream_result_init(&r);
    const char *err2 = "error: {\"message\":\"slot unavailable\"}\n";
    lc_sse_feed(&r, err2, strlen(err2), 1.0);
    CHECK(strstr(r.error, "slot unavailable") != NULL);
    lc_stream_result_free(&r);
}

static void test_row_math(void) {
    lc_stream_result r;
    lc_stream_result_init(&r);
    r.ok = 1;
    r.t_send = 10.0;
    r.t_first = 10.2;  /* TTFT 200 ms */
    r.t_last = 10.58;  /* 19 more tokens in 380 ms: 50 tok/s */
    r.t_end = 10.6;
    r.n_chunks = 20;
    r.prompt_tokens = 1000;
    r.completion_tokens = 20;
    lc_bench_row row;
    lc_bench_row_init(&row);
    lc_stream_to_row(&r, 990, &row);
    CHECK(row.ok);
    CHECKF(fabs(row.ttft_ms - 200) < 1e-6, "ttft %f", row.ttft_ms);
    CHECKF(fabs(row.decode_tps - 50) < 1e-6, "decode %f", row.decode_tps);
    CHECKF(fabs(row.prefill_tps - 5000) < 1e-6, "prefill %f", row.prefill_tps);
    CHECK(fabs(row.total_ms - 600) < 1e-6 && row.est_prompt_tokens == 990);

    /* no usage: one token per chunk, our own prompt count */
    r.prompt_tokens = r.completion_tokens = -1;
    r.n_chunks = 11;
    lc_stream_to_row(&r, 990, &row);
    CHECK(row.completion_tokens == 11 && row.prompt_tokens == 990);
    CHECK(fabs(row.decode_tps - 10 / 0.38) < 1e-6);

    /* a failed stream keeps its error and has no speeds */
    r.ok = 0;
    snprintf(r.error, sizeof r.error, "HTTP 500: boom");
    lc_stream_to_row(&r, 990, &row);
    CHECK(!row.ok && !strcmp(row.error, "HTTP 500: boom") && isnan(row.decode_tps) && isnan(row.prefill_tps));

    double v[] = {3, NAN, 1, 2, 10};
    CHECK(lc_bench_median(v, 5) == 2.5);
    double w[] = {NAN};
    CHECK(isnan(lc_bench_median(w, 1)));
}

static void test_lists_and_config(void) {
    int out[8];
    CHECK(lc_bench_parse_int_list("20,4096,16k", out, 8) == 3 && out[2] == 16384);
    CHECK(lc_bench_parse_int_list("20,,x", out, 8) == -1);
    CHECK(lc_bench_parse_int_list("0", out, 8) == -1);
    CHECK(lc_bench_parse_int_list("1,2,3", out, 2) == -1);

    char path[] = "/tmp/lc_bench_cfg_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char cfg[] = "{\"runs\":[{\"name\":\"a\",\"url\":\"http://h:1/v1/\",\"model\":\"m\","
                       "\"server_cmd\":\"srv --port 1\"},{\"url\":\"http://h:2\"}],"
                       "\"depths\":[20,512],\"concurrency\":[1,4],\"reps\":5,\"warm\":false}";
    CHECK(write(fd, cfg, sizeof cfg - 1) == (ssize_t)(sizeof cfg - 1));
    close(fd);
    lc_bench_http_params p;
    lc_bench_http_params_default(&p);
    CHECK(lc_bench_http_load_config(path, &p) == LC_OK);
    CHECK(p.n_runs == 2 && !strcmp(p.runs[0].url, "http://h:1") && !strcmp(p.runs[0].server_cmd, "srv --port 1"));
    CHECK(!strcmp(p.runs[1].name, "config2") && p.runs[1].server_cmd == NULL);
    CHECK(p.n_depths == 2 && p.n_conc == 2 && p.conc[1] == 4 && p.reps == 5 && p.warm == 0);
    lc_bench_http_params_free(&p);
    FILE *f = fopen(path, "w");
    fputs("{\"runs\":[{\"name\":\"nourl\"}]}", f);
    fclose(f);
    lc_bench_http_params_default(&p);
    CHECK(lc_bench_http_load_config(path, &p) != LC_OK && strstr(lc_last_error(), "url"));
    lc_bench_http_params_free(&p);
    unlink(path);
}

/* Counts whitespace-separated words, like the fake endpoint's /tokenize. */
static int count_words(void *ud, const char *text) {
    (void)ud;
    int n = 0, in = 0;
    for (const char *p = text; *p; p++) {
        int sp = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

static void test_prompts(void) {
    lc_prompt_gen *g;
    if (lc_prompt_gen_create(NULL, NULL, &g) != LC_OK) {
        CHECKF(0, "corpus: %s", lc_last_error());
        return;
    }
    lc_convo a, b, c;
    CHECK(lc_prompt_build(g, 42, "aaaaaaaaaaaaaaaa", 3000, count_words, NULL, &a) == LC_OK);
    CHECK(lc_prompt_build(g, 42, "bbbbbbbbbbbbbbbb", 3000, count_words, NULL, &b) == LC_OK);
    CHECK(lc_prompt_build(g, 43, "aaaaaaaaaaaaaaaa", 3000, count_words, NULL, &c) == LC_OK);
    CHECKF(a.tokens >= 2700 && a.tokens <= 3150, "depth 3000 built %d tokens", a.tokens);
    int words = 0;
    for (int i = 0; i < a.n; i++) words += count_words(NULL, a.content[i]) + LC_PROMPT_MSG_OVERHEAD;
    CHECK(words == a.tokens);
    CHECK(a.n == b.n && a.n > 4);
    CHECK(!strncmp(a.content[0], "[session aaaaaaaaaaaaaaaa]", 26));
    int same = strcmp(a.content[0] + 26, b.content[0] + 26) == 0;
    for (int i = 1; i < a.n; i++) same &= !strcmp(a.content[i], b.content[i]) && !strcmp(a.role[i], b.role[i]);
    CHECKF(same, "only the nonce may differ between two builds with the same seed");
    int differ = a.n != c.n;
    for (int i = 1; !differ && i < a.n; i++) differ = strcmp(a.content[i], c.content[i]) != 0;
    CHECK(differ);
    int alternate = !strcmp(a.role[0], "system");
    for (int i = 1; i < a.n; i++) alternate &= !strcmp(a.role[i], i % 2 ? "user" : "assistant");
    CHECKF(alternate && !strcmp(a.role[a.n - 1], "user"), "system, then user/assistant turns ending with user");
    lc_convo_free(&a);
    lc_convo_free(&b);
    lc_convo_free(&c);
    CHECK(lc_prompt_build(g, 42, "aaaaaaaaaaaaaaaa", 20, count_words, NULL, &a) == LC_OK);
    CHECK(a.n == 2 && a.tokens < 40);
    lc_convo_free(&a);
    CHECK(lc_prompt_build(g, 42, "aaaaaaaaaaaaaaaa", 3000, NULL, NULL, &a) == LC_OK); /* estimate */
    CHECK(a.tokens >= 2700 && a.tokens <= 3150);
    lc_convo_free(&a);
    lc_prompt_gen_free(g);
}

static void test_report(void) {
    lc_bench_row rows[2 * 3 * 2 + 1];
    int n = 0;
    const int depths[3] = {20, 512, 4096};
    for (int cfg = 0; cfg < 2; cfg++)
        for (int d = 0; d < 3; d++)
            for (int cache = 0; cache < 2; cache++) {
                lc_bench_row *r = &rows[n++];
                lc_bench_row_init(r);
                snprintf(r->config, sizeof r->config, "%s", cfg ? "peer" : "locara");
                r->depth = depths[d];
                r->cache = cache;
                r->ok = 1;
                r->ttft_ms = cache ? 20 : 10.0 * depths[d] / (cfg + 1);
                r->prefill_tps = depths[d] / r->ttft_ms * 1000;
                r->decode_tps = 100 - d;
                r->prompt_tokens = depths[d];
            }
    lc_bench_row_init(&rows[n]);
    snprintf(rows[n].config, sizeof rows[n].config, "peer");
    rows[n].depth = 4096;
    snprintf(rows[n].error, sizeof rows[n].error, "timeout after 600 s");
    n++;
    char dir[] = "/tmp/lc_bench_rep_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char html[256], md[256], jl[256];
    snprintf(html, sizeof html, "%s/report.html", dir);
    snprintf(md, sizeof md, "%s/summary.md", dir);
    snprintf(jl, sizeof jl, "%s/results.jsonl", dir);
    FILE *f = fopen(jl, "w");
    for (int i = 0; i < n; i++) {
        json_t *j = lc_bench_row_to_json(&rows[i]);
        json_dumpf(j, f, JSON_COMPACT);
        fputc('\n', f);
        json_decref(j);
    }
    fclose(f);
    lc_bench_row *back;
    int nb;
    CHECK(lc_bench_rows_load(jl, &back, &nb) == LC_OK && nb == n);
    CHECK(nb == n && back[n - 1].ok == 0 && !strcmp(back[n - 1].error, "timeout after 600 s") &&
          back[3].cache == LC_CACHE_WARM && back[3].ttft_ms == 20);
    CHECK(lc_bench_write_summary(md, back, nb, "t") == LC_OK);
    CHECK(lc_bench_write_html(html, back, nb, "t <&>") == LC_OK);
    lc_free(back);
    char *text;
    size_t len;
    CHECK(lc_read_file(html, &text, &len) == LC_OK);
    CHECK(strstr(text, "id=\"chart-ttft\" class=\"chart\" data-points=\"12\"") != NULL);
    CHECK(strstr(text, "id=\"chart-decode\" class=\"chart\" data-points=\"12\"") != NULL);
    CHECK(strstr(text, "id=\"chart-coldwarm\" class=\"chart\" data-points=\"12\"") != NULL);
    CHECK(strstr(text, "id=\"chart-retention\" class=\"chart\" data-points=\"4\"") != NULL);
    CHECK(strstr(text, "t &lt;&amp;&gt;") != NULL && strstr(text, "timeout after 600 s") != NULL);
    lc_free(text);
    CHECK(lc_read_file(md, &text, &len) == LC_OK);
    CHECK(strstr(text, "| peer | 1 | 4096 | cold | 1/2 |") != NULL);
    CHECK(strstr(text, "## Failures") != NULL);
    lc_free(text);
    unlink(html);
    unlink(md);
    unlink(jl);
    rmdir(dir);
}

int main(void) {
    test_sse();
    test_row_math();
    test_lists_and_config();
    test_prompts();
    test_report();
    return test_done();
}
