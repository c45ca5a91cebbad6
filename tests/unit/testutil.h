/* testutil.h — the tiny assertion kit every C unit test uses.
 *
 * CHECK(cond) records a failure with file:line and keeps going; test_done() prints
 * "N passed, N failed" and returns the exit code (0, 1, or 77 for skip via test_skip).
 * Also the random weights the backend tests multiply with (test_random_weight).
 */
#ifndef LC_TESTUTIL_H
#define LC_TESTUTIL_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdio.h>

extern int test_passed, test_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            test_passed++;                                                           \
        } else {                                                                     \
            test_failed++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        if (cond) {                                                                  \
            test_passed++;                                                           \
        } else {                                                                     \
            test_failed++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

int test_done(void);
/* Prints why the test is skipped and returns 77 (ctest's SKIP_RETURN_CODE). */
int test_skip(const char *why);
/* $LC_SHARED_DIR/rel if the shared reference folder exists, else NULL (with a message). */
const char *test_shared_path(const char *rel);
/* Path of the default model if provisioned (LOCARA_MODEL or the XDG cache), else NULL. */
const char *test_default_model(void);
/* A weight of type t, n_expert x (rows x cols), from the floats fill(x, n, 1) writes (the test's
 * own random stream), quantized by the reference quantizer (F32 copied, F16/BF16 converted);
 * *f32_out gets the values the kernels should see (the data dequantized again). The caller frees
 * w.data and *f32_out. */
lc_weight test_random_weight(lc_type t, int64_t rows, int64_t cols, int64_t n_expert,
                             void (*fill)(float *x, size_t n, float scale), float **f32_out);
/* A CUDA backend without a model, created while the environment variable var is val (var NULL:
 * as is); the variable is unset again. NULL, with a failed check, when it cannot be made. */
lc_backend *test_cuda_backend_env(const char *var, const char *val);

#endif
