/* quant_bench.c — single-thread kernel throughput: vec_dot weight streaming (GB/s of weights from
 * L2, and optionally from memory), the decode path matmul.c really takes (gemm with one token),
 * and gemm vs vec_dot (and gemm_exact, llama.cpp's summation order, where the table has one) for
 * prompt-sized tiles. Not a ctest.
 * The machine this grew on is shared and noisy, so each figure is the MINIMUM time over many short
 * trials (a clean trial is what the kernel can do); pass a trial count of 1-3 to run it under
 * `valgrind --tool=callgrind` and read instructions per block instead (AVX2/scalar only: valgrind
 * has no AVX-512).
 * Build: gcc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc dev/quant_bench.c build-perf/liblocara_core.a \
 *          -lpthread -lm $(pkg-config --libs libmicrohttpd jansson libpcre2-8 libcurl) -o /tmp/quant_bench
 * Run:   taskset -c 1 /tmp/quant_bench [isa] [trials] [types,...|all] [mem]
 */
#include "base/base.h"
#include "quant/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *make_rows(lc_type t, int64_t rows, int n) {
    size_t rs = lc_type_row_size(t, n);
    uint8_t *q = lc_malloc_aligned(rs * rows);
    float *x = malloc(sizeof(float) * n);
    for (int64_t r = 0; r < rows; r++) {
        for (int i = 0; i < n; i++) x[i] = (float)(((i + 13 * r) * 7919) % 1000) / 500.0f - 0.9f;
        lc_type_get(t)->from_float(x, q + rs * r, n);
    }
    free(x);
    return q;
}

/* Best-of-`trials` GB/s of weight bytes streamed over `rows` rows of length n, one token:
 * through vec_dot (use_gemm 0) or through gemm with nc = 1 (use_gemm 1), as matmul.c decodes. */
static double stream(const lc_kernels *k, lc_type t, int64_t rows, int n, int trials, int use_gemm) {
    lc_type vt = lc_type_get(t)->vec_dot_type;
    uint8_t *w = make_rows(t, rows, n), *y = make_rows(vt, 1, n);
    size_t rs = lc_type_row_size(t, n);
    float *out = malloc(sizeof(float) * rows), sink = 0;
    double best = 1e9;
    for (int it = 0; it < trials; it++) {
        double t0 = lc_time_sec();
        if (use_gemm) k->gemm[t](n, (int)rows, 1, w, rs, y, lc_type_row_size(vt, n), out, (size_t)rows);
        else
            for (int64_t r = 0; r < rows; r++) k->vec_dot[t](n, &out[r], w + r * rs, y);
        double el = lc_time_sec() - t0;
        if (el < best) best = el;
        sink += out[rows / 2];
    }
    lc_free_aligned(w);
    lc_free_aligned(y);
    free(out);
    if (sink == 12345.678f) puts("");
    return (double)rs * rows / best / 1e9;
}

/* Best-of GMAC/s for an nr x nc product of length n: vec_dot loop vs gemm. */
static void gemm_vs_dot(const lc_kernels *k, lc_type t, int nr, int nc, int n, int trials) {
    lc_type vt = lc_type_get(t)->vec_dot_type;
    uint8_t *w = make_rows(t, nr, n), *y = make_rows(vt, nc, n);
    size_t ws = lc_type_row_size(t, n), ys = lc_type_row_size(vt, n);
    float *out = malloc(sizeof(float) * nr * nc);
    double tdot = 1e9, tg = 1e9, tx = 1e9;
    for (int it = 0; it < trials; it++) {
        double t0 = lc_time_sec();
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < nr; r++) k->vec_dot[t](n, &out[c * nr + r], w + r * ws, y + c * ys);
        double el = lc_time_sec() - t0;
        if (el < tdot) tdot = el;
        if (k->gemm[t]) {
            t0 = lc_time_sec();
            k->gemm[t](n, nr, nc, w, ws, y, ys, out, nr);
            el = lc_time_sec() - t0;
            if (el < tg) tg = el;
        }
        if (k->gemm_exact[t]) {
            t0 = lc_time_sec();
            k->gemm_exact[t](n, nr, nc, w, ws, y, ys, out, nr);
            el = lc_time_sec() - t0;
            if (el < tx) tx = el;
        }
    }
    double macs = (double)nr * nc * n / 1e9;
    printf("  %-5s %dx%dx%d: vec_dot %6.1f GMAC/s, gemm %6.1f GMAC/s", lc_type_name(t), nr, nc, n,
           macs / tdot, k->gemm[t] ? macs / tg : 0.0);
    if (k->gemm_exact[t]) printf(", gemm_exact %6.1f GMAC/s (%.2fx gemm's time)", macs / tx, tx / tg);
    printf("\n");
    free(out);
    lc_free_aligned(w);
    lc_free_aligned(y);
}

int main(int argc, char **argv) {
    const lc_kernels *k = argc > 1 && strcmp(argv[1], "best") ? lc_kernels_named(argv[1]) : lc_kernels_best();
    if (!k) { fprintf(stderr, "ISA not available\n"); return 1; }
    int trials = argc > 2 ? atoi(argv[2]) : 300;
    if (trials < 1) trials = 1;
    const char *sel = argc > 3 ? argv[3] : "all";
    int mem = argc > 4 && !strcmp(argv[4], "mem");
    printf("kernels: %s, best of %d trials\n", k->isa, trials);
    static const lc_type types[] = {LC_TYPE_Q4_0, LC_TYPE_Q4_1, LC_TYPE_Q8_0, LC_TYPE_Q4_K,
                                    LC_TYPE_Q5_K, LC_TYPE_Q6_K, LC_TYPE_Q3_K, LC_TYPE_Q2_K};
    const int n = 4096;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        lc_type t = types[i];
        if (strcmp(sel, "all") && !strstr(sel, lc_type_name(t))) continue;
        int64_t l2rows = (256 << 10) / (int64_t)lc_type_row_size(t, n); /* ~256 KiB */
        printf("%-5s vec_dot %6.1f GB/s in L2", lc_type_name(t), stream(k, t, l2rows, n, trials, 0));
        if (k->gemm[t]) printf(", gemm(nc=1) %6.1f GB/s", stream(k, t, l2rows, n, trials, 1));
        if (mem) {
            int64_t bigrows = (256 << 20) / (int64_t)lc_type_row_size(t, n); /* ~256 MiB */
            printf(", %6.1f GB/s from memory", stream(k, t, bigrows, n, trials < 5 ? trials : 5, 0));
        }
        printf("\n");
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(sel, "all") && !strstr(sel, lc_type_name(types[i]))) continue;
        gemm_vs_dot(k, types[i], 128, 64, n, trials < 40 ? trials : 40);
        gemm_vs_dot(k, types[i], 64, 64, 2048, trials < 40 ? trials : 40); /* a 1B prompt chunk (matmul.c) */
    }
    return 0;
}
