/* context.h — the internals of lc_context (public calls in locara.h), for the engine's other
 * parts (scheduler, bench) that need the KV manager or backend behind a context. */
#ifndef LC_ENGINE_CONTEXT_H
#define LC_ENGINE_CONTEXT_H

#include "engine/kv.h"
#include "model/model.h"

struct lc_context {
    lc_model *model;
    lc_context_params params;
    lc_backend *be;
    lc_kvc *kvc;
    lc_fwd_bufs bufs;
    int out_cap;          /* rows of logits the buffers hold */
    float *host_logits;
    int n_outputs;
    int32_t *slots, *out_idx;
    const int32_t **tables;
};

/* Floats of scratch activation memory for a batch of T tokens with n_out logits rows. */
size_t lc_context_scratch_floats(const lc_hparams *hp, int T, int n_out);

#endif
