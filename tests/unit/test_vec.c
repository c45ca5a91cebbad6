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
    enum { N = 300, BT = LC_ATTN_BT };
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = frand(&seed), y[i] = frand(&seed), (void)frand(&seed); /* same data as before */
    const int lens[] = {1, 7, 8, 16, 33, 64, 300};
    for (size_t li = 0; li < LC_ARRAY_LEN(lens); li++) {
        int n = lens[li];
        CHECKF(close_rel(v->sumsq(n, x), ref->sumsq(n, x), 1e-9), "%s sumsq n=%d", v->isa, n);
        int bad = 0;
        float g[N], o1[N], o2[N];
        for (int i = 0; i < n; i++) g[i] = x[i] * 10.0f;
        v->swiglu(n, g, y, o1);
        ref->swiglu(n, g, y, o2);
        for (int i = 0; i < n; i++) bad += !close_rel(o1[i], o2[i], 1e-5);
        CHECKF(bad == 0, "%s element-wise ops n=%d: %d mismatches", v->isa, n, bad);
    }
    /* f16 block conversion: 3 rows of D out of rows of stride 200 halves */
    {
        static uint16_t hs[3 * 200];
        static float c1[3 * 128], c2[3 * 128];
        for (int i = 0; i < 3 * 200; i++) hs[i] = lc_f32_to_f16(frand(&seed));
        const int fd[] = {8, 40, 64, 128};
        for (size_t k = 0; k < LC_ARRAY_LEN(fd); k++) {
            memset(c1, 0, sizeof c1), memset(c2, 0, sizeof c2);
            v->f16_rows(3, fd[k], hs + 5, 200, c1);
            ref->f16_rows(3, fd[k], hs + 5, 200, c2);
            CHECKF(!memcmp(c1, c2, sizeof c1), "%s f16_rows D=%d", v->isa, fd[k]);
        }
    }
    /* attention block kernels: qk, the causal online-softmax step, pv, over several row counts
     * (padding columns, register-block tails) and head sizes (64, 128, and 72/40 for masked tails) */
    enum { MMAX = 100, DMAX = 128 };
    static float Qt[DMAX * 112], K[BT * DMAX], V[BT * DMAX], S1[BT * 112], S2[BT * 112];
    static float O1[112 * DMAX], O2[112 * DMAX];
    float mx1[112], mx2[112], sm1[112], sm2[112], al1[112], al2[112];
    int32_t qpos[112];
    const int Ds[] = {64, 128, 72, 40};
    const int Ms[] = {1, 3, 9, 16, 17, 33, 48, 50, 96, MMAX};
    for (size_t di = 0; di < LC_ARRAY_LEN(Ds); di++)
        for (size_t mi = 0; mi < LC_ARRAY_LEN(Ms); mi++) {
            int Dd = Ds[di], m = Ms[mi], mp = (m + 15) / 16 * 16, bad = 0;
            for (int d = 0; d < Dd; d++)
                for (int i = 0; i < mp; i++) Qt[d * mp + i] = i < m ? frand(&seed) * 0.4f : 0.0f;
            for (int i = 0; i < BT * Dd; i++) K[i] = frand(&seed), V[i] = frand(&seed);
            v->attn_qk(mp, Dd, Qt, K, S1);
            ref->attn_qk(mp, Dd, Qt, K, S2);
            for (int i = 0; i < BT * mp; i++) bad += !close_rel(S1[i], S2[i], 1e-5);
            CHECKF(bad == 0, "%s attn_qk M=%d D=%d: %d mismatches", v->isa, m, Dd, bad);
            /* two softmax steps: a first block (mx = -inf) and a later causal diagonal block where
             * some columns see no key, and one with a large jump of the running max */
            for (int step = 0; step < 3; step++) {
                int kpos0 = step == 0 ? 0 : 32, causal = step != 2;
                for (int i = 0; i < mp; i++) {
                    qpos[i] = step == 0 ? 40 : 20 + i % 40; /* step 1: columns with qpos < 32 see nothing */
                    if (step == 0) mx1[i] = -INFINITY, sm1[i] = 0;
                    else mx1[i] = step == 2 ? -30.0f : frand(&seed), sm1[i] = 1.0f + fabsf(frand(&seed));
                    mx2[i] = mx1[i], sm2[i] = sm1[i];
                }
                for (int i = 0; i < BT * mp; i++) S1[i] = S2[i] = frand(&seed) * 4.0f;
                v->attn_softmax(mp, S1, qpos, kpos0, causal, mx1, sm1, al1);
                ref->attn_softmax(mp, S2, qpos, kpos0, causal, mx2, sm2, al2);
                bad = 0;
                for (int i = 0; i < BT * mp; i++) bad += !(fabsf(S1[i] - S2[i]) <= 1e-6f * (1.0f + S2[i]));
                for (int i = 0; i < mp; i++) {
                    bad += !(mx1[i] == mx2[i]);
                    bad += !close_rel(sm1[i], sm2[i], 1e-5) || !(fabsf(al1[i] - al2[i]) <= 1e-6f * (1.0f + al2[i]));
                }
                CHECKF(bad == 0, "%s attn_softmax M=%d step %d: %d mismatches", v->isa, m, step, bad);
            }
            for (int i = 0; i < m * Dd; i++) O1[i] = O2[i] = frand(&seed);
            for (int i = 0; i < mp; i++) al1[i] = 0.5f + 0.01f * (float)i;
            for (int i = 0; i < BT * mp; i++) S2[i] = S1[i] = fabsf(S1[i]) * (i % 3 ? 1.0f : 0.0f);
            v->attn_pv(m, mp, Dd, S1, V, al1, O1);
            ref->attn_pv(m, mp, Dd, S2, V, al1, O2);
            bad = 0;
            for (int i = 0; i < m * Dd; i++) bad += !close_rel(O1[i], O2[i], 1e-5);
            CHECKF(bad == 0, "%s attn_pv M=%d D=%d: %d mismatches", v->isa, m, Dd, bad);
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
