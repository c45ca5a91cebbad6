/* test_vec.c — every SIMD entry of the CPU backend's vector table (backend/cpu/vec.h) against
 * the scalar reference, on random data and several lengths, including the attention tiles. */
#include "backend/cpu/vec.h"
#include "base/base.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f) * 2.0f;
}

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * (1.0 + fabs(b)); }

static void check_isa(const lc_vec_ops *ref, const lc_vec_ops *v) {
    unsigned seed = 7;
    enum { N = 300, M = 24, D = 64, BT = LC_ATTN_BT };
    float x[N], y[N], y2[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++) x[i] = frand(&seed), y[i] = frand(&seed), h[i] = lc_f32_to_f16(frand(&seed));
    const int lens[] = {1, 7, 8, 16, 33, 64, 300};
    for (size_t li = 0; li < LC_ARRAY_LEN(lens); li++) {
        int n = lens[li];
        CHECKF(close_rel(v->dot_f32(n, x, y), ref->dot_f32(n, x, y), 1e-5), "%s dot_f32 n=%d", v->isa, n);
        CHECKF(close_rel(v->dot_f16(n, x, h), ref->dot_f16(n, x, h), 1e-5), "%s dot_f16 n=%d", v->isa, n);
        CHECKF(close_rel(v->sumsq(n, x), ref->sumsq(n, x), 1e-9), "%s sumsq n=%d", v->isa, n);
        memcpy(y2, y, sizeof y);
        float ya[N];
        memcpy(ya, y, sizeof y);
        v->axpy_f32(n, 0.37f, x, y2);
        ref->axpy_f32(n, 0.37f, x, ya);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += !close_rel(y2[i], ya[i], 1e-6);
        memcpy(y2, y, sizeof y);
        memcpy(ya, y, sizeof y);
        v->axpy_f16(n, -1.5f, h, y2);
        ref->axpy_f16(n, -1.5f, h, ya);
        for (int i = 0; i < n; i++) bad += !close_rel(y2[i], ya[i], 1e-6);
        float g[N], o1[N], o2[N];
        for (int i = 0; i < n; i++) g[i] = x[i] * 10.0f;
        v->swiglu(n, g, y, o1);
        ref->swiglu(n, g, y, o2);
        for (int i = 0; i < n; i++) bad += !close_rel(o1[i], o2[i], 1e-5);
        float e1[N], e2[N];
        for (int i = 0; i < n; i++) e1[i] = e2[i] = x[i] * 40.0f - 20.0f;
        e1[0] = e2[0] = -INFINITY;
        v->exp_f32(n, e1);
        ref->exp_f32(n, e2);
        for (int i = 0; i < n; i++) bad += !(fabsf(e1[i] - e2[i]) <= 1e-5f * (1.0f + e2[i]));
        CHECKF(bad == 0, "%s element-wise ops n=%d: %d mismatches", v->isa, n, bad);
    }
    /* attention tiles */
    static float Q[M * D], Kt[D * BT], S1[M * BT], S2[M * BT], V[BT * D], O1[M * D], O2[M * D], alpha[M];
    for (int i = 0; i < M * D; i++) Q[i] = frand(&seed);
    for (int i = 0; i < D * BT; i++) Kt[i] = frand(&seed);
    for (int i = 0; i < BT * D; i++) V[i] = frand(&seed);
    for (int m = 1; m <= M; m += 5) {
        v->attn_qk(m, D, Q, Kt, 0.125f, S1);
        ref->attn_qk(m, D, Q, Kt, 0.125f, S2);
        int bad = 0;
        for (int i = 0; i < m * BT; i++) bad += !close_rel(S1[i], S2[i], 1e-5);
        for (int i = 0; i < m; i++) alpha[i] = 0.5f + 0.1f * (float)i;
        for (int i = 0; i < m * D; i++) O1[i] = O2[i] = frand(&seed);
        for (int i = 0; i < m * BT; i++) S2[i] = S1[i] = fabsf(S1[i]) * (i % 3 ? 1.0f : 0.0f);
        v->attn_pv(m, D, S1, V, alpha, O1);
        ref->attn_pv(m, D, S2, V, alpha, O2);
        for (int i = 0; i < m * D; i++) bad += !close_rel(O1[i], O2[i], 1e-5);
        CHECKF(bad == 0, "%s attention tiles M=%d: %d mismatches", v->isa, m, bad);
    }
}

int main(void) {
    const lc_vec_ops *ref = lc_vec_named("scalar");
    CHECK(ref != NULL);
    const char *isas[] = {"avx2", "avx512"};
    int tested = 0;
    for (size_t i = 0; i < LC_ARRAY_LEN(isas); i++) {
        const lc_vec_ops *v = lc_vec_named(isas[i]);
        if (!v) {
            printf("%s: not available on this CPU, skipped\n", isas[i]);
            continue;
        }
        check_isa(ref, v);
        tested++;
    }
    printf("vector tables tested against scalar: %d\n", tested);
    return test_done();
}
