/* scheduler.h — continuous batching of many generation requests over one lc_context.
 *
 * Owns: the engine thread (the only thread that touches the context), the queue of requests
 * between HTTP threads and that thread, and every lock in the server (one mutex, a condition
 * variable for the engine and one per request). Each step decodes one token of every running
 * sequence plus chunks of pending prompts (chunked prefill) in a single lc_decode; new
 * sequences attach their longest cached prefix; a sequence that reaches the context either is
 * shifted (keep N tokens, drop half of the rest, recompute) or stops with "length".
 * Deliberately not here: HTTP, JSON, chat templates, tool/reasoning parsing (src/server/).
 * Entry points: lc_sched_create, lc_sched_submit, lc_sched_take, lc_sched_release, lc_sched_free.
 */
#ifndef LC_ENGINE_SCHEDULER_H
#define LC_ENGINE_SCHEDULER_H

#include "engine/sampler.h"

typedef struct lc_sched lc_sched;
typedef struct lc_sched_req lc_sched_req;

typedef struct lc_sched_params {
    int n_parallel; /* sequences decoded together (slots); <= the context's n_seq_max */
    int n_batch;    /* tokens per step (decode tokens + prefill chunks); <= the context's n_batch */
    int n_keep;     /* context shift: tokens kept at the start; -1 = shifting off */
} lc_sched_params;

/* A hook that constrains sampling (JSON mode). mask sets disallowed logits to -INFINITY before
 * sampling; accept is told the token finally chosen. Both run on the engine thread. free (may be
 * NULL) is called once when the request is freed. */
typedef struct lc_sched_constraint {
    void *ud;
    void (*mask)(void *ud, float *logits, int n_vocab, int n_left);
    void (*accept)(void *ud, lc_token tok);
    void (*free)(void *ud);
} lc_sched_constraint;

/* What to generate. Strings and arrays are copied by lc_sched_submit. */
typedef struct lc_gen_params {
    lc_sampler_params sp;
    int max_tokens;           /* < 0: until the context is full */
    const char *const *stops; /* stop strings */
    int n_stops;
    bool logprobs;            /* report each token's log-probability */
    int top_logprobs;         /* and this many alternatives (0..20) */
    bool ignore_eos;
    lc_sched_constraint constraint; /* mask == NULL: none */
} lc_gen_params;

typedef enum lc_finish {
    LC_FINISH_NONE = 0,
    LC_FINISH_STOP,   /* end-of-generation token or a stop string */
    LC_FINISH_LENGTH, /* max_tokens, or the context is full and shifting is off */
    LC_FINISH_ERROR,  /* see lc_sched_out.error */
    LC_FINISH_CANCELLED,
} lc_finish;

#define LC_SCHED_MAX_TOP 20

/* One generated token with its log-probability and the top alternatives. */
typedef struct lc_sched_logprob {
    lc_token token;
    float logprob;
    int n_top;
    lc_token_logprob top[LC_SCHED_MAX_TOP];
} lc_sched_logprob;

/* What lc_sched_take hands over: text and logprobs are APPENDED (the caller clears them). */
typedef struct lc_sched_out {
    lc_str text;              /* released text (stop strings removed, whole UTF-8) */
    lc_sched_logprob *lps;    /* lc_malloc'd, n_lps entries */
    int n_lps;
    size_t cap_lps;
    lc_finish finish;         /* set once the request is over */
    char error[256];
    int n_prompt, n_cached, n_gen; /* usage so far */
    double ttft_s;            /* submit -> first token, 0 before it */
} lc_sched_out;

void lc_sched_out_free(lc_sched_out *o);

/* Prometheus-style counters and histograms, snapshot by lc_sched_metrics. */
#define LC_SCHED_TTFT_BUCKETS 10
#define LC_SCHED_TPS_BUCKETS 10
typedef struct lc_sched_metrics {
    long requests, finished, errors, cancelled;
    long long prompt_tokens, gen_tokens, cached_tokens; /* cached: prefix tokens reused */
    long steps;
    int running, queued;
    double ttft_le[LC_SCHED_TTFT_BUCKETS]; /* bucket upper bounds (s) */
    long ttft_count[LC_SCHED_TTFT_BUCKETS + 1]; /* cumulative counts; last = +Inf */
    double ttft_sum;
    double tps_le[LC_SCHED_TPS_BUCKETS];   /* decode tokens/s per request */
    long tps_count[LC_SCHED_TPS_BUCKETS + 1];
    double tps_sum;
    int kv_blocks, kv_used, kv_cached, kv_block_tokens;
    long kv_dropped;   /* cached blocks dropped on request (memory pressure) */
} lc_sched_metrics;

/* Starts the engine thread over ctx (not owned; it must outlive the scheduler, and nothing else
 * may use it meanwhile). */
lc_status lc_sched_create(lc_context *ctx, const lc_sched_params *p, lc_sched **out);
/* Stops the engine thread: running requests end with LC_FINISH_CANCELLED. */
void lc_sched_free(lc_sched *s);

/* Queues a generation of prompt[0..n) (copied). *out is a handle the caller owns: read results
 * with lc_sched_take and give it back with lc_sched_release. LC_ERR_RANGE if the prompt does
 * not fit the context; LC_ERR_INVALID for bad sampler parameters; LC_ERR_CANCELLED when the
 * scheduler is stopping. */
lc_status lc_sched_submit(lc_sched *s, const lc_token *prompt, int n, const lc_gen_params *gp,
                          lc_sched_req **out);

/* Waits up to timeout_ms for new output (or the end), then moves it into out. Returns true once
 * the request is over and everything has been taken (out->finish is set). */
bool lc_sched_take(lc_sched *s, lc_sched_req *r, lc_sched_out *out, int timeout_ms);

/* Cancels the request if it is still running (its sequence is freed within one engine step)
 * and drops the caller's reference. */
void lc_sched_release(lc_sched *s, lc_sched_req *r);

void lc_sched_metrics_get(lc_sched *s, lc_sched_metrics *m);

/* Asks the engine thread to drop every cached, unreferenced KV block (memory pressure); returns
 * at once, the drop happens before the engine's next step. Sequences in flight are untouched. */
void lc_sched_drop_cached(lc_sched *s);

/* Context size and the prompt limit (tokens) a request may carry. */
int lc_sched_n_ctx(const lc_sched *s);

#endif /* LC_ENGINE_SCHEDULER_H */
