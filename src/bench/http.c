/* http.c — the driver of `locara bench http`: parameters and the JSON config file, then for each
 * configuration (server) x concurrency x depth x repetition one cold round of streams and one
 * warm round continuing the same conversations, each measurement written to results.jsonl as it
 * lands, progress with an ETA on stderr, and summary.md and report.html at the end.
 *
 * A failure of any kind (HTTP error, timeout, dropped stream, crashed server, server that would
 * not start) becomes a row with ok=false and its error; nothing is dropped. Not here: HTTP
 * details (http_client.c), process handling (http_server.c), prompt text (prompts.c).
 */
#include "bench/http.h"

#include "bench/prompts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ==== Parameters and config file ==== */

static const int default_depths[] = {20, 512, 4096, 16384, 32768, 65536, 131072};

void lc_bench_http_params_default(lc_bench_http_params *p) {
    memset(p, 0, sizeof *p);
    memcpy(p->depths, default_depths, sizeof default_depths);
    p->n_depths = (int)LC_ARRAY_LEN(default_depths);
    p->conc[0] = 1;
    p->n_conc = 1;
    p->reps = 3;
    p->max_tokens = 64;
    p->seed = 42;
    p->timeout_s = 600;
    p->startup_timeout_s = 300;
    p->grace_s = 10;
    p->warm = 1;
    p->skip_deeper = 1;
}

static void set_str(char **dst, const char *s) {
    lc_free(*dst);
    *dst = s ? lc_strdup(s) : NULL;
}

void lc_bench_http_params_free(lc_bench_http_params *p) {
    for (int i = 0; i < p->n_runs; i++) {
        lc_bench_run *r = &p->runs[i];
        lc_free(r->name);
        lc_free(r->server_cmd);
        lc_free(r->url);
        lc_free(r->model);
        lc_free(r->api_key);
    }
    p->n_runs = 0;
    lc_free(p->out_dir);
    lc_free(p->corpus_dir);
    lc_free(p->src_dir);
    lc_free(p->title);
    p->out_dir = p->corpus_dir = p->src_dir = p->title = NULL;
}

lc_status lc_bench_http_add_run(lc_bench_http_params *p, const char *name, const char *server_cmd,
                                const char *url, const char *model, const char *api_key) {
    if (p->n_runs == LC_BENCH_MAX_RUNS) return lc_fail(LC_ERR_RANGE, "at most %d configurations", LC_BENCH_MAX_RUNS);
    if (!url || !*url) return lc_fail(LC_ERR_INVALID, "configuration '%s' has no url", name ? name : "?");
    lc_bench_run *r = &p->runs[p->n_runs];
    memset(r, 0, sizeof *r);
    char label[32];
    snprintf(label, sizeof label, "config%d", p->n_runs + 1);
    size_t ul = strlen(url);
    while (ul > 1 && url[ul - 1] == '/') ul--; /* "http://x:1/" -> "http://x:1" */
    if (ul >= 3 && !strncmp(url + ul - 3, "/v1", 3)) ul -= 3;
    r->name = lc_strdup(name && *name ? name : label);
    r->url = lc_strndup(url, ul);
    r->model = lc_strdup(model && *model ? model : "default");
    r->server_cmd = server_cmd && *server_cmd ? lc_strdup(server_cmd) : NULL;
    r->api_key = api_key && *api_key ? lc_strdup(api_key) : NULL;
    p->n_runs++;
    if (!r->name || !r->url || !r->model) return LC_ERR_OOM;
    return LC_OK;
}

int lc_bench_parse_int_list(const char *s, int *out, int cap) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno) {
            lc_fail(LC_ERR_INVALID, "expected a list of integers like 20,4096,16k, got '%s'", s);
            return -1;
        }
        if (*end == 'k' || *end == 'K') {
            v *= 1024;
            end++;
        }
        if (v <= 0 || v > 100000000) {
            lc_fail(LC_ERR_INVALID, "list value %ld out of range in '%s'", v, s);
            return -1;
        }
        if (n == cap) {
            lc_fail(LC_ERR_RANGE, "at most %d values in '%s'", cap, s);
            return -1;
        }
        out[n++] = (int)v;
        if (*end == ',') end++;
        else if (*end) {
            lc_fail(LC_ERR_INVALID, "unexpected '%c' in list '%s'", *end, s);
            return -1;
        }
        p = end;
    }
    if (n == 0) lc_fail(LC_ERR_INVALID, "empty list");
    return n ? n : -1;
}

/* Reads a JSON array of positive integers into out. */
static lc_status json_int_list(json_t *a, const char *key, int *out, int cap, int *n) {
    if (!a) return LC_OK;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > (size_t)cap)
        return lc_fail(LC_ERR_FORMAT, "config: \"%s\" must be an array of 1 to %d integers", key, cap);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return lc_fail(LC_ERR_FORMAT, "config: \"%s\"[%zu] is not a positive integer", key, i);
        out[i] = (int)json_integer_value(v);
    }
    *n = (int)json_array_size(a);
    return LC_OK;
}

static const char *jstr(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

lc_status lc_bench_http_load_config(const char *path, lc_bench_http_params *p) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return lc_fail(LC_ERR_FORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    lc_status st = LC_OK;
    if (!json_is_object(root)) {
        st = lc_fail(LC_ERR_FORMAT, "%s: the config must be a JSON object", path);
        goto done;
    }
    if ((st = json_int_list(json_object_get(root, "depths"), "depths", p->depths, LC_BENCH_MAX_DEPTHS,
                            &p->n_depths)) != LC_OK ||
        (st = json_int_list(json_object_get(root, "concurrency"), "concurrency", p->conc,
                            LC_BENCH_MAX_CONC, &p->n_conc)) != LC_OK)
        goto done;
    json_t *v;
    if (json_is_integer(v = json_object_get(root, "reps"))) p->reps = (int)json_integer_value(v);
    if (json_is_integer(v = json_object_get(root, "max_tokens"))) p->max_tokens = (int)json_integer_value(v);
    if (json_is_integer(v = json_object_get(root, "seed"))) p->seed = (uint64_t)json_integer_value(v);
    if (json_is_number(v = json_object_get(root, "timeout"))) p->timeout_s = json_number_value(v);
    if (json_is_number(v = json_object_get(root, "startup_timeout"))) p->startup_timeout_s = json_number_value(v);
    if (json_is_boolean(v = json_object_get(root, "warm"))) p->warm = json_is_true(v);
    if (jstr(root, "out")) set_str(&p->out_dir, jstr(root, "out"));
    if (jstr(root, "title")) set_str(&p->title, jstr(root, "title"));
    json_t *runs = json_object_get(root, "runs");
    if (!json_is_array(runs) || json_array_size(runs) == 0) {
        st = lc_fail(LC_ERR_FORMAT, "%s: \"runs\" must be a non-empty array", path);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(runs); i++) {
        json_t *r = json_array_get(runs, i);
        if (!json_is_object(r)) {
            st = lc_fail(LC_ERR_FORMAT, "%s: runs[%zu] is not an object", path, i);
            goto done;
        }
        st = lc_bench_http_add_run(p, jstr(r, "name"), jstr(r, "server_cmd"), jstr(r, "url"),
                                   jstr(r, "model"), jstr(r, "api_key"));
        if (st != LC_OK) {
            lc_fail_wrap(st, "%s: runs[%zu]: ", path, i);
            goto done;
        }
    }
done:
    json_decref(root);
    return st;
}

/* ==== Progress ==== */

typedef struct progress {
    double t0;
    int done, total; /* rounds (one cold or warm send of all streams) */
    int tty, quiet;
} progress;

static void fmt_dur(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* One status line: a rewritten line on a terminal, plain lines otherwise. */
static void progress_show(progress *pg, const char *cfg, int conc, int depth, const char *cache,
                          int rep, int reps, const char *last) {
    if (pg->quiet) return;
    double el = lc_time_sec() - pg->t0;
    double eta = pg->done ? el / pg->done * (pg->total - pg->done) : NAN;
    char e[32], t[32];
    fmt_dur(e, sizeof e, eta);
    fmt_dur(t, sizeof t, el);
    fprintf(stderr, "%s[%s] c=%d depth %d %s rep %d/%d | %d/%d done, %s elapsed, ETA %s%s%s%s",
            pg->tty ? "\r\033[K" : "", cfg, conc, depth, cache, rep + 1, reps, pg->done, pg->total,
            t, e, last ? " | " : "", last ? last : "", pg->tty ? "" : "\n");
    fflush(stderr);
}

/* ==== Measurement ==== */

/* The state one benchmark run carries around. */
typedef struct bench {
    const lc_bench_http_params *p;
    lc_prompt_gen *gen;
    FILE *jsonl;
    lc_bench_row *rows;
    size_t cap;
    int n_rows;
    uint64_t salt;  /* makes nonces unique to this invocation */
    uint64_t nonce_ctr;
    progress pg;
    lc_server_proc server;
    int restarts;
} bench;

/* Token counting through the endpoint's /tokenize, falling back to estimates once it fails. */
typedef struct counter {
    const lc_bench_run *run;
    double timeout_s;
    int mode; /* 0 unknown, 1 /tokenize works, 2 estimate */
} counter;

static int count_cb(void *ud, const char *text) {
    counter *c = ud;
    if (c->mode == 2) return -1;
    int n = lc_http_tokenize(c->run->url, c->run->api_key, text, c->timeout_s);
    if (n < 0 && c->mode == 0) c->mode = 2;
    else if (n >= 0) c->mode = 1;
    return n;
}

static lc_status emit(bench *b, const lc_bench_row *r) {
    if (!lc_grow((void **)&b->rows, sizeof *b->rows, &b->cap, (size_t)b->n_rows + 1)) return LC_ERR_OOM;
    b->rows[b->n_rows++] = *r;
    json_t *j = lc_bench_row_to_json(r);
    if (!j) return LC_ERR_OOM;
    int rc = json_dumpf(j, b->jsonl, JSON_COMPACT | JSON_REAL_PRECISION(8));
    json_decref(j);
    if (rc != 0 || fputc('\n', b->jsonl) == EOF || fflush(b->jsonl) != 0)
        return lc_fail(LC_ERR_IO, "cannot write results.jsonl");
    return LC_OK;
}

static void row_identity(lc_bench_row *r, const lc_bench_run *run, int depth, int cache, int conc,
                         int stream, int rep) {
    lc_bench_row_init(r);
    snprintf(r->config, sizeof r->config, "%s", run->name);
    snprintf(r->model, sizeof r->model, "%s", run->model);
    r->depth = depth;
    r->cache = cache;
    r->concurrency = conc;
    r->stream = stream;
    r->rep = rep;
}

/* Records a whole round as failed with one message (server down, skipped depth, ...). */
static lc_status emit_failed_round(bench *b, const lc_bench_run *run, int depth, int cache, int conc,
                                   int rep, const char *why) {
    for (int s = 0; s < conc; s++) {
        lc_bench_row r;
        row_identity(&r, run, depth, cache, conc, s, rep);
        snprintf(r.error, sizeof r.error, "%s", why);
        lc_status st = emit(b, &r);
        if (st != LC_OK) return st;
    }
    return LC_OK;
}

/* A request body: the conversation (plus an optional assistant reply and follow-up turn). */
static char *make_body(const lc_bench_http_params *p, const lc_bench_run *run, const lc_convo *c,
                       const char *reply, const char *followup) {
    json_t *msgs = lc_convo_to_json(c);
    if (!msgs) return NULL;
    if (followup) {
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content", reply));
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", followup));
    }
    json_t *req = json_pack("{s:s, s:o, s:b, s:{s:b}, s:i, s:f, s:i}", "model", run->model,
                            "messages", msgs, "stream", 1, "stream_options", "include_usage", 1,
                            "max_tokens", p->max_tokens, "temperature", 0.0, "seed", (int)(p->seed & 0x7fffffff));
    if (!req) return NULL;
    char *s = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!s) return NULL;
    char *copy = lc_strdup(s); /* hand back memory from the counting allocator */
    free(s);
    return copy;
}

/* Sets a fresh nonce into the system message (which starts with "[session <16 hex>]"). */
static void set_nonce(bench *b, lc_convo *c) {
    char *at = c->n ? strstr(c->content[0], "[session ") : NULL;
    if (!at) return;
    uint64_t z = b->salt + 0x9e3779b97f4a7c15ull * ++b->nonce_ctr;
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
    z ^= z >> 29;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)z);
    memcpy(at + 9, hex, 16);
}

/* Aggregate decode speed of one round: every ok stream's tokens after its first, over the span
 * from the earliest first token to the latest last token. */
static double aggregate_decode(const lc_stream_result *res, const lc_bench_row *rows, int n) {
    double t0 = INFINITY, t1 = -INFINITY, toks = 0;
    for (int i = 0; i < n; i++) {
        if (!rows[i].ok || rows[i].completion_tokens < 2) continue;
        t0 = fmin(t0, res[i].t_first);
        t1 = fmax(t1, res[i].t_last);
        toks += rows[i].completion_tokens - 1;
    }
    return t1 > t0 ? toks / (t1 - t0) : NAN;
}

/* After a round: if the managed server died, say so in the round's errors and restart it. */
static int check_server(bench *b, const lc_bench_run *run, lc_bench_row *rows, int n, const char *log) {
    if (!run->server_cmd) return 1;
    int failed = 0;
    for (int i = 0; i < n; i++) failed |= !rows[i].ok;
    /* A crash shows up on the socket a moment before the process (and its shell) are gone. */
    for (double t0 = lc_time_sec(); failed && lc_server_alive(&b->server) && lc_time_sec() - t0 < 0.5;)
        usleep(10000);
    if (lc_server_alive(&b->server)) return 1;
    char how[96];
    lc_server_describe_exit(&b->server, how, sizeof how);
    for (int i = 0; i < n; i++) {
        if (rows[i].ok) continue;
        size_t l = strlen(rows[i].error);
        snprintf(rows[i].error + l, sizeof rows[i].error - l, " (server %s)", how);
    }
    lc_server_stop(&b->server, 0);
    if (b->restarts++ >= 3) return 0;
    if (!b->pg.quiet) fprintf(stderr, "%s[%s] server %s; restarting it\n", b->pg.tty ? "\n" : "", run->name, how);
    return lc_server_start(run->server_cmd, log, run->url, run->api_key, b->p->startup_timeout_s,
                           &b->server) == LC_OK;
}

/* One round: conc streams at once. cold: each stream gets a fresh nonce; warm: continues the
 * stream's cold conversation with the cold reply and a follow-up turn. Writes conc rows;
 * *n_ok counts the ok ones. */
static lc_status round_run(bench *b, const lc_bench_run *run, lc_convo *convos, lc_str *replies,
                           int *cold_ok, int depth, int cache, int conc, int rep, const char *log,
                           int *n_ok, int *server_up) {
    const lc_bench_http_params *p = b->p;
    char *bodies[LC_BENCH_MAX_CONC] = {0};
    int est[LC_BENCH_MAX_CONC];
    lc_stream_result res[LC_BENCH_MAX_CONC];
    lc_bench_row rows[LC_BENCH_MAX_CONC];
    const char *followup = lc_prompt_followup(b->gen, p->seed, rep);
    for (int s = 0; s < conc; s++) {
        if (cache == LC_CACHE_COLD) {
            set_nonce(b, &convos[s]);
            est[s] = convos[s].tokens;
            bodies[s] = make_body(p, run, &convos[s], NULL, NULL);
        } else {
            const char *reply = replies[s].len ? replies[s].buf : "I'll look into it.";
            est[s] = convos[s].tokens + (int)(strlen(reply) + strlen(followup)) / 4 + 2 * LC_PROMPT_MSG_OVERHEAD;
            bodies[s] = make_body(p, run, &convos[s], reply, followup);
        }
        if (!bodies[s]) {
            for (int k = 0; k < s; k++) lc_free(bodies[k]);
            return LC_ERR_OOM;
        }
    }
    /* Warm streams whose cold request failed have nothing cached to measure. */
    int send_idx[LC_BENCH_MAX_CONC], n_send = 0;
    for (int s = 0; s < conc; s++)
        if (cache == LC_CACHE_COLD || cold_ok[s]) send_idx[n_send++] = s;
    char *send_bodies[LC_BENCH_MAX_CONC];
    for (int k = 0; k < n_send; k++) send_bodies[k] = bodies[send_idx[k]];
    lc_stream_result sent[LC_BENCH_MAX_CONC];
    /* A transport-level failure (LC_ERR_IO) is already in each stream's error; only OOM stops. */
    lc_status st = n_send ? lc_http_stream_many(run->url, run->api_key, send_bodies, n_send, p->timeout_s, sent)
                          : LC_OK;
    for (int s = 0; s < conc; s++) lc_free(bodies[s]);
    if (st == LC_ERR_IO) st = LC_OK;
    if (st != LC_OK) {
        for (int k = 0; k < n_send; k++) lc_stream_result_free(&sent[k]);
        return st;
    }
    for (int s = 0, k = 0; s < conc; s++) {
        row_identity(&rows[s], run, depth, cache, conc, s, rep);
        lc_stream_result_init(&res[s]);
        if (k < n_send && send_idx[k] == s) {
            res[s] = sent[k++];
            lc_stream_to_row(&res[s], est[s], &rows[s]);
        } else {
            rows[s].est_prompt_tokens = est[s];
            snprintf(rows[s].error, sizeof rows[s].error, "not measured: its cold request failed");
        }
    }
    double agg = aggregate_decode(res, rows, conc);
    *n_ok = 0;
    for (int s = 0; s < conc; s++) {
        rows[s].agg_decode_tps = rows[s].ok ? agg : NAN;
        *n_ok += rows[s].ok;
        if (cache == LC_CACHE_COLD) {
            cold_ok[s] = rows[s].ok;
            lc_str_clear(&replies[s]);
            if (res[s].text.len) lc_str_append(&replies[s], res[s].text.buf, res[s].text.len);
        }
    }
    *server_up = check_server(b, run, rows, conc, log);
    for (int s = 0; s < conc && st == LC_OK; s++) st = emit(b, &rows[s]);
    char last[160];
    if (*n_ok) snprintf(last, sizeof last, "TTFT %.0f ms, decode %.1f tok/s", rows[0].ttft_ms, rows[0].decode_tps);
    else snprintf(last, sizeof last, "failed: %.100s", rows[0].error);
    b->pg.done++;
    progress_show(&b->pg, run->name, conc, depth, cache ? "warm" : "cold", rep, p->reps, last);
    for (int s = 0; s < conc; s++) lc_stream_result_free(&res[s]);
    return st;
}

/* Every measurement of one configuration; a server that won't start fails all of its rows. */
static lc_status run_config(bench *b, const lc_bench_run *run) {
    const lc_bench_http_params *p = b->p;
    char log[4096];
    snprintf(log, sizeof log, "%s/%s.server.log", p->out_dir, run->name);
    int per_depth = p->reps * (p->warm ? 2 : 1);
    char why[300] = "";
    b->restarts = 0;
    if (run->server_cmd) {
        if (!p->quiet) fprintf(stderr, "[%s] starting: %s\n", run->name, run->server_cmd);
        if (lc_server_start(run->server_cmd, log, run->url, run->api_key, p->startup_timeout_s,
                            &b->server) != LC_OK)
            snprintf(why, sizeof why, "server did not start: %s", lc_last_error());
    }
    if (!why[0]) { /* warm-up: one short request, not measured */
        lc_convo c;
        counter cnt = {run, p->timeout_s, 2};
        if (lc_prompt_build(b->gen, p->seed, "0000000000000000", 20, count_cb, &cnt, &c) == LC_OK) {
            set_nonce(b, &c);
            char *body = make_body(p, run, &c, NULL, NULL);
            lc_stream_result r;
            if (body && lc_http_stream_many(run->url, run->api_key, &body, 1, p->timeout_s, &r) == LC_OK &&
                !r.ok && !p->quiet)
                fprintf(stderr, "[%s] warm-up request failed: %s\n", run->name, r.error);
            if (body) lc_stream_result_free(&r);
            lc_free(body);
            lc_convo_free(&c);
        }
    }
    counter cnt = {run, fmin(p->timeout_s, 60), 0};
    lc_status st = LC_OK;
    for (int ci = 0; ci < p->n_conc && st == LC_OK; ci++) {
        int conc = p->conc[ci];
        int failed_depth = 0;
        for (int di = 0; di < p->n_depths && st == LC_OK; di++) {
            int depth = p->depths[di];
            char skip[300] = "";
            if (why[0]) snprintf(skip, sizeof skip, "%s", why);
            else if (failed_depth)
                snprintf(skip, sizeof skip, "skipped: every cold request at depth %d failed", failed_depth);
            if (skip[0]) {
                for (int rep = 0; rep < p->reps && st == LC_OK; rep++) {
                    st = emit_failed_round(b, run, depth, LC_CACHE_COLD, conc, rep, skip);
                    if (st == LC_OK && p->warm) st = emit_failed_round(b, run, depth, LC_CACHE_WARM, conc, rep, skip);
                }
                b->pg.done += per_depth;
                progress_show(&b->pg, run->name, conc, depth, "skipped", p->reps - 1, p->reps, skip);
                continue;
            }
            lc_convo base;
            progress_show(&b->pg, run->name, conc, depth, "building prompt", 0, p->reps, NULL);
            st = lc_prompt_build(b->gen, p->seed, "0000000000000000", depth, count_cb, &cnt, &base);
            if (st != LC_OK) break;
            lc_convo convos[LC_BENCH_MAX_CONC];
            lc_str replies[LC_BENCH_MAX_CONC];
            int cold_ok[LC_BENCH_MAX_CONC];
            memset(replies, 0, sizeof replies);
            int n_cold_ok = 0, server_up = 1;
            for (int s = 0; s < conc; s++) { /* private copies: each stream gets its own nonce */
                memset(&convos[s], 0, sizeof convos[s]);
                for (int m = 0; m < base.n && st == LC_OK; m++)
                    st = lc_convo_add(&convos[s], base.role[m], base.content[m]);
                convos[s].tokens = base.tokens;
            }
            for (int rep = 0; rep < p->reps && st == LC_OK; rep++) {
                int n_ok = 0;
                if (!server_up) {
                    st = emit_failed_round(b, run, depth, LC_CACHE_COLD, conc, rep, "server not running");
                    if (st == LC_OK && p->warm)
                        st = emit_failed_round(b, run, depth, LC_CACHE_WARM, conc, rep, "server not running");
                    b->pg.done += p->warm ? 2 : 1;
                    continue;
                }
                st = round_run(b, run, convos, replies, cold_ok, depth, LC_CACHE_COLD, conc, rep, log,
                               &n_ok, &server_up);
                n_cold_ok += n_ok;
                if (st == LC_OK && p->warm && server_up)
                    st = round_run(b, run, convos, replies, cold_ok, depth, LC_CACHE_WARM, conc, rep,
                                   log, &n_ok, &server_up);
                else if (st == LC_OK && p->warm) {
                    st = emit_failed_round(b, run, depth, LC_CACHE_WARM, conc, rep, "server not running");
                    b->pg.done++;
                }
            }
            for (int s = 0; s < conc; s++) {
                lc_convo_free(&convos[s]);
                lc_str_free(&replies[s]);
            }
            lc_convo_free(&base);
            if (n_cold_ok == 0 && p->skip_deeper) failed_depth = depth;
        }
    }
    if (run->server_cmd) lc_server_stop(&b->server, p->grace_s);
    if (!p->quiet && b->pg.tty) fputc('\n', stderr);
    return st;
}

/* mkdir -p */
static lc_status make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return lc_fail(LC_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
            *s = c;
            if (!c) break;
        }
    }
    return LC_OK;
}

lc_status lc_bench_http_run(const lc_bench_http_params *p) {
    if (p->n_runs == 0) return lc_fail(LC_ERR_INVALID, "nothing to benchmark: give --url or --config");
    if (p->reps < 1 || p->max_tokens < 1 || p->n_depths < 1 || p->n_conc < 1)
        return lc_fail(LC_ERR_INVALID, "reps, max_tokens, depths and concurrency must be positive");
    for (int i = 0; i < p->n_conc; i++)
        if (p->conc[i] > LC_BENCH_MAX_CONC)
            return lc_fail(LC_ERR_RANGE, "concurrency %d is over the limit of %d", p->conc[i], LC_BENCH_MAX_CONC);
    const char *out = p->out_dir ? p->out_dir : "bench-out";
    lc_bench_http_params q = *p; /* a view with out_dir filled in (strings still owned by p) */
    q.out_dir = (char *)out;
    bench b = {.p = &q};
    lc_status st = make_dirs(out);
    if (st != LC_OK) return st;
    st = lc_prompt_gen_create(p->corpus_dir, p->src_dir, &b.gen);
    if (st != LC_OK) return st;
    char path[4096];
    snprintf(path, sizeof path, "%s/results.jsonl", out);
    b.jsonl = fopen(path, "w");
    if (!b.jsonl) {
        lc_prompt_gen_free(b.gen);
        return lc_fail(LC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    b.salt = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40);
    b.pg = (progress){.t0 = lc_time_sec(), .tty = isatty(2), .quiet = p->quiet};
    b.pg.total = p->n_runs * p->n_depths * p->reps * (p->warm ? 2 : 1) * p->n_conc;
    for (int i = 0; i < p->n_runs && st == LC_OK; i++) st = run_config(&b, &p->runs[i]);
    fclose(b.jsonl);
    const char *title = p->title ? p->title : "locara bench http";
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/summary.md", out);
        st = lc_bench_write_summary(path, b.rows, b.n_rows, title);
    }
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/report.html", out);
        st = lc_bench_write_html(path, b.rows, b.n_rows, title);
    }
    lc_free(b.rows);
    lc_prompt_gen_free(b.gen);
    return st;
}
