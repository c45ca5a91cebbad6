/* cuda.cu — the CUDA backend: its op table, device memory (scratch, KV pools, the weight arena),
 * CUDA error checking, host-array uploads, and the element-wise ops (RMS norm, RoPE, SwiGLU,
 * adds, gather, MoE routing and combining). Matrix products are in matmul.cu, attention and KV
 * writes in attn.cu.
 *
 * Everything runs on one stream in issue order; only to_host (and grouped prefill experts)
 * waits for the device; decode steps run from CUDA graphs (graph.cu). Void ops that fail record
 * the first error in the backend, and the next matmul returns it, so a CUDA failure surfaces as
 * LC_ERR_DEVICE from lc_decode, never an abort.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/quant_dev.cuh"
extern "C" {
#include "model/model.h"
}

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== Errors ==== */

lc_status lc_cu_check(lc_cuda *c, cudaError_t e, const char *what, const char *file, int line) {
    if (e == cudaSuccess) return LC_OK;
    lc_status st = lc_fail(LC_ERR_DEVICE, "CUDA: %s failed at %s:%d: %s (%s)", what, file, line, cudaGetErrorString(e),
                           cudaGetErrorName(e));
    if (c && !c->err) c->err = st;
    return st;
}

lc_status lc_cu_check_blas(lc_cuda *c, cublasStatus_t e, const char *what, const char *file, int line) {
    if (e == CUBLAS_STATUS_SUCCESS) return LC_OK;
    lc_status st = lc_fail(LC_ERR_DEVICE, "cuBLAS: %s failed at %s:%d: status %d", what, file, line, (int)e);
    if (c && !c->err) c->err = st;
    return st;
}

extern "C" int lc_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

extern "C" size_t lc_cuda_mem_used(void) {
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return total - free_b;
}

/* ==== Memory ==== */

lc_status lc_cu_grow(lc_cuda *c, void **p, size_t *cap, size_t n) {
    if (n <= *cap) return LC_OK;
    lc_cu_flush(c);
    /* no synchronising or allocating inside a recorded step: the step runs again directly */
    if (cu_recording(c)) return lc_cu_graph_break(c, false, "a device buffer must grow");
    n = LC_MAX(n, *cap + *cap / 2);
    void *q = NULL;
    /* the old buffer may still be read by queued work */
    lc_status st = CU(c, cudaStreamSynchronize(c->stream));
    if (st || (st = CU(c, cudaMalloc(&q, n)))) return st;
    cudaFree(*p);
    if (*p == c->xq) c->xq_tag.src = NULL; /* what it held is gone */
    c->bytes += n - *cap;
    *p = q;
    *cap = n;
    return LC_OK;
}

const int32_t *lc_cu_upload(lc_cuda *c, int s, const int32_t *host, size_t n) {
    cu_slot *sl = &c->slot[s];
    if (n == sl->n && n && memcmp(host, sl->shadow, n * 4) == 0) return sl->dev;
    if (n > sl->cap) {
        size_t cap = LC_MAX(n, 2 * sl->cap);
        int32_t *sh = (int32_t *)lc_malloc(cap * 4);
        if (!sh) {
            c->err = LC_ERR_OOM;
            return NULL;
        }
        size_t bytes = sl->cap * 4;
        void *d = sl->dev;
        if (lc_cu_grow(c, &d, &bytes, cap * 4)) {
            lc_free(sh);
            return NULL;
        }
        lc_free(sl->shadow);
        sl->shadow = sh;
        sl->dev = (int32_t *)d;
        sl->cap = cap;
    }
    memcpy(sl->shadow, host, n * 4);
    sl->n = n;
    /* from the shadow (or its copy in the staging area of a recorded step): the caller's array may
     * change before the copy runs */
    lc_status st = lc_cu_copy_in(c, sl->dev, sl->shadow, n * 4);
    if (st) {
        if (!c->err) c->err = st;
        sl->n = 0;
        return NULL;
    }
    return sl->dev;
}

static float *cu_alloc(lc_backend *be, size_t n) {
    lc_cuda *c = cu_of(be);
    void *p = NULL;
    size_t bytes = (n ? n : 1) * sizeof(float);
    if (cu_recording(c)) {
        c->err = lc_cu_graph_break(c, true, "an activation buffer is allocated");
        return NULL;
    }
    if (CU(c, cudaMalloc(&p, bytes))) return NULL;
    if (CU(c, cudaMemsetAsync(p, 0, bytes, c->stream))) {
        cudaFree(p);
        return NULL;
    }
    return (float *)p;
}

static void cu_free(lc_backend *be, float *p) {
    lc_cuda *c = cu_of(be);
    if (!p) return;
    lc_cu_flush(c);
    if (cu_recording(c)) { /* kept: freeing waits for the device */
        c->err = lc_cu_graph_break(c, true, "an activation buffer is freed");
        return;
    }
    CU(c, cudaStreamSynchronize(c->stream));
    cudaFree(p);
}

static void cu_to_host(lc_backend *be, float *dst, const float *src, size_t n) {
    lc_cuda *c = cu_of(be);
    if (!n) return;
    lc_cu_flush(c);
    if (cu_recording(c)) { /* the host needs the values now, before the step has run */
        c->err = lc_cu_graph_break(c, true, "values are copied to the host");
        return;
    }
    if (CU(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, c->stream))) return;
    CU(c, cudaStreamSynchronize(c->stream));
}

/* Page-locked host memory for n floats (to_host's destinations: the logits), counted as engine
 * memory (lc_mem_taken). H100, tg128: 30B-A3B +2.6%, 8B +2.0% over pageable memory, the copy of a
 * 600 KB logits row no longer going through the driver's staging buffers
 * (bench/results/cuda-h100.md, session 11). */
static float *cu_host_alloc(lc_backend *be, size_t n) {
    (void)be;
    void *p = NULL;
    if (n > SIZE_MAX / sizeof(float) || cudaMallocHost(&p, n * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        lc_fail(LC_ERR_OOM, "CUDA backend: cannot page-lock %zu floats of host memory for the logits", n);
        return NULL;
    }
    lc_mem_taken(n * sizeof(float));
    return (float *)p;
}

static void cu_host_free(lc_backend *be, float *p, size_t n) {
    (void)be;
    lc_mem_given_back(n * sizeof(float));
    cudaFreeHost(p);
}

static lc_status cu_kv_alloc(lc_backend *be, lc_kv *kv) {
    lc_cuda *c = cu_of(be);
    if (kv->type != LC_TYPE_F16 && kv->type != LC_TYPE_Q8_0 && kv->type != LC_TYPE_Q4_0)
        return lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: KV cache type %s", lc_type_name(kv->type));
    size_t per_layer = kv->row_bytes * (size_t)kv->block_tokens * (size_t)kv->n_blocks;
    kv->k = (uint8_t **)lc_calloc((size_t)kv->n_layer, sizeof *kv->k);
    kv->v = (uint8_t **)lc_calloc((size_t)kv->n_layer, sizeof *kv->v);
    if (!kv->k || !kv->v) return LC_ERR_OOM;
    for (int il = 0; il < kv->n_layer; il++) {
        lc_status st;
        if ((st = CU(c, cudaMalloc((void **)&kv->k[il], per_layer))) || (st = CU(c, cudaMalloc((void **)&kv->v[il], per_layer))))
            return lc_fail_wrap(st, "allocating the KV cache on the GPU (%zu bytes per layer): ", 2 * per_layer);
        c->bytes += 2 * per_layer;
    }
    return LC_OK;
}

static void cu_kv_free(lc_backend *be, lc_kv *kv) {
    lc_cuda *c = cu_of(be);
    lc_cu_flush(c);
    cudaStreamSynchronize(c->stream);
    for (int il = 0; kv->k && il < kv->n_layer; il++) {
        cudaFree(kv->k[il]);
        cudaFree(kv->v[il]);
    }
    lc_free(kv->k);
    lc_free(kv->v);
    kv->k = kv->v = NULL;
}

static void cu_kv_copy_block(lc_backend *be, lc_kv *kv, int dst, int src, int n_rows) {
    lc_cuda *c = cu_of(be);
    size_t bb = kv->row_bytes * (size_t)kv->block_tokens, n = kv->row_bytes * (size_t)n_rows;
    lc_cu_flush(c);
    if (cu_recording(c)) { /* the engine copies blocks between steps, never inside one */
        c->err = lc_cu_graph_break(c, true, "a KV block is copied");
        return;
    }
    for (int il = 0; il < kv->n_layer; il++) {
        CU(c, cudaMemcpyAsync(kv->k[il] + (size_t)dst * bb, kv->k[il] + (size_t)src * bb, n, cudaMemcpyDeviceToDevice, c->stream));
        CU(c, cudaMemcpyAsync(kv->v[il] + (size_t)dst * bb, kv->v[il] + (size_t)src * bb, n, cudaMemcpyDeviceToDevice, c->stream));
    }
}

/* ==== Weights ==== */

static int wmap_cmp(const void *a, const void *b) {
    const uint8_t *x = ((const cu_wmap *)a)->host, *y = ((const cu_wmap *)b)->host;
    return x < y ? -1 : x > y;
}

const void *lc_cu_weight(lc_cuda *c, const void *p) {
    const uint8_t *h = (const uint8_t *)p;
    int lo = 0, hi = c->n_wmap - 1;
    while (lo <= hi) { /* last entry starting at or before h */
        int mid = (lo + hi) / 2;
        if (c->wmap[mid].host <= h) lo = mid + 1;
        else hi = mid - 1;
    }
    if (hi < 0) return NULL;
    const cu_wmap *m = &c->wmap[hi];
    return h < m->host + m->bytes ? m->dev + (h - m->host) : NULL;
}

/* Copies the weights of layers [il0, il1) (lc_model_stage_weights: with the embeddings when il0
 * is 0 and the output when il1 is the last layer) into one arena. */
static lc_status upload_weights(lc_cuda *c, const lc_model *m, int il0, int il1) {
    const lc_weight **ws = (const lc_weight **)lc_malloc(LC_STAGE_WEIGHTS_MAX(il1 - il0) * sizeof *ws);
    c->wmap = (cu_wmap *)lc_calloc(LC_STAGE_WEIGHTS_MAX(il1 - il0), sizeof *c->wmap);
    if (!ws || !c->wmap) {
        lc_free(ws);
        return LC_ERR_OOM;
    }
    int n = lc_model_stage_weights(m, il0, il1, ws);
    for (int i = 0; i < n; i++) {
        if (!lc_cu_type_ok(ws[i]->type)) {
            lc_status st = lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: no kernels for type %s", lc_type_name(ws[i]->type));
            lc_free(ws);
            return st;
        }
        c->wmap[i] = (cu_wmap){(const uint8_t *)ws[i]->data, lc_weight_bytes(ws[i]), NULL, false};
        if (ws[i]->rows > 1 && ws[i]->cols > 1 && !lc_cu_cpu_type(ws[i]->type)) c->cpu_model = false;
    }
    lc_free(ws);
    qsort(c->wmap, (size_t)n, sizeof *c->wmap, wmap_cmp); /* lc_cu_weight searches by host address */
    c->n_wmap = n;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (c->wmap[i].bytes + 255) / 256 * 256;
    lc_status st = CU(c, cudaMalloc((void **)&c->arena, total ? total : 256));
    if (st) return lc_fail_wrap(st, "allocating %zu bytes of weights on the GPU: ", total);
    c->arena_bytes = total;
    c->bytes += total;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        c->wmap[i].dev = c->arena + at;
        if ((st = CU(c, cudaMemcpy(c->wmap[i].dev, c->wmap[i].host, c->wmap[i].bytes, cudaMemcpyHostToDevice)))) return st;
        at += (c->wmap[i].bytes + 255) / 256 * 256;
    }
    return LC_OK;
}

extern "C" lc_status lc_backend_cuda_add_weight(lc_backend *be, const lc_weight *w) {
    lc_cuda *c = cu_of(be);
    if (!lc_cu_type_ok(w->type)) return lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: no kernels for type %s", lc_type_name(w->type));
    if (lc_cu_weight(c, w->data)) return LC_OK;
    cu_wmap *m = (cu_wmap *)lc_realloc(c->wmap, (size_t)(c->n_wmap + 1) * sizeof *m);
    if (!m) return LC_ERR_OOM;
    c->wmap = m;
    cu_wmap e = {(const uint8_t *)w->data, lc_weight_bytes(w), NULL, true};
    lc_status st;
    if ((st = CU(c, cudaMalloc((void **)&e.dev, e.bytes))) ||
        (st = CU(c, cudaMemcpy(e.dev, e.host, e.bytes, cudaMemcpyHostToDevice))))
        return st;
    c->bytes += e.bytes;
    m[c->n_wmap++] = e;
    qsort(m, (size_t)c->n_wmap, sizeof *m, wmap_cmp);
    return LC_OK;
}

extern "C" lc_status lc_backend_cuda_from_host(lc_backend *be, float *dst, const float *src, size_t n) {
    lc_cuda *c = cu_of(be);
    lc_cu_flush(c);
    c->xq_tag.src = NULL; /* dst may be activations whose q8 form the scratch holds */
    lc_status st = lc_cu_copy_in(c, dst, src, n * sizeof(float)); /* recording: staged, read when the step runs */
    if (!st && !cu_recording(c)) st = CU(c, cudaStreamSynchronize(c->stream)); /* src is the caller's */
    if (st && !c->err) c->err = st;
    return st;
}

/* A host pointer the forward passes for a weight vector (norm gains, biases): its device copy,
 * or the pointer itself when it is already a device buffer (tests pass backend buffers). */
static const float *dev_vec(lc_cuda *c, const float *p) {
    if (!p) return NULL;
    const void *d = lc_cu_weight(c, p);
    return d ? (const float *)d : p;
}

/* ==== RMS norm ==== */

/* The sum of every thread's v over the block (red: 32 values of shared memory); all threads get it. */
template <typename F>
__device__ __forceinline__ F block_sum(F v, F *red) {
    v = cu_warp_sum(v);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        F s = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : (F)0;
        s = cu_warp_sum(s);
        if (threadIdx.x == 0) red[0] = s;
    }
    __syncthreads();
    return red[0];
}

/* Writes the normed row o and, with q != NULL (n a multiple of 32), its q8 form: a warp's 32
 * consecutive elements are one block. The fallback for rows k_norm_v does not take. */
__device__ __forceinline__ void norm_store(float *o, const float *xr, const float *g, float scale, int n, int8_t *q,
                                           float2 *dq) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = g ? xr[i] * scale * g[i] : xr[i] * scale;
        o[i] = v;
        if (q) cu_q8_block(v, q + (i & ~31), dq + i / 32);
    }
}

/* 1 / sqrt(mean + eps) from the sum of squares in double, as the CPU backend (ggml's rms_norm)
 * computes it: each square a float, added in double, the mean rounded to float. */
__device__ __forceinline__ float norm_scale(double ss, int n, float eps) { return 1.0f / sqrtf((float)(ss / n) + eps); }

/* One block per row: out = x / sqrt(mean(x^2) + eps) * g (and its q8 form in q, dq when given).
 * Rows of any length; k_norm_v is the fast path. */
__global__ void k_rms_norm(float *out, const float *x, const float *g, int n, float eps, int8_t *q, float2 *dq) {
    cu_pdl_entry();
    __shared__ double red[32];
    const float *xr = x + (size_t)blockIdx.x * n;
    double ss = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += (double)(xr[i] * xr[i]);
    const float scale = norm_scale(block_sum(ss, red), n, eps);
    norm_store(out + (size_t)blockIdx.x * n, xr, g, scale, n, q ? q + (size_t)blockIdx.x * n : NULL,
               q ? dq + (size_t)blockIdx.x * (n / 32) : NULL);
}

/* q8 form of 4 consecutive values held by one lane, where 8 neighbouring lanes hold one block of 32
 * (the same arithmetic as cu_q8_block). Every lane of the warp calls it; lanes with ok == false
 * (whole blocks past the row) write nothing. */
__device__ __forceinline__ void q8_store4(float4 v, bool ok, int8_t *q, float2 *dq) {
    float2 ds;
    const char4 c = cu_q8_quad(v, 0xffffffffu, &ds);
    if (!ok) return;
    *(char4 *)q = c;
    if ((threadIdx.x & 7) == 0) *dq = ds;
}

/* RMS norm of rows whose float4s fit V per thread (n % 4 == 0): every load of a row is issued before
 * the reduction and the values stay in registers for the scaling, so a row costs one memory round
 * trip each way (the loop above, one dependent load per step, took 13.7 us for 4096 floats under
 * ncu). Block r norms row r of A, or row r - A.rows of B (the k-norm of a Qwen3 layer runs with
 * its q-norm). With y, the sum x + y is written back to x; out may be y. With q, the q8 form of A's
 * out too (n % 32 == 0, B empty). */
template <int V>
__global__ void k_norm_v(cu_norm_rows A, cu_norm_rows B, int n, float eps, int8_t *q, float2 *dq, bool pre) {
    __shared__ double red[32];
    const bool in_a = (int)blockIdx.x < A.rows;
    const cu_norm_rows &R = in_a ? A : B;
    const size_t row = in_a ? blockIdx.x : blockIdx.x - A.rows;
    const int n4 = n / 4;
    const float4 *g4 = (const float4 *)R.g;
    float4 gv[V]; /* with pre the weights are read before the wait for the predecessor (no kernel writes them) */
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int f = threadIdx.x + k * blockDim.x;
        gv[k] = pre && g4 && f < n4 ? g4[f] : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
    }
    cu_pdl_entry();
    float4 *xr = (float4 *)(R.x + row * n);
    const float4 *yr = R.y ? (const float4 *)(R.y + row * n) : NULL;
    float4 v[V];
    double ss = 0.0;
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int f = threadIdx.x + k * blockDim.x;
        v[k] = f < n4 ? xr[f] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (yr && f < n4) {
            const float4 w = yr[f];
            v[k].x += w.x, v[k].y += w.y, v[k].z += w.z, v[k].w += w.w;
        }
        ss += (double)(v[k].x * v[k].x) + (double)(v[k].y * v[k].y) + (double)(v[k].z * v[k].z) + (double)(v[k].w * v[k].w);
    }
    const float scale = norm_scale(block_sum(ss, red), n, eps);
    float4 *o = (float4 *)(R.out + row * n);
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int f = threadIdx.x + k * blockDim.x;
        const bool ok = f < n4;
        if (yr && ok) xr[f] = v[k];
        float4 r = make_float4(v[k].x * scale, v[k].y * scale, v[k].z * scale, v[k].w * scale);
        if (g4 && ok) {
            const float4 gg = pre ? gv[k] : g4[f];
            r.x *= gg.x, r.y *= gg.y, r.z *= gg.z, r.w *= gg.w;
        }
        if (ok) o[f] = r;
        if (q && (k * (int)blockDim.x < n4))
            q8_store4(r, ok, q + row * n + 4 * f, dq + (row * n + 4 * f) / 32);
    }
}

int8_t *lc_cu_fused_q8(lc_cuda *c, int n_rows, size_t n, float2 **dq) {
    int8_t *q = NULL;
    *dq = NULL;
    if (!c->fuse_q8 || n_rows > CU_GRAPH_MAX_TOK || n % 32 || lc_cu_q8_scratch(c, 0, (size_t)n_rows * n, &q, dq))
        return NULL;
    return q;
}

__global__ void k_add(float *x, const float *y, size_t n);

static cu_norm_rows norm_rows(float *out, float *x, const float *y, const float *g, int rows) {
    cu_norm_rows r;
    memset(&r, 0, sizeof r);
    r.out = out, r.x = x, r.y = y, r.g = g, r.rows = rows;
    return r;
}

/* Whether k_norm_v takes rows of n floats at these addresses (n % 4, 16-byte alignment), and with
 * how many float4s per thread (*v) and threads per row: about c->norm_threads (default 1024). */
static bool norm_v_fits(const lc_cuda *c, const cu_norm_rows *r, int n, bool q8, int *v, int *threads) {
    const int n4 = n / 4, target = c->norm_threads ? c->norm_threads : 1024;
    if (n % 4 || (q8 && n % 32)) return false;
    if (((uintptr_t)r->out | (uintptr_t)r->x | (uintptr_t)r->y | (uintptr_t)r->g) & 15) return false;
    *v = 1;
    while (*v < 8 && (n4 + *v - 1) / *v > target) *v *= 2;
    *threads = ((n4 + *v - 1) / *v + 31) / 32 * 32;
    return *threads <= 1024;
}

/* The plain RMS norm (k_rms_norm) of rows k_norm_v does not take. */
static void norm_loop(lc_cuda *c, float *out, const float *x, const float *g, int n_rows, int n, float eps, int8_t *q,
                      float2 *dq) {
    cu_k(c, k_rms_norm, (unsigned)n_rows, n >= 1024 ? 256 : 128, out, x, g, n, eps, q, dq);
}

/* Launches k_norm_v over A's rows then B's (B.rows may be 0); false when the rows do not suit it. */
static bool norm_v(lc_cuda *c, cu_norm_rows A, cu_norm_rows B, int n, float eps, int8_t *q, float2 *dq) {
    int v, threads;
    if (!norm_v_fits(c, &A, n, q != NULL, &v, &threads) || (B.rows && !norm_v_fits(c, &B, n, false, &v, &threads)))
        return false;
    const unsigned blocks = (unsigned)(A.rows + B.rows);
    const bool pre = (c->preload & 4) != 0;
    switch (v) {
    case 1: cu_k(c, k_norm_v<1>, blocks, threads, A, B, n, eps, q, dq, pre); break;
    case 2: cu_k(c, k_norm_v<2>, blocks, threads, A, B, n, eps, q, dq, pre); break;
    case 4: cu_k(c, k_norm_v<4>, blocks, threads, A, B, n, eps, q, dq, pre); break;
    default: cu_k(c, k_norm_v<8>, blocks, threads, A, B, n, eps, q, dq, pre); break;
    }
    return true;
}

/* RMS norm. The residual add held back by cu_add runs inside it. A norm in place of rows of at
 * most 256 (a head: Qwen3's q-norm) is held back in turn (PEND_NORM), so that the norm after it
 * (the k-norm) runs in the same launch; with c->rope_norm both stay held, for the RoPE of q and k
 * to take in (cu_rope). */
static void cu_rms_norm(lc_backend *be, float *out, const float *x, const float *g, int n_rows, int n, float eps) {
    lc_cuda *c = cu_of(be);
    if (c->err || n_rows <= 0) return;
    cu_pend *pd = &c->pend;
    const float *gd = dev_vec(c, g);
    const cu_norm_rows self = norm_rows(out, (float *)x, NULL, gd, n_rows), none = norm_rows(NULL, NULL, NULL, NULL, 0);
    int v, threads;
    if (pd->kind == PEND_NORM && !pd->norm2.rows && pd->n == (size_t)n && pd->eps == eps && pd->norm.out != x &&
        pd->norm.x != out) {
        if (c->rope_norm && out == x && norm_v_fits(c, &self, n, false, &v, &threads)) {
            pd->norm2 = self; /* both held: the RoPE after them may take them in (cu_rope) */
            c->xq_tag.src = NULL;
            return;
        }
        const cu_norm_rows held = pd->norm; /* the held norm and this one, one launch */
        pd->kind = PEND_NONE;
        if (!norm_v(c, held, self, n, eps, NULL, NULL)) {
            norm_v(c, held, none, n, eps, NULL, NULL); /* fits: it was held */
            if (!norm_v(c, self, none, n, eps, NULL, NULL)) norm_loop(c, out, x, gd, n_rows, n, eps, NULL, NULL);
        }
        CU_LAUNCH(c);
        return;
    }
    if (out == x && n <= 256 && pd->kind != PEND_ADD && norm_v_fits(c, &self, n, false, &v, &threads)) {
        lc_cu_flush(c);
        *pd = (cu_pend){};
        pd->kind = PEND_NORM;
        pd->norm = self;
        pd->n = (size_t)n;
        pd->eps = eps;
        c->xq_tag.src = NULL; /* out changes before any product reads it */
        return;
    }
    float2 *dq;
    int8_t *q = lc_cu_fused_q8(c, n_rows, (size_t)n, &dq);
    if (pd->kind == PEND_ADD && pd->x == x && pd->n == (size_t)n_rows * n) { /* the residual add, fused */
        float *xs = pd->x;
        const float *ys = pd->y;
        pd->kind = PEND_NONE;
        if (!norm_v(c, norm_rows(out, xs, ys, gd, n_rows), none, n, eps, q, dq)) {
            cu_k(c, k_add, (unsigned)(((size_t)n_rows * n + 255) / 256), 256, xs, ys, (size_t)n_rows * n);
            norm_loop(c, out, x, gd, n_rows, n, eps, q, dq);
        }
    } else if (!norm_v(c, self, none, n, eps, q, dq)) {
        norm_loop(c, out, x, gd, n_rows, n, eps, q, dq);
    }
    if (q) cu_q8_set(c, out, (size_t)n_rows * n, q, dq); /* after the launch, which clears it */
    CU_LAUNCH(c);
}

/* ==== RoPE ==== */

/* Where k_rope also stores K and V into an f16 cache (the kv_store that follows RoPE, fused): the
 * batch's slots (pk[T + t]), the cache rows' bytes, the layer's K and V caches, and V (T rows of
 * n_head2 heads). ck == NULL: RoPE only. */
typedef struct cu_rope_store {
    const float *v;
    const int32_t *pk;
    size_t row_bytes;
    uint8_t *ck, *cv;
} cu_rope_store;

/* The per-head RMS norms k_rope applies before rotating (Qwen3's q- and k-norm, held with the
 * RoPE): weights gq (x's heads) and gk (x2's), eps; gq == NULL: none. */
typedef struct cu_rope_norm {
    const float *gq, *gk;
    float eps;
    int pre;  /* the weights and the rotation angles before the wait for the predecessor (no kernel
               * writes them: the positions are uploaded by a copy, a full dependency) */
} cu_rope_norm;

/* One thread per (token, head, pair); the angles are the host's (tab, cu_rope_table) for short
 * batches, else computed here in the CPU's float steps (theta *= scale) with the device's cos / sin.
 * Two tensors of the same tokens in one launch: x (n_head heads) then x2 (n_head2, may be 0).
 * With st.ck (every dimension rotated), x2's rotated pairs also go to the K cache, and one thread
 * per element of V after them copies V to the V cache, each rounded to f16 as k_store_f16 does.
 * With nm.gq (every dimension rotated, head_dim 64 or 128, so a head's pairs are whole warps of
 * one block), each head is first RMS-normed in place of k_norm_v, with the same arithmetic: its
 * values go through shared memory to the head's first warp, lane l sums float4 l's squares and
 * the warp adds them as k_norm_v's one-warp rows do. */
__global__ void k_rope(float *x, float *x2, const int32_t *pos, int n_tok, int n_head, int n_head2, int head_dim,
                       int n_dims, bool neox, float theta_scale, float freq_scale, const float *ff, const float *tab,
                       cu_rope_store st, cu_rope_norm nm) {
    __shared__ __align__(16) float hs[256]; /* the norm: the block's 128 / half heads */
    __shared__ float hscale[4];
    const int half = n_dims / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t n1 = (size_t)n_tok * n_head * half, n2 = (size_t)n_tok * n_head2 * half;
    const bool second = i >= n1; /* the second tensor, or V */
    if (second) i -= n1;
    const bool pair = !second || i < n2; /* a (token, head, pair) thread; whole warps */
    float *xs = second ? x2 : x;
    const int nh = second ? n_head2 : n_head;
    const int p = (int)(i % half);
    const size_t th = i / half;
    const int ia = neox ? p : 2 * p, ib = neox ? p + half : 2 * p + 1;
    float gA = 1.0f, gB = 1.0f, cs = 0.0f, sn = 0.0f;
    auto constants = [&]() { /* the norm weights and the angle's cos and sin */
        if (!pair) return;
        if (nm.gq) {
            const float *g = second ? nm.gk : nm.gq;
            gA = g[ia], gB = g[ib];
        }
        if (tab) { /* the host's cos and sin (cu_rope_table) */
            const float2 a = ((const float2 *)tab)[(th / nh) * half + p];
            cs = a.x, sn = a.y;
            return;
        }
        float theta = (float)pos[th / nh];
        for (int k = 0; k < p; k++) theta *= theta_scale;
        const float a = freq_scale * (theta / (ff ? ff[p] : 1.0f));
        cs = cosf(a), sn = sinf(a);
    };
    if (nm.pre) constants();
    cu_pdl_entry();
    if (!nm.pre) constants();
    float x0 = 0.0f, x1 = 0.0f;
    if (pair) x0 = xs[th * head_dim + ia], x1 = xs[th * head_dim + ib];
    if (nm.gq) { /* uniform over the launch: every thread reaches both barriers */
        const int hl = (int)threadIdx.x / half;
        float *hv = hs + hl * head_dim;
        if (pair) hv[ia] = x0, hv[ib] = x1;
        __syncthreads();
        if (pair && p < 32) { /* the head's first warp */
            const float4 f = 4 * p < head_dim ? *(const float4 *)(hv + 4 * p) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            double ss = (double)(f.x * f.x) + (double)(f.y * f.y) + (double)(f.z * f.z) + (double)(f.w * f.w);
            ss = cu_warp_sum(ss);
            if (p == 0) hscale[hl] = norm_scale(ss, head_dim, nm.eps);
        }
        __syncthreads();
        if (pair) {
            const float sc = hscale[hl];
            x0 = x0 * sc;
            x1 = x1 * sc;
            x0 *= gA;
            x1 *= gB;
        }
    }
    if (!pair) { /* V into its cache */
        i -= n2;
        const int width = n_head2 * head_dim;
        if (!st.ck || i >= (size_t)n_tok * width) return;
        const int t = (int)(i / width), e = (int)(i % width);
        ((__half *)(st.cv + (size_t)st.pk[n_tok + t] * st.row_bytes))[e] = __float2half_rn(st.v[i]);
        return;
    }
    const int t = (int)(th / nh);
    float *v = xs + th * head_dim;
    /* the CPU's rotation (vec.h: ggml's rotate_pairs as GCC contracts it), rounding for rounding */
    const float y0 = fmaf(x0, cs, -__fmul_rn(x1, sn)), y1 = fmaf(x0, sn, __fmul_rn(x1, cs));
    v[ia] = y0;
    v[ib] = y1;
    if (second && st.ck) {
        __half *row = (__half *)(st.ck + (size_t)st.pk[n_tok + t] * st.row_bytes) + (th % nh) * head_dim;
        row[ia] = __float2half_rn(y0);
        row[ib] = __float2half_rn(y1);
    }
}

/* The cos and sin of every rotated pair of a batch of up to CU_ROPE_HOST_TOK tokens, as the CPU
 * backend takes them (lc_rope_angles: glibc's cosf / sinf, which the device's differ from in ~1% of
 * the floats), uploaded as (cos, sin) pairs per token and pair; computed again only when the
 * positions or the RoPE change (the q and k of every layer share them). NULL for longer batches
 * and for factors in a device buffer: the kernel computes its angles. */
static const float *cu_rope_table(lc_cuda *c, const int32_t *pos, int n_tok, const lc_rope *r) {
    const int half = r->n_dims / 2;
    if (n_tok > CU_ROPE_HOST_TOK || half > 512) return NULL;
    if (r->freq_factors && !lc_cu_weight(c, r->freq_factors)) return NULL; /* a device buffer (tests) */
    const size_t n = (size_t)n_tok * half * 2;
    const lc_rope *k = &c->rope_key;
    const bool same = c->rope_n == n_tok && k->n_dims == r->n_dims && k->neox == r->neox && k->freq_base == r->freq_base &&
                      k->freq_scale == r->freq_scale && k->freq_factors == r->freq_factors &&
                      !memcmp(c->rope_pos, pos, (size_t)n_tok * 4);
    if (!same) {
        if (n > c->rope_cap) {
            float *h = (float *)lc_realloc(c->rope_host, n * sizeof(float));
            if (!h) {
                c->err = LC_ERR_OOM;
                return NULL;
            }
            c->rope_host = h;
            c->rope_cap = n;
        }
        float cs[512], sn[512];
        for (int t = 0; t < n_tok; t++) {
            lc_rope_angles(r, pos[t], cs, sn);
            for (int i = 0; i < half; i++) c->rope_host[((size_t)t * half + i) * 2] = cs[i], c->rope_host[((size_t)t * half + i) * 2 + 1] = sn[i];
        }
        memcpy(c->rope_pos, pos, (size_t)n_tok * 4);
        c->rope_key = *r;
        c->rope_n = n_tok;
    }
    return (const float *)lc_cu_upload(c, SLOT_ROPE, (const int32_t *)c->rope_host, n);
}

/* RoPE is held back (PEND_ROPE): the forward ropes q then k with the same positions, and the two
 * are held as one launch, which the kv_store after them joins (lc_cu_rope_store); anything else
 * issues the held one first. */
static void cu_rope(lc_backend *be, float *x, const int32_t *pos, int n_tok, int n_head, int head_dim, const lc_rope *r) {
    lc_cuda *c = cu_of(be);
    if (c->err) return;
    const int32_t *dp = lc_cu_upload(c, SLOT_POS, pos, (size_t)n_tok);
    if (!dp) return;
    size_t n = (size_t)n_tok * n_head * (r->n_dims / 2);
    if (!n) return;
    float theta_scale = powf(r->freq_base, -2.0f / (float)r->n_dims);
    const float *ff = dev_vec(c, r->freq_factors);
    const float *tab = cu_rope_table(c, pos, n_tok, r);
    if (c->err) return;
    cu_pend *pd = &c->pend;
    if (pd->kind == PEND_ROPE && !pd->x2 && pd->pos == dp && pd->n_tok == n_tok && pd->head_dim == head_dim &&
        pd->n_dims == r->n_dims && pd->neox == r->neox && pd->theta_scale == theta_scale &&
        pd->freq_scale == r->freq_scale && pd->ff == ff && pd->tab == tab && pd->x != x &&
        (!pd->norm.rows || (x == pd->norm2.x && pd->norm2.rows == n_tok * n_head))) {
        pd->x2 = x; /* q and k: one launch, still held */
        pd->n_head2 = n_head;
        return;
    }
    /* the q- and k-norm held just before (PEND_NORM with a second norm), of this x's heads in place:
     * they go with the RoPE and run inside its launch when the RoPE of k joins */
    cu_pend held = {};
    if (pd->kind == PEND_NORM && pd->norm2.rows && c->rope_norm && pd->norm.x == x && pd->norm.out == x &&
        pd->norm2.out == pd->norm2.x && pd->norm.g && pd->norm2.g && pd->norm.rows == n_tok * n_head &&
        pd->n == (size_t)head_dim && r->n_dims == head_dim && (head_dim == 64 || head_dim == 128)) {
        held = *pd;
        pd->kind = PEND_NONE;
    }
    lc_cu_flush(c);
    *pd = (cu_pend){};
    pd->norm = held.norm, pd->norm2 = held.norm2, pd->eps = held.eps, pd->n = held.n;
    pd->kind = PEND_ROPE;
    c->xq_tag.src = NULL; /* x changes before any product reads it */
    pd->x = x;
    pd->pos = dp;
    pd->n_tok = n_tok;
    pd->n_head = n_head;
    pd->head_dim = head_dim;
    pd->n_dims = r->n_dims;
    pd->neox = r->neox;
    pd->theta_scale = theta_scale;
    pd->freq_scale = r->freq_scale;
    pd->ff = ff;
    pd->tab = tab;
}

/* Launches the held RoPE of q (and k), and with st.ck the K/V store of k and v. The per-head norms
 * held with it (q->norm, q->norm2) run inside when both tensors are there (k_rope's nm), else
 * first, as their own launch. */
static void rope_launch(lc_cuda *c, const cu_pend *q, cu_rope_store st) {
    size_t n = (size_t)q->n_tok * (q->n_head + q->n_head2) * (q->n_dims / 2);
    if (st.ck) n += (size_t)q->n_tok * q->n_head2 * q->head_dim;
    cu_rope_norm nm;
    memset(&nm, 0, sizeof nm);
    nm.pre = (c->preload & 4) != 0;
    if (q->norm.rows && q->x2) {
        nm.gq = q->norm.g, nm.gk = q->norm2.g, nm.eps = q->eps;
    } else if (q->norm.rows) {
        norm_v(c, q->norm, q->norm2, (int)q->n, q->eps, NULL, NULL); /* fits: it was held */
    }
    cu_k(c, k_rope, (unsigned)((n + 127) / 128), 128, q->x, q->x2, q->pos, q->n_tok, q->n_head, q->n_head2,
         q->head_dim, q->n_dims, q->neox, q->theta_scale, q->freq_scale, q->ff, q->tab, st, nm);
}

bool lc_cu_rope_store(lc_cuda *c, const float *k, const float *v, const int32_t *pk, int T, const lc_kv *kv, int il) {
    cu_pend *pd = &c->pend;
    if (pd->kind != PEND_ROPE || pd->x2 != k || kv->type != LC_TYPE_F16 || pd->n_tok != T ||
        pd->head_dim != kv->head_dim || pd->n_dims != kv->head_dim || pd->n_head2 != kv->n_kv_head)
        return false;
    const cu_pend q = *pd;
    pd->kind = PEND_NONE;
    cu_rope_store st;
    memset(&st, 0, sizeof st);
    st.v = v, st.pk = pk, st.row_bytes = kv->row_bytes, st.ck = kv->k[il], st.cv = kv->v[il];
    rope_launch(c, &q, st);
    CU_LAUNCH(c);
    return true;
}

/* Issues the held-back launch as the op alone would have. */
void lc_cu_flush(lc_cuda *c) {
    cu_pend q = c->pend;
    c->pend.kind = PEND_NONE;
    if (q.kind == PEND_ADD) {
        cu_k(c, k_add, (unsigned)((q.n + 255) / 256), 256, q.x, q.y, q.n);
    } else if (q.kind == PEND_EXPERTS) {
        lc_cu_experts_flush(c, &q);
    } else if (q.kind == PEND_NORM) { /* cu_rms_norm checked that they fit k_norm_v */
        if (!norm_v(c, q.norm, q.norm2, (int)q.n, q.eps, NULL, NULL)) return;
    } else if (q.kind == PEND_ROPE) {
        cu_rope_store none;
        memset(&none, 0, sizeof none);
        rope_launch(c, &q, none);
    } else {
        return;
    }
    CU_LAUNCH(c);
}

/* ==== Element-wise ==== */

/* out = silu(g) * u, and with q != NULL (n a multiple of 32) its q8 form: a warp's 32 consecutive
 * elements are one block. */
__global__ void k_swiglu(float *out, const float *g, const float *u, size_t n, int8_t *q, float2 *dq) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float a = g[i];
        const float v = cu_silu(a) * u[i];
        out[i] = v;
        if (q) cu_q8_block(v, q + (i & ~(size_t)31), dq + i / 32);
    }
}

__global__ void k_add(float *x, const float *y, size_t n) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

__global__ void k_add_bias(float *x, const float *b, size_t n, int w) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += b[i % w];
}

static void cu_swiglu(lc_backend *be, float *out, const float *gate, const float *up, size_t n) {
    lc_cuda *c = cu_of(be);
    if (c->err || !n) return;
    if (lc_cu_experts_swiglu(c, out, gate, up, n)) return; /* the held gate and up products, fused */
    /* the rows' width is not known here, but q8 blocks of the flat array are those of its rows */
    float2 *dq = NULL;
    int8_t *q = n <= (size_t)CU_GRAPH_MAX_TOK * 32768 ? lc_cu_fused_q8(c, 1, n, &dq) : NULL; /* decode-sized */
    cu_k(c, k_swiglu, (unsigned)((n + 255) / 256), 256, out, gate, up, n, q, dq);
    if (q) cu_q8_set(c, out, n, q, dq);
    CU_LAUNCH(c);
}

/* The residual add is held back (PEND_ADD): the forward norms the sum next, and the two run as
 * one launch (k_add_rms_norm); anything else issues the held one first. */
static void cu_add(lc_backend *be, float *x, const float *y, size_t n) {
    lc_cuda *c = cu_of(be);
    if (c->err || !n) return;
    lc_cu_flush(c);
    c->pend = (cu_pend){};
    c->pend.kind = PEND_ADD;
    c->xq_tag.src = NULL; /* x changes before any product reads it: a q8 form held of it is stale */
    c->pend.x = x;
    c->pend.y = y;
    c->pend.n = n;
}

static void cu_add_bias(lc_backend *be, float *x, const float *b, int n_rows, int n) {
    lc_cuda *c = cu_of(be);
    size_t total = (size_t)n_rows * n;
    if (c->err || !total) return;
    cu_k(c, k_add_bias, (unsigned)((total + 255) / 256), 256, x, dev_vec(c, b), total, n);
    CU_LAUNCH(c);
}

__global__ void k_gather(float *out, const float *x, const int32_t *idx, int n_rows, int n) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_rows * n) return;
    size_t r = i / n, col = i % n;
    out[i] = x[(size_t)idx[r] * n + col];
}

static void cu_gather(lc_backend *be, float *out, const float *x, const int32_t *idx, int n_rows, int n) {
    lc_cuda *c = cu_of(be);
    if (c->err || n_rows <= 0) return;
    const int32_t *d = lc_cu_upload(c, SLOT_IDX, idx, (size_t)n_rows);
    if (!d) return;
    size_t total = (size_t)n_rows * n;
    cu_k(c, k_gather, (unsigned)((total + 255) / 256), 256, out, x, d, n_rows, n);
    CU_LAUNCH(c);
}

/* ==== MoE routing ==== */

#define ROUTE_MAX_EXPERT 256 /* k_moe_route's 8 logits a lane; k_moe_route_rank's threads */
#define ROUTE_MAX_K 32       /* a warp's lanes */

/* One warp per token: softmax over the expert logits, then k rounds of a warp arg-max (ties to
 * the lower id) over the experts not yet taken. Lane l holds the logits of experts l, l + 32, ...
 * in registers (n_expert <= 256), so the k rounds read no memory; a taken expert drops out. */
__global__ void k_moe_route(const float *logits, int n_tok, int n_expert, int k, bool norm, int32_t *ids, float *w) {
    cu_pdl_entry();
    int t = (int)(((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
    if (t >= n_tok) return;
    const float *l = logits + (size_t)t * n_expert;
    float v[8];
    bool live[8];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        live[j] = lane + 32 * j < n_expert;
        v[j] = live[j] ? l[lane + 32 * j] : -INFINITY;
        mx = fmaxf(mx, v[j]);
    }
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++)
        if (live[j]) sum += expf(v[j] - mx);
    sum = cu_warp_sum(sum);
    float tot = 0.0f, my_w = 0.0f;
    int my_id = 0;
    for (int s = 0; s < k; s++) {
        float bv = -INFINITY;
        int bi = -1;
#pragma unroll
        for (int j = 0; j < 8; j++) /* ascending ids: a tie keeps the lower */
            if (live[j] && (bi < 0 || v[j] > bv)) bv = v[j], bi = lane + 32 * j;
        for (int o = 16; o > 0; o >>= 1) {
            float v2 = __shfl_xor_sync(0xffffffffu, bv, o);
            int i2 = __shfl_xor_sync(0xffffffffu, bi, o);
            if (i2 >= 0 && (bi < 0 || v2 > bv || (v2 == bv && i2 < bi))) {
                bv = v2;
                bi = i2;
            }
        }
#pragma unroll
        for (int j = 0; j < 8; j++)
            if (lane + 32 * j == bi) live[j] = false;
        float wt = expf(bv - mx) / sum;
        tot += wt;
        if (lane == s) {
            my_w = wt;
            my_id = bi;
        }
    }
    if (lane < k) {
        ids[(size_t)t * k + lane] = my_id;
        w[(size_t)t * k + lane] = norm ? my_w / tot : my_w;
    }
}

/* Block t routes token t, thread i holding expert i's logit (blockDim: n_expert rounded up to 32).
 * An expert's place among the token's experts is the number of experts before it (a larger logit,
 * or the same and a lower id; NaN counts as -inf), so those of place < k are the top k in
 * k_moe_route's order, found in one pass over shared memory instead of k dependent warp rounds
 * (5.8 us a launch under ncu on an H100). The softmax sum and the top-k total add in
 * k_moe_route's orders, so the weights are its bits. */
__global__ void __launch_bounds__(ROUTE_MAX_EXPERT) k_moe_route_rank(const float *logits, int n_expert, int k, bool norm,
                                                         int32_t *ids, float *w) {
    cu_pdl_entry();
    __shared__ float sv[ROUTE_MAX_EXPERT], red[ROUTE_MAX_EXPERT / 32], sel[ROUTE_MAX_K];
    __shared__ int sid[ROUTE_MAX_K];
    const int t = blockIdx.x, i = threadIdx.x, lane = i & 31;
    const float v = i < n_expert ? logits[(size_t)t * n_expert + i] : -INFINITY;
    sv[i] = v;
    if (i < k) sid[i] = -1, sel[i] = 0.0f;
    const float mx = cu_block_max(v, red);
    float sum = 0.0f; /* k_moe_route's order: lane l adds experts l, l + 32, ..., then the warp adds */
    if (i < 32) {
        for (int j = lane; j < n_expert; j += 32) sum += expf(sv[j] - mx);
        sum = cu_warp_sum(sum);
    }
    const float key = v == v ? v : -INFINITY;
    int place = 0;
    for (int j = 0; j < n_expert; j++) {
        const float u = sv[j] == sv[j] ? sv[j] : -INFINITY;
        place += u > key || (u == key && j < i);
    }
    __syncthreads(); /* red[0] read by all: now free */
    if (i == 0) red[0] = sum;
    __syncthreads();
    sum = red[0];
    if (i < n_expert && place < k) {
        sid[place] = i;
        sel[place] = expf(v - mx) / sum;
    }
    __syncthreads();
    if (i < k) {
        float tot = 0.0f;
        for (int j = 0; j < k; j++) tot += sel[j];
        ids[(size_t)t * k + i] = sid[i];
        w[(size_t)t * k + i] = norm ? sel[i] / tot : sel[i];
    }
}

static void cu_moe_route(lc_backend *be, const float *logits, int n_tok, int n_expert, int k, bool norm, int32_t *ids,
                         float *weights) {
    lc_cuda *c = cu_of(be);
    if (c->err) return;
    if (k > ROUTE_MAX_K || n_expert > ROUTE_MAX_EXPERT) {
        c->err = lc_fail(LC_ERR_UNSUPPORTED, "CUDA MoE routing: %d experts, top %d (at most %d, top %d)", n_expert, k,
                         ROUTE_MAX_EXPERT, ROUTE_MAX_K);
        return;
    }
    size_t need = (size_t)n_tok * k * 4;
    size_t cap = c->route_cap;
    void *p = c->route_dev;
    if ((c->err = lc_cu_grow(c, &p, &cap, need))) return;
    c->route_dev = (int32_t *)p;
    c->route_cap = cap;
    c->route_host = ids; /* matmul_experts recognises the array by its address */
    c->route_gen++;      /* ... and its grouping by expert (moe.cu) is made again */
    const cu_q8_tag tag = cu_q8_take(c); /* the experts' input, quantized by the norm before the router */
    if (c->route_rank)
        cu_k(c, k_moe_route_rank, (unsigned)n_tok, (n_expert + 31) / 32 * 32, logits, n_expert, k, norm, c->route_dev,
             weights);
    else
        cu_k(c, k_moe_route, (unsigned)((n_tok + 3) / 4), 128, logits, n_tok, n_expert, k, norm, c->route_dev, weights);
    cu_q8_keep(c, tag, &weights, 1);
    CU_LAUNCH(c);
}

__global__ void k_moe_combine(float *out, const float *y, const float *w, int n_tok, int k, int n) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_tok * n) return;
    size_t t = i / n, col = i % n;
    float s = 0.0f;
    for (int j = 0; j < k; j++) s += w[t * k + j] * y[(t * k + j) * n + col];
    out[i] = s;
}

static void cu_moe_combine(lc_backend *be, float *out, const float *y, const float *weights, int n_tok, int k, int n) {
    lc_cuda *c = cu_of(be);
    size_t total = (size_t)n_tok * n;
    if (c->err || !total) return;
    if (lc_cu_experts_combine(c, out, y, weights, n_tok, k, n)) return; /* the held down product, fused */
    cu_k(c, k_moe_combine, (unsigned)((total + 255) / 256), 256, out, y, weights, n_tok, k, n);
    CU_LAUNCH(c);
}

static void cu_from_host(lc_backend *be, float *dst, const float *src, size_t n) {
    lc_backend_cuda_from_host(be, dst, src, n); /* an error stays in c->err for the next checked op */
}

/* ==== The table ==== */

static const lc_backend_ops cuda_ops = {
    LC_BACKEND_VERSION,
    "cuda",
    cu_alloc,
    cu_free,
    cu_kv_alloc,
    cu_kv_free,
    nullptr, /* kv_discard_block: device memory stays with the pool */
    cu_kv_copy_block,
    cu_to_host,
    lc_cu_matmul,
    lc_cu_matmul_experts,
    cu_rms_norm,
    cu_rope,
    cu_swiglu,
    cu_add,
    cu_add_bias,
    lc_cu_get_rows,
    lc_cu_kv_store,
    lc_cu_attention,
    cu_moe_route,
    cu_moe_combine,
    cu_gather,
    cu_from_host,
    lc_cu_step_begin,
    lc_cu_step_end,
    cu_host_alloc,
    cu_host_free,
};

/* The switches below are read once, when a backend is created (A/B measurements, escape hatches). */
static int env_int(const char *name, int def) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

static bool env_is(const char *name, const char *value) {
    const char *v = getenv(name);
    return v && !strcmp(v, value);
}

extern "C" lc_status lc_backend_cuda_create(const lc_model *model, int il0, int il1, lc_backend **out) {
    *out = NULL;
    if (lc_cuda_device_count() <= 0) return lc_fail(LC_ERR_UNSUPPORTED, "no CUDA device");
    lc_backend *be = (lc_backend *)lc_calloc(1, sizeof *be);
    lc_cuda *c = (lc_cuda *)lc_calloc(1, sizeof *c);
    if (!be || !c) {
        lc_free(be);
        lc_free(c);
        return LC_ERR_OOM;
    }
    be->ops = &cuda_ops;
    be->impl = c;
    lc_status st;
    cudaDeviceProp prop;
    if ((st = CU(c, cudaSetDevice(0))) || (st = CU(c, cudaGetDeviceProperties(&prop, 0))) ||
        (st = CU(c, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking))))
        goto fail;
    c->n_sm = prop.multiProcessorCount;
    {
        c->mmv_float = env_is("LOCARA_CUDA_MMV", "float");
        c->norm_threads = env_int("LOCARA_CUDA_NORM_THREADS", 0);
        if (c->norm_threads != 128 && c->norm_threads != 256 && c->norm_threads != 512 && c->norm_threads != 1024)
            c->norm_threads = 0;
        c->fuse_q8 = !env_is("LOCARA_CUDA_FUSE_Q8", "0");
        c->moe_fuse = !env_is("LOCARA_CUDA_MOE_FUSE", "0");
        c->fa_splits = env_int("LOCARA_CUDA_FA_SPLITS", 0);
        if (c->fa_splits < 1 || c->fa_splits > 64) c->fa_splits = 0;
        c->fa_mode = env_int("LOCARA_CUDA_FA", 2); /* 2: measured faster than 1 (bench/results/cuda-h100.md) */
        c->pdl = prop.major >= 9 && !env_is("LOCARA_CUDA_PDL", "0");
        c->rope_norm = !env_is("LOCARA_CUDA_ROPE_NORM", "0");
        c->moe_glu_rows = env_int("LOCARA_CUDA_MOE_GLU_ROWS", 4); /* 4: H100 30B-A3B tg512 +3% over 32 */
        c->mmvq_warps = env_int("LOCARA_CUDA_MMVQ_WARPS", 64); /* 64: H100, tg512 8B +4.5%, 30B-A3B +2% over 0 */
        c->moe_dot = !env_is("LOCARA_CUDA_MOE_DOT", "0"); /* H100 30B-A3B tg512: +2% over 0 */
        c->preload = env_int("LOCARA_CUDA_PRELOAD", 5);    /* H100 tg512: 8B +3%, 30B-A3B +1% with 1 over 0 */
        c->mmvq_mix = !env_is("LOCARA_CUDA_MMVQ_MIX", "0");
        c->route_rank = !env_is("LOCARA_CUDA_ROUTE", "old");
        c->attn_q8 = !env_is("LOCARA_CUDA_ATTN_Q8", "0");
        c->attn_exact = !env_is("LOCARA_CUDA_ATTN_EXACT", "0");
        c->cpu_order = !env_is("LOCARA_CUDA_CPU_ORDER", "0");
        c->cpu_model = true; /* until a weight says otherwise (upload_weights) */
        c->q8_tok = env_int("LOCARA_CUDA_Q8_TOK", 32); /* prompts of up to this many tokens: int8 products */
        c->graph.on = env_int("LOCARA_CUDA_GRAPH", 1); /* 0 off, 1 capture and replay, 2 capture every step */
        c->graph.seg_items = LC_MAX(0, env_int("LOCARA_CUDA_GRAPH_SEG", 128)); /* items a graph of a step (0: one graph) */
        /* 32: H100 tg128, 30B-A3B +1.4% over 128 (16: +0.7%), 8B +1.4% with 16 */
        c->graph.seg_first = LC_MAX(0, env_int("LOCARA_CUDA_GRAPH_SEG0", 32));
    }
    if ((st = CUBLAS(c, cublasCreate(&c->blas))) || (st = CUBLAS(c, cublasSetStream(c->blas, c->stream)))) goto fail;
    if (model) {
        if (model->hp.n_expert && model->hp.n_expert_used > 32) {
            st = lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: top-%d routing", model->hp.n_expert_used);
            goto fail;
        }
        if ((st = upload_weights(c, model, il0, il1))) goto fail;
    }
    c->err = LC_OK;
    *out = be;
    return LC_OK;
fail:
    lc_backend_cuda_free(be);
    return st;
}

extern "C" void lc_backend_cuda_free(lc_backend *be) {
    if (!be) return;
    lc_cuda *c = cu_of(be);
    c->pend.kind = PEND_NONE; /* the backend's buffers go: a held-back launch has nothing to do */
    lc_cu_graph_free(c);
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (int s = 0; s < SLOT_COUNT; s++) {
        cudaFree(c->slot[s].dev);
        lc_free(c->slot[s].shadow);
    }
    for (int i = 0; i < c->n_wmap; i++)
        if (c->wmap[i].own) cudaFree(c->wmap[i].dev);
    cudaFree(c->arena);
    cudaFree(c->route_dev);
    cudaFree(c->moe_dev);
    cudaFree(c->scratch);
    cudaFree(c->xq);
    cudaFree(c->attn_part);
    lc_free(c->attn_host);
    lc_free(c->rope_host);
    lc_free(c->host_ids);
    lc_free(c->wmap);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    lc_free(c);
    lc_free(be);
}

extern "C" lc_status lc_backend_cuda_route_ids(lc_backend *be, int32_t *ids, size_t n) {
    lc_cuda *c = cu_of(be);
    if (c->err) return c->err;
    if (n * 4 > c->route_cap) return lc_fail(LC_ERR_INVALID, "CUDA backend: %zu routing ids asked, %zu held", n, c->route_cap / 4);
    lc_cu_flush(c);
    lc_status st = CU(c, cudaMemcpyAsync(ids, c->route_dev, n * 4, cudaMemcpyDeviceToHost, c->stream));
    return st ? st : CU(c, cudaStreamSynchronize(c->stream));
}

extern "C" size_t lc_backend_cuda_bytes(lc_backend *be) { return be ? cu_of(be)->bytes : 0; }
