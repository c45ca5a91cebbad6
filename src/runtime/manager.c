/* manager.c — the model manager (contract and accounting in manager.h).
 *
 * One mutex guards every entry's state; one condition variable wakes waiters when a state
 * changes. Slow work (mapping a file, making a context, freeing one) always runs with the mutex
 * released, the entry marked LOADING or UNLOADING so nobody else touches it. A reaper thread
 * unloads models whose keep_alive ran out (and idle ones after a critical pressure event); the
 * pressure monitor calls lc_mgr_pressure on its own thread. Entry points: see manager.h.
 */
#include "runtime/manager.h"

#include "engine/context.h"
#include "runtime/fit.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MIB(x) ((double)(x) / 1048576.0)

/* ==== State ==== */

typedef struct entry {
    lc_model_spec *spec;
    lc_mgr_state state;
    lc_model *model;
    lc_context *ctx;
    lc_sched *sched;
    void *data;
    int refs;
    size_t predicted;  /* bytes of this model (no baseline); 0: unknown */
    size_t reserved;   /* counted against the budget now */
    double last_used;  /* lc_time_sec() when the last lease ended */
    double keep;       /* keep_alive of the current idle period */
    int n_ctx;
    char arch[32];
    long load_gen;     /* bumped by every load attempt */
    lc_status load_st;
    char load_err[256];
} entry;

struct lc_mgr {
    lc_mgr_params p;
    lc_manifest mf;
    entry *ents;
    int n;
    double default_keep;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* an entry changed state */
    pthread_cond_t reaper_cv; /* the reaper has something to look at */
    pthread_t reaper;
    bool reaper_started, stopping, crit_pending;
    lc_pressure *pm;
    lc_mgr_stats st;
    lc_sched_metrics retired; /* metrics of unloaded schedulers */
};

static const char *kv_name(int t) { return t == LC_KV_Q8_0 ? "q8_0" : t == LC_KV_Q4_0 ? "q4_0" : "f16"; }

const char *lc_mgr_state_name(lc_mgr_state s) {
    switch (s) {
    case LC_MGR_LOADING: return "loading";
    case LC_MGR_LOADED: return "loaded";
    case LC_MGR_UNLOADING: return "unloading";
    default: return "unloaded";
    }
}

lc_mgr_params lc_mgr_params_default(void) {
    return (lc_mgr_params){.keep_alive = LC_KEEP_UNSET, .n_keep = -1, .parallel = 4, .n_batch = 512,
                            .n_gpu_layers = -1};
}

static double keep_of(const lc_mgr *g, const entry *e) {
    return e->spec->keep_alive != LC_KEEP_UNSET ? e->spec->keep_alive : g->default_keep;
}

static size_t used_bytes(const lc_mgr *g, const entry *except) {
    size_t u = g->st.runtime_bytes;
    for (int i = 0; i < g->n; i++)
        if (&g->ents[i] != except) u += g->ents[i].reserved;
    return u;
}

int lc_mgr_count(const lc_mgr *g) { return g->n; }

int lc_mgr_find(const lc_mgr *g, const char *name) {
    if (!name || !*name) return g->n ? 0 : -1;
    for (int i = 0; i < g->n; i++) {
        const lc_model_spec *s = g->ents[i].spec;
        if (!strcmp(s->id, name)) return i;
        for (int k = 0; k < s->n_aliases; k++)
            if (!strcmp(s->aliases[k], name)) return i;
    }
    return !strcmp(name, "default") && g->n ? 0 : -1;
}

/* ==== Unloading ==== */

static void add_metrics(lc_sched_metrics *sum, const lc_sched_metrics *m) {
    sum->requests += m->requests;
    sum->finished += m->finished;
    sum->errors += m->errors;
    sum->cancelled += m->cancelled;
    sum->prompt_tokens += m->prompt_tokens;
    sum->gen_tokens += m->gen_tokens;
    sum->cached_tokens += m->cached_tokens;
    sum->steps += m->steps;
    sum->ttft_sum += m->ttft_sum;
    sum->tps_sum += m->tps_sum;
    sum->kv_dropped += m->kv_dropped;
    memcpy(sum->ttft_le, m->ttft_le, sizeof sum->ttft_le);
    memcpy(sum->tps_le, m->tps_le, sizeof sum->tps_le);
    for (int i = 0; i <= LC_SCHED_TTFT_BUCKETS; i++) sum->ttft_count[i] += m->ttft_count[i];
    for (int i = 0; i <= LC_SCHED_TPS_BUCKETS; i++) sum->tps_count[i] += m->tps_count[i];
}

/* Frees a model's scheduler, context and weights. The entry is UNLOADING (or LOADING, on a
 * failed load) and the mutex is NOT held. */
static void unload_work(lc_mgr *g, entry *e) {
    if (e->data && g->p.hooks.on_unload) g->p.hooks.on_unload(g->p.hooks.ud, e->data);
    e->data = NULL;
    if (e->sched) {
        lc_sched_metrics m;
        lc_sched_metrics_get(e->sched, &m);
        pthread_mutex_lock(&g->mu);
        add_metrics(&g->retired, &m);
        pthread_mutex_unlock(&g->mu);
    }
    lc_sched_free(e->sched);
    lc_context_free(e->ctx);
    lc_model_free(e->model);
    e->sched = NULL;
    e->ctx = NULL;
    e->model = NULL;
}

/* Unloads idle entry e; called and returns with the mutex held (released meanwhile). */
static void unload_locked(lc_mgr *g, entry *e, const char *why) {
    e->state = LC_MGR_UNLOADING;
    pthread_mutex_unlock(&g->mu);
    lc_log(LC_LOG_INFO, "unloading model '%s' (%s)", e->spec->id, why);
    unload_work(g, e);
    pthread_mutex_lock(&g->mu);
    e->state = LC_MGR_UNLOADED;
    e->reserved = 0;
    g->st.unloads++;
    pthread_cond_broadcast(&g->cv);
}

/* The least recently used idle, unpinned, loaded entry other than self, or NULL. */
static entry *lru_victim(lc_mgr *g, const entry *self) {
    entry *v = NULL;
    for (int i = 0; i < g->n; i++) {
        entry *e = &g->ents[i];
        if (e == self || e->state != LC_MGR_LOADED || e->refs || e->keep < 0) continue;
        if (!v || e->last_used < v->last_used) v = e;
    }
    return v;
}

/* Makes room for bytes for entry e and reserves them, unloading idle models LRU first. Called
 * with the mutex held. LC_ERR_OOM with a message naming the numbers when it cannot. */
static lc_status make_room(lc_mgr *g, entry *e, size_t bytes) {
    for (;;) {
        size_t used = used_bytes(g, e);
        size_t avail = lc_mem_available(NULL, NULL);
        bool in_budget = used + bytes <= g->st.budget_bytes;
        bool in_ram = !avail || bytes <= avail;
        if (in_budget && in_ram) {
            e->reserved = bytes;
            return LC_OK;
        }
        /* what stays even if every idle model went: if that leaves no room, unload nothing */
        size_t fixed = g->st.runtime_bytes;
        for (int i = 0; i < g->n; i++) {
            const entry *o = &g->ents[i];
            if (o != e && (o->refs || o->keep < 0 || o->state != LC_MGR_LOADED)) fixed += o->reserved;
        }
        entry *v = fixed + bytes <= g->st.budget_bytes || !in_ram ? lru_victim(g, e) : NULL;
        if (v) {
            g->st.evictions++;
            unload_locked(g, v, in_budget ? "memory is short" : "the memory budget is full");
            continue;
        }
        bool busy = false;
        for (int i = 0; i < g->n; i++)
            if (&g->ents[i] != e && g->ents[i].state == LC_MGR_UNLOADING) busy = true;
        if (busy) { /* another thread is freeing memory: wait for it */
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        lc_str held = {0};
        for (int i = 0; i < g->n; i++) {
            const entry *o = &g->ents[i];
            if (o == e || !o->reserved) continue;
            lc_str_printf(&held, "%s'%s' %.1f MiB (%s)", held.len ? ", " : "", o->spec->id, MIB(o->reserved),
                          o->keep < 0 ? "pinned" : o->refs ? "in use" : o->state == LC_MGR_LOADING ? "loading" : "idle");
        }
        lc_status st;
        if (!in_budget)
            st = lc_fail(LC_ERR_OOM,
                         "model '%s' needs %.1f MiB but the memory budget is %.1f MiB, of which the process takes "
                         "%.1f MiB and loaded models %s; no idle model is left to unload (retry when a request "
                         "ends, or raise --memory-budget)",
                         e->spec->id, MIB(bytes), MIB(g->st.budget_bytes), MIB(g->st.runtime_bytes),
                         held.len ? held.buf : "none");
        else
            st = lc_fail(LC_ERR_OOM, "model '%s' needs %.1f MiB but the system has %.1f MiB available", e->spec->id,
                         MIB(bytes), MIB(avail));
        lc_str_free(&held);
        return st;
    }
}

/* ==== Loading ==== */

/* Loads entry e (state LOADING, mutex NOT held): maps the file, predicts its memory, makes
 * room, then creates the context, the scheduler and the hook's data. */
static lc_status load(lc_mgr *g, entry *e) {
    const lc_model_spec *s = e->spec;
    lc_status st;
    pthread_mutex_lock(&g->mu);
    /* a prediction from an earlier load: check the budget before touching the file */
    st = e->predicted ? make_room(g, e, e->predicted) : LC_OK;
    pthread_mutex_unlock(&g->mu);
    if (st) return st;
    double t0 = lc_time_sec();
    size_t heap0 = lc_mem_in_use();
    lc_model_params mparams = lc_model_params_default();
    mparams.n_gpu_layers = g->p.n_gpu_layers;
    if ((st = lc_model_load(s->file, mparams, &e->model)))
        return lc_fail_wrap(st, "model '%s' (%s): ", s->id, s->file);
    size_t heap = lc_mem_in_use() > heap0 ? lc_mem_in_use() - heap0 : 0;
    int train = lc_model_n_ctx_train(e->model);
    int n_ctx = s->n_ctx ? s->n_ctx : g->p.n_ctx ? g->p.n_ctx : LC_MIN(train, 8192);
    int parallel = s->parallel ? s->parallel : g->p.parallel;
    int kv = s->kv_type ? s->kv_type : g->p.kv_type ? g->p.kv_type : LC_KV_F16;
    lc_fit_params fp = lc_fit_params_default();
    fp.n_ctx = n_ctx;
    fp.n_batch = LC_MAX(g->p.n_batch, parallel);
    fp.n_seq = parallel;
    fp.n_threads = g->p.n_threads;
    fp.kv_type = (lc_kv_type)kv;
    fp.n_gpu_layers = lc_context_gpu_layers(e->model, g->p.n_gpu_layers);
    fp.model_heap_bytes = heap;
    fp.runtime_bytes = 1; /* counted once by the manager, not per model */
    lc_fit f;
    if ((st = lc_fit_model(e->model, &fp, &f))) goto fail;
    size_t need = LC_MAX(f.total_bytes - f.runtime_bytes, s->requires_bytes);
    pthread_mutex_lock(&g->mu); /* snapshots read these under the mutex */
    e->n_ctx = n_ctx;
    snprintf(e->arch, sizeof e->arch, "%s", lc_model_arch(e->model));
    e->predicted = need;
    st = need > e->reserved ? make_room(g, e, need) : LC_OK;
    if (!st) e->reserved = need;
    pthread_mutex_unlock(&g->mu);
    if (st) goto fail;
    lc_context_params cp = lc_context_params_default();
    cp.n_ctx = n_ctx;
    cp.n_batch = fp.n_batch;
    cp.n_seq_max = parallel;
    cp.n_threads = g->p.n_threads;
    cp.kv_type = (lc_kv_type)kv;
    if ((st = lc_context_create(e->model, cp, &e->ctx))) goto fail;
    lc_sched_params sp = {.n_parallel = parallel, .n_batch = cp.n_batch, .n_keep = g->p.n_keep};
    if ((st = lc_sched_create(e->ctx, &sp, &e->sched))) goto fail;
    if (g->p.hooks.on_load && (st = g->p.hooks.on_load(g->p.hooks.ud, s->id, e->model, e->sched, &e->data))) goto fail;
    lc_log(LC_LOG_INFO, "loaded model '%s' in %.0f ms: ctx %d, %d parallel, kv %s, %.1f MiB predicted", s->id,
           (lc_time_sec() - t0) * 1e3, n_ctx, parallel, kv_name(kv), MIB(need));
    return LC_OK;
fail:;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lc_last_error());
    unload_work(g, e);
    if (st == LC_ERR_OOM) return lc_fail(st, "%s", msg);
    return lc_fail(st, "model '%s': %s", s->id, msg);
}

lc_status lc_mgr_acquire(lc_mgr *g, const char *name, lc_mgr_lease *out) {
    memset(out, 0, sizeof *out);
    out->idx = -1;
    pthread_mutex_lock(&g->mu);
    int idx = lc_mgr_find(g, name);
    if (idx < 0) {
        lc_str ids = {0};
        for (int i = 0; i < g->n; i++) lc_str_printf(&ids, "%s'%s'", i ? ", " : "", g->ents[i].spec->id);
        lc_status st = lc_fail(LC_ERR_INVALID, "the model '%.200s' does not exist; this server serves %.300s", name,
                               ids.buf ? ids.buf : "nothing");
        lc_str_free(&ids);
        pthread_mutex_unlock(&g->mu);
        return st;
    }
    entry *e = &g->ents[idx];
    for (;;) {
        if (g->stopping) {
            pthread_mutex_unlock(&g->mu);
            return lc_fail(LC_ERR_CANCELLED, "the server is shutting down");
        }
        if (e->state == LC_MGR_LOADED) {
            e->refs++;
            *out = (lc_mgr_lease){idx, e->spec->id, e->model, e->sched, e->data};
            pthread_mutex_unlock(&g->mu);
            return LC_OK;
        }
        if (e->state == LC_MGR_UNLOADED) break;
        /* LOADING or UNLOADING: wait; if the load we waited for failed, share its error */
        long gen = e->load_gen;
        bool was_loading = e->state == LC_MGR_LOADING;
        pthread_cond_wait(&g->cv, &g->mu);
        if (was_loading && e->state == LC_MGR_UNLOADED && e->load_gen == gen && e->load_st) {
            lc_status st = lc_fail(e->load_st, "%s", e->load_err);
            pthread_mutex_unlock(&g->mu);
            return st;
        }
    }
    e->state = LC_MGR_LOADING;
    e->load_gen++;
    pthread_mutex_unlock(&g->mu);
    lc_status st = load(g, e);
    pthread_mutex_lock(&g->mu);
    e->load_st = st;
    if (st) {
        snprintf(e->load_err, sizeof e->load_err, "%s", lc_last_error());
        e->state = LC_MGR_UNLOADED;
        e->reserved = 0;
    } else {
        e->load_err[0] = 0;
        e->state = LC_MGR_LOADED;
        e->refs = 1;
        e->keep = keep_of(g, e);
        e->last_used = lc_time_sec();
        g->st.loads++;
        *out = (lc_mgr_lease){idx, e->spec->id, e->model, e->sched, e->data};
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (st) lc_fail(st, "%s", e->load_err);
    return st;
}

void lc_mgr_release(lc_mgr *g, lc_mgr_lease *l, double keep_alive) {
    if (!l || l->idx < 0) return;
    pthread_mutex_lock(&g->mu);
    entry *e = &g->ents[l->idx];
    if (e->refs > 0) e->refs--;
    e->last_used = lc_time_sec();
    e->keep = keep_alive != LC_KEEP_UNSET ? keep_alive : keep_of(g, e);
    if (!e->refs) pthread_cond_signal(&g->reaper_cv);
    pthread_mutex_unlock(&g->mu);
    l->idx = -1;
}

/* ==== The reaper and pressure ==== */

void lc_mgr_pressure(lc_mgr *g, lc_pressure_level level, const char *why) {
    if (level == LC_PRESSURE_NONE) return;
    pthread_mutex_lock(&g->mu);
    if (level == LC_PRESSURE_WARNING) g->st.pressure_warnings++;
    else g->st.pressure_criticals++;
    for (int i = 0; i < g->n; i++)
        if (g->ents[i].state == LC_MGR_LOADED) lc_sched_drop_cached(g->ents[i].sched);
    if (level == LC_PRESSURE_CRITICAL) {
        g->crit_pending = true;
        pthread_cond_signal(&g->reaper_cv);
    }
    pthread_mutex_unlock(&g->mu);
}

static void pressure_cb(void *ud, lc_pressure_level level, const char *why) { lc_mgr_pressure(ud, level, why); }

/* Unloads idle models whose keep_alive ran out, and every idle unpinned one after a critical
 * pressure event; sleeps until the next deadline otherwise. */
static void *reaper_main(void *arg) {
    lc_mgr *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        double now = lc_time_sec(), next = now + 1.0;
        entry *victim = NULL;
        bool by_pressure = false;
        for (int i = 0; i < g->n && !victim; i++) {
            entry *e = &g->ents[i];
            if (e->state != LC_MGR_LOADED || e->refs) continue;
            if (e->keep == 0) {
                victim = e; /* a request asked for keep_alive 0, even on a pinned model */
            } else if (e->keep > 0) {
                if (g->crit_pending) victim = e, by_pressure = true;
                else if (now - e->last_used >= e->keep) victim = e;
                else next = LC_MIN(next, e->last_used + e->keep);
            }
        }
        if (victim) {
            if (by_pressure) g->st.pressure_unloads++;
            else g->st.idle_unloads++;
            unload_locked(g, victim, by_pressure ? "critical memory pressure" : "keep_alive expired");
            continue;
        }
        g->crit_pending = false;
        double wait = LC_MAX(next - lc_time_sec(), 0.001);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long ns = (long long)ts.tv_nsec + (long long)(wait * 1e9);
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&g->reaper_cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* ==== Snapshots ==== */

void lc_mgr_info_get(lc_mgr *g, int idx, lc_mgr_info *out) {
    memset(out, 0, sizeof *out);
    if (idx < 0 || idx >= g->n) return;
    pthread_mutex_lock(&g->mu);
    const entry *e = &g->ents[idx];
    const lc_model_spec *s = e->spec;
    double now = lc_time_sec();
    out->id = s->id;
    out->file = s->file;
    out->draft = s->draft;
    out->aliases = (const char *const *)s->aliases;
    out->n_aliases = s->n_aliases;
    out->state = e->state;
    out->bytes = e->predicted;
    out->refs = e->refs;
    bool idle = e->state == LC_MGR_LOADED && !e->refs;
    out->keep_alive_s = e->state == LC_MGR_LOADED ? e->keep : keep_of(g, e);
    out->idle_s = idle ? now - e->last_used : 0;
    out->expires_in_s = idle && e->keep >= 0 ? LC_MAX(e->last_used + e->keep - now, 0) : -1;
    out->n_ctx = e->n_ctx ? e->n_ctx : s->n_ctx ? s->n_ctx : g->p.n_ctx;
    out->parallel = s->parallel ? s->parallel : g->p.parallel;
    out->kv_type = kv_name(s->kv_type ? s->kv_type : g->p.kv_type);
    snprintf(out->arch, sizeof out->arch, "%s", e->arch);
    snprintf(out->error, sizeof out->error, "%s", e->load_st ? e->load_err : "");
    pthread_mutex_unlock(&g->mu);
}

void lc_mgr_stats_get(lc_mgr *g, lc_mgr_stats *out) {
    pthread_mutex_lock(&g->mu);
    *out = g->st;
    out->used_bytes = used_bytes(g, NULL);
    pthread_mutex_unlock(&g->mu);
}

void lc_mgr_metrics(lc_mgr *g, lc_sched_metrics *out) {
    pthread_mutex_lock(&g->mu);
    *out = g->retired;
    out->running = out->queued = 0;
    out->kv_blocks = out->kv_used = out->kv_cached = out->kv_block_tokens = 0;
    for (int i = 0; i < g->n; i++) {
        const entry *e = &g->ents[i];
        if (e->state != LC_MGR_LOADED) continue;
        lc_sched_metrics m;
        lc_sched_metrics_get(e->sched, &m);
        add_metrics(out, &m);
        out->running += m.running;
        out->queued += m.queued;
        out->kv_blocks += m.kv_blocks;
        out->kv_used += m.kv_used;
        out->kv_cached += m.kv_cached;
        out->kv_block_tokens = m.kv_block_tokens;
    }
    pthread_mutex_unlock(&g->mu);
}

/* ==== Life cycle ==== */

lc_status lc_mgr_create(lc_manifest *mf, const lc_mgr_params *p, lc_mgr **out) {
    *out = NULL;
    lc_status st = lc_manifest_check(mf);
    if (st) return st;
    lc_mgr *g = lc_calloc(1, sizeof *g);
    if (!g) return LC_ERR_OOM;
    g->p = *p;
    if (g->p.parallel <= 0) g->p.parallel = 4;
    if (g->p.n_batch <= 0) g->p.n_batch = 512;
    g->mf = *mf;
    memset(mf, 0, sizeof *mf);
    mf->keep_alive = LC_KEEP_UNSET;
    g->n = g->mf.n_models;
    g->default_keep = g->mf.keep_alive != LC_KEEP_UNSET ? g->mf.keep_alive
                      : p->keep_alive != LC_KEEP_UNSET  ? p->keep_alive
                                                        : 180.0;
    g->ents = lc_calloc((size_t)g->n, sizeof *g->ents);
    if (!g->ents) {
        lc_mgr_free(g);
        return LC_ERR_OOM;
    }
    for (int i = 0; i < g->n; i++) g->ents[i].spec = &g->mf.models[i];
    g->st.runtime_bytes = p->runtime_bytes ? p->runtime_bytes : lc_fit_baseline();
    g->st.budget_bytes = p->budget_bytes       ? p->budget_bytes
                         : g->mf.memory_budget ? g->mf.memory_budget
                                               : lc_mem_available(NULL, NULL) / 10 * 9;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->reaper_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&g->reaper, NULL, reaper_main, g)) {
        lc_mgr_free(g);
        return lc_fail(LC_ERR_OOM, "cannot start the model reaper thread");
    }
    g->reaper_started = true;
    if (!p->pressure_off) {
        lc_pressure_params pp = {.psi_path = p->psi_path, .events_path = p->events_path,
                                 .interval_ms = p->pressure_interval_ms, .fn = pressure_cb, .ud = g};
        if ((st = lc_pressure_start(&pp, &g->pm))) {
            lc_mgr_free(g);
            return st;
        }
    }
    *out = g;
    return LC_OK;
}

void lc_mgr_free(lc_mgr *g) {
    if (!g) return;
    lc_pressure_stop(g->pm);
    g->pm = NULL;
    if (g->reaper_started) {
        pthread_mutex_lock(&g->mu);
        g->stopping = true;
        pthread_cond_broadcast(&g->cv);
        pthread_cond_signal(&g->reaper_cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->reaper, NULL);
        /* wait for loads in flight, then unload everything */
        pthread_mutex_lock(&g->mu);
        for (int i = 0; i < g->n; i++) {
            entry *e = &g->ents[i];
            while (e->state == LC_MGR_LOADING || e->state == LC_MGR_UNLOADING) pthread_cond_wait(&g->cv, &g->mu);
            if (e->state == LC_MGR_LOADED) unload_locked(g, e, "the server stops");
        }
        pthread_mutex_unlock(&g->mu);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        pthread_cond_destroy(&g->reaper_cv);
    }
    lc_free(g->ents);
    lc_manifest_free(&g->mf);
    lc_free(g);
}
