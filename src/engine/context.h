/* context.h — the internals of lc_context (public calls in locara.h), for the engine's other
 * parts (scheduler, bench) that need the KV manager or backend behind a context. */
#ifndef LC_ENGINE_CONTEXT_H
#define LC_ENGINE_CONTEXT_H

#include "engine/kv.h"
#include "model/model.h"

struct lc_context {
    lc_model *model;
    lc_context_params params;
    lc_exec exec;
    lc_kvc *kvc;
    lc_fwd_bufs bufs[LC_MAX_STAGES];
    int out_cap;          /* rows of logits the backend buffers hold */
    float *host_logits;
    int host_cap;         /* rows of logits host_logits holds (its allocation can fail apart) */
    int n_outputs;
    int32_t *slots, *out_idx;
    const int32_t **tables;
};

/* A context over an explicit forward plan: stage s runs the next n_layers[s] layers on be[s]
 * (ownership of the backends passes to the context, also on failure). lc_context_create builds
 * the plan from the model's n_gpu_layers; tests split a model across two CPU backends with it. */
lc_status lc_context_create_staged(lc_model *model, lc_context_params params, lc_backend *const *be,
                                   const int *n_layers, int n_stages, lc_context **out);

/* The layers lc_context_create would put on a GPU for a request of n_gpu_layers (-1 or more
 * than the model has: all): 0 without a CUDA device or with LOCARA_DEVICE=cpu. */
int lc_context_gpu_layers(const lc_model *m, int n_gpu_layers);

/* Floats of scratch activation memory for a batch of T tokens with n_out logits rows. */
size_t lc_context_scratch_floats(const lc_hparams *hp, int T, int n_out);

#endif
