/* batch_bench.c — the CPU backend's matmul of a decode step's few tokens (one per sequence) against
 * the default model's output head shape (49152 x 576, Q8_0 there; TYPE as given): milliseconds for
 * 1, 2, 4, 7 and 8 tokens (best of 7 rounds of 10; the machine is shared, the minimum is what the op
 * can do), at 2 threads. On AVX-512, Q8_0 batches of 2-7 add in the one-token order (rows_q8_0_n),
 * 8 go to the panel. Not a ctest.
 * Build: gcc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc dev/batch_bench.c build/liblocara_core.a \
 *          -lpthread -lm $(pkg-config --libs libmicrohttpd jansson libpcre2-8 libcurl) -o /tmp/batch_bench
 * Run:   /tmp/batch_bench [TYPE]   (q8_0 by default; q4_0, ...)
 */
#include "backend/backend.h"
#include "base/base.h"
#include "quant/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    enum { ROWS = 49152, COLS = 576, MAX_T = 8 };
    const int type = lc_type_from_name(argc > 1 ? argv[1] : "q8_0");
    if (type < 0) {
        fprintf(stderr, "unknown type %s\n", argv[1]);
        return 2;
    }
    lc_backend *be = NULL;
    if (lc_backend_cpu_create(2, &be)) return 1;
    lc_weight w = {0};
    w.type = (lc_type)type, w.rows = ROWS, w.cols = COLS, w.n_expert = 1;
    w.row_bytes = lc_type_row_size(w.type, COLS);
    w.expert_bytes = w.row_bytes * ROWS;
    float *f = malloc(sizeof(float) * ROWS * COLS), *x = malloc(sizeof(float) * MAX_T * COLS);
    float *o = malloc(sizeof(float) * MAX_T * ROWS);
    void *q = malloc(w.expert_bytes);
    if (!f || !x || !o || !q) return 1;
    srand(1);
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) f[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < MAX_T * COLS; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    lc_quantize_rows(w.type, f, q, ROWS, COLS);
    w.data = q;
    const lc_weight *ws[1] = {&w};
    float *outs[1] = {o};
    const int toks[] = {1, 2, 4, 7, 8};
    for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
        double best = 1e9;
        for (int it = 0; it < 3; it++) be->ops->matmul(be, 1, ws, outs, x, toks[k]);
        for (int rep = 0; rep < 7; rep++) {
            const double t0 = now();
            for (int it = 0; it < 10; it++) be->ops->matmul(be, 1, ws, outs, x, toks[k]);
            const double dt = (now() - t0) / 10;
            if (dt < best) best = dt;
        }
        printf("%s %dx%d, %d token(s): %.3f ms\n", lc_type_name(w.type), ROWS, COLS, toks[k], best * 1e3);
    }
    lc_backend_cpu_free(be);
    free(f), free(x), free(o), free(q);
    return 0;
}
