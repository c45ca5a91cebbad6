/* test_kernels.c — every SIMD kernel table entry against the scalar reference table, on random
 * data for several lengths: vec_dot and gemm (relative error tiny; bit-identical for the types
 * summed in ggml's order, see exact_order), activation quantizers and dequantizers
 * (bit-identical). ISAs this CPU lacks are skipped (lc_kernels_named gives NULL).
 */
#include "testutil.h"

#include "base/base.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / 8388608.0) - 1.0f;
}

static void fill(float *x, int n, int mode) {
    for (int i = 0; i < n; i++) {
        float v = frand();
        if (mode == 1) v = v * 3.0f + 0.5f;                 /* offset: exercises mins */
        if (mode == 2) v = (float)(int)(v * 8) * 0.5f;     /* ties */
        if (mode == 3 && (i / 32) % 3 == 1) v = 0;          /* zero blocks */
        x[i] = v;
    }
}

static const lc_type wtypes[] = {LC_TYPE_F32, LC_TYPE_F16, LC_TYPE_BF16, LC_TYPE_Q4_0, LC_TYPE_Q4_1,
                                 LC_TYPE_Q5_0, LC_TYPE_Q5_1, LC_TYPE_Q8_0, LC_TYPE_Q2_K, LC_TYPE_Q3_K,
                                 LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K};

/* Where a table sums in ggml's order as the scalar reference spells it (8 FMA lanes per output),
 * results must be bit-identical: Q4_1 / Q5_0 / Q5_1 everywhere; Q8_0's row dot and one-token
 * gemm (decode; the AVX-512 panels for more tokens sum a block exactly in i32 instead); Q4_0 in
 * the AVX2 table (AVX-512 keeps a faster pairwise row dot); the K formats' row dots and
 * one-token gemm in every table (the tiles and panels for more tokens scale per sub-block
 * instead). So a decode token's output matches llama.cpp's, and a Q4_1 token's does not depend
 * on its batch. */
static bool exact_order(lc_type t, int nc, const lc_kernels *k) {
    bool avx512 = !strcmp(k->isa, "avx512");
    if (t == LC_TYPE_Q4_1 || t == LC_TYPE_Q5_0 || t == LC_TYPE_Q5_1) return true;
    if (t >= LC_TYPE_Q2_K && t <= LC_TYPE_Q6_K) return nc == 1;
    if (t == LC_TYPE_Q8_0) return nc == 1 || !avx512;
    if (t == LC_TYPE_Q4_0) return !avx512;
    return false;
}

/* Quantizes nrows rows of n floats to type t with the scalar reference; caller lc_free_aligned. */
static void *quant_rows(lc_type t, const float *x, int nrows, int n) {
    size_t rs = lc_type_row_size(t, n);
    uint8_t *q = lc_malloc_aligned(rs * (size_t)nrows + 64);
    for (int r = 0; r < nrows; r++) lc_type_get(t)->from_float(x + (size_t)r * n, q + rs * r, n);
    return q;
}

/* |a - b| small against the sum of |terms|, which bounds the rounding of any summation order. */
static bool close_to(double a, double b, double mag) { return fabs(a - b) <= 1e-5 * mag + 1e-6; }

static double abs_dot(lc_type t, const void *w, lc_type vt, const void *x, int n) {
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    lc_type_get(t)->to_float(w, a, n);
    lc_type_get(vt)->to_float(x, b, n);
    double s = 0;
    for (int i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    free(a);
    free(b);
    return s;
}

static void test_vec_dot(const lc_kernels *ref, const lc_kernels *k) {
    /* odd block counts (96, 160, 224: 3, 5, 7 blocks; 768: 3 super-blocks) reach the tails */
    static const int lens[] = {256, 512, 1280, 4096, 96, 160, 224, 768};
    for (size_t ti = 0; ti < LC_ARRAY_LEN(wtypes); ti++) {
        lc_type t = wtypes[ti];
        lc_type vt = lc_type_get(t)->vec_dot_type;
        int bad = 0;
        for (size_t li = 0; li < LC_ARRAY_LEN(lens); li++) {
            for (int mode = 0; mode < 4; mode++) {
                int n = lens[li];
                if (n % lc_type_get(t)->block_size) continue;
                float *w = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n);
                fill(w, n, mode);
                fill(x, n, (mode + 1) % 4);
                void *qw = quant_rows(t, w, 1, n), *qx = quant_rows(vt, x, 1, n);
                float a = 0, b = 0;
                ref->vec_dot[t](n, &a, qw, qx);
                k->vec_dot[t](n, &b, qw, qx);
                double mag = abs_dot(t, qw, vt, qx, n);
                if (!close_to(a, b, mag) || (exact_order(t, 1, k) && memcmp(&a, &b, sizeof a))) {
                    bad++;
                    fprintf(stderr, "%s %s n=%d mode=%d: scalar %.9g simd %.9g\n", k->isa,
                            lc_type_name(t), n, mode, a, b);
                }
                lc_free_aligned(qw);
                lc_free_aligned(qx);
                free(w);
                free(x);
            }
        }
        CHECKF(bad == 0, "%s vec_dot %s: %d mismatches", k->isa, lc_type_name(t), bad);
    }
}

static void test_gemm(const lc_kernels *ref, const lc_kernels *k) {
    static const int shapes[][2] = {{1, 1}, {3, 4}, {4, 4}, {5, 9}, {7, 3}, {8, 8}, {2, 13}, {9, 1}, {17, 2}, {14, 1}, {6, 5}, {40, 64}, {16, 8}, {33, 17}};
    int tested = 0;
    for (size_t ti = 0; ti < LC_ARRAY_LEN(wtypes); ti++) {
        lc_type t = wtypes[ti];
        if (!k->gemm[t]) continue;
        tested++;
        lc_type vt = lc_type_get(t)->vec_dot_type;
        int bad = 0;
        for (size_t si = 0; si < LC_ARRAY_LEN(shapes); si++) {
            int nr = shapes[si][0], nc = shapes[si][1], n = si % 2 ? 512 : 1024;
            if (lc_type_get(t)->block_size == 32 && si % 3 == 2) n = 96 + 32 * (int)(si % 4); /* odd block counts */
            if (lc_type_get(t)->block_size == 256 && si % 3 == 2) n = 1280; /* 5 super-blocks: a panel slice and a rest */
            float *w = malloc(sizeof(float) * n * nr), *x = malloc(sizeof(float) * n * nc);
            fill(w, n * nr, (int)si % 4);
            fill(x, n * nc, 0);
            uint8_t *qw = quant_rows(t, w, nr, n), *qx = quant_rows(vt, x, nc, n);
            size_t ws = lc_type_row_size(t, n), xs = lc_type_row_size(vt, n), ldo = (size_t)nr + 3;
            float *out = calloc((size_t)nc * ldo, sizeof(float));
            k->gemm[t](n, nr, nc, qw, ws, qx, xs, out, ldo);
            for (int r = 0; r < nr; r++)
                for (int c = 0; c < nc; c++) {
                    float want;
                    ref->vec_dot[t](n, &want, qw + r * ws, qx + c * xs);
                    double mag = abs_dot(t, qw + r * ws, vt, qx + c * xs, n);
                    float got = out[c * ldo + r];
                    if (!close_to(want, got, mag) || (exact_order(t, nc, k) && memcmp(&want, &got, sizeof got))) {
                        bad++;
                        fprintf(stderr, "%s gemm %s %dx%d [%d,%d]: %.9g vs %.9g\n", k->isa,
                                lc_type_name(t), nr, nc, r, c, want, out[c * ldo + r]);
                    }
                }
            for (int c = 0; c < nc; c++) /* the ldo padding past nr stays untouched */
                for (size_t r = (size_t)nr; r < ldo; r++)
                    if (out[c * ldo + r] != 0) {
                        bad++;
                        fprintf(stderr, "%s gemm %s %dx%d wrote past row %d\n", k->isa, lc_type_name(t), nr, nc, nr);
                    }
            free(out);
            lc_free_aligned(qw);
            lc_free_aligned(qx);
            free(w);
            free(x);
        }
        CHECKF(bad == 0, "%s gemm %s: %d mismatches", k->isa, lc_type_name(t), bad);
    }
    CHECKF(tested >= 6, "%s has gemm for %d types", k->isa, tested);
}

static void test_convert(const lc_kernels *ref, const lc_kernels *k) {
    static const lc_type acts[] = {LC_TYPE_Q8_0, LC_TYPE_Q8_1, LC_TYPE_Q8_K, LC_TYPE_F16, LC_TYPE_BF16};
    const int n = 4096;
    float *x = malloc(sizeof(float) * n);
    for (size_t ai = 0; ai < LC_ARRAY_LEN(acts); ai++) {
        lc_type t = acts[ai];
        CHECKF(k->quantize[t] != NULL, "%s lacks quantizer %s", k->isa, lc_type_name(t));
        if (!k->quantize[t]) continue;
        size_t rs = lc_type_row_size(t, n);
        uint8_t *a = calloc(1, rs), *b = calloc(1, rs);
        int bad = 0;
        for (int mode = 0; mode < 4; mode++) {
            fill(x, n, mode);
            if (mode == 1) x[300] = -7.0f, x[301] = 7.0f; /* equal magnitudes, opposite signs */
            ref->quantize[t](x, a, n);
            k->quantize[t](x, b, n);
            if (memcmp(a, b, rs)) bad++;
        }
        CHECKF(bad == 0, "%s quantize %s differs from scalar in %d of 4 inputs", k->isa, lc_type_name(t), bad);
        free(a);
        free(b);
    }
    for (int t = 0; t < LC_TYPE_COUNT; t++) {
        if (!k->to_float[t] || k->to_float[t] == ref->to_float[t]) continue;
        fill(x, n, 0);
        void *q = quant_rows((lc_type)t, x, 1, n);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        ref->to_float[t](q, a, n);
        k->to_float[t](q, b, n);
        CHECKF(memcmp(a, b, sizeof(float) * n) == 0, "%s to_float %s differs", k->isa, lc_type_name((lc_type)t));
        free(a);
        free(b);
        lc_free_aligned(q);
    }
    free(x);
}

int main(void) {
    const lc_kernels *ref = lc_kernels_named("scalar");
    CHECK(ref != NULL && !strcmp(ref->isa, "scalar"));
    CHECK(lc_kernels_named("nope") == NULL);
    const lc_kernels *best = lc_kernels_best();
    CHECK(best != NULL);
    printf("best kernels: %s\n", best->isa);
    for (size_t ti = 0; ti < LC_ARRAY_LEN(wtypes); ti++)
        CHECKF(ref->vec_dot[wtypes[ti]] != NULL, "scalar vec_dot %s", lc_type_name(wtypes[ti]));
    int ran = 0;
    static const char *const isas[] = {"avx2", "avx512"};
    for (size_t i = 0; i < LC_ARRAY_LEN(isas); i++) {
        const lc_kernels *k = lc_kernels_named(isas[i]);
        if (!k) {
            printf("%s: not supported by this CPU, skipped\n", isas[i]);
            continue;
        }
        CHECK(!strcmp(k->isa, isas[i]));
        CHECK(lc_kernels_named(isas[i]) == k); /* built once */
        test_vec_dot(ref, k);
        test_gemm(ref, k);
        test_convert(ref, k);
        ran++;
    }
    printf("SIMD tables tested: %d\n", ran);
    return test_done();
}
