/* vec_scalar.c — the reference float vector kernels (and the dispatch of vec.h). */
#include "vec.h"

#include "base/base.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

static double sumsq(int n, const float *x) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)(x[i] * x[i]); /* the square in float, as ggml */
    return s;
}
static void rope(int half, int neox, const float *cs, const float *sn, float *v) {
    for (int i = 0; i < half; i++) {
        int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = v[a], x1 = v[b];
        v[a] = fmaf(x0, cs[i], -(x1 * sn[i]));
        v[b] = fmaf(x0, sn[i], x1 * cs[i]);
    }
}

static void swiglu(int n, const float *g, const float *u, float *out) {
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* Reference attention block kernels (layouts in vec.h). */
static void attn_qk(int Mp, int D, const float *Qt, const float *K, float *S) {
    for (int j = 0; j < LC_ATTN_BT; j++)
        for (int i = 0; i < Mp; i++) {
            float s = 0;
            for (int d = 0; d < D; d++) s += K[j * D + d] * Qt[d * Mp + i];
            S[j * Mp + i] = s;
        }
}

static void attn_softmax(int Mp, float *S, const int32_t *qpos, int kpos0, int causal, float *mx, float *sum,
                         float *alpha) {
    for (int i = 0; i < Mp; i++) {
        float m = mx[i];
        for (int j = 0; j < LC_ATTN_BT; j++) {
            if (causal && kpos0 + j > qpos[i]) S[j * Mp + i] = -INFINITY;
            m = S[j * Mp + i] > m ? S[j * Mp + i] : m;
        }
        float base = m == -INFINITY ? 0.0f : m, tot = 0;
        alpha[i] = mx[i] - base >= LC_ATTN_EXP_CUT ? expf(mx[i] - base) : 0.0f;
        for (int j = 0; j < LC_ATTN_BT; j++) {
            float x = S[j * Mp + i] - base, p = x >= LC_ATTN_EXP_CUT ? expf(x) : 0.0f;
            S[j * Mp + i] = p;
            tot += p;
        }
        sum[i] = sum[i] * alpha[i] + tot;
        mx[i] = m;
    }
}

static void attn_pv(int M, int Mp, int D, const float *P, const float *V, const float *alpha, float *O) {
    for (int i = 0; i < M; i++) {
        float *o = O + i * D;
        for (int d = 0; d < D; d++) o[d] *= alpha[i];
        for (int j = 0; j < LC_ATTN_BT; j++) {
            float p = P[j * Mp + i];
            if (p == 0.0f) continue;
            for (int d = 0; d < D; d++) o[d] += p * V[j * D + d];
        }
    }
}

static void f16_rows(int n, int D, const uint16_t *src, size_t stride, float *dst) {
    for (int r = 0; r < n; r++)
        for (int d = 0; d < D; d++) dst[(size_t)r * D + d] = lc_f16_to_f32(src[(size_t)r * stride + d]);
}

/* ==== llama.cpp's attention arithmetic (reference; orders in vec.h) ==== */

/* One dot product of D terms x[d] * y[d*ys] in the order of vec.h's lanes 16 or 64. */
static float dot_g(int D, const float *x, const float *y, size_t ys, int lanes) {
    float a[64] = {0}, v[16];
    int np = lanes == 16 ? D : D & ~63;
    for (int d = 0; d < np; d++) a[d % lanes] = fmaf(x[d], y[(size_t)d * ys], a[d % lanes]);
    if (lanes == 16) return lc_vec_tree16(a);
    for (int l = 0; l < 16; l++) v[l] = (a[l] + a[l + 32]) + (a[l + 16] + a[l + 48]);
    double s = lc_vec_tree16(v);
    for (int d = np; d < D; d++) s += (double)(x[d] * y[(size_t)d * ys]);
    return (float)s;
}

static void attn_qk_g(int Mp, int D, const float *Qt, const float *K, float *S, int lanes) {
    for (int j = 0; j < LC_ATTN_BT; j++)
        for (int i = 0; i < Mp; i++) S[j * Mp + i] = dot_g(D, K + j * D, Qt + i, (size_t)Mp, lanes);
}

static void attn_qk_rows_g(int M, int Mp, int D, const float *Q, const float *K, float *S) {
    for (int j = 0; j < LC_ATTN_BT; j++)
        for (int i = 0; i < Mp; i++)
            S[j * Mp + i] = i < M ? dot_g(D, K + j * D, Q + (size_t)i * D, 1, 64) : S[j * Mp + M - 1];
}

static void attn_max_g(int Mp, float *S, const int32_t *qpos, int kpos0, int causal, float scale, float *mx) {
    for (int i = 0; i < Mp; i++)
        for (int j = 0; j < LC_ATTN_BT; j++) {
            float x = causal && kpos0 + j > qpos[i] ? -INFINITY : S[j * Mp + i] * scale;
            S[j * Mp + i] = x;
            mx[i] = x > mx[i] ? x : mx[i];
        }
}

/* exp(x) as ggml_v_expf computes it (the AVX-512 form: n = round(x / ln 2) by the 1.5 * 2^23
 * trick, x - n ln 2 in two FMAs, a degree-5 polynomial in two halves, scaled by 2^n; |n| > 192
 * gives 0 or inf). Same coefficients, so the same bits: that is its purpose. */
float lc_vec_gexp(float x) {
    const float r = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p+0f, r), n = z - r;
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x)), u = b * b;
    float p = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                   fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    return ldexpf(p, (int)n);
}

static void attn_exp_g(int Mp, float *S, const float *mx, double *dsum) {
    for (int i = 0; i < Mp; i++)
        for (int c = 0; c < LC_ATTN_BT; c += 16) {
            float e[16];
            for (int j = 0; j < 16; j++) S[(c + j) * Mp + i] = e[j] = lc_vec_gexp(S[(c + j) * Mp + i] - mx[i]);
            if (dsum) dsum[i] += (double)lc_vec_tree16(e);
        }
}

static void attn_pv_g(int M, int Mp, int D, float *P, const float *inv, const float *V, float *A, int lanes, int koff,
                      int nblk) {
    const int nk = nblk * LC_ATTN_BT;
    for (int j = 0; j < nk; j++)
        for (int i = 0; i < Mp; i++) P[j * Mp + i] = lc_f16_to_f32(lc_f32_to_f16(P[j * Mp + i] * inv[i]));
    for (int j = 0; j < nk; j++) {
        float *a = A + (size_t)((koff + j) % lanes) * M * D;
        for (int i = 0; i < M; i++)
            for (int d = 0; d < D; d++) a[i * D + d] = fmaf(P[j * Mp + i], V[j * D + d], a[i * D + d]);
    }
}

static void round16(int n, const float *x, float *y) {
    for (int i = 0; i < n; i++) y[i] = lc_f16_to_f32(lc_f32_to_f16(x[i]));
}

static void attn_lanes_g(int n, float *A, int lanes) {
    for (int i = 0; i < n; i++) {
        float a[16];
        for (int l = 0; l < 16; l++)
            a[l] = lanes == 64 ? (A[(size_t)l * n + i] + A[(size_t)(l + 32) * n + i]) +
                                     (A[(size_t)(l + 16) * n + i] + A[(size_t)(l + 48) * n + i])
                               : A[(size_t)l * n + i];
        A[i] = lc_vec_tree16(a);
    }
}

void lc_vec_fill_scalar(lc_vec_ops *v) {
    v->isa = "scalar";
    v->sumsq = sumsq;
    v->swiglu = swiglu;
    v->rope = rope;
    v->attn_qk = attn_qk;
    v->attn_softmax = attn_softmax;
    v->attn_pv = attn_pv;
    v->f16_rows = f16_rows;
    v->ggml_native = 0;
    v->attn_qk_g = attn_qk_g;
    v->attn_max_g = attn_max_g;
    v->attn_exp_g = attn_exp_g;
    v->attn_pv_g = attn_pv_g;
    v->round16 = round16;
    v->attn_qk_rows_g = attn_qk_rows_g;
    v->attn_lanes_g = attn_lanes_g;
}

/* Tables are filled once (the CPU feature word is the only input) and never change after. */
static lc_vec_ops tables[3];
static atomic_int tables_ready;

static void fill_tables(void) {
    if (atomic_load_explicit(&tables_ready, memory_order_acquire)) return;
    unsigned f = lc_cpu_features();
    lc_vec_ops t[3];
    lc_vec_fill_scalar(&t[0]);
    t[1] = t[0];
    t[1].isa = NULL;
    t[2] = t[0];
    t[2].isa = NULL;
    if (f & LC_CPU_AVX2) lc_vec_fill_avx2(&t[1]);
    if (f & LC_CPU_AVX512) {
        lc_vec_fill_avx2(&t[2]);
        lc_vec_fill_avx512(&t[2]);
    }
    memcpy(tables, t, sizeof t);
    atomic_store_explicit(&tables_ready, 1, memory_order_release);
}

const lc_vec_ops *lc_vec_named(const char *isa) {
    fill_tables();
    for (int i = 0; i < 3; i++)
        if (tables[i].isa && !strcmp(tables[i].isa, isa)) return &tables[i];
    return NULL;
}

const lc_vec_ops *lc_vec_best(void) {
    fill_tables();
    for (int i = 2; i >= 0; i--)
        if (tables[i].isa) return &tables[i];
    return &tables[0];
}
