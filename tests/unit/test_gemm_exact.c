/* test_gemm_exact.c — the prompt GEMM in llama.cpp's summation order, for Q8_0 and Q4_0.
 *
 * In every kernel table, the exact gemm of a type (gemm_exact[t], or gemm[t] where the table
 * leaves gemm_exact NULL because its gemm already sums that way) must give every output
 * bit-identical to the scalar vec_dot, which spells ggml's x86 order (8 FMA lanes, sgemm's hsum):
 * any shape, one token or many, ragged row panels, odd block counts, and nothing written past
 * the nr rows of an output column. The order was checked against llamafile_sgemm itself (peer
 * libggml-cpu, a throwaway harness: every output identical); this keeps it from drifting.
 */
#include "testutil.h"

#include "base/base.h"
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / 8388608.0) - 1.0f;
}

/* Rows of floats with a spread of magnitudes (some 4x lanes) and, in mode 1, every third block
 * zero, quantized to t by the reference quantizer; caller lc_free_aligned. */
static uint8_t *random_rows(lc_type t, int rows, int n, int mode) {
    size_t rs = lc_type_row_size(t, n);
    uint8_t *q = lc_malloc_aligned(rs * (size_t)rows + 64);
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < n; i++) {
            float v = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
            x[i] = mode == 1 && (i / 32) % 3 == 1 ? 0.0f : v;
        }
        lc_type_get(t)->from_float(x, q + rs * (size_t)r, n);
    }
    free(x);
    return q;
}

/* One table, one type: the exact gemm against the scalar row dot, output by output. */
static void check_table(const lc_kernels *ref, const lc_kernels *k, lc_type t) {
    lc_gemm_fn g = k->gemm_exact[t] ? k->gemm_exact[t] : k->gemm[t];
    if (!g) return; /* no gemm: the op layer runs the (exact) vec_dot */
    static const int shapes[][3] = {{16, 2, 1024}, {17, 3, 96},  {5, 1, 512},  {33, 7, 2048}, {64, 64, 256},
                                    {1, 5, 160},   {40, 1, 224}, {48, 9, 8192}, {15, 2, 32}};
    int bad = 0, total = 0;
    for (size_t si = 0; si < LC_ARRAY_LEN(shapes); si++) {
        const int nr = shapes[si][0], nc = shapes[si][1], n = shapes[si][2];
        uint8_t *w = random_rows(t, nr, n, (int)si % 2), *x = random_rows(LC_TYPE_Q8_0, nc, n, 0);
        const size_t ws = lc_type_row_size(t, n), xs = lc_type_row_size(LC_TYPE_Q8_0, n), ldo = (size_t)nr + 5;
        float *out = calloc((size_t)nc * ldo, sizeof(float));
        g(n, nr, nc, w, ws, x, xs, out, ldo);
        for (int c = 0; c < nc; c++) {
            for (int r = 0; r < nr; r++) {
                float want;
                ref->vec_dot[t](n, &want, w + ws * (size_t)r, x + xs * (size_t)c);
                total++;
                if (memcmp(&want, &out[(size_t)c * ldo + (size_t)r], sizeof want)) {
                    if (bad++ < 5)
                        fprintf(stderr, "%s %s %dx%dx%d [%d,%d]: %.9g, scalar %.9g\n", k->isa, lc_type_name(t), nr, nc,
                                n, r, c, out[(size_t)c * ldo + (size_t)r], want);
                }
            }
            for (size_t r = (size_t)nr; r < ldo; r++) bad += out[(size_t)c * ldo + r] != 0;
        }
        free(out);
        lc_free_aligned(w);
        lc_free_aligned(x);
    }
    CHECKF(bad == 0, "%s exact gemm %s: %d of %d outputs differ from the scalar order", k->isa, lc_type_name(t), bad,
           total);
}

int main(void) {
    const lc_kernels *ref = lc_kernels_named("scalar");
    CHECK(ref != NULL);
    if (!ref) return test_done();
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    static const lc_type types[] = {LC_TYPE_Q8_0, LC_TYPE_Q4_0};
    int tables = 0;
    for (size_t i = 0; i < LC_ARRAY_LEN(isas); i++) {
        const lc_kernels *k = lc_kernels_named(isas[i]);
        if (!k) continue;
        tables++;
        for (size_t j = 0; j < LC_ARRAY_LEN(types); j++) check_table(ref, k, types[j]);
    }
    /* where the AVX-512 panels sum a block first, the table must offer the exact one */
    const lc_kernels *k512 = lc_kernels_named("avx512");
    if (k512) {
        CHECK(k512->gemm_exact[LC_TYPE_Q8_0] != NULL);
        CHECK(k512->gemm_exact[LC_TYPE_Q4_0] != NULL);
    }
    CHECK(tables >= 1);
    return test_done();
}
