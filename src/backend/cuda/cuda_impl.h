/* cuda_impl.h — state shared by the CUDA backend's translation units (cuda.cu, matmul.cu,
 * attn.cu): the backend struct, CUDA error checking turned into LC_ERR_DEVICE, host-array
 * uploads, the weight map, and the device-side block dequantizers (quant_dev.cuh).
 * Not here: the op table (cuda.cu) and kernels (one .cu per group of ops).
 */
#ifndef LC_CUDA_IMPL_H
#define LC_CUDA_IMPL_H

#include "backend/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <string.h>

/* Upload slots: host arrays the forward passes by pointer, mirrored on the device. A slot keeps
 * a host shadow of what it last uploaded, so an unchanged array (the positions every layer of a
 * decode step passes again) costs a memcmp instead of a copy. */
enum { SLOT_POS, SLOT_TOK, SLOT_IDX, SLOT_IDS, SLOT_ATTN, SLOT_ROPE, SLOT_COUNT };

typedef struct cu_slot {
    int32_t *dev;
    int32_t *shadow;
    size_t cap, n;
} cu_slot;

/* One bound weight: host bytes [host, host + bytes) live at dev. */
typedef struct cu_wmap {
    const uint8_t *host;
    size_t bytes;
    uint8_t *dev;
    bool own; /* a separate allocation (lc_backend_cuda_add_weight), not in the arena */
} cu_wmap;

/* Decode steps as CUDA graphs (graph.cu). Between step_begin and step_end a step is either
 * captured from the stream (CU_CAPTURE) or, when the instantiated graphs of its size were recorded
 * from the same launches, only checked (CU_REPLAY): every kernel launch and host copy goes
 * through cu_k / lc_cu_copy_in, which fold the kernel, grid and arguments into a signature and
 * skip the launch; each segment's graph is relaunched when its signature matches, else the step
 * is asked again from that segment. Ops that cannot be recorded (a buffer that must grow, a
 * download, a synchronisation) call lc_cu_graph_break and the step runs again with direct
 * launches. Host arrays are copied into a pinned staging area at the op call and reach the device
 * through recorded copies. */
#define CU_ROPE_HOST_TOK 32 /* batches of at most this many tokens rotate by the host's angles (cu_rope_table) */
#define CU_GRAPH_MAX_TOK 8 /* steps of at most this many tokens are recorded */
#define CU_GRAPH_MAX_SEG 16 /* graphs a step is cut into, at most */

typedef enum cu_mode { CU_DIRECT, CU_CAPTURE, CU_REPLAY } cu_mode;

typedef struct cu_graph {
    int on;          /* LOCARA_CUDA_GRAPH: 0 off, 1 (default) capture and replay, 2 capture every step */
    cu_mode mode;    /* of the step between step_begin and step_end */
    cu_mode forced;  /* CU_CAPTURE: the next pass (a step asked again) is captured */
    bool redo_direct; /* the next pass (a step asked again) runs directly */
    bool broken;     /* an op could not be recorded in this step */
    bool never;      /* ... and never will be at this shape */
    int T;           /* tokens of the step being recorded */
    uint64_t sig;    /* signature of the current segment's launches so far */
    /* A step is cut into segments of about seg_items items (kernel launches and host copies; 0: one
     * segment), each its own graph, launched as soon as the host has recorded or checked it, so the
     * device runs the first while the host goes through the rest. A pass that stops after some
     * segments ran (a recording failed, or a segment differs from its graph) asks for the step
     * again, and that pass skips the items those segments held (skip). The first segment is
     * shorter (seg_first): the device waits for it between steps. */
    int seg_items;   /* LOCARA_CUDA_GRAPH_SEG */
    int seg_first;   /* LOCARA_CUDA_GRAPH_SEG0: the first segment's length, at most seg_items (0: seg_items) */
    int item;        /* items of this pass so far */
    int seg;         /* the segment being recorded or checked */
    int seg_start;   /* the item it began with */
    int skip;        /* items run by earlier passes of this step: this pass leaves them out */
    int skip_seg;    /* the segment this pass begins with */
    bool capturing;  /* the stream is being captured (a capture pass begins at its first item) */
    bool stop;       /* this pass records or checks nothing more: step_end asks for the step again */
    bool captured;   /* this step captured a segment (not only replayed) */
    bool inst_new, inst_upd; /* a segment of this step was instantiated anew / updated in place */
    cudaGraphExec_t exec[CU_GRAPH_MAX_TOK + 1][CU_GRAPH_MAX_SEG]; /* the graphs of each step size's segments */
    uint64_t exec_sig[CU_GRAPH_MAX_TOK + 1][CU_GRAPH_MAX_SEG];     /* the signatures they were recorded with */
    int n_seg[CU_GRAPH_MAX_TOK + 1];                               /* segments of the last recorded step */
    uint8_t fails[CU_GRAPH_MAX_TOK + 1];         /* consecutive failed recordings per size */
    uint8_t reinst[CU_GRAPH_MAX_TOK + 1];        /* consecutive refused updates per size */
    bool off[CU_GRAPH_MAX_TOK + 1];              /* given up on this size */
    uint8_t misses[CU_GRAPH_MAX_TOK + 1];        /* consecutive replays whose launches differed */
    bool capture_only[CU_GRAPH_MAX_TOK + 1];     /* ... too often: capture every step of this size */
    uint8_t *stage;  /* pinned staging for host arrays (cudaMallocHost) */
    size_t stage_cap, stage_used, stage_want;
    lc_cuda_graph_stats stats;
    int64_t t_begin, t_launch; /* lc_time_us at this step's start and at the last replayed launch (0: none) */
} cu_graph;

/* Rows one k_norm_v launch norms: out = x / rms(x) * g (g may be NULL), after x += y when y is given. */
typedef struct cu_norm_rows {
    float *out, *x;
    const float *y, *g;
    int rows, pad_; /* pad_: zero, so that the struct has no uninitialised bytes (cu_k's signature) */
} cu_norm_rows;

/* A launch held back so that the next op may fuse with it (cuda.cu): a residual add (x += y)
 * merged into the RMS norm that reads x next, the RoPE of q merged with the RoPE of k that
 * follows it, or a per-head RMS norm (q) merged with the one after it (k). Any other launch, copy
 * or synchronisation first issues it (lc_cu_flush), so the stream order is that of the op calls. */
enum { PEND_NONE, PEND_ADD, PEND_ROPE, PEND_NORM, PEND_EXPERTS };

/* A decode expert product held back (PEND_EXPERTS, mmvq.cu): the gate product waits for the up
 * product of the same input and routing and both for the SwiGLU that reads them (one launch, its
 * output's q8 form too); the down product waits for the weighted sum of its pairs (moe_combine),
 * which it then writes itself. x is already quantized: xq, dx. */
typedef struct cu_experts {
    const lc_weight *w;
    const uint8_t *wd;
    float *out;
    const float *x;
    bool x_per_pair;
    const int32_t *ids; /* device */
    int n_tok, k;
    const int8_t *xq;
    const float2 *dx;
} cu_experts;

typedef struct cu_pend {
    int kind;
    float *x;             /* add: x += y over n floats; rope: the rows x (n_tok, n_head * head_dim) */
    float *x2;            /* rope: the second tensor (k, n_head2 heads) joined to it, or NULL */
    int n_head2;
    const float *y;
    size_t n;
    const int32_t *pos;   /* rope: device positions */
    int n_tok, n_head, head_dim, n_dims;
    bool neox;
    float theta_scale, freq_scale;
    const float *ff;
    const float *tab;     /* rope: the device copy of the host's angles (cu_rope_table), or NULL */
    cu_norm_rows norm;    /* norm: the rows (n floats each), eps; rope: the per-head norm of q held with it */
    cu_norm_rows norm2;   /* norm: a second norm joined to it (k after q); rope: the norm of k */
    float eps;
    cu_experts ex[2];     /* experts: gate (then up), or down */
    int n_ex;
} cu_pend;

/* The activations src (n elements) whose q8 form the scratch holds at q, d: left by the op that
 * produced them or by the quantization of a product's input; cleared (src NULL) by every launch
 * (cu_k) except those of products that read it (cu_q8_keep), and by anything that may write src. */
typedef struct cu_q8_tag {
    const float *src;
    size_t n;
    int8_t *q;
    float2 *d;
} cu_q8_tag;

typedef struct lc_cuda {
    int device;
    int n_sm;
    cudaStream_t stream;
    cublasHandle_t blas;
    lc_status err; /* first failure of a void op, returned by the next matmul */
    /* weights */
    uint8_t *arena;
    size_t arena_bytes;
    cu_wmap *wmap;
    int n_wmap;
    /* uploads */
    cu_slot slot[SLOT_COUNT];
    int32_t *attn_host; /* packed attention batch being built */
    size_t attn_host_cap;
    /* MoE: ids written by moe_route stay on the device; the host array is their name */
    const int32_t *route_host;
    int32_t *route_dev;
    size_t route_cap;
    /* scratch: f16 dequantized weight tiles and activations (prefill GEMMs), attention partials */
    void *scratch;
    size_t scratch_bytes;
    float *attn_part;
    size_t attn_part_bytes;
    int32_t *host_ids; /* downloaded expert ids (grouped prefill) */
    size_t host_ids_cap;
    void *xq; /* int8 activations + their block scales (decode, mmvq.cu) */
    size_t xq_bytes;
    bool mmv_float; /* LOCARA_CUDA_MMV=float: decode on the float path (A/B measurement) */
    int norm_threads; /* LOCARA_CUDA_NORM_THREADS: about 128, 256, 512 or 1024 (default) threads per
                       * RMS norm row (A/B) */
    bool fuse_q8;   /* RMS norm and SwiGLU of decode-sized batches also write the q8 form of their output
                     * (default; LOCARA_CUDA_FUSE_Q8=0 turns it off, for A/B: 8B tg128 +7%, H100) */
    cu_q8_tag xq_tag; /* which activations' q8 form the scratch xq holds, and where (cu_q8_tag) */
    bool moe_fuse; /* decode expert products fused with SwiGLU and with the weighted sum (default;
                    * LOCARA_CUDA_MOE_FUSE=0 for A/B) */
    int fa_per_sm[2][2]; /* blocks of the tensor-core attention an SM holds, [head 64 / 128][full kernel /
                          * decode variant] (0: not asked) */
    int fa_splits;  /* LOCARA_CUDA_FA_SPLITS: about this many blocks per SM for the tensor-core
                     * attention's split key ranges (A/B; 0: one wave of what an SM holds) */
    int fa_mode;    /* LOCARA_CUDA_FA: 0 the CUDA-core attention only, 1 tensor cores, 64-position tiles,
                     * 2 (default) tensor cores, 32-position tiles double-buffered, with the decode variant
                     * for tiles of at most 16 query rows, 3 mode 2 without that variant (A/B) */
    bool rope_norm; /* Qwen3's q- and k-norm run inside the RoPE launch (LOCARA_CUDA_ROPE_NORM=0 off, A/B) */
    int moe_glu_rows; /* LOCARA_CUDA_MOE_GLU_ROWS: rows a block of the fused expert gate/up/SwiGLU kernel, 4
                       * (default) or 32 (it also makes the q8 form of its output; A/B) */
    bool attn_q8;     /* decode-sized attention (the short-context kernel, the decode kernel with one split,
                       * the merges) also writes its output's q8 form for Wo (attn.cu attn_q8;
                       * LOCARA_CUDA_ATTN_Q8=0: Wo quantizes it, A/B) */
    bool attn_exact; /* LOCARA_CUDA_ATTN_EXACT (default 1): short contexts' attention in the CPU backend's
                      * arithmetic (attn.cu, k_attn_exact) when cpu_model; 0: the other kernels everywhere */
    bool cpu_model;  /* every weight matrix has a product in the CPU's order (lc_cu_cpu_type), so the
                      * model can follow the CPU bit for bit (or no model: tests) */
    /* RoPE angles of the last short batch, as the host computed them (cu_rope_table) */
    float *rope_host;
    int32_t rope_pos[CU_ROPE_HOST_TOK];
    size_t rope_cap;
    int rope_n;
    lc_rope rope_key;
    bool cpu_order;  /* LOCARA_CUDA_CPU_ORDER (default 1): the legacy formats' products sum in the CPU
                      * backend's order (mmvq.cu, k_mmvq_cpu); 0: the chunked layout of the others */
    int q8_tok;     /* LOCARA_CUDA_Q8_TOK: prompts of up to this many tokens take the int8 products (matmul.cu,
                     * q8_prompt), 8 tokens a launch; 0 or 8: only decode batches */
    int mmvq_warps; /* LOCARA_CUDA_MMVQ_WARPS: a one-token int8 product takes 2 or 4 warps a row while its
                     * rows are fewer than this many warps per SM (0: one warp a row always) */
    bool moe_dot;   /* expert rows of at most 32 chunks take 8 lanes each, 3 chunks at a time
                     * (mmvq.cu ids_short; LOCARA_CUDA_MOE_DOT=0: a warp a row, A/B) */
    int preload;    /* which kernels read constants before waiting for the kernel before them, bits:
                     * 1 one-token int8 products of several warps a row (their first weight chunks), 2
                     * the other one-token int8 products, 4 RMS norms (weights) and RoPE (norm weights,
                     * angles); LOCARA_CUDA_PRELOAD, A/B */
    bool mmvq_mix;  /* one-token int8 products of weights of different types sharing the input run
                     * in one launch (k_mmvq_mix; LOCARA_CUDA_MMVQ_MIX=0 off, A/B) */
    bool route_rank; /* MoE routing ranks the logits in one block a token (k_moe_route_rank;
                      * LOCARA_CUDA_ROUTE=old: k rounds of a warp arg-max, A/B) */
    bool pdl;       /* kernels launched as programmatic dependents of the one before (cu_k; compute
                     * capability 9 and later; LOCARA_CUDA_PDL=0 turns it off, for A/B) */
    size_t bytes; /* device bytes held */
    cu_graph graph; /* decode steps recorded as CUDA graphs (graph.cu) */
    cu_pend pend;   /* a launch held back for fusion */
    /* MoE prefill (moe.cu): the pairs grouped by expert on the device, kept while the routing
     * that made them stands (moe_route bumps route_gen), so gate, up and down group once */
    uint64_t route_gen;
    void *moe_dev; /* [tile count | tiles (int4) | pairs by expert] */
    size_t moe_bytes;
    const int32_t *moe_ids; /* the grouping's key: ids, route_gen, pairs, experts, token tile */
    uint64_t moe_gen;
    int moe_n, moe_ne, moe_bm;
    bool moe_ok;
    int moe_mode; /* LOCARA_CUDA_MOE, read once: LC_CU_MOE_* (0 not read yet) */
} lc_cuda;

static inline lc_cuda *cu_of(lc_backend *be) { return (lc_cuda *)be->impl; }

/* Turns a CUDA error into LC_ERR_DEVICE with a message naming the call; records the first one
 * in c->err for void ops. */
lc_status lc_cu_check(lc_cuda *c, cudaError_t e, const char *what, const char *file, int line);
lc_status lc_cu_check_blas(lc_cuda *c, cublasStatus_t e, const char *what, const char *file, int line);
#define CU(c, call) lc_cu_check((c), (call), #call, __FILE__, __LINE__)
/* The launches' error, if any (none are made while a step is only checked against its graph). */
#define CU_LAUNCH(c)                                                                                      \
    ((c)->graph.mode == CU_REPLAY ? LC_OK : lc_cu_check((c), cudaGetLastError(), "kernel launch", __FILE__, __LINE__))
#define CUBLAS(c, call) lc_cu_check_blas((c), (call), #call, __FILE__, __LINE__)

/* Device pointer of the host bytes p (inside a bound weight); NULL if p is not a weight. */
const void *lc_cu_weight(lc_cuda *c, const void *p);
/* Mirrors n int32 from host into upload slot s; returns the device copy (NULL on error). */
const int32_t *lc_cu_upload(lc_cuda *c, int s, const int32_t *host, size_t n);
/* Grows a device buffer *p of *cap bytes to at least n bytes. */
lc_status lc_cu_grow(lc_cuda *c, void **p, size_t *cap, size_t n);

/* ==== CUDA graphs (graph.cu) ==== */

static inline bool cu_recording(const lc_cuda *c) { return c->graph.mode != CU_DIRECT; }

/* One word into a running hash. */
static inline uint64_t cu_sig_word(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

/* Folds n bytes into the step's signature: four words at a time into four independent hashes (a
 * replayed step folds every launch's arguments, ~100 KB for a 48-layer model, on the host while the
 * device waits), then the rest a word at a time. */
static inline void cu_sig_mix(cu_graph *g, const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    uint64_t h = g->sig, w[4];
    if (n >= 32) {
        uint64_t l[4] = {h, h ^ 0x6A09E667F3BCC908ull, h ^ 0xBB67AE8584CAA73Bull, h ^ 0x3C6EF372FE94F82Bull};
        for (; n >= 32; b += 32, n -= 32) {
            memcpy(w, b, 32);
            for (int i = 0; i < 4; i++) l[i] = cu_sig_word(l[i], w[i]);
        }
        h = cu_sig_word(cu_sig_word(cu_sig_word(l[0], l[1]), l[2]), l[3]);
    }
    for (; n >= 8; b += 8, n -= 8) {
        memcpy(w, b, 8);
        h = cu_sig_word(h, w[0]);
    }
    if (n) {
        w[0] = 0;
        memcpy(w, b, n);
        h = cu_sig_word(h, w[0]);
    }
    g->sig = h;
}

/* A product reads its input and writes only its outputs, so the q8 form of activations the scratch
 * holds stays valid across its launches: a product's entry point takes the tag before launching
 * and gives it back after (unless one of its n outputs is the tagged buffer). The gate and up
 * products of a MoE layer then share one quantization of their input. */
static inline cu_q8_tag cu_q8_take(const lc_cuda *c) { return c->xq_tag; }

static inline void cu_q8_keep(lc_cuda *c, cu_q8_tag t, float *const *out, int n) {
    for (int i = 0; i < n; i++)
        if (out[i] == t.src) return;
    c->xq_tag = t;
}

/* Records that the q8 scratch holds src's q8 form (n elements) at q, d. */
static inline void cu_q8_set(lc_cuda *c, const float *src, size_t n, int8_t *q, float2 *d) {
    c->xq_tag = (cu_q8_tag){src, n, q, d};
}

/* Issues the launch held back for fusion, if any (cuda.cu). */
void lc_cu_flush(lc_cuda *c);

/* Programmatic dependent launch (compute capability 9+): every kernel of the backend begins with
 * cu_pdl_entry(), before it reads or writes anything another kernel touches. It waits until the
 * kernel before it in the stream has finished and its writes are visible, then lets the kernel
 * after it be scheduled. With c->pdl, cu_k launches each kernel as a programmatic dependent of
 * the one before, so its blocks are placed on SMs that its predecessor's last blocks leave free
 * and wait there: the launch gap between two dependent kernels is hidden (H100, tg128: 30B-A3B
 * +7%, 8B unchanged; asking L2 for a product's weight rows before the wait made the 8B 7% slower,
 * bench/results/cuda-h100.md). A kernel may read what no kernel writes (weights, constants) before
 * its wait instead (c->preload: products load their first weight chunks into registers, norms and
 * RoPE their weights). Without c->pdl, or before compute capability 9, both are no-ops.
 * A kernel that lets the next one in only at its exit calls cu_pdl_wait alone (the split
 * attention, whose waiting successors cost 5% of a decode step at depth 32k on the H100). */
__device__ __forceinline__ void cu_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cu_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cu_pdl_entry() {
    cu_pdl_wait();
    cu_pdl_trigger();
}

/* Counts one item (a kernel launch or host copy) of a step recorded, checked or asked again, and
 * ends a segment when its length is reached; false: leave the item out (an earlier pass ran it,
 * or this pass stopped). */
bool lc_cu_graph_item(lc_cuda *c);

/* Whether the launch or copy about to be made is left out (lc_cu_graph_item); outside a step asked
 * again, direct launches are not counted. */
static inline bool cu_left_out(lc_cuda *c) {
    return (c->graph.mode != CU_DIRECT || c->graph.skip) && !lc_cu_graph_item(c);
}

/* Launches kernel k on the backend's stream, every launch of the backend goes through here:
 * while a step is recorded the kernel, its grid and its arguments (as passed: struct arguments
 * must be fully initialised, padding included) are folded into the step's signature, and when
 * the step is only checked against its graph (CU_REPLAY) nothing is launched. */
template <typename... P, typename... A>
static inline void cu_k(lc_cuda *c, void (*k)(P...), dim3 grid, dim3 block, const A &...a) {
    cu_graph *g = &c->graph;
    if (c->pend.kind) lc_cu_flush(c);
    c->xq_tag.src = NULL;
    if (cu_left_out(c)) return;
    if (g->mode != CU_DIRECT) {
        const unsigned d[6] = {grid.x, grid.y, grid.z, block.x, block.y, block.z};
        cu_sig_mix(g, &k, sizeof k);
        cu_sig_mix(g, d, sizeof d);
        (cu_sig_mix(g, &a, sizeof a), ...);
        if (g->mode == CU_REPLAY) return;
    }
    if (c->pdl) {
        cudaLaunchAttribute at;
        memset(&at, 0, sizeof at);
        at.id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at.val.programmaticStreamSerializationAllowed = 1;
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = grid;
        cfg.blockDim = block;
        cfg.stream = c->stream;
        cfg.attrs = &at;
        cfg.numAttrs = 1;
        (void)cudaLaunchKernelEx(&cfg, k, a...); /* an error is left for CU_LAUNCH's cudaGetLastError */
        return;
    }
    k<<<grid, block, 0, c->stream>>>(a...);
}

void lc_cu_step_begin(lc_backend *be, int n_tokens);
lc_status lc_cu_step_end(lc_backend *be, bool run, bool *redo);
/* Marks the step being recorded as not recordable (never: not at this size, ever) and returns
 * LC_ERR_DEVICE for the op to store in c->err, so the rest of the step is skipped quickly. */
lc_status lc_cu_graph_break(lc_cuda *c, bool never, const char *why);
/* Every host-to-device copy of the backend goes through here: it stages the n bytes (recording)
 * and queues their copy to dev, a recorded copy while recording, a plain async copy from host
 * otherwise (host must then stay as it is until the copy has run); a copy of a step asked again
 * may be left out (cu_left_out). */
lc_status lc_cu_copy_in(lc_cuda *c, void *dev, const void *host, size_t n);
void lc_cu_graph_free(lc_cuda *c);

/* ==== Ops implemented in matmul.cu and attn.cu ==== */

/* out (n_rows, n) = rows idx[i] of x (n wide); one thread per element (cuda.cu, also used by the
 * grouped expert products of matmul.cu). */
__global__ void k_gather(float *out, const float *x, const int32_t *idx, int n_rows, int n);

lc_status lc_cu_matmul(lc_backend *be, int n_w, const lc_weight *const *w, float *const *out, const float *x,
                       int n_tok);
lc_status lc_cu_matmul_experts(lc_backend *be, const lc_weight *w, float *out, const float *x, bool x_per_pair,
                               const int32_t *ids, int n_tok, int k_per_tok);
void lc_cu_get_rows(lc_backend *be, float *out, const lc_weight *w, const int32_t *ids, int n);
bool lc_cu_type_ok(lc_type t);
/* mmvq.cu: decode products on int8 activations for the types lc_cu_mmvq_ok accepts. */
bool lc_cu_mmvq_ok(const lc_cuda *c, lc_type t);
bool lc_cu_mmvq_mixes(const lc_cuda *c, lc_type a, lc_type b, int T);
bool lc_cu_cpu_type(lc_type t);
/* Where an op of n_rows x n outputs may also leave their q8 form for the decode product that reads
 * them next (LOCARA_CUDA_FUSE_Q8): the scratch, or NULL when the op should not (cuda.cu). */
int8_t *lc_cu_fused_q8(lc_cuda *c, int n_rows, size_t n, float2 **dq);
lc_status lc_cu_quantize_q8(lc_cuda *c, const float *x, int n_rows, int cols, const int8_t **xq, const float2 **dx);
lc_status lc_cu_q8_scratch(lc_cuda *c, size_t skip, size_t nq, int8_t **xq, float2 **dx);
lc_status lc_cu_mmvq(lc_cuda *c, int n_w, const lc_weight *const *w, const uint8_t *const *wd, float *const *out,
                     const int8_t *xq, const float2 *dx, int T);
lc_status lc_cu_mmvq_ids(lc_cuda *c, const lc_weight *w, const uint8_t *wd, float *out, const float *x,
                         bool x_per_pair, const int32_t *ids_dev, int n_tok, int k);
/* The held expert products (PEND_EXPERTS) fused with the op that reads them, when it is the one
 * they wait for: SwiGLU of the gate and up outputs, or the weighted sum of the down outputs. */
bool lc_cu_experts_swiglu(lc_cuda *c, float *out, const float *gate, const float *up, size_t n);
bool lc_cu_experts_combine(lc_cuda *c, float *out, const float *y, const float *weights, int n_tok, int k, int n);
/* The held RoPE of q and k launched with the kv_store of k and v into an f16 cache (cuda.cu);
 * false (nothing done) when the held launch is not that RoPE. pk: the uploaded batch. */
bool lc_cu_rope_store(lc_cuda *c, const float *k, const float *v, const int32_t *pk, int T, const lc_kv *kv, int il);
/* Launches the held expert products as they are. */
void lc_cu_experts_flush(lc_cuda *c, const cu_pend *p);
/* moe.cu: expert products of more than a few tokens, grouped on the device, one launch. */
enum { LC_CU_MOE_AUTO = 1, LC_CU_MOE_OLD, LC_CU_MOE_32, LC_CU_MOE_64, LC_CU_MOE_64W, LC_CU_MOE_64WP };
int lc_cu_moe_mode(lc_cuda *c);
bool lc_cu_experts_mma_ok(lc_cuda *c, const lc_weight *w, const uint8_t *wd);
lc_status lc_cu_experts_mma(lc_cuda *c, const lc_weight *w, const uint8_t *wd, float *out, const float *x,
                            bool x_per_pair, const int32_t *ids_dev, bool routed, int n_pairs, int k);
void lc_cu_kv_store(lc_backend *be, lc_kv *kv, int il, const float *k, const float *v, const lc_attn_batch *b);
void lc_cu_attention(lc_backend *be, float *out, const float *q, lc_kv *kv, int il, const lc_attn_batch *b,
                     int n_head, float scale);

/* The argument blocks of the decode kernels (matmul.cu's mv_args, mmvq.cu's mq_args) share their
 * first fields: up to 4 weights of one type with the same input, each row one warp, `warps` rows a
 * thread block. Fills those fields (the block is zeroed first, padding too: its bytes are part of
 * a recorded step's signature) and returns the number of thread blocks. */
template <typename A>
static inline int lc_cu_group_args(A &a, int n_w, const lc_weight *const *w, const uint8_t *const *wd,
                                   float *const *out, int T, int warps) {
    memset(&a, 0, sizeof a);
    a.n_w = n_w;
    a.cols = (int)w[0]->cols;
    a.T = T;
    int blocks = 0;
    for (int i = 0; i < n_w; i++) {
        a.w[i] = wd[i];
        a.out[i] = out[i];
        a.row_bytes[i] = w[i]->row_bytes;
        a.rows[i] = (int)w[i]->rows;
        a.first_blk[i] = blocks;
        blocks += (a.rows[i] + warps - 1) / warps;
    }
    a.first_blk[n_w] = blocks;
    return blocks;
}

/* In a kernel launched over lc_cu_group_args's blocks of `warps` rows: the calling warp's weight
 * (*wi) and row, S warps a row; the row may be past that weight's last one (the caller returns
 * then). */
template <typename A>
__device__ __forceinline__ int cu_group_row(const A &a, int warps, int *wi, int S = 1) {
    int blk = blockIdx.x, i = 0;
    while (i + 1 < a.n_w && blk >= a.first_blk[i + 1]) i++;
    *wi = i;
    return (blk - a.first_blk[i]) * warps + (threadIdx.x >> 5) / S;
}

#endif /* LC_CUDA_IMPL_H */
