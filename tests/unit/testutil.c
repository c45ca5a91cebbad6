/* testutil.c — counters and helpers behind testutil.h. */
#include "testutil.h"

#include "backend/cuda/cuda_backend.h"
#include "base/base.h"
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int test_passed, test_failed;

int test_done(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

int test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    return 77;
}

const char *test_shared_path(const char *rel) {
    static char buf[4096];
    const char *dir = getenv("LC_SHARED_DIR");
    if (!dir) dir = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    if (access(buf, R_OK) != 0) {
        fprintf(stderr, "shared reference data missing: %s (LC_SHARED_DIR=%s)\n", buf, dir);
        return NULL;
    }
    return buf;
}

const char *test_default_model(void) {
    static char buf[4096];
    const char *m = getenv("LOCARA_MODEL");
    if (m && access(m, R_OK) == 0) return m;
    lc_default_model_path(buf, sizeof buf);
    if (access(buf, R_OK) == 0) return buf;
    fprintf(stderr, "default model not provisioned (%s); run scripts/fetch-model.sh\n", buf);
    return NULL;
}

lc_weight test_random_weight(lc_type t, int64_t rows, int64_t cols, int64_t n_expert,
                             void (*fill)(float *x, size_t n, float scale), float **f32_out) {
    lc_weight w = {0};
    w.type = t;
    w.rows = rows;
    w.cols = cols;
    w.n_expert = n_expert;
    w.row_bytes = lc_type_row_size(t, cols);
    w.expert_bytes = w.row_bytes * (size_t)rows;
    size_t n = (size_t)rows * cols * n_expert;
    float *f = malloc(n * sizeof(float));
    fill(f, n, 1.0f);
    void *q = malloc(w.expert_bytes * (size_t)n_expert);
    if (t == LC_TYPE_F32) memcpy(q, f, n * 4);
    else if (lc_type_get(t)->block_size > 1 && t != LC_TYPE_F16 && t != LC_TYPE_BF16) lc_quantize_rows(t, f, q, rows * n_expert, cols);
    else lc_type_get(t)->from_float(f, q, (int64_t)n);
    lc_type_get(t)->to_float(q, f, (int64_t)n);
    w.data = q;
    *f32_out = f;
    return w;
}

lc_backend *test_cuda_backend_env(const char *var, const char *val) {
    if (var) setenv(var, val, 1);
    lc_backend *be = NULL;
    lc_status st = lc_backend_cuda_create(NULL, 0, 0, &be);
    if (var) unsetenv(var);
    CHECKF(st == LC_OK, "CUDA backend with %s=%s: %s", var ? var : "(defaults)", var ? val : "", lc_last_error());
    return st == LC_OK ? be : NULL;
}
