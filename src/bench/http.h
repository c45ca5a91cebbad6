/* http.h — `locara bench http`: TTFT, prefill and decode speed of any OpenAI-compatible server
 * at real context depths, cold and warm, at several concurrency levels, optionally starting and
 * stopping each server itself.
 *
 * Three parts: the streaming client (http_client.c: curl multi, SSE parsing, /tokenize, health
 * polls), the server lifecycle (http_server.c: start in its own process group, wait for health,
 * SIGTERM then SIGKILL) and the driver (http.c: config file, depth x cache x concurrency x reps
 * loop, progress, results.jsonl / summary.md / report.html). Entry point: lc_bench_http_run.
 */
#ifndef LC_BENCH_HTTP_H
#define LC_BENCH_HTTP_H

#include "base/base.h"
#include "bench/report.h"

#include <stdio.h>
#include <sys/types.h>

/* ==== Parameters ==== */

#define LC_BENCH_MAX_DEPTHS 32
#define LC_BENCH_MAX_CONC 16
#define LC_BENCH_MAX_RUNS 16

/* One configuration: a server (started by server_cmd, or already running at url) and a model. */
typedef struct lc_bench_run {
    char *name;       /* label in the results ("locara", "llama-server") */
    char *server_cmd; /* run with /bin/sh -c; NULL = the server is already running */
    char *url;        /* base URL, e.g. http://127.0.0.1:8080 (no /v1) */
    char *model;      /* "model" field of requests */
    char *api_key;    /* sent as a Bearer token; NULL = none */
} lc_bench_run;

typedef struct lc_bench_http_params {
    lc_bench_run runs[LC_BENCH_MAX_RUNS];
    int n_runs;
    int depths[LC_BENCH_MAX_DEPTHS];
    int n_depths;
    int conc[LC_BENCH_MAX_CONC];
    int n_conc;
    int reps;                 /* measured repetitions per (depth, concurrency) */
    int max_tokens;           /* tokens to generate per request */
    uint64_t seed;            /* picks the prompt material */
    double timeout_s;         /* per request */
    double startup_timeout_s; /* server start until /health answers 200 */
    double grace_s;           /* SIGTERM -> SIGKILL */
    int warm;                 /* also measure warm requests (default 1) */
    int skip_deeper;          /* after every cold request at a depth failed, skip deeper ones */
    int quiet;                /* no progress on stderr */
    char *out_dir;
    char *corpus_dir;         /* NULL = bench/corpus beside the sources */
    char *src_dir;            /* NULL = src/ beside the sources */
    char *title;
} lc_bench_http_params;

/* Defaults: depths 20,512,4k,16k,32k,64k,128k (once every cold request at a depth failed, the
 * deeper ones are recorded as skipped: as far as the model and memory allow); concurrency 1;
 * 3 reps; 64 tokens; seed 42; 600 s per request, 300 s start-up; warm on; out "bench-out". */
void lc_bench_http_params_default(lc_bench_http_params *p);
void lc_bench_http_params_free(lc_bench_http_params *p);

/* Adds a configuration (copies the strings; NULLs allowed except url). */
lc_status lc_bench_http_add_run(lc_bench_http_params *p, const char *name, const char *server_cmd,
                                const char *url, const char *model, const char *api_key);

/* Parses "20,4096,16k" into at most cap positive integers ("k" = 1024). Returns the count, or
 * -1 with a message naming what was wrong. */
int lc_bench_parse_int_list(const char *s, int *out, int cap);

/* Reads a JSON config: {"runs":[{"name","server_cmd","url","model","api_key"}], "depths":[...],
 * "concurrency":[...], "reps", "max_tokens", "seed", "timeout", "startup_timeout", "out",
 * "title", "warm"}. Keys present override p; runs are appended. Paths are taken as given. */
lc_status lc_bench_http_load_config(const char *path, lc_bench_http_params *p);

/* Runs every configuration and writes out_dir/results.jsonl, summary.md and report.html.
 * Failed requests are rows with ok=false, never dropped; the return is LC_OK unless the
 * benchmark itself could not run (bad corpus, unwritable out_dir). */
lc_status lc_bench_http_run(const lc_bench_http_params *p);

/* ==== Streaming client (http_client.c) ==== */

/* What one streamed chat completion did. Times are lc_time_sec() stamps. */
typedef struct lc_stream_result {
    int ok;
    char error[256];
    long http_status;
    double t_send, t_first, t_last, t_end;
    int n_chunks;          /* SSE chunks that carried content, reasoning or tool-call text */
    int prompt_tokens;     /* from usage, -1 when the server sent none */
    int completion_tokens; /* from usage, -1 when the server sent none */
    int cached_tokens;     /* usage.prompt_tokens_details.cached_tokens or timings.cache_n */
    int done;              /* saw "data: [DONE]" */
    int finished;          /* saw a finish_reason */
    lc_str text;           /* the generated content */
    lc_str line;           /* SSE line being assembled */
    lc_str body;           /* the first bytes of a non-SSE (error) body */
} lc_stream_result;

void lc_stream_result_init(lc_stream_result *r);
void lc_stream_result_free(lc_stream_result *r);

/* Feeds received bytes to the SSE parser at time now: complete "data:" lines are decoded,
 * stamping t_first/t_last on chunks that carry generated text and reading usage. */
void lc_sse_feed(lc_stream_result *r, const char *data, size_t n, double now);

/* Sends n chat-completion bodies to base_url/v1/chat/completions at once (curl multi) and waits
 * for every stream to end or time out. out[i] is initialised here; free each with
 * lc_stream_result_free. Transport and HTTP errors land in out[i].error with ok = 0. */
lc_status lc_http_stream_many(const char *base_url, const char *api_key, char *const *bodies, int n,
                              double timeout_s, lc_stream_result *out);

/* POSTs {"content": text} to base_url/tokenize; returns the number of tokens, or -1 when the
 * endpoint is missing or answers something else. */
int lc_http_tokenize(const char *base_url, const char *api_key, const char *text, double timeout_s);

/* GETs base_url + path; returns the HTTP status, or 0 when no connection could be made. */
long lc_http_get_status(const char *base_url, const char *path, const char *api_key, double timeout_s);

/* The measurements of a finished stream as a row (identity fields are left to the caller).
 * est_prompt is used when the server sent no usage. */
void lc_stream_to_row(const lc_stream_result *r, int est_prompt, lc_bench_row *row);

/* ==== Server lifecycle (http_server.c) ==== */

typedef struct lc_server_proc {
    pid_t pid; /* also its process group id; 0 = not running */
    int exited;
    int status; /* waitpid status once exited */
} lc_server_proc;

/* Starts cmd through /bin/sh -c in a new process group with stdout and stderr appended to
 * log_path, then polls base_url/health (and /v1/models) until 200 or startup_timeout_s. */
lc_status lc_server_start(const char *cmd, const char *log_path, const char *base_url,
                          const char *api_key, double startup_timeout_s, lc_server_proc *sp);

/* Nonzero while the server's process is alive (reaps it when it has exited). */
int lc_server_alive(lc_server_proc *sp);

/* Describes how the server ended ("exited with status 1", "killed by signal 9") into buf. */
void lc_server_describe_exit(const lc_server_proc *sp, char *buf, size_t cap);

/* SIGTERM to the process group, SIGKILL after grace_s, and reaps it. Fine to call twice. */
void lc_server_stop(lc_server_proc *sp, double grace_s);

#endif
