/* vec.h — float vector kernels the CPU backend's ops are built from (attention, norms,
 * activations), one table per instruction set (vec_scalar.c, vec_avx2.c, vec_avx512.c) picked
 * once by CPUID, each SIMD entry tested against the scalar one (tests/unit/test_cpu_ops.c).
 */
#ifndef LC_CPU_VEC_H
#define LC_CPU_VEC_H

#include <stddef.h>
#include <stdint.h>

#define LC_ATTN_BT 32 /* keys per attention tile: the KV cache's block size */

typedef struct lc_vec_ops {
    const char *isa;
    float (*dot_f32)(int n, const float *x, const float *y);
    /* dot of f32 x with an f16 row */
    float (*dot_f16)(int n, const float *x, const uint16_t *y);
    /* y += a * x */
    void (*axpy_f32)(int n, float a, const float *x, float *y);
    void (*axpy_f16)(int n, float a, const uint16_t *x, float *y);
    /* y *= a */
    void (*scale_f32)(int n, float a, float *y);
    /* sum of squares in double precision (as ggml's rms_norm accumulates) */
    double (*sumsq)(int n, const float *x);
    /* out = silu(g) * u */
    void (*swiglu)(int n, const float *g, const float *u, float *out);
    /* Attention tiles over one cache block of LC_ATTN_BT keys:
     * qk: S[i][j] = scale * sum_d Q[i*D + d] * Kt[d*BT + j]   (Q: M x D, Kt: D x BT, S: M x BT)
     * pv: O[i][:] = O[i][:] * alpha[i] + sum_j P[i*BT + j] * V[j*D + :]   (V: BT x D)
     * exp: x[i] = exp(x[i]) (exp(-inf) = 0) */
    void (*attn_qk)(int M, int D, const float *Q, const float *Kt, float scale, float *S);
    void (*attn_pv)(int M, int D, const float *P, const float *V, const float *alpha, float *O);
    void (*exp_f32)(int n, float *x);
} lc_vec_ops;

const lc_vec_ops *lc_vec_best(void);
const lc_vec_ops *lc_vec_named(const char *isa);

void lc_vec_fill_scalar(lc_vec_ops *v);
void lc_vec_fill_avx2(lc_vec_ops *v);
void lc_vec_fill_avx512(lc_vec_ops *v);

#endif
