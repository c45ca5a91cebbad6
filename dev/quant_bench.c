/* quant_bench.c — single-thread kernel throughput: vec_dot weight streaming (GB/s of weights,
 * L2-resident and out of cache) and gemm vs vec_dot for a prompt-sized batch. Not a ctest.
 * Build: gcc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc dev/quant_bench.c build-quant/liblocara_core.a \
 *          -lpthread -lm $(pkg-config --libs libmicrohttpd jansson libpcre2-8 libcurl) -o /tmp/quant_bench
 * Run:   /tmp/quant_bench [isa]
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
    for (int i = 0; i < n; i++) x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int64_t r = 0; r < rows; r++) lc_type_get(t)->from_float(x, q + rs * r, n);
    free(x);
    return q;
}

/* GB/s of weight bytes streamed by vec_dot over `rows` rows, repeated until ~0.3 s passed. */
static double stream(const lc_kernels *k, lc_type t, int64_t rows, int n) {
    lc_type vt = lc_type_get(t)->vec_dot_type;
    uint8_t *w = make_rows(t, rows, n), *y = make_rows(vt, 1, n);
    size_t rs = lc_type_row_size(t, n);
    float s, sink = 0;
    double t0 = lc_time_sec(), el;
    int64_t reps = 0;
    do {
        for (int64_t r = 0; r < rows; r++) { k->vec_dot[t](n, &s, w + r * rs, y); sink += s; }
        reps++;
    } while ((el = lc_time_sec() - t0) < 0.3);
    lc_free_aligned(w);
    lc_free_aligned(y);
    if (sink == 12345.678f) puts("");
    return (double)rs * rows * reps / el / 1e9;
}

/* Multiply-accumulates per second (G) for an nr x nc product of length n: gemm vs vec_dot. */
static void gemm_vs_dot(const lc_kernels *k, lc_type t, int nr, int nc, int n) {
    lc_type vt = lc_type_get(t)->vec_dot_type;
    uint8_t *w = make_rows(t, nr, n), *y = make_rows(vt, nc, n);
    size_t ws = lc_type_row_size(t, n), ys = lc_type_row_size(vt, n);
    float *out = malloc(sizeof(float) * nr * nc);
    double t0 = lc_time_sec();
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) k->vec_dot[t](n, &out[c * nr + r], w + r * ws, y + c * ys);
    double tdot = lc_time_sec() - t0, tg = 0;
    if (k->gemm[t]) {
        t0 = lc_time_sec();
        k->gemm[t](n, nr, nc, w, ws, y, ys, out, nr);
        tg = lc_time_sec() - t0;
    }
    double macs = (double)nr * nc * n / 1e9;
    printf("  %-5s %dx%dx%d: vec_dot %6.1f GMAC/s, gemm %6.1f GMAC/s\n", lc_type_name(t), nr, nc, n,
           macs / tdot, tg > 0 ? macs / tg : 0.0);
    free(out);
    lc_free_aligned(w);
    lc_free_aligned(y);
}

int main(int argc, char **argv) {
    const lc_kernels *k = argc > 1 ? lc_kernels_named(argv[1]) : lc_kernels_best();
    if (!k) { fprintf(stderr, "ISA not available\n"); return 1; }
    printf("kernels: %s\n", k->isa);
    static const lc_type types[] = {LC_TYPE_Q4_0, LC_TYPE_Q4_1, LC_TYPE_Q8_0, LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K};
    const int n = 4096;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        lc_type t = types[i];
        int64_t l2rows = (256 << 10) / (int64_t)lc_type_row_size(t, n);   /* ~256 KiB */
        int64_t bigrows = (512 << 20) / (int64_t)lc_type_row_size(t, n);  /* ~512 MiB */
        printf("%-5s vec_dot: %6.1f GB/s in L2, %6.1f GB/s from memory\n", lc_type_name(t),
               stream(k, t, l2rows, n), stream(k, t, bigrows, n));
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) gemm_vs_dot(k, types[i], 512, 64, n);
    return 0;
}
