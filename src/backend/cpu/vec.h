/* vec.h — float vector kernels the CPU backend's ops are built from (attention, norms,
 * activations), one table per instruction set (vec_scalar.c, vec_avx2.c, vec_avx512.c) picked
 * once by CPUID, each SIMD entry tested against the scalar one (tests/unit/test_vec.c).
 */
#ifndef LC_CPU_VEC_H
#define LC_CPU_VEC_H

#include <stddef.h>
#include <stdint.h>

#define LC_ATTN_BT 32 /* keys per attention tile: the KV cache's block size */
/* Softmax weights exp(s - max) below exp(-44) ~ 2^-63.5 are taken as 0 (as are rescale factors
 * of the running sums): relative to the block's max weight of 1 they are lost in rounding
 * anyway, and tiny weights times V rows make denormal products, which cost microcode assists
 * in the P.V FMAs. */
#define LC_ATTN_EXP_CUT (-44.0f)

typedef struct lc_vec_ops {
    const char *isa;
    /* sum of squares: each square rounded to float, the sum kept in double (as ggml's rms_norm) */
    double (*sumsq)(int n, const float *x);
    /* out = silu(g) * u */
    void (*swiglu)(int n, const float *g, const float *u, float *out);
    /* Attention over one cache block of LC_ATTN_BT keys, in "column" layouts so that the
     * softmax runs down columns with no horizontal reductions. Rows i < M are query heads
     * (Mp = M rounded up to 16; columns >= M of Qt and S are padding the caller keeps finite).
     * qk:      S[j*Mp + i] = sum_d K[j*D + d] * Qt[d*Mp + i]      (K: BT x D, Qt: D x Mp, S: BT x Mp)
     * softmax: when causal, keys with kpos0 + j > qpos[i] get probability 0; then the online
     *          softmax step per column: m' = max(mx[i], max_j S), alpha[i] = exp(mx[i] - m'),
     *          S[j][i] = exp(S[j][i] - m'), sum[i] = sum[i] * alpha[i] + sum_j S[j][i], mx[i] = m'
     *          (a column with no visible key so far keeps m' = -inf, alpha 0, P 0)
     * pv:      O[i*D + :] = O[i*D + :] * alpha[i] + sum_j P[j*Mp + i] * V[j*D + :]   (V: BT x D) */
    void (*attn_qk)(int Mp, int D, const float *Qt, const float *K, float *S);
    void (*attn_softmax)(int Mp, float *S, const int32_t *qpos, int kpos0, int causal, float *mx, float *sum,
                         float *alpha);
    void (*attn_pv)(int M, int Mp, int D, const float *P, const float *V, const float *alpha, float *O);
    /* dst (n x D, rows contiguous) = f16 rows at src, src + stride, ... (stride in elements):
     * one cache block of one KV head, converted in one call */
    void (*f16_rows)(int n, int D, const uint16_t *src, size_t stride, float *dst);
} lc_vec_ops;

const lc_vec_ops *lc_vec_best(void);
const lc_vec_ops *lc_vec_named(const char *isa);

void lc_vec_fill_scalar(lc_vec_ops *v);
void lc_vec_fill_avx2(lc_vec_ops *v);
void lc_vec_fill_avx512(lc_vec_ops *v);

#endif
