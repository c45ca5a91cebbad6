/* backend.h — the op interface between architecture code and silicon.
 *
 * Architecture files (src/model/) describe a forward pass as calls to these ops; a backend
 * (backend/cpu, backend/cuda) implements them as one small versioned table of functions.
 * Activations are float rows in buffers the backend hands out (lc_be_alloc), so architecture
 * code never dereferences them and the same forward runs on any backend. Weights are lc_weight
 * views: a type, a shape and the bytes (in the file mapping on the CPU path).
 *
 * Shapes: an activation "x (T, n)" is T rows (tokens) of n floats, row-major.
 */
#ifndef LC_BACKEND_H
#define LC_BACKEND_H

#include "base/base.h"
#include "quant/quant.h"

#include <math.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LC_BACKEND_VERSION 3

/* A weight matrix W (rows, cols): rows of `cols` elements of `type`, row_bytes apart. 3-D expert
 * tensors are n_expert such matrices, expert_bytes apart. */
typedef struct lc_weight {
    lc_type type;
    int64_t cols;       /* ne[0]: the reduction dimension */
    int64_t rows;       /* ne[1] */
    int64_t n_expert;   /* ne[2] (1 for plain matrices) */
    size_t row_bytes;
    size_t expert_bytes;
    const void *data;   /* host bytes (file mapping) */
    void *dev;          /* backend-resident copy, if the backend keeps one */
} lc_weight;

/* Bytes of a weight's data (every expert of a 3-D tensor); 0 when absent. */
static inline size_t lc_weight_bytes(const lc_weight *w) {
    return w->data ? w->expert_bytes * (size_t)(w->n_expert > 1 ? w->n_expert : 1) : 0;
}

/* One expert's slice of a 3-D expert tensor, as a plain matrix view. */
static inline lc_weight lc_weight_expert(const lc_weight *w, int e) {
    lc_weight v = *w;
    v.n_expert = 1;
    v.data = (const uint8_t *)w->data + (size_t)e * w->expert_bytes;
    if (w->dev) v.dev = (uint8_t *)w->dev + (size_t)e * w->expert_bytes;
    return v;
}

typedef struct lc_rope {
    int n_dims;          /* rotated dimensions per head (<= head_dim) */
    bool neox;           /* rotate (i, i + n_dims/2) instead of (2i, 2i+1) */
    float freq_base;
    float freq_scale;    /* linear position scaling (1 = none) */
    const float *freq_factors; /* Llama-3 rope factors per pair (n_dims/2), or NULL */
} lc_rope;

/* cos and sin of the n_dims / 2 rotation angles of position pos: libm's cosf / sinf of ggml's float
 * angles (theta *= base^(-2/n_dims) pair after pair), one definition for both backends so that they
 * rotate by the same floats (the CUDA backend uploads them for short batches; a header function, as
 * the CUDA module must not depend on which core objects a program links). */
static inline void lc_rope_angles(const lc_rope *r, int32_t pos, float *cs, float *sn) {
    const float theta_scale = powf(r->freq_base, -2.0f / (float)r->n_dims);
    float theta = (float)pos;
    for (int i = 0; i < r->n_dims / 2; i++) {
        const float th = r->freq_scale * (theta / (r->freq_factors ? r->freq_factors[i] : 1.0f));
        cs[i] = cosf(th);
        sn[i] = sinf(th);
        theta *= theta_scale;
    }
}

/* Where each token of a batch lives: its sequence, position, and cache slot. */
typedef struct lc_attn_batch {
    int n_tokens;
    const int32_t *pos;
    const int32_t *seq;
    const int32_t *slot;        /* cache slot (block * block_tokens + offset) of each token's K/V */
    const int32_t *const *block_table; /* per token: its sequence's block table */
} lc_attn_batch;

/* The CPU backend's attention tiles (cpu/attn.c), which the CUDA backend follows where it computes
 * in the CPU's arithmetic (cuda/attn.cu): a tile is a run of up to LC_ATTN_QT consecutive positions
 * of one sequence (lc_attn_run) against blocks of LC_ATTN_BT keys (the KV cache's block size); a
 * one-token run deeper than LC_ATTN_SPLIT blocks is split over its keys (lc_attn_split); llama.cpp's
 * arithmetic (f16 cache) keeps a tile's scores, so the CPU takes it where they fit
 * LC_ATTN_SCORE_CACHE floats a thread (lc_attn_scores_fit: 256 KiB, every unsplit decode token,
 * prompt tiles up to 512 keys at G = 4). */
#define LC_ATTN_BT 32
#define LC_ATTN_QT 32
#define LC_ATTN_SPLIT 32
#define LC_ATTN_SCORE_CACHE 65536

/* Tokens of the tile that begins with token t of b. */
static inline int lc_attn_run(const lc_attn_batch *b, int t) {
    int n = 1;
    while (n < LC_ATTN_QT && t + n < b->n_tokens && b->seq[t + n] == b->seq[t] && b->pos[t + n] == b->pos[t] + n) n++;
    return n;
}

/* Whether a tile of nq tokens over nb key blocks is split over its keys. */
static inline bool lc_attn_split(int nq, int nb) { return nq == 1 && nb > LC_ATTN_SPLIT; }

/* Whether the scores of nb key blocks against `rows` query rows (padded to 16) fit the score cache. */
static inline bool lc_attn_scores_fit(int nb, int rows) {
    return (size_t)nb * LC_ATTN_BT * (((size_t)rows + 15) / 16 * 16) <= LC_ATTN_SCORE_CACHE;
}

/* The KV cache storage: per layer, a pool of n_blocks blocks of block_tokens token rows; a row
 * holds n_kv_head * head_dim elements of type (f16, q8_0 or q4_0) for K and the same for V.
 * Which blocks belong to which sequence is the engine's business (engine/kv.h). */
typedef struct lc_kv {
    int n_layer;
    int n_kv_head;
    int head_dim;
    int block_tokens;
    int n_blocks;
    lc_type type;
    size_t row_bytes;   /* bytes of one token's K (or V) row in one layer */
    uint8_t **k;        /* [n_layer] -> n_blocks * block_tokens rows */
    uint8_t **v;
} lc_kv;

typedef struct lc_backend lc_backend;

typedef struct lc_backend_ops {
    int version;
    const char *name;

    /* Scratch: an activation buffer of n floats (owned by the backend until lc_be_free). */
    float *(*alloc)(lc_backend *be, size_t n);
    void (*free)(lc_backend *be, float *p);
    /* Allocates (and frees) the k/v pools of kv, whose geometry fields are already set. */
    lc_status (*kv_alloc)(lc_backend *be, lc_kv *kv);
    void (*kv_free)(lc_backend *be, lc_kv *kv);
    /* Optional (NULL: nothing to do): gives block b's memory back to the system; the block is
     * free and will be rewritten before it is read again (memory pressure). */
    void (*kv_discard_block)(lc_backend *be, lc_kv *kv, int b);
    /* Copies the first n_rows token rows of block src to block dst in every layer (K and V). */
    void (*kv_copy_block)(lc_backend *be, lc_kv *kv, int dst, int src, int n_rows);
    /* Copies n floats between backend buffers and the host. */
    void (*to_host)(lc_backend *be, float *dst, const float *src, size_t n);

    /* out (T, rows) = x (T, cols) @ W^T, for n_w weights sharing the same input x (q/k/v, gate/up):
     * the input is converted to the weights' activation format once. */
    lc_status (*matmul)(lc_backend *be, int n_w, const lc_weight *const *w, float *const *out,
                        const float *x, int n_tok);
    /* Expert products: for token t and its k-th chosen expert e = ids[t*k_per_tok + k],
     * out[(t*k_per_tok + k), rows] = x[t] @ W_e^T (x rows may be per token or per (t,k) pair:
     * x_per_pair selects). */
    lc_status (*matmul_experts)(lc_backend *be, const lc_weight *w, float *out, const float *x,
                                bool x_per_pair, const int32_t *ids, int n_tok, int k_per_tok);
    /* out (T, n) = x / rms(x) * g (g may be NULL); rows of n, stride n. In place allowed. */
    void (*rms_norm)(lc_backend *be, float *out, const float *x, const float *g, int n_rows, int n, float eps);
    /* Rotary embedding on x (T, n_head * head_dim) in place, token t at pos[t]. */
    void (*rope)(lc_backend *be, float *x, const int32_t *pos, int n_tok, int n_head, int head_dim,
                 const lc_rope *r);
    /* out = silu(gate) * up, n elements (in place on gate allowed). */
    void (*swiglu)(lc_backend *be, float *out, const float *gate, const float *up, size_t n);
    /* x += y (n elements); x += b broadcast over rows (bias add). */
    void (*add)(lc_backend *be, float *x, const float *y, size_t n);
    void (*add_bias)(lc_backend *be, float *x, const float *b, int n_rows, int n);
    /* out (T, cols) = embedding rows ids[t] of W, dequantized. */
    void (*get_rows)(lc_backend *be, float *out, const lc_weight *w, const int32_t *ids, int n);
    /* Writes k, v (T, n_kv_head*head_dim) of layer il into the cache at the batch's slots. */
    void (*kv_store)(lc_backend *be, lc_kv *kv, int il, const float *k, const float *v,
                     const lc_attn_batch *b);
    /* out (T, n_head*head_dim) = softmax(q k^T * scale) v over each token's sequence positions
     * <= its own, read from the paged cache (online softmax, never the whole score matrix). */
    void (*attention)(lc_backend *be, float *out, const float *q, lc_kv *kv, int il,
                      const lc_attn_batch *b, int n_head, float scale);
    /* MoE routing: for each token, softmax over n_expert logits, top k ids and weights
     * (renormalised to sum 1 when norm is set). */
    void (*moe_route)(lc_backend *be, const float *logits, int n_tok, int n_expert, int k, bool norm,
                      int32_t *ids, float *weights);
    /* out (T, n) = sum_k weights[t,k] * y[(t,k), n]. */
    void (*moe_combine)(lc_backend *be, float *out, const float *y, const float *weights, int n_tok,
                        int k, int n);
    /* Gathers rows: out[i] = x[idx[i]] (n floats each). */
    void (*gather)(lc_backend *be, float *out, const float *x, const int32_t *idx, int n_rows, int n);
    /* Copies n floats from the host into a backend buffer (a model split across backends). */
    void (*from_host)(lc_backend *be, float *dst, const float *src, size_t n);

    /* Optional (NULL: nothing to do), around one forward step of n_tokens: step_begin may start
     * recording the ops that follow instead of running them (CUDA graphs); step_end then runs the
     * recording, or drops it when run is false (the forward failed). When step_end sets *redo,
     * nothing of the step ran (the recording was impossible): the caller runs the forward again in
     * new brackets, where the backend records it or runs its ops directly (context.c's run_forward;
     * it gives up the brackets after three passes, as a guard). Host arrays passed to ops inside
     * the brackets are copied at the call, as always. */
    void (*step_begin)(lc_backend *be, int n_tokens);
    lc_status (*step_end)(lc_backend *be, bool run, bool *redo);
    /* Optional (NULL: lc_malloc / lc_free): host memory for n floats that to_host copies into (the
     * logits), given back with the same n. The CUDA backend's is page-locked: the copy then runs at
     * the link's speed instead of through the driver's staging buffers. */
    float *(*host_alloc)(lc_backend *be, size_t n);
    void (*host_free)(lc_backend *be, float *p, size_t n);
} lc_backend_ops;

struct lc_backend {
    const lc_backend_ops *ops;
    void *impl;
};

/* The CPU backend over a thread pool of n_threads (0 = physical cores). */
lc_status lc_backend_cpu_create(int n_threads, lc_backend **out);
void lc_backend_cpu_free(lc_backend *be);
/* Floats of attention scratch each CPU thread holds over a cache of kv_type (fit's memory math
 * uses the same number): the exact kernel's score cache and lanes only for an f16 cache. */
size_t lc_backend_cpu_attn_scratch(int n_head, int n_kv_head, int head_dim, lc_type kv_type);

#ifdef __cplusplus
}
#endif

#endif /* LC_BACKEND_H */
