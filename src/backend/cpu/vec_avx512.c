/* vec_avx512.c — AVX-512 float vector kernels (entries of vec.h's table); what is not here
 * falls back to the AVX2 entries. */
#include "vec.h"

#include <immintrin.h>

static float dot_f32(int n, const float *x, const float *y) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static inline __m512 load_h16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

static float dot_f16(int n, const float *x, const uint16_t *y) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), load_h16(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), load_h16(y + i + 16), a1);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), load_h16(y + i), a0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++) s += x[i] * _cvtsh_ss(y[i]);
    return s;
}

static void axpy_f16(int n, float a, const uint16_t *x, float *y) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, load_h16(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * _cvtsh_ss(x[i]);
}

static void axpy_f32(int n, float a, const float *x, float *y) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* S rows of 32 keys = 2 zmm; 4 query rows at a time share each Kt row load. */
static void attn_qk(int M, int D, const float *Q, const float *Kt, float scale, float *S) {
    const __m512 vs = _mm512_set1_ps(scale);
    int i = 0;
    for (; i + 4 <= M; i += 4) {
        __m512 a[4][2];
        for (int r = 0; r < 4; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
        for (int d = 0; d < D; d++) {
            __m512 k0 = _mm512_loadu_ps(Kt + d * LC_ATTN_BT), k1 = _mm512_loadu_ps(Kt + d * LC_ATTN_BT + 16);
            for (int r = 0; r < 4; r++) {
                __m512 q = _mm512_set1_ps(Q[(i + r) * D + d]);
                a[r][0] = _mm512_fmadd_ps(q, k0, a[r][0]);
                a[r][1] = _mm512_fmadd_ps(q, k1, a[r][1]);
            }
        }
        for (int r = 0; r < 4; r++) {
            _mm512_storeu_ps(S + (i + r) * LC_ATTN_BT, _mm512_mul_ps(a[r][0], vs));
            _mm512_storeu_ps(S + (i + r) * LC_ATTN_BT + 16, _mm512_mul_ps(a[r][1], vs));
        }
    }
    for (; i < M; i++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int d = 0; d < D; d++) {
            __m512 q = _mm512_set1_ps(Q[i * D + d]);
            a0 = _mm512_fmadd_ps(q, _mm512_loadu_ps(Kt + d * LC_ATTN_BT), a0);
            a1 = _mm512_fmadd_ps(q, _mm512_loadu_ps(Kt + d * LC_ATTN_BT + 16), a1);
        }
        _mm512_storeu_ps(S + i * LC_ATTN_BT, _mm512_mul_ps(a0, vs));
        _mm512_storeu_ps(S + i * LC_ATTN_BT + 16, _mm512_mul_ps(a1, vs));
    }
}

/* One output row at a time in up to 8 zmm (D <= 128 per pass), masked for a 8-wide tail. */
static void attn_pv(int M, int D, const float *P, const float *V, const float *alpha, float *O) {
    for (int i = 0; i < M; i++) {
        float *o = O + i * D;
        const __m512 al = _mm512_set1_ps(alpha[i]);
        for (int d0 = 0; d0 < D; d0 += 128) {
            int w = D - d0 < 128 ? D - d0 : 128, nv = (w + 15) / 16;
            __mmask16 tail = (__mmask16)(w % 16 ? (1u << (w % 16)) - 1 : 0xffff);
            __m512 acc[8];
            for (int c = 0; c < nv; c++) {
                __mmask16 m = c == nv - 1 ? tail : 0xffff;
                acc[c] = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o + d0 + c * 16), al);
            }
            for (int j = 0; j < LC_ATTN_BT; j++) {
                __m512 p = _mm512_set1_ps(P[i * LC_ATTN_BT + j]);
                const float *vr = V + j * D + d0;
                for (int c = 0; c < nv; c++) {
                    __mmask16 m = c == nv - 1 ? tail : 0xffff;
                    acc[c] = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(m, vr + c * 16), acc[c]);
                }
            }
            for (int c = 0; c < nv; c++) {
                __mmask16 m = c == nv - 1 ? tail : 0xffff;
                _mm512_mask_storeu_ps(o + d0 + c * 16, m, acc[c]);
            }
        }
    }
}

void lc_vec_fill_avx512(lc_vec_ops *v) {
    v->isa = "avx512";
    v->dot_f32 = dot_f32;
    v->dot_f16 = dot_f16;
    v->axpy_f16 = axpy_f16;
    v->axpy_f32 = axpy_f32;
    v->attn_qk = attn_qk;
    v->attn_pv = attn_pv;
}
