/* fit.h — memory math: what a model needs to run with given settings, before it is loaded
 * into a context, and what the machine has to give.
 *
 * The numbers come from the same functions the engine uses to size its buffers
 * (lc_kvc_bytes, lc_context_scratch_floats), plus the measured heap of the loaded model
 * (tokenizer indexes) and the process's own baseline, so `locara fit`, the model manager's
 * budget and the real RSS agree. Weights are counted as file-backed pages that a run touches.
 */
#ifndef LC_RUNTIME_FIT_H
#define LC_RUNTIME_FIT_H

#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_fit_params {
    int n_ctx;        /* 0: the model's training context */
    int n_batch;      /* prompt batch (default 512) */
    int n_seq;        /* parallel sequences (default 1) */
    int n_threads;    /* compute threads (0: physical cores) */
    lc_kv_type kv_type;
    size_t model_heap_bytes; /* heap the loaded model holds (measure: lc_mem_in_use around load) */
    size_t runtime_bytes;    /* the process before the model (lc_fit_baseline; 0: 8 MiB) */
    int n_gpu_layers;        /* layers a GPU backend will run (0: none, the default; -1: all) */
} lc_fit_params;

typedef struct lc_fit {
    size_t weights_bytes;                  /* all tensors plus the metadata header (file-backed) */
    size_t weights_by_type[LC_TYPE_COUNT];
    size_t model_heap_bytes;               /* tokenizer and model structures (heap) */
    size_t kv_bytes;
    size_t compute_bytes;                  /* activations, conversion buffers, logits */
    size_t runtime_bytes;                  /* the process before any model (code, libraries) */
    size_t total_bytes;
    int n_ctx;
    /* The GPU's share when n_gpu_layers is set: its layers' weights (plus embeddings and output
     * when it runs them all), their KV, its scratch; the CUDA context itself is not included
     * (compare with device memory used after the context exists). kv_bytes above keeps only the
     * CPU layers' share. */
    int gpu_layers;
    size_t gpu_weights_bytes, gpu_kv_bytes, gpu_compute_bytes, gpu_total_bytes;
} lc_fit;

lc_fit_params lc_fit_params_default(void);

/* Predicts the memory of running model m (loaded: mapped, tokenizer built) with p. */
lc_status lc_fit_model(const lc_model *m, const lc_fit_params *p, lc_fit *out);

/* The largest context (a multiple of 256, at most the training context) whose total fits in
 * budget bytes; 0 if even 256 does not fit. */
int lc_fit_max_ctx(const lc_model *m, const lc_fit_params *p, size_t budget);

/* Memory the system can give now: MemAvailable, capped by the cgroup's memory.max minus its
 * memory.current when a limit is set. Paths are injectable for tests (NULL: the real ones). */
size_t lc_mem_available(const char *meminfo_path, const char *cgroup_dir);

/* This process's resident memory: VmRSS, RssAnon, RssFile and the peak VmHWM, in bytes. */
typedef struct lc_rss {
    size_t rss, anon, file, peak;
} lc_rss;
lc_rss lc_rss_now(void);

/* The process's share of a prediction (lc_fit_params.runtime_bytes), measured before any model:
 * its resident memory now plus the code and library pages that loading and running a model first
 * touch. */
size_t lc_fit_baseline(void);

#ifdef __cplusplus
}
#endif

#endif
