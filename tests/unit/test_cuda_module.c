/* test_cuda_module.c — the CUDA backend as a module: a program starts without the CUDA runtime
 * or cuBLAS mapped (CPU-only runs never pay for them), and the module built beside it loads when
 * named by LOCARA_CUDA_MODULE, resolving the core functions it takes from the program; with no
 * GPU it reports none and refuses to create a backend with an error, not a crash. Skips in
 * builds without CUDA (no module). */
#include "testutil.h"

#include "backend/cuda/cuda_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether a mapping of this process names lib. */
static bool mapped(const char *lib) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, lib) != NULL;
    fclose(f);
    return found;
}

int main(void) {
    const char *bin = getenv("LC_BINARY_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/liblocara_cuda.so", bin ? bin : ".");
    if (access(path, R_OK) != 0) return test_skip("no CUDA module in this build");
    CHECK(!mapped("libcublas") && !mapped("libcudart"));
    if (!getenv("LOCARA_CUDA_MODULE")) setenv("LOCARA_CUDA_MODULE", path, 1);
    const char *st = lc_cuda_module_status();
    CHECKF(strncmp(st, "loaded", 6) == 0, "module: %s", st);
    CHECK(mapped("libcudart"));
    int n = lc_cuda_device_count();
    CHECK(n >= 0);
    if (n == 0) {
        lc_backend *be = NULL;
        CHECK(lc_backend_cuda_create(NULL, 0, 0, &be) == LC_ERR_UNSUPPORTED && be == NULL);
        CHECK(lc_cuda_mem_used() == 0);
    }
    printf("module %s, %d device(s)\n", st, n);
    return test_done();
}
