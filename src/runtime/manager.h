/* manager.h — the model manager: many models, loaded on demand, under a memory budget, unloaded
 * least-recently-used first, after their keep_alive, or under memory pressure.
 *
 * A caller acquires a model by id or alias and gets a lease (model, scheduler, the hook's data)
 * that keeps it loaded until released; concurrent first requests wait for one load; loading or
 * unloading one model never holds the lock that requests to other models need.
 * Memory accounting: used = the process baseline (its RSS before any model, counted once) + for
 * each loaded or loading model max(the fit prediction without its baseline, requires.memoryGB).
 * A load that does not fit unloads idle, unpinned models LRU first; if it still does not fit it
 * fails with LC_ERR_OOM and a message naming the numbers. keep_alive < 0 pins a model: it is
 * never unloaded on idle, for the budget or under pressure (only a request's keep_alive 0 does).
 * Deliberately not here: HTTP (server/), chat templates (the server attaches them through hooks).
 * Entry points: lc_mgr_create, lc_mgr_acquire, lc_mgr_release, lc_mgr_info_get, lc_mgr_free.
 */
#ifndef LC_RUNTIME_MANAGER_H
#define LC_RUNTIME_MANAGER_H

#include "engine/scheduler.h"
#include "runtime/manifest.h"
#include "runtime/pressure.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_mgr lc_mgr;

/* Called after a model's scheduler starts (on_load: *data is the caller's per-model state) and
 * before it stops (on_unload). Both run on the thread that loads or unloads, without locks. */
typedef struct lc_mgr_hooks {
    void *ud;
    lc_status (*on_load)(void *ud, const char *id, lc_model *model, lc_sched *sched, void **data);
    void (*on_unload)(void *ud, void *data);
} lc_mgr_hooks;

typedef struct lc_mgr_params {
    size_t budget_bytes;   /* 0: the manifest's, else 90% of lc_mem_available() at creation */
    size_t runtime_bytes;  /* the process baseline; 0: lc_fit_baseline at creation */
    double keep_alive;     /* seconds for models that set none; LC_KEEP_UNSET: 180 (3 minutes) */
    int n_ctx;             /* for models that set none; 0: min(training context, 8192) */
    int kv_type;           /* for models that set none; 0: f16 */
    int parallel;          /* for models that set none; 0: 4 */
    int n_batch;           /* tokens per engine step (0: 512) */
    int n_keep;            /* context shift (-1: off) */
    int n_threads;         /* compute threads per model (0: physical cores) */
    int n_gpu_layers;      /* layers on a GPU when one is present (-1: all, 0: none) */
    lc_mgr_hooks hooks;
    /* memory pressure: paths as in lc_pressure_params (NULL: the real ones, "off": none) */
    const char *psi_path, *events_path;
    int pressure_interval_ms;
    bool pressure_off;
} lc_mgr_params;

lc_mgr_params lc_mgr_params_default(void);

/* Takes the manifest's contents (mf is emptied), checks it and starts the idle reaper and the
 * pressure monitor. Loads nothing. */
lc_status lc_mgr_create(lc_manifest *mf, const lc_mgr_params *p, lc_mgr **out);
/* Unloads everything and stops the threads. Leases must have been released. */
void lc_mgr_free(lc_mgr *g);

/* A loaded model held for one request. */
typedef struct lc_mgr_lease {
    int idx;          /* the entry (lc_mgr_info_get) */
    const char *id;   /* the model's id (valid while the manager lives) */
    lc_model *model;
    lc_sched *sched;
    void *data;       /* what on_load made */
} lc_mgr_lease;

/* Finds name (an id or alias; NULL, "" or "default" mean the first model) and returns it loaded,
 * loading it first if needed (waiting for a load already under way). Errors: LC_ERR_INVALID for
 * an unknown name, LC_ERR_OOM when it does not fit the budget even with every idle model
 * unloaded, LC_ERR_CANCELLED while stopping, others when the file does not load. */
lc_status lc_mgr_acquire(lc_mgr *g, const char *name, lc_mgr_lease *out);

/* Ends a lease. keep_alive (seconds; LC_KEEP_FOREVER; LC_KEEP_UNSET for the model's own) sets
 * how long the model stays after its last lease ends; 0 unloads it as soon as it is idle. */
void lc_mgr_release(lc_mgr *g, lc_mgr_lease *l, double keep_alive);

/* Reacts to memory pressure: WARNING drops every loaded model's cached KV blocks; CRITICAL does
 * that and unloads every idle, unpinned model. Requests in flight are never touched. */
void lc_mgr_pressure(lc_mgr *g, lc_pressure_level level, const char *why);

typedef enum lc_mgr_state { LC_MGR_UNLOADED, LC_MGR_LOADING, LC_MGR_LOADED, LC_MGR_UNLOADING } lc_mgr_state;
const char *lc_mgr_state_name(lc_mgr_state s);

/* A snapshot of one model. Strings stay valid while the manager lives. */
typedef struct lc_mgr_info {
    const char *id, *file, *draft;
    const char *const *aliases;
    int n_aliases;
    lc_mgr_state state;
    size_t bytes;        /* predicted memory (0: not known before the first load) */
    int refs;            /* requests holding it */
    double idle_s;       /* seconds since its last lease ended (0 while in use or unloaded) */
    double keep_alive_s; /* this idle period's keep_alive (LC_KEEP_FOREVER: pinned) */
    double expires_in_s; /* seconds until the idle unload (-1: never or not idle) */
    int n_ctx, parallel;
    const char *kv_type;
    char arch[32];       /* "" before the first load */
    char error[256];     /* the last load error, "" if none */
} lc_mgr_info;

int lc_mgr_count(const lc_mgr *g);
void lc_mgr_info_get(lc_mgr *g, int idx, lc_mgr_info *out);

typedef struct lc_mgr_stats {
    size_t budget_bytes, runtime_bytes, used_bytes;
    long loads, unloads, evictions, idle_unloads, pressure_unloads, pressure_warnings, pressure_criticals;
} lc_mgr_stats;
void lc_mgr_stats_get(lc_mgr *g, lc_mgr_stats *out);

/* Scheduler metrics summed over loaded models and those unloaded since start. */
void lc_mgr_metrics(lc_mgr *g, lc_sched_metrics *out);

/* The index of name (as lc_mgr_acquire resolves it), or -1. */
int lc_mgr_find(const lc_mgr *g, const char *name);

#ifdef __cplusplus
}
#endif

#endif
