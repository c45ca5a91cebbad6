/* vec_avx512.c — AVX-512 float vector kernels (entries of vec.h's table); what is not here
 * falls back to the AVX2 entries. */
#include "vec.h"

#include <immintrin.h>
#include <math.h>

static inline __m512 load_h16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

/* ==== Attention block kernels (layouts in vec.h) ==== */

/* exp(x): Cephes-style range reduction, degree-5 polynomial (relative error ~2e-7), 2^n applied
 * by scalef. Results for x < cut (at most -87.3: below FLT_MIN; and exp(-inf)) are exactly 0. */
static inline __m512 exp512_cut(__m512 x, float cut) {
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(cut), _CMP_GE_OQ);
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-87.3f));
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(live, y, fx);
}

/* S (8 keys from j0) x (NC zmm columns from i0): 8 * NC accumulators; per d, NC loads of Qt and
 * 8 broadcasts of K feed 8 * NC FMAs (NC = 3: 24 accumulators, 11 loads for 24 FMAs). */
static inline __attribute__((always_inline)) void qk_8xNC(int NC, int Mp, int D, const float *Qt,
                                                         const float *K, float *S, int i0, int j0) {
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
#pragma GCC unroll 3
        for (int c = 0; c < NC; c++) acc[k][c] = _mm512_setzero_ps();
    const float *kr = K + (size_t)j0 * D;
    for (int d = 0; d < D; d++) {
        __m512 q[3];
#pragma GCC unroll 3
        for (int c = 0; c < NC; c++) q[c] = _mm512_loadu_ps(Qt + (size_t)d * Mp + i0 + 16 * c);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m512 kb = _mm512_set1_ps(kr[k * D + d]);
#pragma GCC unroll 3
            for (int c = 0; c < NC; c++) acc[k][c] = _mm512_fmadd_ps(kb, q[c], acc[k][c]);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
#pragma GCC unroll 3
        for (int c = 0; c < NC; c++) _mm512_storeu_ps(S + (size_t)(j0 + k) * Mp + i0 + 16 * c, acc[k][c]);
}

static void attn_qk(int Mp, int D, const float *Qt, const float *K, float *S) {
    int i0 = 0;
    for (; i0 + 48 <= Mp; i0 += 48)
        for (int j0 = 0; j0 < LC_ATTN_BT; j0 += 8) qk_8xNC(3, Mp, D, Qt, K, S, i0, j0);
    if (Mp - i0 == 32)
        for (int j0 = 0; j0 < LC_ATTN_BT; j0 += 8) qk_8xNC(2, Mp, D, Qt, K, S, i0, j0);
    else if (Mp - i0 == 16)
        for (int j0 = 0; j0 < LC_ATTN_BT; j0 += 8) qk_8xNC(1, Mp, D, Qt, K, S, i0, j0);
}

/* Column-wise online softmax: two passes down each 16-column strip (max, then exp and sum). */
static void attn_softmax(int Mp, float *S, const int32_t *qpos, int kpos0, int causal, float *mx, float *sum,
                         float *alpha) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < Mp; i += 16) {
        __m512i qp = _mm512_loadu_si512(qpos + i);
        __m512 m_old = _mm512_loadu_ps(mx + i), m = m_old;
        if (causal) {
            for (int j = 0; j < LC_ATTN_BT; j++) {
                __mmask16 vis = _mm512_cmp_epi32_mask(_mm512_set1_epi32(kpos0 + j), qp, _MM_CMPINT_LE);
                __m512 s = _mm512_mask_blend_ps(vis, ninf, _mm512_loadu_ps(S + j * Mp + i));
                _mm512_storeu_ps(S + j * Mp + i, s);
                m = _mm512_max_ps(m, s);
            }
        } else {
            for (int j = 0; j < LC_ATTN_BT; j++) m = _mm512_max_ps(m, _mm512_loadu_ps(S + j * Mp + i));
        }
        __m512 base = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(m, ninf, _CMP_EQ_OQ), m, _mm512_setzero_ps());
        __m512 al = exp512_cut(_mm512_sub_ps(m_old, base), LC_ATTN_EXP_CUT);
        __m512 t = _mm512_setzero_ps(); /* summed in key order, as the scalar reference does */
        for (int j = 0; j < LC_ATTN_BT; j++) {
            __m512 p = exp512_cut(_mm512_sub_ps(_mm512_loadu_ps(S + j * Mp + i), base), LC_ATTN_EXP_CUT);
            _mm512_storeu_ps(S + j * Mp + i, p);
            t = _mm512_add_ps(t, p);
        }
        _mm512_storeu_ps(alpha + i, al);
        _mm512_storeu_ps(sum + i, _mm512_fmadd_ps(_mm512_loadu_ps(sum + i), al, t));
        _mm512_storeu_ps(mx + i, m);
    }
}

/* O rows i0..i0+R-1, columns d0..d0+16*NV-1 (the last zmm masked by tail): R * NV accumulators
 * loaded once, scaled by alpha, then per key NV loads of V and R broadcasts of P feed R * NV FMAs. */
static inline __attribute__((always_inline)) void pv_RxNV(int R, int NV, int Mp, int D, const float *P,
                                                         const float *V, const float *alpha, float *O, int i0,
                                                         int d0, __mmask16 tail) {
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        __m512 al = _mm512_set1_ps(alpha[i0 + r]);
#pragma GCC unroll 4
        for (int c = 0; c < NV; c++)
            acc[r][c] = _mm512_mul_ps(_mm512_maskz_loadu_ps(c == NV - 1 ? tail : 0xffff, O + (size_t)(i0 + r) * D + d0 + 16 * c), al);
    }
    for (int j = 0; j < LC_ATTN_BT; j++) {
        __m512 v[4];
#pragma GCC unroll 4
        for (int c = 0; c < NV; c++) v[c] = _mm512_maskz_loadu_ps(c == NV - 1 ? tail : 0xffff, V + (size_t)j * D + d0 + 16 * c);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m512 p = _mm512_set1_ps(P[(size_t)j * Mp + i0 + r]);
#pragma GCC unroll 4
            for (int c = 0; c < NV; c++) acc[r][c] = _mm512_fmadd_ps(p, v[c], acc[r][c]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NV; c++)
            _mm512_mask_storeu_ps(O + (size_t)(i0 + r) * D + d0 + 16 * c, c == NV - 1 ? tail : 0xffff, acc[r][c]);
}

/* Picks the register block for rows [i0, i0+R) and one column chunk of up to 64 floats. */
static inline __attribute__((always_inline)) void pv_rows(int R, int Mp, int D, const float *P, const float *V,
                                                         const float *alpha, float *O, int i0) {
    for (int d0 = 0; d0 < D; d0 += 64) {
        int w = D - d0 < 64 ? D - d0 : 64, nv = (w + 15) / 16;
        __mmask16 tail = (__mmask16)(w % 16 ? (1u << (w % 16)) - 1 : 0xffff);
        switch (nv) {
        case 4: pv_RxNV(R, 4, Mp, D, P, V, alpha, O, i0, d0, tail); break;
        case 3: pv_RxNV(R, 3, Mp, D, P, V, alpha, O, i0, d0, tail); break;
        case 2: pv_RxNV(R, 2, Mp, D, P, V, alpha, O, i0, d0, tail); break;
        default: pv_RxNV(R, 1, Mp, D, P, V, alpha, O, i0, d0, tail); break;
        }
    }
}

static void attn_pv(int M, int Mp, int D, const float *P, const float *V, const float *alpha, float *O) {
    int i = 0;
    for (; i + 6 <= M; i += 6) pv_rows(6, Mp, D, P, V, alpha, O, i);
    for (; i + 3 <= M; i += 3) pv_rows(3, Mp, D, P, V, alpha, O, i);
    for (; i < M; i++) pv_rows(1, Mp, D, P, V, alpha, O, i);
}

/* 16 halves per conversion, the row's tail masked (D is a multiple of 8). */
static void f16_rows(int n, int D, const uint16_t *src, size_t stride, float *dst) {
    __mmask16 tail = (__mmask16)(D % 16 ? (1u << (D % 16)) - 1 : 0xffff);
    for (int r = 0; r < n; r++, src += stride, dst += D) {
        int d = 0;
        for (; d + 16 <= D; d += 16) _mm512_storeu_ps(dst + d, load_h16(src + d));
        if (d < D) _mm512_mask_storeu_ps(dst + d, tail, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, src + d)));
    }
}

/* ==== llama.cpp's attention arithmetic (orders in vec.h; the same bits as vec_scalar.c) ==== */

/* The tree of lc_vec_tree16 applied column-wise to 16 vectors. */
static inline __m512 tree16v(const __m512 *a) {
    __m512 t3[8], t6[4];
    for (int k = 0; k < 8; k++) t3[k] = _mm512_add_ps(a[8 + k], a[k]);
    for (int k = 0; k < 4; k++) t6[k] = _mm512_add_ps(t3[4 + k], t3[k]);
    return _mm512_add_ps(_mm512_add_ps(t6[0], t6[2]), _mm512_add_ps(t6[1], t6[3]));
}

/* S for one key row k (D) against the 16 query columns at Qt + i (column stride Mp). */
static inline __m512 qk_col_g(int Mp, int D, const float *Qt, const float *k, int i, int lanes) {
    __m512 a[16];
    if (lanes == 16) {
        for (int l = 0; l < 16; l++) a[l] = _mm512_setzero_ps();
        for (int t = 0; t < D; t += 16)
#pragma GCC unroll 16
            for (int l = 0; l < 16; l++)
                a[l] = _mm512_fmadd_ps(_mm512_set1_ps(k[t + l]), _mm512_loadu_ps(Qt + (size_t)(t + l) * Mp + i), a[l]);
        return tree16v(a);
    }
    int np = D & ~63;
    for (int l = 0; l < 16; l++) {
        __m512 c[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int t = 0; t < np; t += 64)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                c[q] = _mm512_fmadd_ps(_mm512_set1_ps(k[t + 16 * q + l]),
                                       _mm512_loadu_ps(Qt + (size_t)(t + 16 * q + l) * Mp + i), c[q]);
        a[l] = _mm512_add_ps(_mm512_add_ps(c[0], c[2]), _mm512_add_ps(c[1], c[3]));
    }
    __m512 s = tree16v(a);
    if (np == D) return s;
    float t[16]; /* terms past the last 64 are added in double, as ggml_vec_dot_f16's tail */
    _mm512_storeu_ps(t, s);
    for (int c = 0; c < 16; c++) {
        double x = t[c];
        for (int d = np; d < D; d++) x += (double)(k[d] * Qt[(size_t)d * Mp + i + c]);
        t[c] = (float)x;
    }
    return _mm512_loadu_ps(t);
}

/* Lanes 16 for 4 keys from j0 and the 16 columns at i: each Qt load feeds 4 keys' chains. */
static inline void qk4_g16(int Mp, int D, const float *Qt, const float *K, float *S, int i, int j0) {
    __m512 part[4][16];
    const float *k0 = K + (size_t)j0 * D;
    for (int l = 0; l < 16; l++) {
        __m512 c[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int t = 0; t < D; t += 16) {
            __m512 q = _mm512_loadu_ps(Qt + (size_t)(t + l) * Mp + i);
#pragma GCC unroll 4
            for (int kk = 0; kk < 4; kk++) c[kk] = _mm512_fmadd_ps(_mm512_set1_ps(k0[kk * D + t + l]), q, c[kk]);
        }
#pragma GCC unroll 4
        for (int kk = 0; kk < 4; kk++) part[kk][l] = c[kk];
    }
    for (int kk = 0; kk < 4; kk++) _mm512_storeu_ps(S + (size_t)(j0 + kk) * Mp + i, tree16v(part[kk]));
}

static void attn_qk_g(int Mp, int D, const float *Qt, const float *K, float *S, int lanes) {
    for (int i = 0; i < Mp; i += 16)
        for (int j = 0; j < LC_ATTN_BT; j += lanes == 16 ? 4 : 1) {
            if (lanes == 16)
                qk4_g16(Mp, D, Qt, K, S, i, j);
            else
                _mm512_storeu_ps(S + (size_t)j * Mp + i, qk_col_g(Mp, D, Qt, K + (size_t)j * D, i, lanes));
        }
}

/* One output per (key, row): lane l of 64 holds d = l, l + 64, ... (FMA chains), folded to 16
 * as (a_l + a_l+32) + (a_l+16 + a_l+48), then lc_vec_tree16 within the vector. */
static void attn_qk_rows_g(int M, int Mp, int D, const float *Q, const float *K, float *S) {
    for (int j = 0; j < LC_ATTN_BT; j++) {
        const float *k = K + (size_t)j * D;
        for (int i = 0; i < M; i++) {
            const float *q = Q + (size_t)i * D;
            __m512 c[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int t = 0; t < D; t += 64)
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++)
                    c[u] = _mm512_fmadd_ps(_mm512_loadu_ps(k + t + 16 * u), _mm512_loadu_ps(q + t + 16 * u), c[u]);
            __m512 a = _mm512_add_ps(_mm512_add_ps(c[0], c[2]), _mm512_add_ps(c[1], c[3]));
            __m256 t3 = _mm256_add_ps(_mm512_extractf32x8_ps(a, 1), _mm512_castps512_ps256(a));
            __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
            __m128 u = _mm_add_ps(t6, _mm_movehl_ps(t6, t6)); /* t6_0 + t6_2, t6_1 + t6_3 */
            S[(size_t)j * Mp + i] = _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
        }
        for (int i = M; i < Mp; i++) S[(size_t)j * Mp + i] = S[(size_t)j * Mp + M - 1];
    }
}

static void attn_max_g(int Mp, float *S, const int32_t *qpos, int kpos0, int causal, float scale, float *mx) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY), sc = _mm512_set1_ps(scale);
    for (int i = 0; i < Mp; i += 16) {
        __m512i qp = _mm512_loadu_si512(qpos + i);
        __m512 m = _mm512_loadu_ps(mx + i);
        for (int j = 0; j < LC_ATTN_BT; j++) {
            __m512 s = _mm512_mul_ps(_mm512_loadu_ps(S + j * Mp + i), sc);
            if (causal) {
                __mmask16 vis = _mm512_cmp_epi32_mask(_mm512_set1_epi32(kpos0 + j), qp, _MM_CMPINT_LE);
                s = _mm512_mask_blend_ps(vis, ninf, s);
            }
            _mm512_storeu_ps(S + j * Mp + i, s);
            m = _mm512_max_ps(s, m);
        }
        _mm512_storeu_ps(mx + i, m);
    }
}

/* lc_vec_gexp for 16 floats (the same operations, so the same bits). */
static inline __m512 gexp512(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f), zero = _mm512_setzero_ps();
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r), r);
    __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    __m512 u = _mm512_mul_ps(b, b);
    __m512 hi = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                                _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f)));
    __m512 p = _mm512_fmadd_ps(hi, u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    __m512 res = _mm512_scalef_ps(p, n);
    __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    if (!big) return res;
    __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, zero, _CMP_LE_OQ), _mm512_set1_ps(INFINITY), zero);
    return _mm512_mask_blend_ps(big, res, alt);
}

/* out = silu(g) * u as ggml's AVX-512 build computes it (ggml_vec_swiglu_f32 with ggml_v_silu):
 * g / (1 + gexp(0 - g)) * u, 16 at a time, and the tail with expf as ggml's scalar loop. Same
 * flops as the AVX2 entry with another exp polynomial: the goldens need ggml's bits here, as an
 * f32-noise difference in the FFN input moves int8 roundings of the down projection. */
static void swiglu(int n, const float *g, const float *u, float *out) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 vg = _mm512_loadu_ps(g + i);
        __m512 silu = _mm512_div_ps(vg, _mm512_add_ps(one, gexp512(_mm512_sub_ps(_mm512_setzero_ps(), vg))));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void attn_exp_g(int Mp, float *S, const float *mx, double *dsum) {
    for (int i = 0; i < Mp; i += 16) {
        __m512 m = _mm512_loadu_ps(mx + i);
        for (int c = 0; c < LC_ATTN_BT; c += 16) {
            __m512 e[16];
            for (int j = 0; j < 16; j++) {
                e[j] = gexp512(_mm512_sub_ps(_mm512_loadu_ps(S + (c + j) * Mp + i), m));
                _mm512_storeu_ps(S + (c + j) * Mp + i, e[j]);
            }
            if (!dsum) continue;
            __m512 t = tree16v(e);
            _mm512_storeu_pd(dsum + i, _mm512_add_pd(_mm512_loadu_pd(dsum + i), _mm512_cvtps_pd(_mm512_castps512_ps256(t))));
            _mm512_storeu_pd(dsum + i + 8, _mm512_add_pd(_mm512_loadu_pd(dsum + i + 8),
                                                         _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1)))));
        }
    }
}

/* One lane of one row over its keys k0, k0 + lanes, ... < nk, with NC 16-float chunks of D held
 * in registers (D = 16 NC): one broadcast and NC loads of V per NC FMAs. */
static inline __attribute__((always_inline)) void pv_lane(int NC, int Mp, int D, const float *P, const float *V,
                                                           float *a, int i, int k0, int nk, int lanes) {
    __m512 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = _mm512_loadu_ps(a + 16 * c);
    for (int k = k0; k < nk; k += lanes) {
        __m512 p = _mm512_set1_ps(P[(size_t)k * Mp + i]);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) acc[c] = _mm512_fmadd_ps(p, _mm512_loadu_ps(V + (size_t)k * D + 16 * c), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) _mm512_storeu_ps(a + 16 * c, acc[c]);
}

static void attn_pv_g(int M, int Mp, int D, float *P, const float *inv, const float *V, float *A, int lanes, int koff,
                      int nblk) {
    const int nk = nblk * LC_ATTN_BT;
    for (int i = 0; i < Mp; i += 16) {
        __m512 iv = _mm512_loadu_ps(inv + i);
        for (int j = 0; j < nk; j++) {
            __m256i h = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(P + (size_t)j * Mp + i), iv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm512_storeu_ps(P + (size_t)j * Mp + i, _mm512_cvtph_ps(h));
        }
    }
    __mmask16 tail = (__mmask16)(D % 16 ? (1u << (D % 16)) - 1 : 0xffff);
    for (int i = 0; i < M; i++)
        for (int l = 0; l < lanes; l++) {
            int k0 = ((l - koff) % lanes + lanes) % lanes; /* the first key of lane l */
            if (k0 >= nk) continue;
            float *a = A + ((size_t)l * M + i) * D;
            if (D == 64) {
                pv_lane(4, Mp, D, P, V, a, i, k0, nk, lanes);
            } else if (D == 128) {
                pv_lane(8, Mp, D, P, V, a, i, k0, nk, lanes);
            } else {
                for (int d = 0; d < D; d += 16) {
                    __mmask16 m = d + 16 <= D ? 0xffff : tail;
                    __m512 acc = _mm512_maskz_loadu_ps(m, a + d);
                    for (int k = k0; k < nk; k += lanes)
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(P[(size_t)k * Mp + i]), _mm512_maskz_loadu_ps(m, V + (size_t)k * D + d), acc);
                    _mm512_mask_storeu_ps(a + d, m, acc);
                }
            }
        }
}

static void round16(int n, const float *x, float *y) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_mask_storeu_ps(y + i, k, _mm512_cvtph_ps(h));
    }
}

/* The lane sums, 16 elements at a time: the same adds as the scalar entry, so the same bits. */
static void attn_lanes_g(int n, float *A, int lanes) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = i + 16 <= n ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 a[16];
        for (int l = 0; l < 16; l++) {
            a[l] = _mm512_maskz_loadu_ps(k, A + (size_t)l * n + i);
            if (lanes == 64)
                a[l] = _mm512_add_ps(_mm512_add_ps(a[l], _mm512_maskz_loadu_ps(k, A + (size_t)(l + 32) * n + i)),
                                     _mm512_add_ps(_mm512_maskz_loadu_ps(k, A + (size_t)(l + 16) * n + i),
                                                   _mm512_maskz_loadu_ps(k, A + (size_t)(l + 48) * n + i)));
        }
        _mm512_mask_storeu_ps(A + i, k, tree16v(a));
    }
}

void lc_vec_fill_avx512(lc_vec_ops *v) {
    v->isa = "avx512";
    v->swiglu = swiglu;
    v->attn_qk = attn_qk;
    v->attn_softmax = attn_softmax;
    v->attn_pv = attn_pv;
    v->f16_rows = f16_rows;
    v->ggml_native = 1;
    v->attn_qk_g = attn_qk_g;
    v->attn_max_g = attn_max_g;
    v->attn_exp_g = attn_exp_g;
    v->attn_pv_g = attn_pv_g;
    v->round16 = round16;
    v->attn_qk_rows_g = attn_qk_rows_g;
    v->attn_lanes_g = attn_lanes_g;
}
