/* cpu_impl.h — state shared by the CPU backend's op files (cpu.c, matmul.c, attn.c). */
#ifndef LC_CPU_IMPL_H
#define LC_CPU_IMPL_H

#include "backend/backend.h"
#include "vec.h"

typedef struct lc_cpu {
    lc_pool *pool;
    int n_threads;
    const lc_kernels *kern;
    const lc_vec_ops *vec;
    /* activations converted to a weight's vec_dot_type, grown on demand */
    uint8_t *qbuf;
    size_t qbuf_size;
    /* per-thread scratch: attention score blocks and dequantized K/V rows, or an expert tile's
     * outputs before they go to their pair rows (TOK_CHUNK x 64 floats, far below attention's) */
    float *tscratch;
    size_t tscratch_per_thread;
    int attn_mode; /* LC_CPU_ATTN_*, from LOCARA_CPU_ATTN */
    /* the tiles matmul.c uses: kern->gemm, or with LOCARA_CPU_GEMM=exact kern->gemm_exact where
     * a table has one (AVX-512 Q8_0/Q4_0: llama.cpp's tinyBLAS order, about a third slower) */
    lc_gemm_fn gemm[LC_TYPE_COUNT];
} lc_cpu;

/* How attention over an f16 cache computes (attn.c): llama.cpp's arithmetic, bit for bit where the
 * SIMD kernels allow (q and the probabilities rounded to f16, ggml's summation orders), for the
 * tiles whose scores fit the score cache (auto, the default: every unsplit decode token, prompt
 * tiles of short contexts; longer ones would recompute their scores three times, so they take the
 * online softmax), for every unsplit tile (LOCARA_CPU_ATTN=ggml), or never (=online). */
enum { LC_CPU_ATTN_AUTO, LC_CPU_ATTN_GGML, LC_CPU_ATTN_ONLINE };

static inline lc_cpu *cpu_of(lc_backend *be) { return (lc_cpu *)be->impl; }

/* Grows the shared conversion buffer to at least n bytes. */
bool lc_cpu_qbuf(lc_cpu *c, size_t n);
/* Grows per-thread scratch to at least n floats per thread. */
bool lc_cpu_tscratch(lc_cpu *c, size_t n);

/* Runs fn on the pool when the work is worth it, else inline on one thread. */
void lc_cpu_run(lc_cpu *c, lc_pool_fn fn, void *arg, size_t work);

lc_status lc_cpu_matmul(lc_backend *be, int n_w, const lc_weight *const *w, float *const *out,
                        const float *x, int n_tok);
lc_status lc_cpu_matmul_experts(lc_backend *be, const lc_weight *w, float *out, const float *x,
                                bool x_per_pair, const int32_t *ids, int n_tok, int k_per_tok);
void lc_cpu_kv_store(lc_backend *be, lc_kv *kv, int il, const float *k, const float *v, const lc_attn_batch *b);
void lc_cpu_attention(lc_backend *be, float *out, const float *q, lc_kv *kv, int il,
                      const lc_attn_batch *b, int n_head, float scale);

#endif
