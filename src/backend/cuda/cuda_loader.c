/* cuda_loader.c — the CUDA backend's entry points as the core sees them.
 *
 * The backend itself is a module, liblocara_cuda.so (the .cu files, built where nvcc is found),
 * opened with dlopen the first time anything asks for a GPU, and only when an NVIDIA device node
 * exists: a CPU-only run never maps the CUDA runtime and cuBLAS (about 160 MB of resident pages).
 * Without the module (a build without CUDA, or none found) every entry point says that no GPU is
 * available and the engine runs on the CPU. The module is taken from $LOCARA_CUDA_MODULE (then
 * loaded even without a device node: tests check the module links), else from beside the
 * executable. The module resolves the core's functions (errors, allocator, quant
 * tables) from the executable, which exports them (CMakeLists.txt).
 */
#include "backend/cuda/cuda_backend.h"
#include "model/model.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cuda_api {
    int (*device_count)(void);
    size_t (*mem_used)(void);
    lc_status (*create)(const struct lc_model *model, int il0, int il1, lc_backend **out);
    void (*free)(lc_backend *be);
    lc_status (*from_host)(lc_backend *be, float *dst, const float *src, size_t n);
    lc_status (*add_weight)(lc_backend *be, const lc_weight *w);
    size_t (*bytes)(lc_backend *be);
    lc_status (*graph_stats)(lc_backend *be, lc_cuda_graph_stats *out); /* optional */
    lc_status (*route_ids)(lc_backend *be, int32_t *ids, size_t n);       /* optional */
} cuda_api;

/* The core functions the module calls (nm -D --undefined-only liblocara_cuda.so): referenced
 * here so that every program that can load the module links them, and exports them. */
__attribute__((used)) static void *const g_module_needs[] = {
    (void *)lc_malloc, (void *)lc_calloc, (void *)lc_realloc, (void *)lc_free, (void *)lc_grow,
    (void *)lc_fail, (void *)lc_fail_wrap, (void *)lc_type_name, (void *)lc_type_row_size, (void *)lc_log,
    (void *)lc_model_stage_weights,
};

/* The module is process-wide and opened once (pthread_once); never written after. */
static cuda_api g_api;
static char g_why[512] = "no CUDA module loaded";
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Where the module should be: $LOCARA_CUDA_MODULE, else beside /proc/self/exe. */
static bool module_path(char *out, size_t cap) {
    const char *env = getenv("LOCARA_CUDA_MODULE");
    if (env && *env) return snprintf(out, cap, "%s", env) < (int)cap;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0;
    return snprintf(out, cap, "%s/liblocara_cuda.so", exe) < (int)cap;
}

static void open_module(void) {
    const char *env = getenv("LOCARA_CUDA_MODULE"); /* named explicitly: loaded even without a device */
    if (!(env && *env) && access("/dev/nvidiactl", F_OK) != 0 && access("/dev/nvidia0", F_OK) != 0) {
        snprintf(g_why, sizeof g_why, "no NVIDIA device");
        return;
    }
    char path[PATH_MAX];
    if (!module_path(path, sizeof path)) return;
    if (access(path, R_OK) != 0) {
        snprintf(g_why, sizeof g_why, "no CUDA backend module at %.300s (a build without CUDA?)", path);
        return;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_why, sizeof g_why, "cannot load the CUDA backend: %.400s", dlerror());
        return;
    }
    cuda_api a;
    *(void **)&a.device_count = dlsym(h, "lc_cuda_device_count");
    *(void **)&a.mem_used = dlsym(h, "lc_cuda_mem_used");
    *(void **)&a.create = dlsym(h, "lc_backend_cuda_create");
    *(void **)&a.free = dlsym(h, "lc_backend_cuda_free");
    *(void **)&a.from_host = dlsym(h, "lc_backend_cuda_from_host");
    *(void **)&a.add_weight = dlsym(h, "lc_backend_cuda_add_weight");
    *(void **)&a.bytes = dlsym(h, "lc_backend_cuda_bytes");
    *(void **)&a.graph_stats = dlsym(h, "lc_backend_cuda_graph_stats");
    *(void **)&a.route_ids = dlsym(h, "lc_backend_cuda_route_ids");
    if (!a.device_count || !a.mem_used || !a.create || !a.free || !a.from_host || !a.add_weight || !a.bytes) {
        snprintf(g_why, sizeof g_why, "%.300s lacks the backend's entry points", path);
        dlclose(h);
        return;
    }
    g_api = a; /* the handle stays open for the life of the process */
    snprintf(g_why, sizeof g_why, "loaded %.300s", path);
}

static const cuda_api *api(void) {
    pthread_once(&g_once, open_module);
    return g_api.create ? &g_api : NULL;
}

const char *lc_cuda_module_status(void) {
    api();
    return g_why;
}

int lc_cuda_device_count(void) { return api() ? g_api.device_count() : 0; }

size_t lc_cuda_mem_used(void) { return api() ? g_api.mem_used() : 0; }

lc_status lc_backend_cuda_create(const struct lc_model *model, int il0, int il1, lc_backend **out) {
    *out = NULL;
    if (!api()) return lc_fail(LC_ERR_UNSUPPORTED, "no CUDA backend: %s", g_why);
    return g_api.create(model, il0, il1, out);
}

void lc_backend_cuda_free(lc_backend *be) {
    if (be && api()) g_api.free(be);
}

lc_status lc_backend_cuda_from_host(lc_backend *be, float *dst, const float *src, size_t n) {
    if (!api()) return lc_fail(LC_ERR_UNSUPPORTED, "no CUDA backend: %s", g_why);
    return g_api.from_host(be, dst, src, n);
}

lc_status lc_backend_cuda_add_weight(lc_backend *be, const lc_weight *w) {
    if (!api()) return lc_fail(LC_ERR_UNSUPPORTED, "no CUDA backend: %s", g_why);
    return g_api.add_weight(be, w);
}

size_t lc_backend_cuda_bytes(lc_backend *be) { return api() ? g_api.bytes(be) : 0; }

lc_status lc_backend_cuda_graph_stats(lc_backend *be, lc_cuda_graph_stats *out) {
    memset(out, 0, sizeof *out);
    if (!api() || !g_api.graph_stats) return lc_fail(LC_ERR_UNSUPPORTED, "no CUDA graph counters: %s", g_why);
    return g_api.graph_stats(be, out);
}

lc_status lc_backend_cuda_route_ids(lc_backend *be, int32_t *ids, size_t n) {
    if (!api() || !g_api.route_ids) return lc_fail(LC_ERR_UNSUPPORTED, "no CUDA routing ids: %s", g_why);
    return g_api.route_ids(be, ids, n);
}
