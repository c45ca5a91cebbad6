/* gemm_bench.c — single-thread throughput of the kernel table's gemm on the tile shape matmul.c
 * hands it in prefill (64 weight rows x 64 tokens, one call per tile), per weight type and ISA
 * table, in GMAC/s. The machine is shared and noisy, so each figure is the best of many trials.
 * Not a ctest. Build (after building locara in build-gemm):
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc bench/engine/gemm_bench.c build-gemm/liblocara_core.a \
 *      -lpthread -lm $(pkg-config --libs libmicrohttpd jansson libpcre2-8 libcurl) -o /tmp/gemm_bench
 * Run: taskset -c 1 /tmp/gemm_bench [n=2048] [rows=64] [tokens=64] [trials=30]
 */
#include "base/base.h"
#include "quant/quant.h"

#include <stdio.h>
#include <stdlib.h>

static void *make_rows(lc_type t, int64_t rows, int n) {
    size_t rs = lc_type_row_size(t, n);
    uint8_t *q = lc_malloc_aligned(rs * (size_t)rows + 64);
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t r = 0; r < rows; r++) {
        for (int i = 0; i < n; i++) x[i] = (float)(((i + 13 * r) * 7919) % 1000) / 500.0f - 0.9f;
        lc_type_get(t)->from_float(x, q + rs * (size_t)r, n);
    }
    free(x);
    return q;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2048, nr = argc > 2 ? atoi(argv[2]) : 64;
    int nc = argc > 3 ? atoi(argv[3]) : 64, trials = argc > 4 ? atoi(argv[4]) : 30;
    static const lc_type types[] = {LC_TYPE_Q4_0, LC_TYPE_Q8_0, LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K};
    static const char *isas[] = {"avx2", "avx512"};
    printf("n=%d rows=%d tokens=%d, best of %d, GMAC/s\n", n, nr, nc, trials);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        lc_type t = types[ti], vt = lc_type_get(t)->vec_dot_type;
        uint8_t *w = make_rows(t, nr, n), *y = make_rows(vt, nc, n);
        size_t ws = lc_type_row_size(t, n), ys = lc_type_row_size(vt, n);
        float *out = malloc(sizeof(float) * (size_t)nr * (size_t)nc);
        printf("%-6s", lc_type_name(t));
        for (size_t ii = 0; ii < 2; ii++) {
            const lc_kernels *k = lc_kernels_named(isas[ii]);
            if (!k || !k->gemm[t]) continue;
            double best = 1e9;
            for (int it = 0; it < trials; it++) {
                double t0 = lc_time_sec();
                k->gemm[t](n, nr, nc, w, ws, y, ys, out, (size_t)nr);
                double el = lc_time_sec() - t0;
                if (el < best) best = el;
            }
            printf("  %s %7.1f", isas[ii], (double)n * nr * nc / best / 1e9);
        }
        printf("\n");
        lc_free_aligned(w);
        lc_free_aligned(y);
        free(out);
    }
    return 0;
}
