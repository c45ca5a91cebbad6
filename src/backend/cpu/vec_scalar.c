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

void lc_vec_fill_scalar(lc_vec_ops *v) {
    v->isa = "scalar";
    v->sumsq = sumsq;
    v->swiglu = swiglu;
    v->attn_qk = attn_qk;
    v->attn_softmax = attn_softmax;
    v->attn_pv = attn_pv;
    v->f16_rows = f16_rows;
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
