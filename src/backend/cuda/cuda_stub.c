/* cuda_stub.c — the CUDA backend's entry points for builds without CUDA (LOCARA_CUDA=OFF or no
 * nvcc): they report that no GPU is available, so the engine falls back to the CPU backend.
 * CMakeLists.txt compiles this file only when the .cu files are not built.
 */
#include "backend/cuda/cuda_backend.h"

int lc_cuda_device_count(void) { return 0; }

size_t lc_cuda_mem_used(void) { return 0; }

lc_status lc_backend_cuda_create(const struct lc_model *model, int il0, int il1, lc_backend **out) {
    (void)model, (void)il0, (void)il1;
    *out = NULL;
    return lc_fail(LC_ERR_UNSUPPORTED, "this build has no CUDA backend (configure with -DLOCARA_CUDA=ON)");
}

void lc_backend_cuda_free(lc_backend *be) { (void)be; }

lc_status lc_backend_cuda_from_host(lc_backend *be, float *dst, const float *src, size_t n) {
    (void)be, (void)dst, (void)src, (void)n;
    return lc_fail(LC_ERR_UNSUPPORTED, "this build has no CUDA backend");
}

lc_status lc_backend_cuda_add_weight(lc_backend *be, const lc_weight *w) {
    (void)be, (void)w;
    return lc_fail(LC_ERR_UNSUPPORTED, "this build has no CUDA backend");
}

size_t lc_backend_cuda_bytes(lc_backend *be) {
    (void)be;
    return 0;
}
