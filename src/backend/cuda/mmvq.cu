/* mmvq.cu — decode matrix-vector products on int8 activations (Q4_K, Q6_K, Q8_0, Q4_0 weights).
 *
 * The input rows are quantized once per call to q8_1 style blocks of 32 (int8 values, a scale
 * d and d * sum(q)), then each weight row is dotted with integer dp4a instructions: a lane takes
 * 16 or 32 weight elements at a time (one 16-byte load for Q4_K), unpacks them to int8 with a
 * few mask/shift operations and needs one float multiply-add per 16-32 elements instead of one
 * per element (the float path of matmul.cu was instruction-bound at ~20% of bandwidth). Every
 * weight byte is read once per call; up to 8 tokens share it. Other types stay on matmul.cu's
 * float path. Entry points: lc_cu_mmvq_ok, lc_cu_mmvq, lc_cu_mmvq_ids.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/quant_dev.cuh"

#define MQ_WARPS 4   /* rows (one per warp) per thread block */
#define MQ_MAX_TOK 8 /* most tokens one launch takes */

bool lc_cu_mmvq_ok(const lc_cuda *c, lc_type t) {
    if (c->mmv_float) return false;
    return t == LC_TYPE_Q4_K || t == LC_TYPE_Q6_K || t == LC_TYPE_Q8_0 || t == LC_TYPE_Q4_0;
}

/* ==== Activation quantization ==== */

/* x (n_blk * 32 floats) -> xq int8 and dx[b] = {d, d * sum(q)} per block of 32; one warp per block. */
__global__ void k_quantize_q8_1(const float *x, int8_t *xq, float2 *dx, int n_blk) {
    const int b = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (b >= n_blk) return;
    cu_q8_block(x[(size_t)b * 32 + (threadIdx.x & 31)], xq + (size_t)b * 32, dx + b);
}

/* ==== Per-type row dots: acc[t] += dot(W row, x[t]) over this lane's share ==== */

__device__ __forceinline__ int ld_u16x2(const uint8_t *p) { /* 4 bytes at a 2-byte aligned address */
    const uint16_t *h = (const uint16_t *)p;
    return (int)((uint32_t)h[0] | ((uint32_t)h[1] << 16));
}

/* Q4_K, 8 chunks per block of 256: chunk c = 2j + h takes qs[32j + 16h .. +16], i.e. elements
 * 64j + 16h + 0..15 (low nibbles, sub-block 2j) and 64j + 32 + 16h + 0..15 (high, sub-block 2j+1).
 * The min term of each sub-block is added once, by its h == 0 chunk. */
template <int NT>
__device__ __forceinline__ void dot_q4_K(const uint8_t *wr, int cols, const int8_t *xq, const float2 *dx, int T,
                                         float *acc) {
    const int lane = threadIdx.x & 31, n_chunks = cols / 32, nxb = cols / 32;
#pragma unroll 2
    for (int ci = lane; ci < n_chunks; ci += 32) {
        const int b = ci >> 3, c = ci & 7, j = c >> 1, h = c & 1;
        const uint8_t *blk = wr + (size_t)b * 144;
        const uint4 q = *(const uint4 *)(blk + 16 + 32 * j + 16 * h);
        const float d = cu_h2f(blk), dmin = cu_h2f(blk + 2);
        const uint8_t *s = blk + 4;
        int sc0, m0, sc1, m1;
        if (j < 2) {
            sc0 = s[2 * j] & 63, m0 = s[2 * j + 4] & 63;
            sc1 = s[2 * j + 1] & 63, m1 = s[2 * j + 5] & 63;
        } else {
            const int a = 2 * j, bb = 2 * j + 1;
            sc0 = (s[a + 4] & 0xF) | ((s[a - 4] >> 6) << 4), m0 = (s[a + 4] >> 4) | ((s[a] >> 6) << 4);
            sc1 = (s[bb + 4] & 0xF) | ((s[bb - 4] >> 6) << 4), m1 = (s[bb + 4] >> 4) | ((s[bb] >> 6) << 4);
        }
        const int qw[4] = {(int)q.x, (int)q.y, (int)q.z, (int)q.w};
        const int e0 = b * 256 + 64 * j + 16 * h, xb0 = b * 8 + 2 * j;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= T) break;
            const int4 xa = *(const int4 *)(xq + (size_t)t * cols + e0);
            const int4 xc = *(const int4 *)(xq + (size_t)t * cols + e0 + 32);
            const int xl[4] = {xa.x, xa.y, xa.z, xa.w}, xh[4] = {xc.x, xc.y, xc.z, xc.w};
            int sl = 0, sh = 0;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                sl = __dp4a(qw[i] & 0x0F0F0F0F, xl[i], sl);
                sh = __dp4a((qw[i] >> 4) & 0x0F0F0F0F, xh[i], sh);
            }
            const float2 da = dx[(size_t)t * nxb + xb0], db = dx[(size_t)t * nxb + xb0 + 1];
            float r = d * ((float)sc0 * da.x * (float)sl + (float)sc1 * db.x * (float)sh);
            if (h == 0) r -= dmin * ((float)m0 * da.y + (float)m1 * db.y);
            acc[t] += r;
        }
    }
}

/* Q6_K, 8 chunks per block of 256: chunk c = 4n + g takes l = 8g .. 8g+7 of half n, i.e. the
 * elements 128n + 32k + l for k = 0..3 (ql low/high nibbles of ql[l] and ql[l+32], two bits of
 * qh[l] each), scales sc[8n + l/16 + 2k]. The block is 210 bytes: only 2-byte aligned. */
template <int NT>
__device__ __forceinline__ void dot_q6_K(const uint8_t *wr, int cols, const int8_t *xq, const float2 *dx, int T,
                                         float *acc) {
    const int lane = threadIdx.x & 31, n_chunks = cols / 32, nxb = cols / 32;
#pragma unroll 2
    for (int ci = lane; ci < n_chunks; ci += 32) {
        const int b = ci >> 3, c = ci & 7, n = c >> 2, l0 = 8 * (c & 3);
        const uint8_t *blk = wr + (size_t)b * 210;
        const uint8_t *ql = blk + 64 * n + l0, *qh = blk + 128 + 32 * n + l0;
        const int8_t *sc = (const int8_t *)(blk + 192 + 8 * n + l0 / 16);
        const float d = cu_h2f(blk + 208);
        int v[4][2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int A = ld_u16x2(ql + 4 * i), B = ld_u16x2(ql + 32 + 4 * i), H = ld_u16x2(qh + 4 * i);
            v[0][i] = __vsubss4((A & 0x0F0F0F0F) | ((H << 4) & 0x30303030), 0x20202020);
            v[1][i] = __vsubss4((B & 0x0F0F0F0F) | ((H << 2) & 0x30303030), 0x20202020);
            v[2][i] = __vsubss4(((A >> 4) & 0x0F0F0F0F) | (H & 0x30303030), 0x20202020);
            v[3][i] = __vsubss4(((B >> 4) & 0x0F0F0F0F) | ((H >> 2) & 0x30303030), 0x20202020);
        }
        const float s0 = sc[0], s1 = sc[2], s2 = sc[4], s3 = sc[6];
        const int e0 = b * 256 + 128 * n + l0, xb0 = b * 8 + 4 * n;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= T) break;
            const int8_t *xt = xq + (size_t)t * cols + e0;
            float r = 0.0f;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const int2 xv = *(const int2 *)(xt + 32 * k);
                const int is = __dp4a(v[k][1], xv.y, __dp4a(v[k][0], xv.x, 0));
                r += (k == 0 ? s0 : k == 1 ? s1 : k == 2 ? s2 : s3) * dx[(size_t)t * nxb + xb0 + k].x * (float)is;
            }
            acc[t] += d * r;
        }
    }
}

/* Q8_0 (34-byte blocks of 32): a lane takes half a block (16 elements). */
template <int NT>
__device__ __forceinline__ void dot_q8_0(const uint8_t *wr, int cols, const int8_t *xq, const float2 *dx, int T,
                                         float *acc) {
    const int lane = threadIdx.x & 31, n_chunks = cols / 16, nxb = cols / 32;
#pragma unroll 2
    for (int ci = lane; ci < n_chunks; ci += 32) {
        const int b = ci >> 1, h = ci & 1;
        const uint8_t *blk = wr + (size_t)b * 34;
        const float d = cu_h2f(blk);
        int w[4];
#pragma unroll
        for (int i = 0; i < 4; i++) w[i] = ld_u16x2(blk + 2 + 16 * h + 4 * i);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= T) break;
            const int4 xv = *(const int4 *)(xq + (size_t)t * cols + 32 * b + 16 * h);
            int s = __dp4a(w[0], xv.x, 0);
            s = __dp4a(w[1], xv.y, s);
            s = __dp4a(w[2], xv.z, s);
            s = __dp4a(w[3], xv.w, s);
            acc[t] += d * dx[(size_t)t * nxb + b].x * (float)s;
        }
    }
}

/* Q4_0 (18-byte blocks of 32, value q - 8): a lane takes one block. */
template <int NT>
__device__ __forceinline__ void dot_q4_0(const uint8_t *wr, int cols, const int8_t *xq, const float2 *dx, int T,
                                         float *acc) {
    const int lane = threadIdx.x & 31, n_chunks = cols / 32, nxb = cols / 32;
#pragma unroll 2
    for (int b = lane; b < n_chunks; b += 32) {
        const uint8_t *blk = wr + (size_t)b * 18;
        const float d = cu_h2f(blk);
        int w[4];
#pragma unroll
        for (int i = 0; i < 4; i++) w[i] = ld_u16x2(blk + 2 + 4 * i);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= T) break;
            const int4 xa = *(const int4 *)(xq + (size_t)t * cols + 32 * b);
            const int4 xc = *(const int4 *)(xq + (size_t)t * cols + 32 * b + 16);
            const int xl[4] = {xa.x, xa.y, xa.z, xa.w}, xh[4] = {xc.x, xc.y, xc.z, xc.w};
            int s = 0;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                s = __dp4a(w[i] & 0x0F0F0F0F, xl[i], s);
                s = __dp4a((w[i] >> 4) & 0x0F0F0F0F, xh[i], s);
            }
            const float2 dd = dx[(size_t)t * nxb + b];
            acc[t] += d * (dd.x * (float)s - 8.0f * dd.y);
        }
    }
}

template <int TYPE, int NT>
__device__ __forceinline__ void row_dot_q8(const uint8_t *wr, int cols, const int8_t *xq, const float2 *dx, int T,
                                           float *acc) {
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    if constexpr (TYPE == LC_TYPE_Q4_K) dot_q4_K<NT>(wr, cols, xq, dx, T, acc);
    else if constexpr (TYPE == LC_TYPE_Q6_K) dot_q6_K<NT>(wr, cols, xq, dx, T, acc);
    else if constexpr (TYPE == LC_TYPE_Q8_0) dot_q8_0<NT>(wr, cols, xq, dx, T, acc);
    else dot_q4_0<NT>(wr, cols, xq, dx, T, acc);
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = cu_warp_sum(acc[t]);
}

/* ==== Kernels ==== */

typedef struct mq_args {
    const uint8_t *w[4];
    float *out[4];
    size_t row_bytes[4];
    int rows[4];
    int first_blk[5]; /* first grid block of each weight */
    int n_w, cols, T;
    const int8_t *xq; /* (T, cols) */
    const float2 *dx; /* (T, cols / 32) */
} mq_args;

/* out_w (T, rows_w) for up to 4 weights of one type sharing the input; one warp per row. */
template <int TYPE, int NT>
__global__ void __launch_bounds__(32 * MQ_WARPS) k_mmvq(mq_args a) {
    int wi;
    const int row = cu_group_row(a, MQ_WARPS, &wi);
    if (row >= a.rows[wi]) return;
    float acc[NT];
    row_dot_q8<TYPE, NT>(a.w[wi] + (size_t)row * a.row_bytes[wi], a.cols, a.xq, a.dx, a.T, acc);
    if ((threadIdx.x & 31) == 0) {
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (t < a.T) a.out[wi][(size_t)t * a.rows[wi] + row] = acc[t];
    }
}

/* Expert pairs: pair p = blockIdx.y uses expert ids[p] and input row p (x_per_pair) or p / k. */
template <int TYPE>
__global__ void __launch_bounds__(32 * MQ_WARPS)
    k_mmvq_ids(const uint8_t *w, size_t row_bytes, size_t expert_bytes, int rows, int cols, int n_expert,
               const int8_t *xq, const float2 *dx, bool x_per_pair, int k, const int32_t *ids, float *out) {
    const int p = blockIdx.y, row = blockIdx.x * MQ_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    const int e = ids[p];
    if (e < 0 || e >= n_expert) return;
    const int xr = x_per_pair ? p : p / k;
    float acc[1];
    row_dot_q8<TYPE, 1>(w + (size_t)e * expert_bytes + (size_t)row * row_bytes, cols, xq + (size_t)xr * cols,
                        dx + (size_t)xr * (cols / 32), 1, acc);
    if ((threadIdx.x & 31) == 0) out[(size_t)p * rows + row] = acc[0];
}

#define MQ_DISPATCH(type, L)                        \
    switch ((int)(type)) {                          \
    case LC_TYPE_Q4_K: L(LC_TYPE_Q4_K); break;      \
    case LC_TYPE_Q6_K: L(LC_TYPE_Q6_K); break;      \
    case LC_TYPE_Q8_0: L(LC_TYPE_Q8_0); break;      \
    default: L(LC_TYPE_Q4_0); break;                \
    }

/* ==== Entry points ==== */

/* The backend's q8 scratch for nq elements (a multiple of 32): the int8 values, then the block
 * scales. */
lc_status lc_cu_q8_scratch(lc_cuda *c, size_t nq, int8_t **xq, float2 **dx) {
    const size_t qb = (nq + 255) / 256 * 256;
    lc_status st = lc_cu_grow(c, &c->xq, &c->xq_bytes, qb + nq / 32 * sizeof(float2));
    if (st) return st;
    *xq = (int8_t *)c->xq;
    *dx = (float2 *)((uint8_t *)c->xq + qb);
    return LC_OK;
}

/* Quantizes x (n_rows, cols) into the backend's q8 scratch; *xq, *dx point at the result. When the
 * op that wrote x already left its q8 form there (c->xq_src: no launch since), nothing runs. */
lc_status lc_cu_quantize_q8(lc_cuda *c, const float *x, int n_rows, int cols, const int8_t **xq,
                            const float2 **dx) {
    if (cols % 32) return lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: row length %d is not a multiple of 32", cols);
    const size_t nq = (size_t)n_rows * cols;
    int8_t *q;
    float2 *d;
    lc_status st = lc_cu_q8_scratch(c, nq, &q, &d);
    if (st) return st;
    *xq = q;
    *dx = d;
    if (c->xq_src == x && c->xq_n == nq) return LC_OK;
    const int n_blk = (int)(nq / 32);
    cu_k(c, k_quantize_q8_1, (n_blk + 7) / 8, 256, x, q, d, n_blk);
    return CU_LAUNCH(c);
}

/* out[i] (T, rows_i) = x (T, cols) @ W_i^T for n_w (<= 4) weights of one lc_cu_mmvq_ok type; x is
 * already quantized (lc_cu_quantize_q8). */
lc_status lc_cu_mmvq(lc_cuda *c, int n_w, const lc_weight *const *w, const uint8_t *const *wd, float *const *out,
                     const int8_t *xq, const float2 *dx, int T) {
    mq_args a;
    int blocks = lc_cu_group_args(a, n_w, w, wd, out, T, MQ_WARPS);
    a.xq = xq;
    a.dx = dx;
    if (T == 1) {
#define L(TY) cu_k(c, k_mmvq<TY, 1>, blocks, 32 * MQ_WARPS, a)
        MQ_DISPATCH(w[0]->type, L);
#undef L
    } else if (T <= 4) {
#define L(TY) cu_k(c, k_mmvq<TY, 4>, blocks, 32 * MQ_WARPS, a)
        MQ_DISPATCH(w[0]->type, L);
#undef L
    } else {
#define L(TY) cu_k(c, k_mmvq<TY, MQ_MAX_TOK>, blocks, 32 * MQ_WARPS, a)
        MQ_DISPATCH(w[0]->type, L);
#undef L
    }
    return CU_LAUNCH(c);
}

/* Expert products for n_pairs (token, expert) pairs with device-resident ids (decode). */
lc_status lc_cu_mmvq_ids(lc_cuda *c, const lc_weight *w, const uint8_t *wd, float *out, const float *x,
                         bool x_per_pair, const int32_t *ids_dev, int n_tok, int k) {
    const int n_pairs = n_tok * k, n_x = x_per_pair ? n_pairs : n_tok;
    const int8_t *xq = NULL;
    const float2 *dx = NULL;
    lc_status st = lc_cu_quantize_q8(c, x, n_x, (int)w->cols, &xq, &dx);
    if (st) return st;
    dim3 grid((unsigned)((w->rows + MQ_WARPS - 1) / MQ_WARPS), (unsigned)n_pairs);
#define L(TY)                                                                                                 \
    cu_k(c, k_mmvq_ids<TY>, grid, 32 * MQ_WARPS, wd, w->row_bytes, w->expert_bytes, (int)w->rows,    \
                                                          (int)w->cols, (int)w->n_expert, xq, dx, x_per_pair, \
                                                          k, ids_dev, out)
    MQ_DISPATCH(w->type, L);
#undef L
    return CU_LAUNCH(c);
}
