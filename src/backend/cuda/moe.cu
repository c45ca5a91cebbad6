/* moe.cu — expert products of prefill batches on the GPU without a host round trip. The
 * (token, expert) pairs are grouped by expert on the device (a counting sort in one block, kept
 * for every product of the same routing: gate, up and down share it), then ONE launch multiplies
 * every expert's pairs: a thread block dequantizes a tile of one expert's weight rows into shared
 * memory as f16 and multiplies it on the tensor cores (mma.sync m16n8k16, f32 accumulation) with
 * that expert's input rows, converted to f16 as they are loaded; results go straight to their
 * pair rows. No f16 copy of the weights is written. Not here: decode-sized expert products
 * (matmul.cu, mmvq.cu) and the old host-grouped path (matmul.cu, LOCARA_CUDA_MOE=old).
 * Entry point: lc_cu_experts_mma.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/quant_dev.cuh"

#include <stdlib.h>
#include <string.h>

#define XM_BN 128              /* weight rows per thread block (32 per warp) */
#define XM_WARPS_N 4           /* warps across the weight rows (32 rows each) */
#define GRP_THREADS 1024
#define GRP_MAX_EXPERT 1024    /* the grouping kernel's shared counters */

/* ==== Grouping the pairs by expert ==== */

/* One block. ids (n_pairs) -> pairs: the pair indices ordered by expert (within an expert in
 * arbitrary order: every pair's result is computed alone, so order cannot change a value), and
 * tiles: for each run of at most bm pairs of one expert {expert, first sorted index, count, 0};
 * *n_tiles their number. Ids outside [0, n_expert) are left out (their rows are not written). */
__global__ void __launch_bounds__(GRP_THREADS)
    k_moe_group(const int32_t *ids, int n_pairs, int n_expert, int bm, int *n_tiles, int4 *tiles, int32_t *pairs) {
    cu_pdl_entry();
    __shared__ int cnt[GRP_MAX_EXPERT], cur[GRP_MAX_EXPERT];
    for (int e = threadIdx.x; e < n_expert; e += blockDim.x) cnt[e] = 0;
    __syncthreads();
    for (int p = threadIdx.x; p < n_pairs; p += blockDim.x) {
        int e = ids[p];
        if (e >= 0 && e < n_expert) atomicAdd(&cnt[e], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) { /* a few hundred experts and tiles: one thread is quicker than a scan's syncs */
        int off = 0, nt = 0;
        for (int e = 0; e < n_expert; e++) {
            int c = cnt[e];
            cur[e] = off;
            for (int i = 0; i < c; i += bm) tiles[nt++] = make_int4(e, off + i, min(bm, c - i), 0);
            off += c;
        }
        *n_tiles = nt;
    }
    __syncthreads();
    for (int p = threadIdx.x; p < n_pairs; p += blockDim.x) {
        int e = ids[p];
        if (e >= 0 && e < n_expert) pairs[atomicAdd(&cur[e], 1)] = p;
    }
}

/* ==== The grouped tensor-core product ==== */

__device__ __forceinline__ void ldsm_x4(uint32_t *r, const __half *p) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* d (16x8, f32) += a (16x16 f16, row-major) * b (16x8 f16, column-major) */
__device__ __forceinline__ void mma_16816(float *d, const uint32_t *a, const uint32_t *b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ uint4 half8(const float *v) {
    __half2 h[4];
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    return *(const uint4 *)h;
}

/* deq8<12> (Q4_K) for a 16-byte-aligned block with word loads: d, dmin and the 12 scale bytes
 * in one 16-byte load, the 8 quant bytes in one 8-byte load (the generic one reads bytes). */
__device__ __forceinline__ void deq8_q4k(const uint8_t *b, int j, float *v) {
    const int e = 8 * j, sb = e / 32, i = sb & 3;
    const uint4 hd = *(const uint4 *)b; /* .x d | dmin << 16; scale bytes 0-3 .y, 4-7 .z, 8-11 .w */
    const uint2 qs = *(const uint2 *)(b + 16 + 32 * (e / 64) + (e % 32));
    uint32_t sc, mn;
    if (sb < 4) {
        sc = (hd.y >> (8 * i)) & 63;
        mn = (hd.z >> (8 * i)) & 63;
    } else {
        sc = ((hd.w >> (8 * i)) & 0xF) | (((hd.y >> (8 * i + 6)) & 3) << 4);
        mn = ((hd.w >> (8 * i + 4)) & 0xF) | (((hd.z >> (8 * i + 6)) & 3) << 4);
    }
    const float2 dm = __half22float2(*(const __half2 *)&hd.x);
    const float d = dm.x * (float)sc, m = dm.y * (float)mn;
    const int sh = (sb & 1) * 4;
#pragma unroll
    for (int q = 0; q < 4; q++) {
        v[q] = d * (float)((qs.x >> (8 * q + sh)) & 15) - m;
        v[4 + q] = d * (float)((qs.y >> (8 * q + sh)) & 15) - m;
    }
}

/* Block (tile t = blockIdx.x of the grouping, row tile blockIdx.y):
 *   out[pairs[i0 + m], r0 + n] = x[src(m)] . W_e[r0 + n]   for m < cnt (<= BM), n < XM_BN,
 * src(m) = pairs[i0 + m] / x_div (x_div 1: a row per pair, k: a row per token). In mma terms the
 * tokens are M and the weight rows N, so each thread's accumulator pairs are adjacent output
 * columns. 4 x WM warps, each BM / WM tokens x 32 weight rows; the reduction runs in BK stages:
 * every thread converts its share of the x tile (f32 -> f16) and dequantizes its share of the
 * weight tile (8 elements per deq8) into shared memory, then the warps multiply. PIPE: two
 * buffers of 32-element stages, the next stage loaded after the current one's products are issued
 * (its loads wait while the tensor cores work) and one barrier per stage; else one buffer of 64,
 * two barriers. Blocks past the grouping's tile count (the grid is sized for the worst case)
 * return at once. */
template <int TYPE, int BM, int WM, bool PIPE>
__global__ void __launch_bounds__(32 * XM_WARPS_N * WM)
    k_moe_mma(const uint8_t *w, size_t row_bytes, size_t expert_bytes, int rows, int cols, const float *x, int x_div,
              const int *n_tiles, const int4 *tiles, const int32_t *pairs, float *out) {
    cu_pdl_entry();
    constexpr int BS = qt<TYPE>::BS, BYTES = qt<TYPE>::BYTES, MT = BM / 16 / WM;
    constexpr int BK = PIPE ? 32 : 64, LD = BK + 8, CPR = BK / 8, NBUF = PIPE ? 2 : 1; /* LD: odd multiple of 16 bytes */
    constexpr int XR = BM * CPR / (32 * XM_WARPS_N * WM), WR = XM_BN * CPR / (32 * XM_WARPS_N * WM); /* chunks per thread */
    __shared__ __align__(16) __half sx[NBUF][BM * LD];
    __shared__ __align__(16) __half sw[NBUF][XM_BN * LD];
    if ((int)blockIdx.x >= *n_tiles) return;
    const int4 tl = tiles[blockIdx.x];
    const int cnt = tl.z, r0 = blockIdx.y * XM_BN;
    const int tid = threadIdx.x, lane = tid & 31, wn = (tid >> 5) % XM_WARPS_N, m0 = (tid >> 5) / XM_WARPS_N * (BM / WM);
    constexpr int RSTEP = 32 * XM_WARPS_N * WM / CPR; /* rows one pass of the block's threads loads */
    const int kc = tid % CPR, rsub = tid / CPR; /* loads: chunk kc (8 elements) of rows rsub + RSTEP s */
    const uint8_t *we = w + (size_t)tl.x * expert_bytes;
    const float *xs[XR];
#pragma unroll
    for (int s = 0; s < XR; s++) {
        int m = rsub + RSTEP * s;
        xs[s] = m < cnt ? x + (size_t)(pairs[tl.y + m] / x_div) * cols : nullptr;
    }
    float acc[MT][4][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;

    /* stage k0 of x and W into buffer b */
    auto load = [&](int k0, int b) {
        const int kk = k0 + 8 * kc;
        const bool kin = kk < cols;
#pragma unroll
        for (int s = 0; s < XR; s++) {
            uint4 h = make_uint4(0, 0, 0, 0);
            if (xs[s] && kin) {
                const float4 *p = (const float4 *)(xs[s] + kk);
                float4 a = __ldg(p), c = __ldg(p + 1);
                const float v[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
                h = half8(v);
            }
            *(uint4 *)&sx[b][(rsub + RSTEP * s) * LD + 8 * kc] = h;
        }
#pragma unroll
        for (int s = 0; s < WR; s++) {
            const int n = rsub + RSTEP * s;
            uint4 h = make_uint4(0, 0, 0, 0);
            if (kin && r0 + n < rows) {
                float v[8];
                const uint8_t *blk = we + (size_t)(r0 + n) * row_bytes + (size_t)(kk / BS) * BYTES;
                if constexpr (TYPE == 12) deq8_q4k(blk, (kk % BS) / 8, v); /* lc_cu_experts_mma_ok checked alignment */
                else deq8<TYPE>(blk, (kk % BS) / 8, v);
                h = half8(v);
            }
            *(uint4 *)&sw[b][n * LD + 8 * kc] = h;
        }
    };
    /* the products of the stage in buffer b */
    auto multiply = [&](int b) {
#pragma unroll
        for (int k16 = 0; k16 < BK; k16 += 16) {
            uint32_t a[MT][4], bf[4][2];
#pragma unroll
            for (int i = 0; i < MT; i++) ldsm_x4(a[i], &sx[b][(m0 + 16 * i + (lane & 15)) * LD + k16 + 8 * (lane >> 4)]);
#pragma unroll
            for (int j = 0; j < 2; j++) {
                uint32_t r[4];
                ldsm_x4(r, &sw[b][(32 * wn + 16 * j + (lane & 7) + 8 * (lane >> 4)) * LD + k16 + 8 * ((lane >> 3) & 1)]);
                bf[2 * j][0] = r[0];
                bf[2 * j][1] = r[1];
                bf[2 * j + 1][0] = r[2];
                bf[2 * j + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma_16816(acc[i][j], a[i], bf[j]);
        }
    };
    if constexpr (PIPE) {
        load(0, 0);
        __syncthreads();
        int b = 0;
        for (int k0 = 0; k0 < cols; k0 += BK, b ^= 1) {
            multiply(b);
            if (k0 + BK < cols) load(k0 + BK, b ^ 1); /* the other buffer: read by nobody since the last barrier */
            __syncthreads();
        }
    } else {
        for (int k0 = 0; k0 < cols; k0 += BK) {
            load(k0, 0);
            __syncthreads();
            multiply(0);
            __syncthreads();
        }
    }
    /* accumulator q of tile (i, j): token m0 + 16 i + lane / 4 (+ 8 for q >= 2), row 32 wn + 8 j + 2 (lane % 4) + q % 2 */
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int m = m0 + 16 * i + (lane >> 2) + 8 * h;
            if (m >= cnt) continue;
            float *o = out + (size_t)pairs[tl.y + m] * rows;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int r = r0 + 32 * wn + 8 * j + 2 * (lane & 3);
                if (r + 1 < rows && !(rows & 1)) {
                    *(float2 *)(o + r) = make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
                } else {
                    if (r < rows) o[r] = acc[i][j][2 * h];
                    if (r + 1 < rows) o[r + 1] = acc[i][j][2 * h + 1];
                }
            }
        }
}

/* ==== Entry point ==== */

/* LOCARA_CUDA_MOE, read at the backend's first expert product: "old" selects the host-grouped
 * path, "mma32" / "mma64" force the token tile, "mma64w" / "mma64wp" 64-pair tiles without /
 * with the pipelined stages for every type; else the default (A/B measurements). */
int lc_cu_moe_mode(lc_cuda *c) {
    if (!c->moe_mode) {
        const char *s = getenv("LOCARA_CUDA_MOE");
        c->moe_mode = !s                       ? LC_CU_MOE_AUTO
                      : !strcmp(s, "old")     ? LC_CU_MOE_OLD
                      : !strcmp(s, "mma32")   ? LC_CU_MOE_32
                      : !strcmp(s, "mma64")   ? LC_CU_MOE_64
                      : !strcmp(s, "mma64w")  ? LC_CU_MOE_64W
                      : !strcmp(s, "mma64wp") ? LC_CU_MOE_64WP
                                              : LC_CU_MOE_AUTO;
    }
    return c->moe_mode;
}

/* The grouped product: out (n_pairs, rows) row p = x[p or p / k] @ W_{ids[p]}^T, ids_dev on the
 * device. routed: ids_dev holds moe_route's ids of generation c->route_gen, so the grouping
 * made for an earlier product of this routing is reused. Measured on an H100 with the
 * Qwen3-30B-A3B shapes (test_cuda_moe --bench and pp512, bench/results/cuda-moe-prefill.txt):
 * - token tile: a weight tile is dequantized once per token tile, which costs more than the
 *   tensor-core work a half-empty tile wastes, so tiles are 64 pairs from 8 pairs per expert
 *   (32 pairs per expert: pp512 7100 t/s with 32-pair tiles, 9000 with 64); 48 and 128 were
 *   no better (run 2);
 * - 8 warps (two across the tokens) beat 4: Q4_K gate 326 -> 248 us at 512 tokens (run 3);
 * - pipelined stages help Q4_K (248 -> 241 us; down 271 -> 231) but slow Q6_K (372 -> 467), so
 *   only Q4_K takes them. */
lc_status lc_cu_experts_mma(lc_cuda *c, const lc_weight *w, const uint8_t *wd, float *out, const float *x,
                            bool x_per_pair, const int32_t *ids_dev, bool routed, int n_pairs, int k) {
    const int n_expert = (int)w->n_expert;
    int mode = lc_cu_moe_mode(c);
    int bm = mode == LC_CU_MOE_32 ? 32 : mode >= LC_CU_MOE_64 || n_pairs >= 8 * n_expert ? 64 : 32;
    bool pipe = mode == LC_CU_MOE_64WP || (mode != LC_CU_MOE_64W && w->type == LC_TYPE_Q4_K);
    size_t max_tiles = (size_t)n_pairs / bm + 1 + (size_t)LC_MIN(n_expert, n_pairs);
    size_t tiles_off = 16, pairs_off = tiles_off + max_tiles * sizeof(int4);
    bool hit = routed && c->moe_ok && c->moe_ids == ids_dev && c->moe_gen == c->route_gen && c->moe_n == n_pairs &&
               c->moe_ne == n_expert && c->moe_bm == bm;
    uint8_t *g = (uint8_t *)c->moe_dev;
    if (!hit) {
        lc_status st;
        c->moe_ok = false;
        if ((st = lc_cu_grow(c, &c->moe_dev, &c->moe_bytes, pairs_off + (size_t)n_pairs * 4))) return st;
        g = (uint8_t *)c->moe_dev;
        cu_k(c, k_moe_group, 1, GRP_THREADS, ids_dev, n_pairs, n_expert, bm, (int *)g, (int4 *)(g + tiles_off),
             (int32_t *)(g + pairs_off));
        if ((st = CU_LAUNCH(c))) return st;
        c->moe_ok = routed;
        c->moe_ids = ids_dev;
        c->moe_gen = c->route_gen;
        c->moe_n = n_pairs;
        c->moe_ne = n_expert;
        c->moe_bm = bm;
    }
    dim3 grid((unsigned)max_tiles, (unsigned)((w->rows + XM_BN - 1) / XM_BN));
    const int *nt = (const int *)g;
    const int4 *tiles = (const int4 *)(g + tiles_off);
    const int32_t *pairs = (const int32_t *)(g + pairs_off);
    int x_div = x_per_pair ? 1 : k;
#define L(T, BM, WM, P)                                                                                        \
    cu_k(c, k_moe_mma<T, BM, WM, P>, grid, 32 * XM_WARPS_N * WM, wd, w->row_bytes, w->expert_bytes, (int)w->rows, \
         (int)w->cols, x, x_div, nt, tiles, pairs, out)
#define L32(T) L(T, 32, 1, false)
#define L64(T) L(T, 64, 2, false)
#define L64P(T) L(T, 64, 2, true)
    if (bm == 32) {
        LC_CU_DISPATCH((int)w->type, L32);
    } else if (pipe) {
        LC_CU_DISPATCH((int)w->type, L64P);
    } else {
        LC_CU_DISPATCH((int)w->type, L64);
    }
#undef L32
#undef L64
#undef L64P
#undef L
    return CU_LAUNCH(c);
}

/* Whether lc_cu_experts_mma takes this product of weight w at wd (the caller has checked the type
 * and cols % 8). */
bool lc_cu_experts_mma_ok(lc_cuda *c, const lc_weight *w, const uint8_t *wd) {
    if (w->type == LC_TYPE_Q4_K && (((uintptr_t)wd | w->row_bytes) & 15)) return false; /* deq8_q4k's loads */
    return lc_cu_moe_mode(c) != LC_CU_MOE_OLD && w->n_expert <= GRP_MAX_EXPERT;
}
