/* vec.h — float vector kernels the CPU backend's ops are built from (attention, norms,
 * activations), one table per instruction set (vec_scalar.c, vec_avx2.c, vec_avx512.c) picked
 * once by CPUID, each SIMD entry tested against the scalar one (tests/unit/test_vec.c).
 */
#ifndef LC_CPU_VEC_H
#define LC_CPU_VEC_H

#include "backend/backend.h" /* LC_ATTN_BT: keys per attention tile, the KV cache's block size */

#include <stddef.h>
#include <stdint.h>
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
    /* RoPE of one head in place, pairs (a_i, b_i) = (i, i + half) when neox, else (2i, 2i + 1), for
     * i < half: v[a] = fma(x0, cs[i], -(x1 * sn[i])), v[b] = fma(x0, sn[i], x1 * cs[i]) with x0 =
     * v[a], x1 = v[b]: ggml's rotate_pairs as GCC contracts it (its C++ is built with the default
     * -ffp-contract=fast), bit for bit */
    void (*rope)(int half, int neox, const float *cs, const float *sn, float *v);
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

    /* llama.cpp's attention arithmetic with an f16 cache (ggml's AVX-512 CPU build, flash
     * attention off), same layouts as above, bit for bit the same in every table. Orders:
     * lanes 16 is tinyBLAS's f16 GEMM (used by ggml for batches of >= 2 tokens): lane l sums
     * the terms l, l+16, ... by FMA, then the 16 lanes are added as a tree (lc_vec_tree16);
     * lanes 64 is ggml_vec_dot_f16 (one token): lane r sums terms r, r+64, ..., lanes r, r+16,
     * r+32, r+48 are added as (a_r + a_r+32) + (a_r+16 + a_r+48), then the tree; terms past the
     * last multiple of 64 are added in double.
     * qk_g:  S[j*Mp + i] = dot(K row j, Qt column i) in that order (lanes 16 needs D % 16 == 0)
     * max_g: S *= scale; causal masking as attn_softmax (-inf); mx[i] = max(mx[i], max_j S)
     * exp_g: S = gexp(S - mx) (ggml_v_expf's polynomial); when dsum, dsum[i] += the sums of
     *        the block's two 16-key chunks (each a tree of 16 floats), as ggml_vec_soft_max_f32
     * pv_g:  over nblk consecutive blocks (P: nblk BT x Mp blocks, V: nblk BT rows of D, keys j in
     *        key order): P = f16(P * inv[i]) (the probabilities as ggml converts them for its f16
     *        GEMM), then A[lane][i][:] = fma(P[j][i], V[j][:], A[lane][i][:]) with lane =
     *        (koff + j) % lanes (A: lanes x M x D; koff is the first block's first key modulo lanes) */
    int ggml_native; /* 1: these entries run at SIMD speed here (else they are the scalar ones) */
    void (*attn_qk_g)(int Mp, int D, const float *Qt, const float *K, float *S, int lanes);
    void (*attn_max_g)(int Mp, float *S, const int32_t *qpos, int kpos0, int causal, float scale, float *mx);
    void (*attn_exp_g)(int Mp, float *S, const float *mx, double *dsum);
    void (*attn_pv_g)(int M, int Mp, int D, float *P, const float *inv, const float *V, float *A, int lanes,
                      int koff, int nblk);
    /* qk_g with lanes 64 for D % 64 == 0, Q in row layout (M rows of D, already rounded to f16):
     * S[j*Mp + i] = the same bits as qk_g's for i < M, S[j*Mp + i] = S[j*Mp + M - 1] for the
     * padding columns (which qk_g fills from copies of the last row); M times the work, not Mp */
    void (*attn_qk_rows_g)(int M, int Mp, int D, const float *Q, const float *K, float *S);
    /* y = x rounded to f16 and back (round to nearest even), as ggml converts Q for its f16 GEMM */
    void (*round16)(int n, const float *x, float *y);
    /* A (lanes x n): A[i] = the sum over lanes of A[l*n + i] in ggml's order (lanes 64 folded to
     * 16 as (a_l + a_l+32) + (a_l+16 + a_l+48), then lc_vec_tree16), written over lane 0 */
    void (*attn_lanes_g)(int n, float *A, int lanes);
} lc_vec_ops;

/* The 16-float reduction of GCC's _mm512_reduce_add_ps (halves, quarters, pairs), which ggml's
 * AVX-512 build uses at the end of its dot products and softmax chunks. */
static inline float lc_vec_tree16(const float *a) {
    float t3[8], t6[4];
    for (int k = 0; k < 8; k++) t3[k] = a[8 + k] + a[k];
    for (int k = 0; k < 4; k++) t6[k] = t3[4 + k] + t3[k];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}

/* ggml_v_expf's exp, scalar (the reference of the exp_g entries) */
float lc_vec_gexp(float x);

const lc_vec_ops *lc_vec_best(void);
const lc_vec_ops *lc_vec_named(const char *isa);

void lc_vec_fill_scalar(lc_vec_ops *v);
void lc_vec_fill_avx2(lc_vec_ops *v);
void lc_vec_fill_avx512(lc_vec_ops *v);

#endif
