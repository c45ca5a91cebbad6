/* test_kernels.c — every SIMD kernel table entry against the scalar reference table, on random
 * data for several lengths: vec_dot and gemm (relative error tiny; bit-identical for the types
 * summed in ggml's order, see exact_order), activation quantizers and dequantizers
 * (bit-identical); and every table's K-quant vec_dot against llama.cpp's own bits (ggml_kdots).
 * ISAs this CPU lacks are skipped (lc_kernels_named gives NULL).
 */
#include "testutil.h"
#include "kref_rows.h"

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

/* Whether table k sums type t's floats in ggml's AVX-512 order (lc_gemm_f_ref / lc_dot_f_ref):
 * F32 and F16 in the avx512 table, BF16 where it uses vdpbf16ps. */
static bool float_order(const lc_kernels *k, lc_type t) {
    if (strcmp(k->isa, "avx512")) return false;
    return t == LC_TYPE_F32 || t == LC_TYPE_F16 || (t == LC_TYPE_BF16 && k->bf16_dp);
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
                bool exact = !exact_order(t, 1, k) || !memcmp(&a, &b, sizeof a);
                if (float_order(k, t)) { /* ggml's AVX-512 order, bit for bit */
                    float g = lc_dot_f_ref(t, n, qw, qx);
                    exact = !memcmp(&g, &b, sizeof b);
                }
                if (!close_to(a, b, mag) || !exact) {
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
            fill(x, n * nc, si % 4 == 1); /* some with offset activations: larger S1 partial sums */
            uint8_t *qw = quant_rows(t, w, nr, n), *qx = quant_rows(vt, x, nc, n);
            size_t ws = lc_type_row_size(t, n), xs = lc_type_row_size(vt, n), ldo = (size_t)nr + 3;
            float *out = calloc((size_t)nc * ldo, sizeof(float)), *ref_out = NULL;
            k->gemm[t](n, nr, nc, qw, ws, qx, xs, out, ldo);
            if (ref->gemm[t]) { /* a reference gemm (the K formats' tiled arithmetic): bit for bit */
                ref_out = calloc((size_t)nc * ldo, sizeof(float));
                ref->gemm[t](n, nr, nc, qw, ws, qx, xs, ref_out, ldo);
            } else if (float_order(k, t)) { /* AVX-512's tinyBLAS-order tiles */
                ref_out = calloc((size_t)nc * ldo, sizeof(float));
                lc_gemm_f_ref(t, n, nr, nc, qw, ws, qx, xs, ref_out, ldo);
            }
            for (int r = 0; r < nr; r++)
                for (int c = 0; c < nc; c++) {
                    float want;
                    ref->vec_dot[t](n, &want, qw + r * ws, qx + c * xs);
                    double mag = abs_dot(t, qw + r * ws, vt, qx + c * xs, n);
                    float got = out[c * ldo + r];
                    bool exact = ref_out ? !memcmp(&ref_out[c * ldo + r], &got, sizeof got)
                                         : !exact_order(t, nc, k) || !memcmp(&want, &got, sizeof got);
                    if (!close_to(want, got, mag) || !exact) {
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
            free(ref_out);
            lc_free_aligned(qw);
            lc_free_aligned(qx);
            free(w);
            free(x);
        }
        CHECKF(bad == 0, "%s gemm %s: %d mismatches", k->isa, lc_type_name(t), bad);
    }
    CHECKF(tested >= (k == ref ? 5 : 6), "%s has gemm for %d types", k->isa, tested);
}

/* ==== llama.cpp's own K-quant row dots ==== */

/* The bits ggml_vec_dot_q{2..6}_K_q8_K of llama.cpp's native build (the peer's libggml-cpu, x86
 * with AVX-512) gives on the rows kref_rows makes, quantized with our reference quantizers;
 * regenerated by dev/kdot_ggml_ref.c from the same rows (kref_rows.h). Every
 * table's vec_dot must give exactly these: a decode token's K-quant matmul is llama.cpp's. */
static const uint32_t ggml_kdots[5][KREF_CASES] = {
    /* q2_K */
    {0xc17de8beu, 0x410eaf48u, 0xbfcbb218u, 0x439dae05u,
     0x41ad5663u, 0xc070d90eu, 0x3f96fc10u, 0x429f472eu,
     0xc2003076u, 0xc180d1beu, 0xc0af051fu, 0x42051279u,
     0x40985f6cu, 0xc1b882d9u, 0xc0337ed6u, 0x434c4d52u},
    /* q3_K */
    {0xc18fb97cu, 0x4195ab22u, 0xc01de78eu, 0x438751eau,
     0x4137a423u, 0xc01781f0u, 0x3f9cbdaeu, 0x4278d7b4u,
     0xc1b98fdau, 0xc08152a0u, 0xc0c66808u, 0x41de7722u,
     0x41014d04u, 0xc1d5495cu, 0xc00a29a5u, 0x43162b3du},
    /* q4_K */
    {0xc185c18au, 0x41721e93u, 0xc01190b2u, 0x43883d82u,
     0x416cc8b6u, 0xbfd03f60u, 0x3fa3ea88u, 0x429f5670u,
     0xc1c11047u, 0xc15670acu, 0xc0c3bdc1u, 0x41d5cbc0u,
     0x40ccc08cu, 0xc193946au, 0xc00f612au, 0x434a99cbu},
    /* q5_K */
    {0xc187fc36u, 0x41743565u, 0xc00d4547u, 0x438a2c2bu,
     0x41665418u, 0xbff9e7a0u, 0x3f9e75c8u, 0x42948a78u,
     0xc1cafd34u, 0xc12f3654u, 0xc0c22a1eu, 0x41e3e5f8u,
     0x409f2fd3u, 0xc19f59b6u, 0xc0118247u, 0x43449607u},
    /* q6_K */
    {0xc1865704u, 0x4174c7fcu, 0xc0095120u, 0x437d66beu,
     0x4156e106u, 0xbfb7d640u, 0x3fa1e7f8u, 0x4296fbdeu,
     0xc1c692d8u, 0xc11dca52u, 0xc0c3bf0bu, 0x41defedcu,
     0x40b220b8u, 0xc19c7030u, 0xc01416f1u, 0x4342e528u},
};

static void test_ggml_k_dots(const lc_kernels *k) {
    static const lc_type types[5] = {LC_TYPE_Q2_K, LC_TYPE_Q3_K, LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K};
    float *w = malloc(sizeof(float) * 4096), *a = malloc(sizeof(float) * 4096);
    uint8_t *qw = lc_malloc_aligned(lc_type_row_size(LC_TYPE_Q6_K, 4096) + 64);
    uint8_t *qa = lc_malloc_aligned(lc_type_row_size(LC_TYPE_Q8_K, 4096) + 64);
    for (int ti = 0; ti < 5; ti++) {
        int bad = 0;
        for (int c = 0; c < KREF_CASES; c++) {
            kref_rows(c, w, a);
            lc_type_get(types[ti])->from_float(w, qw, kref_len[c]);
            lc_type_get(LC_TYPE_Q8_K)->from_float(a, qa, kref_len[c]);
            float got;
            uint32_t bits;
            k->vec_dot[types[ti]](kref_len[c], &got, qw, qa);
            memcpy(&bits, &got, 4);
            if (bits != ggml_kdots[ti][c]) {
                bad++;
                float want;
                memcpy(&want, &ggml_kdots[ti][c], 4);
                fprintf(stderr, "%s vec_dot %s n=%d: %.9g, llama.cpp %.9g\n", k->isa, lc_type_name(types[ti]),
                        kref_len[c], got, want);
            }
        }
        CHECKF(bad == 0, "%s vec_dot %s: %d of %d rows differ from llama.cpp's bits", k->isa,
               lc_type_name(types[ti]), bad, KREF_CASES);
    }
    lc_free_aligned(qw);
    lc_free_aligned(qa);
    free(w);
    free(a);
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
    test_gemm(ref, ref); /* the reference gemms (K formats) against the reference dots */
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
        test_ggml_k_dots(k);
        test_gemm(ref, k);
        test_convert(ref, k);
        ran++;
    }
    printf("SIMD tables tested: %d\n", ran);
    test_ggml_k_dots(ref); /* the scalar reference too */
    return test_done();
}
