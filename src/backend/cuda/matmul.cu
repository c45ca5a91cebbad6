/* matmul.cu — quantized matrix products on the GPU: out (T, rows) = x (T, cols) @ W^T, expert
 * products, and embedding rows.
 *
 * Decode (T <= 8): one warp per weight row, fused dequantize-and-dot: each lane decodes 8
 * elements of a block in registers and multiplies them into up to 8 token accumulators, so every
 * weight byte is read once per step (int8 activations for the types mmvq.cu takes). Several
 * weights sharing an input (Q/K/V, gate/up) of one type run in one launch. Short prompts (up to
 * LOCARA_CUDA_Q8_TOK tokens) of int8 types take the same products, 8 tokens a launch (q8_prompt).
 * Longer prompts: tiles of W are dequantized to f16 and multiplied on the tensor cores by cuBLAS
 * (f32 accumulation), with the activations converted to f16 once.
 * Experts: decode runs one matrix-vector product per (token, expert) pair with the expert id read
 * on the device (no host round trip); prefill runs moe.cu's grouped tensor-core kernel, or with
 * LOCARA_CUDA_MOE=old (A/B) the pairs grouped by expert on the host and one GEMM per expert.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/quant_dev.cuh"

#define MV_WARPS 4      /* warps (rows) per block of the matrix-vector kernels */
#define MV_MAX_TOK 8    /* most tokens the matrix-vector path takes */
#define DEQ_ELEMS (16u << 20) /* elements per dequantized f16 tile of the GEMM path */

/* The types with kernels: those LC_CU_DISPATCH (quant_dev.cuh) lists, so the list is kept once. */
bool lc_cu_type_ok(lc_type t) {
#define L(T) return true
    LC_CU_DISPATCH((int)t, L);
#undef L
    return false;
}

/* ==== Matrix-vector (decode) ==== */

typedef struct mv_args {
    const uint8_t *w[4];
    float *out[4];
    size_t row_bytes[4];
    int rows[4];
    int first_blk[5]; /* first grid block of each weight */
    int n_w, cols, T;
    const float *x; /* (T, cols) */
} mv_args;

/* One warp: acc[t] = dot(W row, x[t]) for t < T (NT a compile-time bound on T). With S > 1 the
 * warp takes only its share `part` of the chunks (32-chunk groups part, part + S, ...). */
template <int TYPE, int NT>
__device__ __forceinline__ void row_dot(const uint8_t *wr, int cols, const float *x, int T, float *acc, int part = 0,
                                        int S = 1) {
    const int per_blk = qt<TYPE>::BS / 8, lane = threadIdx.x & 31;
    const int n_chunks = cols / 8;
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
#pragma unroll 2
    for (int c = lane + 32 * part; c < n_chunks; c += 32 * S) {
        float v[8];
        deq8<TYPE>(wr + (size_t)(c / per_blk) * qt<TYPE>::BYTES, c % per_blk, v);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < T) {
                const float4 *xp = (const float4 *)(x + (size_t)t * cols + 8 * c);
                float4 a = __ldg(xp), b = __ldg(xp + 1);
                acc[t] += v[0] * a.x + v[1] * a.y + v[2] * a.z + v[3] * a.w + v[4] * b.x + v[5] * b.y +
                          v[6] * b.z + v[7] * b.w;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = cu_warp_sum(acc[t]);
}

/* out_w (T, rows_w) for up to 4 weights sharing the input, S warps a row (S > 1: one token, few
 * rows, as k_mmvq: a MoE router's 128 rows of 2048 floats took 4.9 us a launch with one warp
 * a row, each lane walking 8 chunks). */
template <int TYPE, int NT, int S>
__global__ void __launch_bounds__(32 * MV_WARPS) k_matvec(mv_args a) {
    cu_pdl_entry();
    int wi;
    const int row = cu_group_row(a, MV_WARPS / S, &wi, S);
    if constexpr (S == 1) {
        if (row >= a.rows[wi]) return;
        float acc[NT];
        row_dot<TYPE, NT>(a.w[wi] + (size_t)row * a.row_bytes[wi], a.cols, a.x, a.T, acc);
        cu_row_store<NT>(acc, a.T, a.out[wi], a.rows[wi], row);
    } else {
        static_assert(NT == 1, "several warps a row: one token");
        float acc = 0.0f;
        const bool ok = row < a.rows[wi];
        if (ok) row_dot<TYPE, 1>(a.w[wi] + (size_t)row * a.row_bytes[wi], a.cols, a.x, 1, &acc, (threadIdx.x >> 5) % S, S);
        cu_split_store<S, MV_WARPS>(acc, ok, a.out[wi] + row);
    }
}

/* Expert pairs: pair p = blockIdx.y uses expert ids[p], input row p (x_per_pair) or p / k. */
template <int TYPE>
__global__ void __launch_bounds__(32 * MV_WARPS)
    k_matvec_ids(const uint8_t *w, size_t row_bytes, size_t expert_bytes, int rows, int cols, int n_expert,
                 const float *x, bool x_per_pair, int k, const int32_t *ids, float *out) {
    cu_pdl_entry();
    int p = blockIdx.y, row = blockIdx.x * MV_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    int e = ids[p];
    if (e < 0 || e >= n_expert) return;
    float acc[1];
    const float *xr = x + (size_t)(x_per_pair ? p : p / k) * cols;
    row_dot<TYPE, 1>(w + (size_t)e * expert_bytes + (size_t)row * row_bytes, cols, xr, 1, acc);
    if ((threadIdx.x & 31) == 0) out[(size_t)p * rows + row] = acc[0];
}

/* ==== Dequantization (prefill tiles, embedding rows) ==== */

__device__ __forceinline__ void store8(float *o, const float *v) {
    float4 *p = (float4 *)o;
    p[0] = make_float4(v[0], v[1], v[2], v[3]);
    p[1] = make_float4(v[4], v[5], v[6], v[7]);
}

__device__ __forceinline__ void store8(__half *o, const float *v) {
    __half2 h[4];
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    *(uint4 *)o = *(const uint4 *)h;
}

/* out (n_rows, cols) = rows (ids[i], or r0 + i) of W, dequantized; one thread per 8 elements. */
template <int TYPE, typename OUT>
__global__ void k_deq(const uint8_t *w, size_t row_bytes, const int32_t *ids, int64_t r0, int n_rows, int cols,
                      OUT *out) {
    cu_pdl_entry();
    const int per_blk = qt<TYPE>::BS / 8;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t cpr = cols / 8;
    if (i >= cpr * n_rows) return;
    int64_t r = i / cpr, c = i % cpr;
    int64_t src = ids ? ids[r] : r0 + r;
    float v[8];
    deq8<TYPE>(w + src * row_bytes + (size_t)(c / per_blk) * qt<TYPE>::BYTES, (int)(c % per_blk), v);
    store8(out + r * cols + 8 * c, v);
}

__global__ void k_to_half(const float *x, __half *y, size_t n) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2half_rn(x[i]);
}

template <typename OUT>
static void launch_deq(lc_cuda *c, const lc_weight *w, const uint8_t *wd, const int32_t *ids, int64_t r0,
                       int n_rows, OUT *out) {
    int64_t n = (int64_t)n_rows * (w->cols / 8);
    unsigned grid = (unsigned)((n + 255) / 256);
#define L(T) cu_k(c, k_deq<T, OUT>, grid, 256, wd, w->row_bytes, ids, r0, n_rows, (int)w->cols, out)
    LC_CU_DISPATCH((int)w->type, L);
#undef L
}

/* ==== Op entry points ==== */

static lc_status check_weight(lc_cuda *c, const lc_weight *w, const uint8_t **dev) {
    if (!lc_cu_type_ok(w->type))
        return lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: no kernel for weights of type %s", lc_type_name(w->type));
    if (w->cols % 8) return lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: row length %lld is not a multiple of 8", (long long)w->cols);
    *dev = (const uint8_t *)lc_cu_weight(c, w->data);
    if (!*dev) return lc_fail(LC_ERR_INVALID, "CUDA backend: weight not uploaded to the device");
    return LC_OK;
}

/* Decode path: groups of up to 4 same-type weights in one launch. */
static lc_status matvec(lc_cuda *c, int n_w, const lc_weight *const *w, const uint8_t *const *wd, float *const *out,
                        const float *x, int T) {
    mv_args a;
    int rows = 0;
    for (int i = 0; i < n_w; i++) rows += (int)w[i]->rows;
    /* one token: 4 warps a row while that keeps within lc_cu_mmvq's target of c->mmvq_warps warps an
     * SM (only 4 is compiled here: the float path's few-row products are routers) */
    const bool split = T == 1 && (int64_t)rows * MV_WARPS <= (int64_t)c->mmvq_warps * c->n_sm;
    int blocks = lc_cu_group_args(a, n_w, w, wd, out, T, split ? 1 : MV_WARPS);
    a.x = x;
    if (split) {
#define L(TY) cu_k(c, k_matvec<TY, 1, MV_WARPS>, blocks, 32 * MV_WARPS, a)
        LC_CU_DISPATCH((int)w[0]->type, L);
#undef L
    } else if (T == 1) {
#define L(TY) cu_k(c, k_matvec<TY, 1, 1>, blocks, 32 * MV_WARPS, a)
        LC_CU_DISPATCH((int)w[0]->type, L);
#undef L
    } else {
#define L(TY) cu_k(c, k_matvec<TY, MV_MAX_TOK, 1>, blocks, 32 * MV_WARPS, a)
        LC_CU_DISPATCH((int)w[0]->type, L);
#undef L
    }
    return CU_LAUNCH(c);
}

/* Prefill path: out (T, rows) = x (T, cols) @ W^T through f16 tiles and cuBLAS. In column-major
 * terms out^T (rows x T, ld rows) = W_tile^T (k x m, op T) * x^T (k x T). x_h is x in f16. */
static lc_status gemm(lc_cuda *c, const lc_weight *w, const uint8_t *wd, float *out, const __half *x_h, int T,
                      __half *tile, int64_t tile_rows) {
    int64_t cols = w->cols;
    const float one = 1.0f, zero = 0.0f;
    for (int64_t r0 = 0; r0 < w->rows; r0 += tile_rows) {
        int n = (int)LC_MIN(tile_rows, w->rows - r0);
        launch_deq<__half>(c, w, wd, NULL, r0, n, tile);
        lc_status st = CU_LAUNCH(c);
        if (st) return st;
        st = CUBLAS(c, cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, T, (int)cols, &one, tile, CUDA_R_16F,
                                    (int)cols, x_h, CUDA_R_16F, (int)cols, &zero, out + r0, CUDA_R_32F, (int)w->rows,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        if (st) return st;
    }
    return LC_OK;
}

/* Scratch for the GEMM path: the f16 activations (T x cols) then one f16 weight tile. */
static lc_status gemm_scratch(lc_cuda *c, int64_t cols, int T, __half **x_h, __half **tile, int64_t *tile_rows) {
    size_t xb = ((size_t)T * cols * 2 + 255) / 256 * 256;
    *tile_rows = LC_MAX(1, (int64_t)DEQ_ELEMS / cols);
    size_t need = xb + (size_t)*tile_rows * cols * 2;
    lc_status st = lc_cu_grow(c, &c->scratch, &c->scratch_bytes, need);
    if (st) return st;
    *x_h = (__half *)c->scratch;
    *tile = (__half *)((uint8_t *)c->scratch + xb);
    return LC_OK;
}

/* Whether a prompt of n_tok > MV_MAX_TOK tokens takes the int8 products (mmvq.cu, 8 tokens a
 * launch) instead of f16 tiles: up to c->q8_tok tokens (LOCARA_CUDA_Q8_TOK, default 32), when
 * every weight has an int8 kernel. Then the activations are int8 as the CPU backend's are at every
 * batch size, so a short prompt's logits follow the CPU's (bit for bit for the formats of
 * k_mmvq_cpu; the f16 tiles round every activation to 11 bits), and no weight is expanded to f16. */
static bool q8_prompt(const lc_cuda *c, int n_w, const lc_weight *const *w, int n_tok) {
    if (n_tok > c->q8_tok) return false;
    for (int i = 0; i < n_w; i++)
        if (!lc_cu_mmvq_ok(c, w[i]->type)) return false;
    return true;
}

lc_status lc_cu_matmul(lc_backend *be, int n_w, const lc_weight *const *w, float *const *out,
                                  const float *x, int n_tok) {
    lc_cuda *c = cu_of(be);
    if (c->err) return c->err;
    lc_status st;
    const uint8_t *wd[4];
    for (int i = 0; i < n_w; i++) {
        if (w[i]->cols != w[0]->cols) return lc_fail(LC_ERR_INVALID, "matmul inputs of different widths");
        if ((st = check_weight(c, w[i], &wd[i]))) return st;
    }
    if (n_tok <= MV_MAX_TOK || q8_prompt(c, n_w, w, n_tok)) {
        const int8_t *xq = NULL; /* x quantized once for every int8 group */
        const float2 *dx = NULL;
        cu_q8_tag tag = cu_q8_take(c);
        int i = 0;
        while (i < n_w) {
            int j = i + 1;
            while (j < n_w && j - i < 4 &&
                   (w[j]->type == w[i]->type || lc_cu_mmvq_mixes(c, w[i]->type, w[j]->type, n_tok)))
                j++;
            if (lc_cu_mmvq_ok(c, w[i]->type)) {
                if (!xq && (st = lc_cu_quantize_q8(c, x, n_tok, (int)w[0]->cols, &xq, &dx))) return st;
                if (xq) tag = cu_q8_take(c);
                st = lc_cu_mmvq(c, j - i, w + i, wd + i, out + i, xq, dx, n_tok);
            } else {
                st = matvec(c, j - i, w + i, wd + i, out + i, x, n_tok);
            }
            if (st) return st;
            cu_q8_keep(c, tag, out, n_w);
            i = j;
        }
        return LC_OK;
    }
    if (cu_recording(c)) return c->err = lc_cu_graph_break(c, true, "a product of more than 8 rows (cuBLAS)");
    __half *x_h, *tile;
    int64_t tile_rows;
    if ((st = gemm_scratch(c, w[0]->cols, n_tok, &x_h, &tile, &tile_rows))) return st;
    size_t nx = (size_t)n_tok * w[0]->cols;
    cu_k(c, k_to_half, (unsigned)((nx + 255) / 256), 256, x, x_h, nx);
    if ((st = CU_LAUNCH(c))) return st;
    for (int i = 0; i < n_w; i++)
        if ((st = gemm(c, w[i], wd[i], out[i], x_h, n_tok, tile, tile_rows))) return st;
    return LC_OK;
}

__global__ void k_scatter_rows(const float *y, const int32_t *dst, float *out, int n_rows, int cols) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_rows * cols) return;
    size_t r = i / cols, col = i % cols;
    out[(size_t)dst[r] * cols + col] = y[i];
}

/* Prefill experts: ids come to the host once; per expert, its pairs' input rows are gathered,
 * multiplied through the GEMM path (or matvec for a few rows) and scattered to their pair rows. */
static lc_status experts_grouped(lc_cuda *c, const lc_weight *w, const uint8_t *wd, float *out, const float *x,
                                 bool x_per_pair, const int32_t *ids_dev, int n_pairs, int k) {
    lc_status st;
    if (!lc_grow((void **)&c->host_ids, sizeof(int32_t), &c->host_ids_cap, (size_t)n_pairs * 3)) return LC_ERR_OOM;
    int32_t *hid = c->host_ids, *order = hid + n_pairs, *src = order + n_pairs;
    lc_cu_flush(c);
    if ((st = CU(c, cudaMemcpyAsync(hid, ids_dev, (size_t)n_pairs * 4, cudaMemcpyDeviceToHost, c->stream))) ||
        (st = CU(c, cudaStreamSynchronize(c->stream))))
        return st;
    /* order pairs by expert (counting sort) */
    int n = 0;
    int64_t cols = w->cols, rows = w->rows;
    for (int e = 0; e < w->n_expert; e++)
        for (int p = 0; p < n_pairs; p++)
            if (hid[p] == e) {
                order[n] = p;
                src[n] = x_per_pair ? p : p / k;
                n++;
            }
    /* device layout in scratch: [order | src] ints, gathered x (n x cols), result (n x rows), then GEMM scratch */
    size_t ib = ((size_t)n * 8 + 255) / 256 * 256, xb = ((size_t)n * cols * 4 + 255) / 256 * 256;
    size_t yb = ((size_t)n * rows * 4 + 255) / 256 * 256;
    int64_t tile_rows = LC_MAX(1, (int64_t)DEQ_ELEMS / cols);
    size_t hb = ((size_t)n * cols * 2 + 255) / 256 * 256;
    if ((st = lc_cu_grow(c, &c->scratch, &c->scratch_bytes, ib + xb + yb + hb + (size_t)tile_rows * cols * 2))) return st;
    uint8_t *s = (uint8_t *)c->scratch;
    int32_t *d_order = (int32_t *)s, *d_src = d_order + n;
    float *xg = (float *)(s + ib), *yg = (float *)(s + ib + xb);
    __half *x_h = (__half *)(s + ib + xb + yb), *tile = (__half *)(s + ib + xb + yb + hb);
    if ((st = CU(c, cudaMemcpyAsync(d_order, order, (size_t)n * 4, cudaMemcpyHostToDevice, c->stream))) ||
        (st = CU(c, cudaMemcpyAsync(d_src, src, (size_t)n * 4, cudaMemcpyHostToDevice, c->stream))))
        return st;
    size_t nx = (size_t)n * cols;
    cu_k(c, k_gather, (unsigned)((nx + 255) / 256), 256, xg, x, d_src, n, (int)cols);
    cu_k(c, k_to_half, (unsigned)((nx + 255) / 256), 256, xg, x_h, nx);
    if ((st = CU_LAUNCH(c))) return st;
    int done = 0;
    for (int e = 0; e < w->n_expert; e++) {
        int cnt = 0;
        while (done + cnt < n && hid[order[done + cnt]] == e) cnt++;
        if (!cnt) continue;
        lc_weight we = lc_weight_expert(w, e);
        const uint8_t *wde = wd + (size_t)e * w->expert_bytes;
        float *yo = yg + (size_t)done * rows;
        if (cnt <= MV_MAX_TOK) {
            const lc_weight *wl[1] = {&we};
            float *ol[1] = {yo};
            st = matvec(c, 1, wl, &wde, ol, xg + (size_t)done * cols, cnt);
        } else {
            st = gemm(c, &we, wde, yo, x_h + (size_t)done * cols, cnt, tile, tile_rows);
        }
        if (st) return st;
        done += cnt;
    }
    size_t ny = (size_t)n * rows;
    cu_k(c, k_scatter_rows, (unsigned)((ny + 255) / 256), 256, yg, d_order, out, n, (int)rows);
    return CU_LAUNCH(c);
}

lc_status lc_cu_matmul_experts(lc_backend *be, const lc_weight *w, float *out, const float *x,
                                          bool x_per_pair, const int32_t *ids, int n_tok, int k_per_tok) {
    lc_cuda *c = cu_of(be);
    if (c->err) return c->err;
    lc_status st;
    const uint8_t *wd;
    if ((st = check_weight(c, w, &wd))) return st;
    int n_pairs = n_tok * k_per_tok;
    const int32_t *ids_dev = ids == c->route_host ? c->route_dev : lc_cu_upload(c, SLOT_IDS, ids, (size_t)n_pairs);
    if (!ids_dev) return c->err ? c->err : LC_ERR_DEVICE;
    if (n_tok > 4 && lc_cu_experts_mma_ok(c, w, wd)) /* grouped on the device, one launch (moe.cu) */
        return lc_cu_experts_mma(c, w, wd, out, x, x_per_pair, ids_dev, ids == c->route_host, n_pairs, k_per_tok);
    if (n_tok > 4 && cu_recording(c)) /* grouping reads the expert ids on the host */
        return c->err = lc_cu_graph_break(c, true, "expert products of more than 4 tokens");
    if (n_tok > 4)
        return experts_grouped(c, w, wd, out, x, x_per_pair, ids_dev, n_pairs, k_per_tok);
    if (lc_cu_mmvq_ok(c, w->type)) return lc_cu_mmvq_ids(c, w, wd, out, x, x_per_pair, ids_dev, n_tok, k_per_tok);
    const cu_q8_tag tag = cu_q8_take(c);
    dim3 grid((unsigned)((w->rows + MV_WARPS - 1) / MV_WARPS), (unsigned)n_pairs);
#define L(TY)                                                                                                 \
    cu_k(c, k_matvec_ids<TY>, grid, 32 * MV_WARPS, wd, w->row_bytes, w->expert_bytes, (int)w->rows,  \
                                                            (int)w->cols, (int)w->n_expert, x, x_per_pair,    \
                                                            k_per_tok, ids_dev, out)
    LC_CU_DISPATCH((int)w->type, L);
#undef L
    cu_q8_keep(c, tag, &out, 1);
    return CU_LAUNCH(c);
}

void lc_cu_get_rows(lc_backend *be, float *out, const lc_weight *w, const int32_t *ids, int n) {
    lc_cuda *c = cu_of(be);
    const uint8_t *wd;
    if (c->err) return;
    if ((c->err = check_weight(c, w, &wd))) return;
    const int32_t *d = lc_cu_upload(c, SLOT_TOK, ids, (size_t)n);
    if (!d) return;
    launch_deq<float>(c, w, wd, d, 0, n, out);
    CU_LAUNCH(c);
}
