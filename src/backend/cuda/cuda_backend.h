/* cuda_backend.h — the public entry points of the CUDA backend (C callers: engine/context.c,
 * tests). The core always links cuda_loader.c, which opens the module liblocara_cuda.so (built
 * only with -DLOCARA_CUDA=ON and nvcc) and without it answers LC_ERR_UNSUPPORTED, so callers
 * need no #if.
 * Implementation: cuda.cu (table, memory, weights, element-wise ops), matmul.cu, mmvq.cu, attn.cu,
 * graph.cu (decode steps as CUDA graphs).
 */
#ifndef LC_CUDA_BACKEND_H
#define LC_CUDA_BACKEND_H

#ifdef __cplusplus
extern "C" { /* the C headers below have no guards of their own */
#endif

#include "backend/backend.h"

struct lc_model;

/* Number of CUDA devices usable by this build (0 when built without CUDA, or none present). */
int lc_cuda_device_count(void);

/* What became of the CUDA module: "loaded PATH", or why not (no device, no module, dlerror). */
const char *lc_cuda_module_status(void);

/* Bytes in use on device 0 (total minus free, all processes); 0 without CUDA. */
size_t lc_cuda_mem_used(void);

/* Creates a CUDA backend on device 0. When model is not NULL, the weights of layers [il0, il1)
 * (with the embeddings when il0 is 0, the output when il1 is the last layer) are copied into
 * one device arena owned by the backend; ops then translate the host pointers the forward
 * passes (lc_weight.data, norm vectors, rope factors) to those copies, so the shared model is
 * never written and several contexts may each hold their own copy. LC_ERR_UNSUPPORTED when
 * built without CUDA or no device is present; LC_ERR_DEVICE on a CUDA failure. */
lc_status lc_backend_cuda_create(const struct lc_model *model, int il0, int il1, lc_backend **out);
void lc_backend_cuda_free(lc_backend *be);

/* Copies n floats from the host into a buffer from be->ops->alloc (tests, benchmarks). */
lc_status lc_backend_cuda_from_host(lc_backend *be, float *dst, const float *src, size_t n);

/* Copies one more weight (not bound by the model given at creation) to the device, so ops accept
 * it by its host pointer; the copy lives until the backend is freed (tests, benchmarks). */
lc_status lc_backend_cuda_add_weight(lc_backend *be, const lc_weight *w);

/* What the backend did with decode steps (steps of at most 8 tokens between the step_begin and
 * step_end ops): recorded as CUDA graphs, or run with direct launches. LOCARA_CUDA_GRAPH at
 * creation: 0 turns graphs off, 2 captures every step (no replay without capture). */
typedef struct lc_cuda_graph_stats {
    int64_t launched;       /* steps run as a graph */
    int64_t replayed;       /* ... of which without capturing them (same launches as the graph) */
    int64_t missed;         /* steps that differed from their size's graph and were captured again */
    int64_t instantiated;   /* graphs instantiated: the first of a step size, or an update refused */
    int64_t updated;        /* instantiated graphs updated in place (cudaGraphExecUpdate) */
    int64_t redone;         /* steps whose recording failed and that ran again directly */
    int64_t direct;         /* steps with direct launches: graphs off, too many tokens, given up */
    int64_t resumed;        /* passes asked again after some of the step's graph segments had run */
    int64_t host_us;        /* replayed steps: host time from the step's start to the graph's launch (the
                             * ops folding their launches into the signature, staging their arrays) */
    int64_t after_us;       /* and from the launch to the next step's start (the device's time, waited
                             * for by the logits' download, and what the caller does in between) */
} lc_cuda_graph_stats;

/* Fills *out with the backend's graph counters; LC_ERR_UNSUPPORTED without CUDA. */
lc_status lc_backend_cuda_graph_stats(lc_backend *be, lc_cuda_graph_stats *out);

/* Copies the first n expert ids of the backend's last moe_route, which stay on the device, to ids
 * (tests). */
lc_status lc_backend_cuda_route_ids(lc_backend *be, int32_t *ids, size_t n);

/* Device bytes the backend holds in weights, KV pools and its internal scratch (activation
 * buffers from ops->alloc are not counted), for memory accounting. */
size_t lc_backend_cuda_bytes(lc_backend *be);

#ifdef __cplusplus
}
#endif

#endif /* LC_CUDA_BACKEND_H */
