/* vec_avx2.c — AVX2/FMA/F16C float vector kernels (entries of vec.h's table). */
#include "vec.h"

#include <immintrin.h>
#include <math.h>

static inline __m256 load_h8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static double sumsq(int n, const float *x) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        v = _mm256_mul_ps(v, v); /* squares rounded to float, summed in double (ggml's rms_norm) */
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    __m256d a = _mm256_add_pd(a0, a1);
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    double r = _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    for (; i < n; i++) r += (double)(x[i] * x[i]);
    return r;
}

/* exp(x) for x in float range: Cephes-style range reduction and a degree-5 polynomial
 * (relative error ~2e-7, same order as expf's). */
static inline __m256 exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.0f); /* 2^-126: stays normal */
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* RoPE as the scalar entry (fmaf is one instruction here); a neox head's halves are contiguous,
 * 8 pairs per step with the same two operations per pair. */
static void rope(int half, int neox, const float *cs, const float *sn, float *v) {
    int i = 0;
    if (neox)
        for (; i + 8 <= half; i += 8) {
            __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + half);
            __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
            _mm256_storeu_ps(v + i, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
            _mm256_storeu_ps(v + i + half, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
        }
    for (; i < half; i++) {
        int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = v[a], x1 = v[b];
        v[a] = fmaf(x0, cs[i], -(x1 * sn[i]));
        v[b] = fmaf(x0, sn[i], x1 * cs[i]);
    }
}

static void swiglu(int n, const float *g, const float *u, float *out) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 vg = _mm256_loadu_ps(g + i);
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), vg));
        __m256 silu = _mm256_div_ps(vg, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* ==== Attention block kernels (layouts in vec.h) ==== */

/* exp256 with results for x < LC_ATTN_EXP_CUT (and exp(-inf)) set to exactly 0. */
static inline __m256 exp256z(__m256 x) {
    __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(LC_ATTN_EXP_CUT), _CMP_GE_OQ);
    return _mm256_and_ps(exp256(x), live);
}

/* S (4 keys from j0) x (16 columns from i0): 8 ymm accumulators, 2 loads of Qt and 4
 * broadcasts of K per 8 FMAs (AVX2's 16 registers hold no more without spilling). */
static void attn_qk(int Mp, int D, const float *Qt, const float *K, float *S) {
    for (int i0 = 0; i0 < Mp; i0 += 16)
        for (int j0 = 0; j0 < LC_ATTN_BT; j0 += 4) {
            __m256 acc[4][2];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) acc[k][0] = acc[k][1] = _mm256_setzero_ps();
            const float *kr = K + (size_t)j0 * D;
            for (int d = 0; d < D; d++) {
                __m256 q0 = _mm256_loadu_ps(Qt + (size_t)d * Mp + i0), q1 = _mm256_loadu_ps(Qt + (size_t)d * Mp + i0 + 8);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    __m256 kb = _mm256_broadcast_ss(kr + k * D + d);
                    acc[k][0] = _mm256_fmadd_ps(kb, q0, acc[k][0]);
                    acc[k][1] = _mm256_fmadd_ps(kb, q1, acc[k][1]);
                }
            }
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                _mm256_storeu_ps(S + (size_t)(j0 + k) * Mp + i0, acc[k][0]);
                _mm256_storeu_ps(S + (size_t)(j0 + k) * Mp + i0 + 8, acc[k][1]);
            }
        }
}

/* Column-wise online softmax over 8-column strips (max pass, then exp and sum pass). */
static void attn_softmax(int Mp, float *S, const int32_t *qpos, int kpos0, int causal, float *mx, float *sum,
                         float *alpha) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < Mp; i += 8) {
        __m256i qp = _mm256_loadu_si256((const __m256i *)(qpos + i));
        __m256 m_old = _mm256_loadu_ps(mx + i), m = m_old;
        for (int j = 0; j < LC_ATTN_BT; j++) {
            __m256 s = _mm256_loadu_ps(S + j * Mp + i);
            if (causal) {
                __m256 hid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(kpos0 + j), qp));
                s = _mm256_blendv_ps(s, ninf, hid);
                _mm256_storeu_ps(S + j * Mp + i, s);
            }
            m = _mm256_max_ps(m, s);
        }
        __m256 base = _mm256_blendv_ps(m, _mm256_setzero_ps(), _mm256_cmp_ps(m, ninf, _CMP_EQ_OQ));
        __m256 al = exp256z(_mm256_sub_ps(m_old, base)), t = _mm256_setzero_ps();
        for (int j = 0; j < LC_ATTN_BT; j++) {
            __m256 p = exp256z(_mm256_sub_ps(_mm256_loadu_ps(S + j * Mp + i), base));
            _mm256_storeu_ps(S + j * Mp + i, p);
            t = _mm256_add_ps(t, p);
        }
        _mm256_storeu_ps(alpha + i, al);
        _mm256_storeu_ps(sum + i, _mm256_fmadd_ps(_mm256_loadu_ps(sum + i), al, t));
        _mm256_storeu_ps(mx + i, m);
    }
}

/* One output row, columns in 32-float chunks (D is a multiple of 8, checked at context creation). */
static void attn_pv(int M, int Mp, int D, const float *P, const float *V, const float *alpha, float *O) {
    for (int i = 0; i < M; i++) {
        float *o = O + (size_t)i * D;
        const __m256 al = _mm256_set1_ps(alpha[i]);
        for (int d0 = 0; d0 < D; d0 += 32) {
            int nv = (D - d0 < 32 ? D - d0 : 32) / 8;
            __m256 acc[4];
            for (int c = 0; c < nv; c++) acc[c] = _mm256_mul_ps(_mm256_loadu_ps(o + d0 + c * 8), al);
            for (int j = 0; j < LC_ATTN_BT; j++) {
                __m256 p = _mm256_broadcast_ss(P + (size_t)j * Mp + i);
                for (int c = 0; c < nv; c++) acc[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(V + (size_t)j * D + d0 + c * 8), acc[c]);
            }
            for (int c = 0; c < nv; c++) _mm256_storeu_ps(o + d0 + c * 8, acc[c]);
        }
    }
}

/* 8 halves per conversion (D is a multiple of 8). */
static void f16_rows(int n, int D, const uint16_t *src, size_t stride, float *dst) {
    for (int r = 0; r < n; r++, src += stride, dst += D)
        for (int d = 0; d < D; d += 8) _mm256_storeu_ps(dst + d, load_h8(src + d));
}

void lc_vec_fill_avx2(lc_vec_ops *v) {
    v->isa = "avx2";
    v->sumsq = sumsq;
    v->swiglu = swiglu;
    v->rope = rope;
    v->attn_qk = attn_qk;
    v->attn_softmax = attn_softmax;
    v->attn_pv = attn_pv;
    v->f16_rows = f16_rows;
}
