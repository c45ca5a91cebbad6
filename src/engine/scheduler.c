/* scheduler.c — the engine thread and the request queue (see scheduler.h).
 *
 * Locking: s->mu guards the queue, every request's shared fields (output, finish, refs,
 * cancelled) and the metrics. The engine thread takes it briefly at the start of each step
 * (admit, cancel) and after sampling (publish); decoding runs unlocked. HTTP threads take it
 * in submit, take and release. This file holds every lock of the server.
 */
#include "engine/scheduler.h"

#include "engine/context.h"
#include "engine/stop.h"
#include "text/tokenizer.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ==== Requests ==== */

struct lc_sched_req {
    /* immutable after submit */
    lc_token *prompt;
    int n_prompt;
    lc_gen_params gp;
    char **stops;
    lc_logit_bias *bias;
    double t_submit;
    /* shared, under s->mu */
    int refs;
    bool cancelled;
    bool running;     /* owned by a slot */
    lc_sched_out pend; /* not yet taken */
    pthread_cond_t cv;
    lc_sched_req *next;
};

/* One sequence of the context. Engine thread only. */
typedef struct slot {
    lc_sched_req *req; /* NULL = free */
    int id;
    lc_token *toks;    /* prompt (after shifts) + generated tokens */
    int n_toks, cap;
    int n_past;        /* tokens in the cache */
    int n_gen;
    lc_sampler *smp;
    lc_stop *stop;
    lc_detok *dt;
    lc_str text;       /* released text not yet published */
    lc_sched_logprob *lps;
    int n_lps;
    size_t cap_lps;
    double t_first;
    bool sample_now;   /* its last token's logits are in this step's output */
    int out_i;
    long admitted;     /* admission order, for picking a victim when the pool is full */
} slot;

struct lc_sched {
    lc_context *ctx;
    lc_sched_params p;
    int n_vocab;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* engine: work arrived */
    bool stopping;
    bool drop_req;       /* lc_sched_drop_cached asked */
    lc_sched_req *head, *tail;
    int n_queued;
    slot *slots;
    long n_admitted;
    lc_sched_metrics m;
    /* step scratch */
    lc_token *b_tok;
    int32_t *b_pos, *b_seq;
    int8_t *b_want;
    float *row;
    lc_str piece;
};

void lc_sched_out_free(lc_sched_out *o) {
    lc_str_free(&o->text);
    lc_free(o->lps);
    memset(o, 0, sizeof *o);
}

static void req_free(lc_sched_req *r) {
    if (r->gp.constraint.free) r->gp.constraint.free(r->gp.constraint.ud);
    for (int i = 0; i < r->gp.n_stops; i++) lc_free(r->stops[i]);
    lc_free(r->stops);
    lc_free(r->bias);
    lc_free(r->prompt);
    lc_sched_out_free(&r->pend);
    pthread_cond_destroy(&r->cv);
    lc_free(r);
}

/* Drops one reference (under s->mu); frees at zero. */
static void req_unref(lc_sched_req *r) {
    if (--r->refs == 0) req_free(r);
}

/* ==== Metrics ==== */

static const double ttft_bounds[LC_SCHED_TTFT_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double tps_bounds[LC_SCHED_TPS_BUCKETS] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

static void observe(long *counts, const double *le, int n, double v) {
    int i = 0;
    while (i < n && v > le[i]) i++;
    counts[i]++;
}

void lc_sched_metrics_get(lc_sched *s, lc_sched_metrics *m) {
    pthread_mutex_lock(&s->mu);
    *m = s->m;
    pthread_mutex_unlock(&s->mu);
    memcpy(m->ttft_le, ttft_bounds, sizeof ttft_bounds);
    memcpy(m->tps_le, tps_bounds, sizeof tps_bounds);
    /* make the histograms cumulative, as Prometheus wants */
    for (int i = 1; i <= LC_SCHED_TTFT_BUCKETS; i++) m->ttft_count[i] += m->ttft_count[i - 1];
    for (int i = 1; i <= LC_SCHED_TPS_BUCKETS; i++) m->tps_count[i] += m->tps_count[i - 1];
}

/* ==== Submit / take / release (HTTP threads) ==== */

lc_status lc_sched_submit(lc_sched *s, const lc_token *prompt, int n, const lc_gen_params *gp,
                          lc_sched_req **out) {
    *out = NULL;
    if (n <= 0) return lc_fail(LC_ERR_INVALID, "the prompt is empty");
    if (n >= s->ctx->params.n_ctx)
        return lc_fail(LC_ERR_RANGE, "the prompt has %d tokens; the context holds %d (--ctx)", n,
                       s->ctx->params.n_ctx);
    for (int i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= s->n_vocab)
            return lc_fail(LC_ERR_INVALID, "token %d is outside the vocabulary (%d)", prompt[i], s->n_vocab);
    lc_sched_req *r = lc_calloc(1, sizeof *r);
    if (!r) return LC_ERR_OOM;
    pthread_cond_init(&r->cv, NULL);
    r->gp = *gp;
    r->gp.stops = NULL;
    r->prompt = lc_malloc((size_t)n * sizeof *prompt);
    r->stops = gp->n_stops ? lc_calloc((size_t)gp->n_stops, sizeof(char *)) : NULL;
    r->bias = gp->sp.n_logit_bias ? lc_malloc((size_t)gp->sp.n_logit_bias * sizeof *r->bias) : NULL;
    bool oom = !r->prompt || (gp->n_stops && !r->stops) || (gp->sp.n_logit_bias && !r->bias);
    r->gp.n_stops = 0;
    for (int i = 0; !oom && i < gp->n_stops; i++) {
        if (!(r->stops[i] = lc_strdup(gp->stops[i]))) oom = true;
        else r->gp.n_stops++;
    }
    if (oom) {
        r->refs = 1;
        req_free(r);
        return LC_ERR_OOM;
    }
    memcpy(r->prompt, prompt, (size_t)n * sizeof *prompt);
    r->n_prompt = n;
    if (r->bias) memcpy(r->bias, gp->sp.logit_bias, (size_t)gp->sp.n_logit_bias * sizeof *r->bias);
    r->gp.sp.logit_bias = r->bias;
    r->gp.stops = (const char *const *)r->stops;
    if (r->gp.top_logprobs > LC_SCHED_MAX_TOP) r->gp.top_logprobs = LC_SCHED_MAX_TOP;
    if (r->gp.top_logprobs < 0) r->gp.top_logprobs = 0;
    r->t_submit = lc_time_sec();
    r->refs = 2; /* caller + queue */
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        r->refs = 1;
        req_free(r);
        return lc_fail(LC_ERR_CANCELLED, "the server is shutting down");
    }
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    s->n_queued++;
    s->m.requests++;
    s->m.queued = s->n_queued;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *out = r;
    return LC_OK;
}

/* Moves r's pending output into out (under s->mu). */
static void drain(lc_sched_req *r, lc_sched_out *out) {
    lc_sched_out *p = &r->pend;
    if (p->text.len) lc_str_append(&out->text, p->text.buf, p->text.len);
    lc_str_clear(&p->text);
    if (p->n_lps) {
        size_t cap = out->cap_lps;
        if (lc_grow((void **)&out->lps, sizeof *out->lps, &cap, (size_t)(out->n_lps + p->n_lps))) {
            out->cap_lps = cap;
            memcpy(out->lps + out->n_lps, p->lps, (size_t)p->n_lps * sizeof *p->lps);
            out->n_lps += p->n_lps;
        }
        p->n_lps = 0;
    }
    out->finish = p->finish;
    if (p->finish == LC_FINISH_ERROR) memcpy(out->error, p->error, sizeof out->error);
    out->n_prompt = p->n_prompt;
    out->n_cached = p->n_cached;
    out->n_gen = p->n_gen;
    out->ttft_s = p->ttft_s;
}

bool lc_sched_take(lc_sched *s, lc_sched_req *r, lc_sched_out *out, int timeout_ms) {
    pthread_mutex_lock(&s->mu);
    if (!r->pend.finish && !r->pend.text.len && !r->pend.n_lps && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &s->mu, &ts);
    }
    drain(r, out);
    bool done = out->finish != LC_FINISH_NONE;
    pthread_mutex_unlock(&s->mu);
    return done;
}

void lc_sched_release(lc_sched *s, lc_sched_req *r) {
    if (!r) return;
    pthread_mutex_lock(&s->mu);
    r->cancelled = true;
    pthread_cond_signal(&s->cv);
    req_unref(r);
    pthread_mutex_unlock(&s->mu);
}

void lc_sched_drop_cached(lc_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->drop_req = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int lc_sched_n_ctx(const lc_sched *s) { return s->ctx->params.n_ctx; }

/* ==== Slots (engine thread) ==== */

/* Ends slot sl's request with reason (and message), publishes what is left and frees the
 * sequence's blocks (full blocks stay cached for prefix reuse). Called with s->mu held. */
static void slot_finish(lc_sched *s, slot *sl, lc_finish reason, const char *msg) {
    lc_sched_req *r = sl->req;
    if ((reason == LC_FINISH_STOP || reason == LC_FINISH_LENGTH) && sl->stop) {
        lc_str_clear(&s->piece);
        if (sl->dt && lc_stop_hit(sl->stop) < 0) lc_detok_flush(sl->dt, &s->piece);
        if (s->piece.len) lc_stop_feed(sl->stop, s->piece.buf, s->piece.len, &sl->text);
        lc_stop_finish(sl->stop, &sl->text);
    }
    lc_sched_out *p = &r->pend;
    if (sl->text.len) lc_str_append(&p->text, sl->text.buf, sl->text.len);
    lc_str_clear(&sl->text);
    p->finish = reason;
    p->n_gen = sl->n_gen;
    if (msg) snprintf(p->error, sizeof p->error, "%s", msg);
    double now = lc_time_sec();
    if (reason == LC_FINISH_ERROR) s->m.errors++;
    else if (reason == LC_FINISH_CANCELLED) s->m.cancelled++;
    else {
        s->m.finished++;
        if (sl->n_gen > 1 && now > sl->t_first) {
            double tps = (sl->n_gen - 1) / (now - sl->t_first);
            observe(s->m.tps_count, tps_bounds, LC_SCHED_TPS_BUCKETS, tps);
            s->m.tps_sum += tps;
        }
    }
    pthread_cond_broadcast(&r->cv);
    r->running = false;
    req_unref(r);
    sl->req = NULL;
    lc_seq_truncate(s->ctx, sl->id, 0);
    lc_sampler_free(sl->smp);
    lc_stop_free(sl->stop);
    lc_detok_free(sl->dt);
    sl->smp = NULL;
    sl->stop = NULL;
    sl->dt = NULL;
    sl->n_toks = sl->n_past = sl->n_gen = sl->n_lps = 0;
    s->m.running--;
}

/* Binds the queue's head to free slot sl: copies the prompt, attaches the cached prefix, makes
 * the sampler and stop matcher. Called with s->mu held; on failure the request ends in error. */
static void slot_admit(lc_sched *s, slot *sl, lc_sched_req *r) {
    sl->req = r;
    r->running = true;
    s->m.running++;
    sl->admitted = s->n_admitted++;
    sl->t_first = 0;
    size_t cap = (size_t)sl->cap;
    lc_status st = LC_OK;
    if (!lc_grow((void **)&sl->toks, sizeof *sl->toks, &cap, (size_t)r->n_prompt + 16)) st = LC_ERR_OOM;
    sl->cap = (int)cap;
    if (!st) st = lc_sampler_create(&r->gp.sp, s->n_vocab, &sl->smp);
    if (!st) st = lc_stop_create(r->gp.stops, r->gp.n_stops, &sl->stop);
    if (!st) st = lc_detok_create(s->ctx->model->tok, false, &sl->dt);
    if (st) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", lc_last_error());
        slot_finish(s, sl, LC_FINISH_ERROR, msg);
        return;
    }
    memcpy(sl->toks, r->prompt, (size_t)r->n_prompt * sizeof *sl->toks);
    sl->n_toks = r->n_prompt;
    lc_seq_truncate(s->ctx, sl->id, 0);
    sl->n_past = lc_kvc_seq_attach_prefix(s->ctx->kvc, sl->id, sl->toks, sl->n_toks);
    r->pend.n_prompt = r->n_prompt;
    r->pend.n_cached = sl->n_past;
    s->m.prompt_tokens += r->n_prompt;
    s->m.cached_tokens += sl->n_past;
}

/* The context is full for sl: shift (keep n_keep tokens, drop half of the rest, recompute the
 * remainder with new positions) or report that it cannot. Returns true if shifted. */
static bool slot_shift(lc_sched *s, slot *sl) {
    int n_ctx = s->ctx->params.n_ctx;
    int keep = s->p.n_keep;
    if (keep < 0) return false;
    if (keep > n_ctx / 2) keep = n_ctx / 2;
    int n_discard = (sl->n_toks - keep) / 2;
    if (n_discard <= 0) return false;
    memmove(sl->toks + keep, sl->toks + keep + n_discard,
            (size_t)(sl->n_toks - keep - n_discard) * sizeof *sl->toks);
    sl->n_toks -= n_discard;
    if (sl->n_past > keep) {
        lc_seq_truncate(s->ctx, sl->id, keep);
        sl->n_past = keep;
    }
    lc_log(LC_LOG_INFO, "seq %d: context shift, kept %d, dropped %d tokens", sl->id, keep, n_discard);
    return true;
}

/* ==== The engine step ==== */

/* Samples the next token of sl from logits row, records logprobs, feeds the stop matcher, and
 * decides whether the sequence ends. Called with s->mu held (publishes into the request). */
static void slot_sample(lc_sched *s, slot *sl, const float *logits) {
    lc_sched_req *r = sl->req;
    const lc_gen_params *gp = &r->gp;
    const float *use = logits;
    int n_left = gp->max_tokens >= 0 ? gp->max_tokens - sl->n_gen : 1 << 30;
    if (gp->constraint.mask) {
        memcpy(s->row, logits, (size_t)s->n_vocab * sizeof *s->row);
        gp->constraint.mask(gp->constraint.ud, s->row, s->n_vocab, n_left);
        use = s->row;
    }
    if (gp->ignore_eos && use != s->row) {
        memcpy(s->row, logits, (size_t)s->n_vocab * sizeof *s->row);
        use = s->row;
    }
    if (gp->ignore_eos)
        for (int t = 0; t < s->n_vocab; t++)
            if (lc_token_is_eog(s->ctx->model, t)) s->row[t] = -INFINITY;
    lc_token tok = lc_sampler_sample(sl->smp, use);
    lc_sampler_accept(sl->smp, tok);
    if (gp->constraint.accept) gp->constraint.accept(gp->constraint.ud, tok);
    double now = lc_time_sec();
    if (sl->n_gen == 0) {
        sl->t_first = now;
        r->pend.ttft_s = now - r->t_submit;
        observe(s->m.ttft_count, ttft_bounds, LC_SCHED_TTFT_BUCKETS, r->pend.ttft_s);
        s->m.ttft_sum += r->pend.ttft_s;
    }
    sl->n_gen++;
    s->m.gen_tokens++;
    r->pend.n_gen = sl->n_gen;
    if (lc_token_is_eog(s->ctx->model, tok)) {
        slot_finish(s, sl, LC_FINISH_STOP, NULL);
        return;
    }
    if (gp->logprobs) {
        lc_sched_out *p = &r->pend;
        size_t cap = p->cap_lps;
        if (lc_grow((void **)&p->lps, sizeof *p->lps, &cap, (size_t)p->n_lps + 1)) {
            p->cap_lps = cap;
            lc_sched_logprob *e = &p->lps[p->n_lps++];
            e->token = tok;
            e->logprob = lc_sampler_logprobs(sl->smp, logits, tok, gp->top_logprobs, e->top, &e->n_top);
        }
    }
    lc_str_clear(&s->piece);
    lc_detok_feed(sl->dt, tok, &s->piece);
    bool hit = false;
    if (s->piece.len) hit = lc_stop_feed(sl->stop, s->piece.buf, s->piece.len, &sl->text);
    if (sl->text.len) {
        lc_str_append(&r->pend.text, sl->text.buf, sl->text.len);
        lc_str_clear(&sl->text);
    }
    pthread_cond_broadcast(&r->cv);
    if (hit) {
        slot_finish(s, sl, LC_FINISH_STOP, NULL);
        return;
    }
    if (gp->max_tokens >= 0 && sl->n_gen >= gp->max_tokens) {
        slot_finish(s, sl, LC_FINISH_LENGTH, NULL);
        return;
    }
    sl->toks[sl->n_toks++] = tok; /* capacity grown before the step */
    if (sl->n_toks > s->ctx->params.n_ctx && !slot_shift(s, sl)) slot_finish(s, sl, LC_FINISH_LENGTH, NULL);
}

/* Under s->mu: drops cancelled requests, fills free slots from the queue, refreshes KV stats. */
static void step_admin(lc_sched *s) {
    for (int i = 0; i < s->p.n_parallel; i++) {
        slot *sl = &s->slots[i];
        if (sl->req && sl->req->cancelled) slot_finish(s, sl, LC_FINISH_CANCELLED, NULL);
    }
    for (lc_sched_req **pp = &s->head; *pp;) {
        lc_sched_req *r = *pp;
        if (r->cancelled) {
            *pp = r->next;
            s->n_queued--;
            s->m.cancelled++;
            r->pend.finish = LC_FINISH_CANCELLED;
            req_unref(r);
        } else {
            pp = &r->next;
        }
    }
    s->tail = NULL;
    for (lc_sched_req *r = s->head; r; r = r->next) s->tail = r;
    for (int i = 0; i < s->p.n_parallel && s->head; i++) {
        slot *sl = &s->slots[i];
        if (sl->req) continue;
        lc_sched_req *r = s->head;
        s->head = r->next;
        if (!s->head) s->tail = NULL;
        s->n_queued--;
        r->next = NULL;
        slot_admit(s, sl, r);
    }
    s->m.queued = s->n_queued;
    if (s->drop_req) {
        s->drop_req = false;
        s->m.kv_dropped += lc_kvc_drop_cached(s->ctx->kvc);
    }
    lc_kvc_stats ks = lc_kvc_get_stats(s->ctx->kvc);
    s->m.kv_blocks = ks.n_blocks;
    s->m.kv_used = ks.used;
    s->m.kv_cached = ks.cached;
    s->m.kv_block_tokens = ks.block_tokens;
}

/* Builds one batch: the last token of every generating sequence first, then prompt chunks of
 * prefilling sequences in admission order until n_batch is full. Returns the token count. */
static int step_build(lc_sched *s) {
    int T = 0, n_out = 0;
    int nb = s->p.n_batch;
    for (int i = 0; i < s->p.n_parallel; i++) s->slots[i].sample_now = false;
    bool decoding_present = false;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) decoding_present = T > 0;
        for (int i = 0; i < s->p.n_parallel && T < nb; i++) {
            slot *sl = &s->slots[i];
            if (!sl->req || sl->sample_now) continue;
            int pending = sl->n_toks - sl->n_past;
            bool decoding = sl->n_gen > 0 && pending == 1;
            if (pending <= 0 || (pass == 0) != decoding) continue;
            int m = LC_MIN(pending, nb - T);
            /* while streams decode, a long prompt goes in chunks of a quarter batch, so each
             * running stream waits for a short step instead of a full-batch one. Prompts that
             * short go whole, as they would alone: the engine's numerics depend on how a
             * sequence is chunked, and this keeps concurrent greedy outputs equal to
             * sequential ones for them. */
            int quarter = LC_MAX(s->p.n_batch / 4, 16);
            if (pass == 1 && decoding_present && pending > quarter) m = LC_MIN(m, quarter);
            for (int k = 0; k < m; k++) {
                s->b_tok[T] = sl->toks[sl->n_past + k];
                s->b_pos[T] = sl->n_past + k;
                s->b_seq[T] = sl->id;
                s->b_want[T] = 0;
                T++;
            }
            if (m == pending) {
                s->b_want[T - 1] = 1;
                sl->sample_now = true;
                sl->out_i = n_out++;
            }
        }
    }
    return T;
}

/* After a successful decode: advance n_past by what each slot contributed. */
static void step_commit(lc_sched *s, int T) {
    for (int t = 0; t < T; t++) s->slots[s->b_seq[t]].n_past++;
}

/* The pool is full: end the most recently admitted sequence of the batch with an error. */
static void step_evict(lc_sched *s, const char *why) {
    slot *victim = NULL;
    for (int i = 0; i < s->p.n_parallel; i++) {
        slot *sl = &s->slots[i];
        if (sl->req && (!victim || sl->admitted > victim->admitted)) victim = sl;
    }
    if (!victim) return;
    for (int i = 0; i < s->p.n_parallel; i++) {
        slot *sl = &s->slots[i];
        if (sl->req && sl->n_past != lc_kvc_seq_len(s->ctx->kvc, sl->id))
            lc_seq_truncate(s->ctx, sl->id, sl->n_past); /* undo partial reservations */
    }
    char msg[256];
    snprintf(msg, sizeof msg, "the KV cache is full (%s); retry later or raise --ctx", why);
    slot_finish(s, victim, LC_FINISH_ERROR, msg);
}

static void *engine_main(void *arg) {
    lc_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        step_admin(s);
        if (s->stopping) break;
        if (!s->m.running) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        /* make room for one more token in every running slot before unlocking */
        for (int i = 0; i < s->p.n_parallel; i++) {
            slot *sl = &s->slots[i];
            if (!sl->req) continue;
            size_t cap = (size_t)sl->cap;
            if (lc_grow((void **)&sl->toks, sizeof *sl->toks, &cap, (size_t)sl->n_toks + 2)) sl->cap = (int)cap;
            else slot_finish(s, sl, LC_FINISH_ERROR, "out of memory");
        }
        pthread_mutex_unlock(&s->mu);
        int T = step_build(s);
        lc_status st = T ? lc_decode(s->ctx, &(lc_batch){T, s->b_tok, s->b_pos, s->b_seq, s->b_want}) : LC_OK;
        pthread_mutex_lock(&s->mu);
        s->m.steps++;
        if (st == LC_ERR_RANGE || st == LC_ERR_OOM) {
            step_evict(s, lc_last_error());
            continue;
        }
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "decode failed: %s", lc_last_error());
            for (int i = 0; i < s->p.n_parallel; i++)
                if (s->slots[i].req) slot_finish(s, &s->slots[i], LC_FINISH_ERROR, msg);
            continue;
        }
        step_commit(s, T);
        for (int i = 0; i < s->p.n_parallel; i++) {
            slot *sl = &s->slots[i];
            if (!sl->req || !sl->sample_now) continue;
            if (sl->req->cancelled) continue; /* dropped at the next admin */
            const float *row = lc_get_logits(s->ctx, sl->out_i);
            if (!row) slot_finish(s, sl, LC_FINISH_ERROR, "no logits for the sequence");
            else slot_sample(s, sl, row);
        }
    }
    for (int i = 0; i < s->p.n_parallel; i++)
        if (s->slots[i].req) slot_finish(s, &s->slots[i], LC_FINISH_CANCELLED, NULL);
    for (lc_sched_req *r = s->head; r;) {
        lc_sched_req *next = r->next;
        r->pend.finish = LC_FINISH_CANCELLED;
        pthread_cond_broadcast(&r->cv);
        req_unref(r);
        r = next;
    }
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ==== Life cycle ==== */

lc_status lc_sched_create(lc_context *ctx, const lc_sched_params *p, lc_sched **out) {
    *out = NULL;
    lc_sched *s = lc_calloc(1, sizeof *s);
    if (!s) return LC_ERR_OOM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->ctx = ctx;
    s->p = *p;
    if (s->p.n_parallel <= 0) s->p.n_parallel = 1;
    if (s->p.n_parallel > ctx->params.n_seq_max) s->p.n_parallel = ctx->params.n_seq_max;
    if (s->p.n_batch <= 0 || s->p.n_batch > ctx->params.n_batch) s->p.n_batch = ctx->params.n_batch;
    if (s->p.n_batch < s->p.n_parallel) s->p.n_batch = s->p.n_parallel;
    if (s->p.n_batch > ctx->params.n_batch) {
        lc_sched_free(s);
        return lc_fail(LC_ERR_INVALID, "--batch %d is smaller than --parallel %d", ctx->params.n_batch,
                       p->n_parallel);
    }
    s->n_vocab = lc_model_n_vocab(ctx->model);
    size_t nb = (size_t)s->p.n_batch;
    s->slots = lc_calloc((size_t)s->p.n_parallel, sizeof *s->slots);
    s->b_tok = lc_malloc(nb * sizeof *s->b_tok);
    s->b_pos = lc_malloc(nb * sizeof *s->b_pos);
    s->b_seq = lc_malloc(nb * sizeof *s->b_seq);
    s->b_want = lc_malloc(nb);
    s->row = lc_malloc((size_t)s->n_vocab * sizeof *s->row);
    if (!s->slots || !s->b_tok || !s->b_pos || !s->b_seq || !s->b_want || !s->row) {
        lc_sched_free(s);
        return LC_ERR_OOM;
    }
    for (int i = 0; i < s->p.n_parallel; i++) s->slots[i].id = i;
    if (pthread_create(&s->thread, NULL, engine_main, s)) {
        lc_sched_free(s);
        return lc_fail(LC_ERR_OOM, "cannot start the engine thread");
    }
    s->started = true;
    *out = s;
    return LC_OK;
}

void lc_sched_free(lc_sched *s) {
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; s->slots && i < s->p.n_parallel; i++) {
        lc_free(s->slots[i].toks);
        lc_str_free(&s->slots[i].text);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    lc_free(s->slots);
    lc_free(s->b_tok);
    lc_free(s->b_pos);
    lc_free(s->b_seq);
    lc_free(s->b_want);
    lc_free(s->row);
    lc_str_free(&s->piece);
    lc_free(s);
}
