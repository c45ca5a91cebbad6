/* attn.cu — attention over the paged KV cache on the GPU, and writing K/V into it (f16, q8_0,
 * q4_0 caches).
 *
 * Two kernels, chosen per call:
 * - Tensor cores (f16 cache, head_dim 64 or 128): a block takes 64 query rows that share one KV
 *   head (the group's query heads x up to 64 / group consecutive tokens of one sequence) and walks
 *   32-position tiles of K and V staged in shared memory, the next tile copied (cp.async) while the
 *   current one is multiplied (LOCARA_CUDA_FA=1: 64-position tiles, one buffer): S = Q K^T and
 *   O += P V on mma.sync m16n8k16 (f16 inputs, f32 accumulation), online softmax in registers.
 *   K and V are read once
 *   per group of query heads and per 64 tokens, so prefill at depth runs on the tensor cores and
 *   decode reads the cache once per KV head. Long ranges are split (flash decoding). When every
 *   tile holds at most 16 valid rows (decode), a variant gives the four warps the same 16 rows
 *   and a quarter of each tile's positions each (64-position tiles for head 64, 32 for head
 *   128), and merges their softmax states at the end (LOCARA_CUDA_FA=3: mode 2 without it). With
 *   split ranges, the kernel after them is let in only at their exit (programmatic launch).
 * - Otherwise (q8_0 / q4_0 caches, other head sizes, LOCARA_CUDA_FA=0): split-K flash decoding
 *   on the CUDA cores. The grid is (query head, token, split); each block of 4 warps walks one
 *   contiguous range of its token's positions, a warp per position at a time: the q.k score is a
 *   warp reduction (AT_ILP positions at once), the running maximum, sum and the V accumulator
 *   (D/32 elements per lane) are updated online.
 * Both leave (max, sum, acc) per split; a second kernel merges the splits. The split count is
 * chosen so the chip stays full at batch one. The batch (positions, slots, runs of tokens sharing
 * a block table, the tables) arrives packed in one upload.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/quant_dev.cuh"

#include <math.h>
#include <string.h>

#define AT_WARPS 4
#define AT_MAX_PER_LANE 8 /* head_dim <= 256 */
#define AT_SPLIT_MIN 256  /* positions per split at least */
#define AT_ILP 4          /* positions a warp walks at once */

/* ==== Packing the batch ==== */

/* Packs pos, slot, table offsets, the runs of consecutive tokens sharing a block table and the
 * block tables of b into one int array and mirrors it on the device; tokens of one sequence
 * (same table pointer) share one copy of the table. Layout:
 * [pos T][slot T][off T][n_runs][runs: (first token, count) x T][tables]. */
#define PK_RUNS(T) (3 * (T))

static const int32_t *upload_batch(lc_cuda *c, const lc_attn_batch *b, int block_tokens, int *max_pos) {
    int T = b->n_tokens;
    size_t need = 5 * (size_t)T + 1;
    int mp = 0;
    /* size of the tables: per run of tokens sharing a table, the longest one */
    for (int t = 0; t < T;) {
        int u = t, m = 0;
        for (; u < T && b->block_table[u] == b->block_table[t]; u++) m = LC_MAX(m, b->pos[u]);
        need += (size_t)(m / block_tokens + 1);
        mp = LC_MAX(mp, m);
        t = u;
    }
    /* the upload's length rounded up (zeros): it changes every few hundred positions rather than
     * every block, and a recorded step with the same length stays valid */
    const size_t padded = (need + 255) / 256 * 256;
    if (!lc_grow((void **)&c->attn_host, sizeof(int32_t), &c->attn_host_cap, padded)) {
        c->err = LC_ERR_OOM;
        return NULL;
    }
    int32_t *h = c->attn_host;
    memcpy(h, b->pos, (size_t)T * 4);
    memcpy(h + T, b->slot, (size_t)T * 4);
    size_t at = 5 * (size_t)T + 1;
    int32_t *runs = h + PK_RUNS(T);
    runs[0] = 0;
    for (int t = 0; t < T;) {
        int u = t, m = 0;
        for (; u < T && b->block_table[u] == b->block_table[t]; u++) m = LC_MAX(m, b->pos[u]);
        int nb = m / block_tokens + 1;
        memcpy(h + at, b->block_table[t], (size_t)nb * 4);
        for (int v = t; v < u; v++) h[2 * T + v] = (int32_t)at;
        runs[1 + 2 * runs[0]] = t;
        runs[2 + 2 * runs[0]] = u - t;
        runs[0]++;
        at += (size_t)nb;
        t = u;
    }
    memset(runs + 1 + 2 * runs[0], 0, (size_t)(T - runs[0]) * 8);
    memset(h + at, 0, (padded - at) * 4); /* at == need */
    *max_pos = mp;
    return lc_cu_upload(c, SLOT_ATTN, h, padded);
}

/* ==== Store ==== */

/* f16 cache: one thread per element, K and V in one launch (blockIdx.y: 0 = K, 1 = V). */
__global__ void k_store_f16(const float *xk, const float *xv, const int32_t *pk, int T, int width, size_t row_bytes,
                            uint8_t *ck, uint8_t *cv) {
    cu_pdl_entry();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * width) return;
    const float *x = blockIdx.y ? xv : xk;
    int t = (int)(i / width), e = (int)(i % width);
    __half *row = (__half *)((blockIdx.y ? cv : ck) + (size_t)pk[T + t] * row_bytes);
    row[e] = __float2half_rn(x[i]);
}

/* q8_0 / q4_0 cache: one warp per block of 32 elements, quantized as the CPU backend's kv_store does
 * (q8_0: its activation quantizer, the multiplier cu_q8_mul, d = amax / 127; q4_0: the reference
 * quantizer). */
__global__ void k_store_q(const float *x, const int32_t *pk, int T, int width, size_t row_bytes, int type,
                          uint8_t *cache) {
    cu_pdl_entry();
    size_t wid = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31, nb = width / 32;
    if (wid >= (size_t)T * nb) return;
    int t = (int)(wid / nb), blk = (int)(wid % nb);
    float v = x[(size_t)t * width + blk * 32 + lane];
    uint8_t *row = cache + (size_t)pk[T + t] * row_bytes;
    if (type == LC_TYPE_Q8_0) {
        float amax = fabsf(v);
        for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        uint8_t *bp = row + blk * 34;
        if (lane == 0) *(__half *)bp = __float2half_rn(amax / 127.0f); /* row_bytes are even: 2-byte aligned */
        ((int8_t *)bp)[2 + lane] = (int8_t)__float2int_rn(v * cu_q8_mul(amax));
    } else {
        /* q4_0: the element of largest magnitude (first on ties) maps to -8 */
        float amax = fabsf(v), mx = v;
        int who = lane;
        for (int o = 16; o > 0; o >>= 1) {
            float a2 = __shfl_xor_sync(0xffffffffu, amax, o), m2 = __shfl_xor_sync(0xffffffffu, mx, o);
            int w2 = __shfl_xor_sync(0xffffffffu, who, o);
            if (a2 > amax || (a2 == amax && w2 < who)) {
                amax = a2;
                mx = m2;
                who = w2;
            }
        }
        float d = mx / -8, id = d != 0.0f ? 1.0f / d : 0.0f;
        int q = min(15, (int)(int8_t)(v * id + 8.5f));
        int hi = __shfl_down_sync(0xffffffffu, q, 16);
        uint8_t *bp = row + blk * 18;
        if (lane == 0) *(__half *)bp = __float2half_rn(d);
        if (lane < 16) bp[2 + lane] = (uint8_t)(q | (hi << 4));
    }
}

void lc_cu_kv_store(lc_backend *be, lc_kv *kv, int il, const float *k, const float *v,
                               const lc_attn_batch *b) {
    lc_cuda *c = cu_of(be);
    if (c->err) return;
    int mp;
    const int32_t *pk = upload_batch(c, b, kv->block_tokens, &mp);
    if (!pk) return;
    int T = b->n_tokens, width = kv->n_kv_head * kv->head_dim;
    size_t n = (size_t)T * width;
    if (lc_cu_rope_store(c, k, v, pk, T, kv, il)) return; /* with the RoPE of k held back */
    if (kv->type == LC_TYPE_F16) {
        cu_k(c, k_store_f16, dim3((unsigned)((n + 255) / 256), 2), 256, k, v, pk, T, width, kv->row_bytes,
                                                                                 kv->k[il], kv->v[il]);
    } else {
        cu_k(c, k_store_q, (unsigned)((n + 255) / 256), 256, k, pk, T, width, kv->row_bytes, kv->type, kv->k[il]);
        cu_k(c, k_store_q, (unsigned)((n + 255) / 256), 256, v, pk, T, width, kv->row_bytes, kv->type, kv->v[il]);
    }
    CU_LAUNCH(c);
}

/* ==== Attention ==== */

/* Where an attention kernel also leaves its output's q8 form (T rows of n_head heads of D) for the
 * output projection, which then quantizes nothing: the scratch (lc_cu_fused_q8), or NULL
 * (LOCARA_CUDA_ATTN_Q8=0, or heads that are not whole q8 blocks). */
static int8_t *attn_q8(lc_cuda *c, int T, int n_head, int D, float2 **dq) {
    *dq = NULL;
    return c->attn_q8 && D % 32 == 0 ? lc_cu_fused_q8(c, T, (size_t)n_head * D, dq) : NULL;
}

/* Element d of a cached head (f16, q8_0 or q4_0). */
__device__ __forceinline__ float kv_elem(const uint8_t *head, int type, int d) {
    if (type == LC_TYPE_F16) return __half2float(((const __half *)head)[d]);
    if (type == LC_TYPE_Q8_0) {
        const uint8_t *bp = head + (d >> 5) * 34;
        return __half2float(*(const __half *)bp) * (float)((const int8_t *)bp)[2 + (d & 31)];
    }
    const uint8_t *bp = head + (d >> 5) * 18;
    int e = d & 31;
    int q = e < 16 ? (bp[2 + e] & 15) : (bp[2 + e - 16] >> 4);
    return __half2float(*(const __half *)bp) * (float)(q - 8);
}

typedef struct at_args {
    const float *q;
    const uint8_t *k, *v;
    const int32_t *pk; /* packed batch */
    float *part;       /* (T, n_head, n_split, AT_WARPS) x (D + 2) */
    float *out;        /* (T, n_head, D): k_attn_exact's output */
    int8_t *q8;        /* k_attn_exact: and its q8 form (cu_q8_block), or NULL */
    float2 *dq8;
    int T, n_head, n_kv_head, D, BT, type, n_split;
    size_t row_bytes, head_bytes;
    float scale;
} at_args;

__global__ void __launch_bounds__(32 * AT_WARPS) k_attn(at_args a) {
    cu_pdl_entry();
    int h = blockIdx.x, t = blockIdx.y, s = blockIdx.z, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int g = h / (a.n_head / a.n_kv_head);
    int pos = a.pk[t];
    const int32_t *table = a.pk + a.pk[2 * a.T + t];
    /* the split length follows from the batch's longest context, computed here rather than on
     * the host so that a recorded step stays valid while positions advance */
    int len = 0;
    for (int u = 0; u < a.T; u++) len = max(len, a.pk[u] + 1);
    const int chunk = (len + a.n_split - 1) / a.n_split;
    int p0 = s * chunk, p1 = min(pos + 1, p0 + chunk);
    float q[AT_MAX_PER_LANE], acc[AT_MAX_PER_LANE];
    const float *qh = a.q + ((size_t)t * a.n_head + h) * a.D;
#pragma unroll
    for (int i = 0; i < AT_MAX_PER_LANE; i++) {
        int d = lane + 32 * i;
        q[i] = d < a.D ? qh[d] * a.scale : 0.0f;
        acc[i] = 0.0f;
    }
    /* AT_ILP positions per warp step: their table entries, K and V rows are all loaded before the
     * first reduction, so a warp has AT_ILP times the loads in flight (the walk is latency-bound).
     * Positions past p1 read a valid row (p1 - 1) and get weight zero. */
    float m = -INFINITY, l = 0.0f;
    for (int pb = p0 + warp * AT_ILP; pb < p1; pb += AT_WARPS * AT_ILP) {
        const uint8_t *kh[AT_ILP], *vh[AT_ILP];
#pragma unroll
        for (int j = 0; j < AT_ILP; j++) {
            const int p = min(pb + j, p1 - 1);
            const size_t row = (size_t)table[p / a.BT] * a.BT + p % a.BT;
            kh[j] = a.k + row * a.row_bytes + (size_t)g * a.head_bytes;
            vh[j] = a.v + row * a.row_bytes + (size_t)g * a.head_bytes;
        }
        float sc[AT_ILP], vv[AT_ILP][AT_MAX_PER_LANE];
#pragma unroll
        for (int j = 0; j < AT_ILP; j++) {
            sc[j] = 0.0f;
#pragma unroll
            for (int i = 0; i < AT_MAX_PER_LANE; i++) {
                const int d = lane + 32 * i;
                if (d < a.D) {
                    sc[j] += q[i] * kv_elem(kh[j], a.type, d);
                    vv[j][i] = kv_elem(vh[j], a.type, d);
                }
            }
        }
        float mn = m;
#pragma unroll
        for (int j = 0; j < AT_ILP; j++) {
            sc[j] = cu_warp_sum(sc[j]);
            if (pb + j >= p1) sc[j] = -INFINITY;
            mn = fmaxf(mn, sc[j]);
        }
        const float corr = __expf(m - mn);
        float pw[AT_ILP];
        l *= corr;
#pragma unroll
        for (int j = 0; j < AT_ILP; j++) {
            pw[j] = __expf(sc[j] - mn);
            l += pw[j];
        }
#pragma unroll
        for (int i = 0; i < AT_MAX_PER_LANE; i++) {
            const int d = lane + 32 * i;
            if (d < a.D) {
                float x = acc[i] * corr;
#pragma unroll
                for (int j = 0; j < AT_ILP; j++) x += pw[j] * vv[j][i];
                acc[i] = x;
            }
        }
        m = mn;
    }
    float *o = a.part + ((((size_t)t * a.n_head + h) * a.n_split + s) * AT_WARPS + warp) * (a.D + 2);
#pragma unroll
    for (int i = 0; i < AT_MAX_PER_LANE; i++) {
        int d = lane + 32 * i;
        if (d < a.D) o[d] = acc[i];
    }
    if (lane == 0) {
        o[a.D] = m;
        o[a.D + 1] = l;
    }
}

/* Merges the n_part partial results of each (token, head): one block of AM_THREADS threads, with
 * late the kernel after it let in only at its exit. The maximum first (each thread a strided share
 * of the parts), then, a chunk of AM_CHUNK parts at a time, each part's factor exp(m - M) into shared
 * memory (a thread a part, its l weighted into the thread's share of the denominator), and thread d
 * adds element d of every part of the chunk, loads independent of one another. (One part at a time,
 * a chain of n_part dependent round trips, it took longer than the split attention at depth.) With
 * q8, the output's q8 form too (cu_q8_block: a warp's 32 elements are one block), for Wo. */
#define AM_THREADS 128
#define AM_CHUNK 256
__global__ void __launch_bounds__(AM_THREADS) k_attn_merge(const float *part, float *out, int n_part, int D, int late,
                                                             int8_t *q8, float2 *dq8) {
    cu_pdl_wait();
    if (!late) cu_pdl_trigger();
    __shared__ float fs[AM_CHUNK], red[AM_THREADS / 32];
    const size_t th = (size_t)blockIdx.y * gridDim.x + blockIdx.x; /* t * n_head + h */
    const float *pp = part + th * n_part * (D + 2);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float M = -INFINITY;
    for (int i = threadIdx.x; i < n_part; i += AM_THREADS) M = fmaxf(M, pp[(size_t)i * (D + 2) + D]);
    M = cu_block_max(M, red);
    float den = 0.0f, num[AT_MAX_PER_LANE * 32 / AM_THREADS];
#pragma unroll
    for (int k = 0; k < AT_MAX_PER_LANE * 32 / AM_THREADS; k++) num[k] = 0.0f;
    for (int c0 = 0; c0 < n_part; c0 += AM_CHUNK) {
        const int n = min(AM_CHUNK, n_part - c0);
        __syncthreads(); /* the chunk before is read */
        for (int i = threadIdx.x; i < n; i += AM_THREADS) {
            const float *pi = pp + (size_t)(c0 + i) * (D + 2);
            const float mi = pi[D], f = mi == -INFINITY ? 0.0f : __expf(mi - M);
            fs[i] = f;
            den += f * pi[D + 1];
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < AT_MAX_PER_LANE * 32 / AM_THREADS; k++) {
            const int d = threadIdx.x + AM_THREADS * k;
            if (d >= D) break;
            float acc = num[k];
#pragma unroll 8
            for (int i = 0; i < n; i++) acc += fs[i] * pp[(size_t)(c0 + i) * (D + 2) + d];
            num[k] = acc;
        }
    }
    __syncthreads();
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) den += __shfl_xor_sync(0xffffffffu, den, o);
    if (lane == 0) red[warp] = den;
    __syncthreads();
    den = 0.0f;
#pragma unroll
    for (int w = 0; w < AM_THREADS / 32; w++) den += red[w];
#pragma unroll
    for (int k = 0; k < AT_MAX_PER_LANE * 32 / AM_THREADS; k++) {
        const int d = threadIdx.x + AM_THREADS * k;
        if (d >= D) break; /* warp-uniform: D is a multiple of 32 */
        const float r = den > 0.0f ? num[k] / den : 0.0f;
        out[th * D + d] = r;
        if (q8) cu_q8_block(r, q8 + th * D + (d & ~31), dq8 + (th * D + d) / 32); /* a warp, a block */
    }
}

/* ==== Short contexts in the CPU backend's arithmetic (f16 cache) ==== */

#define AX_MAX_POS (LC_ATTN_SPLIT * LC_ATTN_BT) /* the most positions a token attends to here: the CPU's unsplit decode token */
#define AX_MAX_TOK 32   /* the most tokens of a batch here: longer prompts take the tensor cores (their
                         * products take f16 tiles too, matmul.cu) */
#define AX_THREADS 256

__device__ __forceinline__ float round16(float x) { return __half2float(__float2half_rn(x)); }

/* The CPU's (lc_vec_tree16: GCC's _mm512_reduce_add_ps) sum of 16 floats. */
__device__ __forceinline__ float tree16(const float *a) {
    float t3[8], t6[4];
#pragma unroll
    for (int k = 0; k < 8; k++) t3[k] = __fadd_rn(a[8 + k], a[k]);
#pragma unroll
    for (int k = 0; k < 4; k++) t6[k] = __fadd_rn(t3[4 + k], t3[k]);
    return __fadd_rn(__fadd_rn(t6[0], t6[2]), __fadd_rn(t6[1], t6[3]));
}

/* Element d of a row of D halves held as D / 8 uint4s (d a compile-time constant after unrolling). */
template <int D>
__device__ __forceinline__ float half_at(const uint4 *r, int d) {
    const uint4 u = r[d / 8];
    const int k = (d % 8) / 2;
    const uint32_t w = k == 0 ? u.x : k == 1 ? u.y : k == 2 ? u.z : u.w;
    return __half2float(__ushort_as_half((uint16_t)(d % 2 ? w >> 16 : w & 0xFFFF)));
}

/* One (query head, token) a block, over the token's positions (at most AX_MAX_POS), in the CPU
 * backend's arithmetic for unsplit tiles with an f16 cache (attn.c attend_tile_g, vec.h's "_g"
 * entries: llama.cpp's attention without flash attention, ggml's AVX-512 orders), bit for bit:
 * q rounded to f16; a key's score the dot of its K row with q in LANES lanes (64: lane r sums
 * terms r, r + 64, ... by FMA, lanes folded (r + r+32) + (r+16 + r+48), then the 16-tree; 16:
 * lane r sums terms r, r + 16, ..., then the tree), times scale; exps by cu_gexp; their sum in
 * double over 16-key chunks, each chunk's tree first; probabilities f16(e * (float)(1 / sum));
 * output d the sum over LANES lanes of FMA chains, lane L taking the keys j = L (mod LANES) in
 * order, folded as the scores' lanes. LANES 64 for a batch of one token, 16 for more, as the CPU
 * chooses (ggml_vec_dot_f16 / tinyBLAS). A thread scores a key at a time; the chains of (lane,
 * element) pairs are spread over the threads. With a.q8 the output's q8 form too (cu_q8_block),
 * which the output projection reads instead of quantizing it in a launch of its own. */
template <int D, int LANES>
__global__ void __launch_bounds__(AX_THREADS) k_attn_exact(at_args a) {
    cu_pdl_entry();
    __shared__ float qs[D], sc[AX_MAX_POS], csum[AX_MAX_POS / 16], acc[LANES][D], red[AX_THREADS / 32];
    __shared__ int32_t rows[AX_MAX_POS]; /* each key's cache row */
    __shared__ float inv_s;
    const int h = blockIdx.x, t = blockIdx.y;
    const int g = h / (a.n_head / a.n_kv_head), n = a.pk[t] + 1;
    const int32_t *table = a.pk + a.pk[2 * a.T + t];
    const float *qh = a.q + ((size_t)t * a.n_head + h) * D;
    const uint8_t *kb = a.k + (size_t)g * a.head_bytes, *vb = a.v + (size_t)g * a.head_bytes;
    for (int d = threadIdx.x; d < D; d += AX_THREADS) qs[d] = round16(qh[d]);
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += AX_THREADS) {
        const int32_t row = table[j / a.BT] * a.BT + j % a.BT;
        rows[j] = row;
        const uint4 *kp = (const uint4 *)(kb + (size_t)row * a.row_bytes);
        uint4 kr[D / 8];
#pragma unroll
        for (int i = 0; i < D / 8; i++) kr[i] = kp[i];
        float v[16];
#pragma unroll
        for (int l = 0; l < 16; l++) {
            if (LANES == 64) {
                float c[4] = {0.0f, 0.0f, 0.0f, 0.0f}; /* lanes l, l + 16, l + 32, l + 48 */
#pragma unroll
                for (int d0 = 0; d0 < D; d0 += 64)
#pragma unroll
                    for (int m = 0; m < 4; m++) c[m] = fmaf(half_at<D>(kr, d0 + l + 16 * m), qs[d0 + l + 16 * m], c[m]);
                v[l] = __fadd_rn(__fadd_rn(c[0], c[2]), __fadd_rn(c[1], c[3]));
            } else {
                float c = 0.0f;
#pragma unroll
                for (int d = l; d < D; d += 16) c = fmaf(half_at<D>(kr, d), qs[d], c);
                v[l] = c;
            }
        }
        const float x = __fmul_rn(tree16(v), a.scale);
        sc[j] = x;
        mx = fmaxf(mx, x);
    }
    mx = cu_block_max(mx, red);
    const int nc = (n + 15) / 16; /* 16-key chunks; keys past n count as 0, as the CPU's masked ones */
    for (int j = threadIdx.x; j < 16 * nc; j += AX_THREADS) sc[j] = j < n ? cu_gexp(__fsub_rn(sc[j], mx)) : 0.0f;
    __syncthreads();
    for (int ci = threadIdx.x; ci < nc; ci += AX_THREADS) csum[ci] = tree16(sc + 16 * ci);
    __syncthreads();
    if (threadIdx.x == 0) {
        double sum = 0.0;
        for (int ci = 0; ci < nc; ci++) sum += (double)csum[ci];
        inv_s = (float)(1.0 / sum);
    }
    __syncthreads();
    const float inv = inv_s;
    for (int j = threadIdx.x; j < n; j += AX_THREADS) sc[j] = round16(__fmul_rn(sc[j], inv));
    __syncthreads();
    /* P.V: thread (part, d) holds the chains of lanes part * LP .. + LP - 1 of element d, each over
     * its keys in order (a key's V row is read by consecutive threads) */
    constexpr int PARTS = AX_THREADS / D, LP = LANES / PARTS;
    static_assert(LANES % PARTS == 0, "lanes split evenly");
    {
        const int d = threadIdx.x % D, part = threadIdx.x / D;
        float c[LP];
#pragma unroll
        for (int k = 0; k < LP; k++) c[k] = 0.0f;
        for (int j0 = part * LP; j0 < n; j0 += LANES) {
#pragma unroll
            for (int k = 0; k < LP; k++) {
                const int j = j0 + k;
                if (j < n) c[k] = fmaf(sc[j], __half2float(((const __half *)(vb + (size_t)rows[j] * a.row_bytes))[d]), c[k]);
            }
        }
#pragma unroll
        for (int k = 0; k < LP; k++) acc[part * LP + k][d] = c[k];
    }
    __syncthreads();
    const size_t base = ((size_t)t * a.n_head + h) * D;
    if (threadIdx.x < D) { /* whole warps (D a multiple of 32): the q8 blocks are theirs */
        const int d = threadIdx.x;
        float v[16];
#pragma unroll
        for (int l = 0; l < 16; l++)
            v[l] = LANES == 64 ? __fadd_rn(__fadd_rn(acc[l][d], acc[l + 32][d]), __fadd_rn(acc[l + 16][d], acc[l + 48][d]))
                               : acc[l][d];
        const float r = tree16(v);
        a.out[base + d] = r;
        if (a.q8) cu_q8_block(r, a.q8 + base + (d & ~31), a.dq8 + (base + d) / 32);
    }
}

/* Whether the CPU backend computes every token of b in its llama.cpp arithmetic (attn.c: f16
 * cache, AVX-512 tables): every tile of b (backend.h's rule) unsplit, its scores in the score
 * cache. Then the GPU follows it (k_attn_exact), else it takes its own kernels. */
static bool cpu_arith(const lc_attn_batch *b, int G) {
    for (int t = 0, nq; t < b->n_tokens; t += nq) {
        nq = lc_attn_run(b, t);
        const int nb = (b->pos[t] + nq - 1) / LC_ATTN_BT + 1;
        if (lc_attn_split(nq, nb) || !lc_attn_scores_fit(nb, nq * G)) return false;
    }
    return true;
}

/* ==== Tensor-core attention (f16 cache) ==== */

#define FA_ROWS 64       /* query rows per block (token x query head of one KV head): 4 warps x 16 */
#define FA_PAD 8         /* halves of padding per staged row: conflict-free fragment loads */
#define FA_SPLIT_MIN 128 /* positions per split at least */

typedef struct fa_args {
    const float *q;
    const uint8_t *k, *v;
    const int32_t *pk; /* packed batch */
    float *out, *part; /* part: (T, n_head, n_split) x (D + 2) when n_split > 1 */
    int T, n_head, G, TQ, n_split, BT;
    size_t row_bytes, head_bytes;
    float scale_log2; /* softmax scale x log2(e): scores are kept in base 2 */
    int late;         /* the kernel after it is let in only at its exit (no cu_pdl_trigger) */
    int8_t *q8;       /* k_fattn_dec unsplit: the output's q8 form too (fa_q8_row), or NULL */
    float2 *dq8;
} fa_args;

/* The q8 form of one output row of D floats held by the 8 neighbouring lanes sub = lane % 8, lane
 * sub holding columns 2 sub + 16 k, + 1 in r[k] (k_fattn_dec's final layout): q8 block b is
 * r[2b], r[2b + 1] of all 8 lanes (cu_q8_quad). */
template <int D>
__device__ __forceinline__ void fa_q8_row(const float2 *r, int sub, int8_t *q, float2 *dq) {
    const unsigned grp = 0xffu << (threadIdx.x & 24); /* the row's lanes: the rows past n_rows left whole */
#pragma unroll
    for (int b = 0; b < D / 32; b++) {
        float2 ds;
        const char4 c = cu_q8_quad(make_float4(r[2 * b].x, r[2 * b].y, r[2 * b + 1].x, r[2 * b + 1].y), grp, &ds);
        *(char2 *)(q + 32 * b + 2 * sub) = make_char2(c.x, c.y);
        *(char2 *)(q + 32 * b + 16 + 2 * sub) = make_char2(c.z, c.w);
        if (sub == 0) dq[b] = ds;
    }
}

__device__ __forceinline__ uint32_t fa_pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *(const uint32_t *)&h;
}

/* c (16x8, f32) += a (16x16, f16, row-major fragments) * b (16x8, f16, column fragments). */
__device__ __forceinline__ void fa_mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* c (16x8, f32) += a (16x8, f16, row-major fragments) * b (8x8, f16, column fragment). */
__device__ __forceinline__ void fa_mma8(float *c, uint32_t a0, uint32_t a1, uint32_t b) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(b));
}

/* 16 bytes global -> shared without passing through registers (cp.async); bytes 0 fills zeros. */
__device__ __forceinline__ void fa_cp16(void *dst, const void *src, int bytes) {
    unsigned addr = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(bytes));
}

/* Four 8x8 f16 matrices from shared memory, transposed: lane i names row i % 8 of matrix i / 8. */
__device__ __forceinline__ void fa_ldmatrix_t(uint32_t *r, const __half *row) {
    unsigned addr = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* ==== Tensor-core attention: the steps both kernels (full and decode) share ==== */

/* The tile of this block: TQ consecutive tokens of one run (tokens sharing a block table), t0
 * and nt of them, their block table, and the positions [lo, hi) of split blockIdx.z (chunks of
 * whole KT tiles). False, uniform over the block, when the block has no tile. */
template <int KT>
__device__ __forceinline__ bool fa_tile(const fa_args &a, int *t0, int *nt, const int32_t **table, int *lo, int *hi) {
    const int32_t *runs = a.pk + PK_RUNS(a.T);
    int tile = blockIdx.x;
    *t0 = 0, *nt = 0;
    for (int r = 0; r < runs[0]; r++) {
        const int cnt = runs[2 + 2 * r], n_tiles = (cnt + a.TQ - 1) / a.TQ;
        if (tile < n_tiles) {
            *t0 = runs[1 + 2 * r] + tile * a.TQ;
            *nt = min(a.TQ, cnt - tile * a.TQ);
            break;
        }
        tile -= n_tiles;
    }
    if (*nt == 0) return false;
    *table = a.pk + a.pk[2 * a.T + *t0];
    int len = 0;
    for (int t = 0; t < *nt; t++) len = max(len, a.pk[*t0 + t] + 1);
    const int chunk = ((len + a.n_split - 1) / a.n_split + KT - 1) / KT * KT;
    *lo = blockIdx.z * chunk;
    *hi = min(len, *lo + chunk);
    return true;
}

/* Rows r0 + g and r0 + g + 8 of the tile (g = lane / 4, qc = lane % 4): their token, query head,
 * position (-1 past the tile) and whether they are real, and their Q fragments scaled into base 2,
 * as f16 (zero for rows past the tile). */
template <int D>
__device__ __forceinline__ void fa_rows(const fa_args &a, int kvh, int t0, int nt, int r0, int g, int qc, int tok[2],
                                        int head[2], int rpos[2], bool valid[2], uint32_t (*qa)[4]) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int r = r0 + g + 8 * i, ti = r / a.G;
        valid[i] = ti < nt;
        tok[i] = t0 + ti;
        head[i] = kvh * a.G + r % a.G;
        rpos[i] = valid[i] ? a.pk[tok[i]] : -1;
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
        for (int i = 0; i < 2; i++) {
            float2 x0 = make_float2(0.0f, 0.0f), x1 = x0;
            if (valid[i]) {
                const float *qr = a.q + ((size_t)tok[i] * a.n_head + head[i]) * D + 16 * kk + 2 * qc;
                x0 = *(const float2 *)qr;
                x1 = *(const float2 *)(qr + 8);
            }
            qa[kk][i] = fa_pack(x0.x * a.scale_log2, x0.y * a.scale_log2);
            qa[kk][2 + i] = fa_pack(x1.x * a.scale_log2, x1.y * a.scale_log2);
        }
    }
}

/* K and V rows p0 .. p0 + KT - 1 of KV head kvh into ks, vs (zeros past hi: a masked weight times
 * a stale row could make NaN), every copy in flight at once (cp.async, one commit group). */
template <int D, int KT>
__device__ __forceinline__ void fa_stage(const fa_args &a, const int32_t *table, int kvh, int p0, int hi,
                                         __half (*ks)[D + FA_PAD], __half (*vs)[D + FA_PAD]) {
    for (int i = threadIdx.x; i < KT * (D / 8); i += 32 * 4) {
        const int rr = i / (D / 8), cc = i % (D / 8), p = p0 + rr;
        size_t off = 0;
        if (p < hi)
            off = ((size_t)table[p / a.BT] * a.BT + p % a.BT) * a.row_bytes + (size_t)kvh * a.head_bytes +
                  (size_t)cc * 16;
        fa_cp16(&ks[rr][cc * 8], a.k + off, p < hi ? 16 : 0);
        fa_cp16(&vs[rr][cc * 8], a.v + off, p < hi ? 16 : 0);
    }
    asm volatile("cp.async.commit_group;\n" ::);
}

/* S = Q K^T for NJ column tiles of 8 positions, the K rows kt[0 .. 8 NJ - 1]. */
template <int NJ, int D>
__device__ __forceinline__ void fa_scores(float (*sc)[4], const uint32_t (*qa)[4], const __half (*kt)[D + FA_PAD],
                                          int g, int qc) {
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const __half *kr = &kt[8 * j + g][16 * kk + 2 * qc];
            fa_mma(sc[j], qa[kk], *(const uint32_t *)kr, *(const uint32_t *)(kr + 8));
        }
    }
}

/* One online-softmax step over the NJ score tiles of positions p0 ..: the causal mask and the
 * positions past hi to -inf, the running maximum m (base 2) and sum l updated and o rescaled, and
 * sc turned into the step's weights exp2(s - m). */
template <int NJ, int D>
__device__ __forceinline__ void fa_softmax(float (*sc)[4], int p0, int qc, const int rpos[2], int hi, float m[2],
                                           float l[2], float (*o)[4]) {
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int j = 0; j < NJ; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int i = e >> 1, p = p0 + 8 * j + 2 * qc + (e & 1);
            if (p > rpos[i] || p >= hi) sc[j][e] = -INFINITY;
            mx[i] = fmaxf(mx[i], sc[j][e]);
        }
    float base[2], corr[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        base[i] = mx[i] == -INFINITY ? 0.0f : mx[i]; /* a row with nothing visible yet */
        corr[i] = exp2f(m[i] - base[i]);
        m[i] = mx[i];
        l[i] *= corr[i];
    }
#pragma unroll
    for (int j = 0; j < NJ; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const float pw = exp2f(sc[j][e] - base[e >> 1]);
            l[e >> 1] += pw;
            sc[j][e] = pw;
        }
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        o[n][0] *= corr[0];
        o[n][1] *= corr[0];
        o[n][2] *= corr[1];
        o[n][3] *= corr[1];
    }
}

/* O += P V over 16 positions: the weights of two adjacent 8-position tiles s0, s1 are, as f16
 * pairs, the A fragment of m16n8k16; V's rows vt[0 .. 15] give the B fragments by transposed
 * ldmatrix (lane i names row i % 8 of matrix i / 8). */
template <int D>
__device__ __forceinline__ void fa_pv16(float (*o)[4], const float *s0, const float *s1, const __half (*vt)[D + FA_PAD],
                                        int lane) {
    const uint32_t pa[4] = {fa_pack(s0[0], s0[1]), fa_pack(s0[2], s0[3]), fa_pack(s1[0], s1[1]), fa_pack(s1[2], s1[3])};
    const int mi = lane >> 3, ri = lane & 7;
#pragma unroll
    for (int np = 0; np < D / 16; np++) {
        uint32_t b[4];
        fa_ldmatrix_t(b, &vt[(mi & 1) * 8 + ri][16 * np + (mi >> 1) * 8]);
        fa_mma(o[2 * np], pa, b[0], b[1]);
        fa_mma(o[2 * np + 1], pa, b[2], b[3]);
    }
}

/* A row's sum l over the 4 lanes of its quad. */
__device__ __forceinline__ void fa_quad_sum(float l[2]) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    }
}

/* Block (tile, KV head, split). Warp w owns rows 16w .. 16w+15; in the m16n8k16 fragments lane
 * (g = lane / 4, c = lane % 4) holds rows g and g + 8, columns 2c and 2c + 1 of each 8 wide
 * column tile, so a row's softmax statistics are reduced over the 4 lanes of its quad. The score
 * fragments of two adjacent 8-position tiles are, as f16 pairs, exactly the A fragment of the
 * 16-position step of P V. */
template <int D, int KT, int NBUF>
__global__ void __launch_bounds__(32 * 4) k_fattn(fa_args a) {
    cu_pdl_wait();
    if (!a.late) cu_pdl_trigger();
    __shared__ __align__(16) __half ks[NBUF][KT][D + FA_PAD];
    __shared__ __align__(16) __half vs[NBUF][KT][D + FA_PAD];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, qc = lane & 3;
    const int kvh = blockIdx.y, s = blockIdx.z;
    int t0, nt, lo, hi;
    const int32_t *table;
    if (!fa_tile<KT>(a, &t0, &nt, &table, &lo, &hi)) return; /* uniform over the block */
    int tok[2], head[2], rpos[2];
    bool valid[2];
    uint32_t qa[D / 16][4];
    fa_rows<D>(a, kvh, t0, nt, 16 * warp, g, qc, tok, head, rpos, valid, qa);
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    /* NBUF 2: the next tile is copied while this one is multiplied */
    if (lo < hi) fa_stage<D, KT>(a, table, kvh, lo, hi, ks[0], vs[0]);
    for (int p0 = lo, it = 0; p0 < hi; p0 += KT, it++) {
        const int cur = NBUF == 2 ? it & 1 : 0;
        if (NBUF == 2 && p0 + KT < hi) {
            fa_stage<D, KT>(a, table, kvh, p0 + KT, hi, ks[cur ^ 1], vs[cur ^ 1]);
            asm volatile("cp.async.wait_group 1;\n" ::);
        } else {
            asm volatile("cp.async.wait_group 0;\n" ::);
        }
        __syncthreads();
        float sc[KT / 8][4];
        fa_scores<KT / 8, D>(sc, qa, ks[cur], g, qc);
        fa_softmax<KT / 8, D>(sc, p0, qc, rpos, hi, m, l, o);
#pragma unroll
        for (int kk = 0; kk < KT / 16; kk++) fa_pv16<D>(o, sc[2 * kk], sc[2 * kk + 1], vs[cur] + 16 * kk, lane);
        __syncthreads(); /* every warp is done with buffer cur before it is filled again */
        if (NBUF == 1 && p0 + KT < hi) fa_stage<D, KT>(a, table, kvh, p0 + KT, hi, ks[0], vs[0]);
    }
    fa_quad_sum(l);
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (!valid[i]) continue;
        const size_t th = (size_t)tok[i] * a.n_head + head[i];
        if (a.n_split == 1) {
            const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
            float *op = a.out + th * D;
#pragma unroll
            for (int n = 0; n < D / 8; n++)
                *(float2 *)(op + 8 * n + 2 * qc) = make_float2(o[n][2 * i] * inv, o[n][2 * i + 1] * inv);
        } else {
            float *pp = a.part + (th * a.n_split + s) * (D + 2);
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                pp[8 * n + 2 * qc] = o[n][2 * i];
                pp[8 * n + 2 * qc + 1] = o[n][2 * i + 1];
            }
            if (qc == 0) {
                pp[D] = m[i] == -INFINITY ? -INFINITY : m[i] * 0.69314718056f; /* back to base e */
                pp[D + 1] = l[i];
            }
        }
    }
}

/* ==== Tensor-core attention, decode variant (at most 16 valid rows a tile) ==== */

#define FD_OPAD 8   /* floats of padding per row of the merge buffer: conflict-free float2 stores */

/* Block (tile, KV head, split) of a tile with at most 16 valid query rows (nt * G <= 16: decode,
 * or a few tokens of a small group). Every warp holds the same 16 rows (rows 0..15 of the tile,
 * the Q fragments as in k_fattn) and takes its own quarter of each staged KT-position tile:
 * warp w multiplies positions PW w .. PW w + PW - 1 (PW = KT / 4), so the tensor and shared-memory
 * work is that of one warp of k_fattn per position, not four. KT 64 (D 64): two 8-wide score tiles
 * and one m16n8k16 P V step; KT 32 (D 128: two 64-position buffers of K and V would take 68 KB,
 * past the 48 KB static limit): one score tile and m16n8k8 P V steps. Both double-buffered (NBUF 2,
 * cp.async as k_fattn). Each warp keeps its own online-softmax state (m base 2, l, o); a warp whose
 * quarter is past hi skips it (its state is that of an all-masked step). At the end the four states
 * meet in shared memory (the K/V buffers, after a barrier): o (16 x D f32 per warp) and m, l per
 * row; thread (row = tid / 8, sub = tid % 8) rescales the four by exp2(m_w - M), sums them and
 * writes the columns 2 sub + 16 k of its row: the normalized output (one split) or the partial
 * (o, m in base e, l) that k_attn_merge reads, exactly as k_fattn writes them; one split with
 * a.q8 also writes the output's q8 form for Wo (fa_q8_row: no quantizing launch before it).
 * H100, 8B shape (32/8 heads, D 128), one token: 65.3 us at depth 32k vs 67.1 for k_fattn (1.03x),
 * 1.02x at 16k, 1.06x at 4k; the single-buffered 64-position form for D 128 was 0.98x. */
template <int D, int KT, int NBUF>
__global__ void __launch_bounds__(32 * 4) k_fattn_dec(fa_args a) {
    cu_pdl_wait();
    if (!a.late) cu_pdl_trigger();
    __shared__ __align__(16) __half kvs[2][NBUF][KT][D + FA_PAD]; /* [0] K, [1] V */
    __shared__ float ms[4][16], ls[4][16];
    constexpr int PW = KT / 4; /* positions a warp takes of each tile */
    static_assert(PW == 16 || PW == 8, "a warp takes 16 or 8 positions of the tile");
    static_assert(sizeof(float) * 4 * 16 * (D + FD_OPAD) <= sizeof kvs, "the merge buffer fits the K/V buffers");
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, qc = lane & 3;
    const int kvh = blockIdx.y, s = blockIdx.z;
    /* the tile as in k_fattn (the host launches this kernel only when nt * G <= 16 for every tile) */
    int t0, nt, lo, hi;
    const int32_t *table;
    if (!fa_tile<KT>(a, &t0, &nt, &table, &lo, &hi)) return; /* uniform over the block */
    const int n_rows = nt * a.G;
    /* rows g and g + 8 of the tile, the same in every warp */
    int tok[2], head[2], rpos[2];
    bool valid[2];
    uint32_t qa[D / 16][4];
    fa_rows<D>(a, kvh, t0, nt, 0, g, qc, tok, head, rpos, valid, qa);
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    if (lo < hi) fa_stage<D, KT>(a, table, kvh, lo, hi, kvs[0][0], kvs[1][0]);
    for (int p0 = lo, it = 0; p0 < hi; p0 += KT, it++) {
        const int cur = NBUF == 2 ? it & 1 : 0;
        if (NBUF == 2 && p0 + KT < hi) {
            fa_stage<D, KT>(a, table, kvh, p0 + KT, hi, kvs[0][cur ^ 1], kvs[1][cur ^ 1]);
            asm volatile("cp.async.wait_group 1;\n" ::);
        } else {
            asm volatile("cp.async.wait_group 0;\n" ::);
        }
        __syncthreads();
        const int pw0 = p0 + PW * warp; /* this warp's first position */
        if (pw0 < hi) { /* warp-uniform; no barrier inside */
            float sc[PW / 8][4];
            fa_scores<PW / 8, D>(sc, qa, kvs[0][cur] + PW * warp, g, qc);
            fa_softmax<PW / 8, D>(sc, pw0, qc, rpos, hi, m, l, o);
            /* O += P V over the warp's PW positions */
            if constexpr (PW == 16) {
                fa_pv16<D>(o, sc[0], sc[1], kvs[1][cur] + PW * warp, lane);
            } else {
                /* m16n8k8: the score tile is the A fragment (rows g, g + 8; positions 2c, 2c + 1);
                 * matrix i of a load is the 8 positions x dims 8 (4 nq + i) .. +7, one n-tile */
                const int mi = lane >> 3, ri = lane & 7;
                const uint32_t a0 = fa_pack(sc[0][0], sc[0][1]), a1 = fa_pack(sc[0][2], sc[0][3]);
#pragma unroll
                for (int nq = 0; nq < D / 32; nq++) {
                    uint32_t b[4];
                    fa_ldmatrix_t(b, &kvs[1][cur][PW * warp + ri][8 * (4 * nq + mi)]);
#pragma unroll
                    for (int u = 0; u < 4; u++) fa_mma8(o[4 * nq + u], a0, a1, b[u]);
                }
            }
        }
        __syncthreads(); /* every warp is done with buffer cur before it is filled again */
        if (NBUF == 1 && p0 + KT < hi) fa_stage<D, KT>(a, table, kvh, p0 + KT, hi, kvs[0][0], kvs[1][0]);
    }

    /* merge the four warps' states: o into the K/V buffers (no copy is in flight: the last
     * iteration waited for all), m and l beside */
    fa_quad_sum(l);
    __syncthreads(); /* also when this split had no tile: nobody reads K/V any more */
    float(*mo)[16][D + FD_OPAD] = reinterpret_cast<float(*)[16][D + FD_OPAD]>(&kvs[0][0][0][0]);
#pragma unroll
    for (int i = 0; i < 2; i++) {
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            *(float2 *)&mo[warp][g + 8 * i][8 * n + 2 * qc] = make_float2(o[n][2 * i], o[n][2 * i + 1]);
        if (qc == 0) {
            ms[warp][g + 8 * i] = m[i];
            ls[warp][g + 8 * i] = l[i];
        }
    }
    __syncthreads();
    const int row = threadIdx.x >> 3, sub = threadIdx.x & 7;
    if (row >= n_rows) return;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < 4; w++) M = fmaxf(M, ms[w][row]);
    float f[4], L = 0.0f;
#pragma unroll
    for (int w = 0; w < 4; w++) {
        f[w] = ms[w][row] == -INFINITY ? 0.0f : exp2f(ms[w][row] - M); /* 0 when no warp saw anything */
        L += f[w] * ls[w][row];
    }
    const size_t th = (size_t)(t0 + row / a.G) * a.n_head + kvh * a.G + row % a.G;
    const float inv = a.n_split == 1 ? (L > 0.0f ? 1.0f / L : 0.0f) : 1.0f;
    float *dst = a.n_split == 1 ? a.out + th * D : a.part + (th * a.n_split + s) * (D + 2);
    float2 res[D / 16];
#pragma unroll
    for (int k = 0; k < D / 16; k++) {
        const int col = 2 * sub + 16 * k;
        float2 acc = make_float2(0.0f, 0.0f);
#pragma unroll
        for (int w = 0; w < 4; w++) {
            const float2 x = *(const float2 *)&mo[w][row][col];
            acc.x += f[w] * x.x;
            acc.y += f[w] * x.y;
        }
        res[k] = make_float2(acc.x * inv, acc.y * inv);
        *(float2 *)(dst + col) = res[k]; /* D + 2 is even: 8-byte aligned */
    }
    if (a.n_split == 1 && a.q8) fa_q8_row<D>(res, sub, a.q8 + th * D, a.dq8 + th * D / 32);
    if (a.n_split > 1 && sub == 0) {
        dst[D] = M == -INFINITY ? -INFINITY : M * 0.69314718056f; /* back to base e */
        dst[D + 1] = L;
    }
}

/* Whether the tensor-core kernel takes this cache and head layout. */
static bool fa_ok(const lc_cuda *c, const lc_kv *kv, int n_head) {
    return c->fa_mode && kv->type == LC_TYPE_F16 && (kv->head_dim == 64 || kv->head_dim == 128) &&
           n_head % kv->n_kv_head == 0 && n_head / kv->n_kv_head <= FA_ROWS;
}

/* The tensor-core kernel for head size D (64 or 128) in c->fa_mode: mode 2 (default) takes
 * 32-position tiles, the next copied during the current (pp4096 +6%, tg64 at depth 16k +3% over
 * mode 1's 64-position tiles on an H100, cuda-h100.md), and dec (mode 2 only, tiles of at most 16
 * valid rows) picks its decode variant; mode 3 is mode 2 without the decode variant (A/B). */
static void (*fa_kernel(const lc_cuda *c, int D, bool dec))(fa_args) {
    if (dec) return D == 64 ? k_fattn_dec<64, 64, 2> : k_fattn_dec<128, 32, 2>;
    if (c->fa_mode == 2 || c->fa_mode == 3) return D == 64 ? k_fattn<64, 32, 2> : k_fattn<128, 32, 2>;
    return D == 64 ? k_fattn<64, 64, 1> : k_fattn<128, 64, 1>;
}

/* Blocks of the kernel fa_kernel(c, D, dec) that an SM holds, asked once per backend, head size
 * and kernel (c->fa_per_sm). */
static int fa_blocks_per_sm(lc_cuda *c, int D, bool dec) {
    int *n = &c->fa_per_sm[D == 128][dec];
    if (!*n) {
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, fa_kernel(c, D, dec), 128, 0);
        *n = LC_MAX(1, *n);
    }
    return *n;
}

/* Launches the tensor-core kernel over the packed batch pk (upload_batch, whose host copy is
 * c->attn_host) and, for split ranges, the merge. */
static void fattn(lc_cuda *c, float *out, const float *q, const lc_kv *kv, int il, const int32_t *pk, int T, int len,
                  int n_head, float scale) {
    const int G = n_head / kv->n_kv_head, TQ = FA_ROWS / G, D = kv->head_dim;
    const int32_t *runs = c->attn_host + PK_RUNS(T);
    int n_tiles = 0, longest = 0;
    for (int r = 0; r < runs[0]; r++) {
        n_tiles += (runs[2 + 2 * r] + TQ - 1) / TQ;
        longest = LC_MAX(longest, runs[2 + 2 * r]);
    }
    /* every tile holds at most 16 valid rows (decode: G <= 16): the decode variant */
    const bool dec = c->fa_mode == 2 && G * LC_MIN(TQ, longest) <= 16;
    /* splits: as many as make one wave of the blocks an SM holds at once (a second, partial wave
     * costs a whole split's time: H100, 8B at depth 32k, 4 blocks per SM gave 172 tok/s, one wave
     * of 3 gave 196), each split at least FA_SPLIT_MIN positions; LOCARA_CUDA_FA_SPLITS=N asks for
     * about N blocks per SM instead (A/B) */
    const int blocks = n_tiles * kv->n_kv_head;
    int want;
    if (c->fa_splits) {
        want = (c->fa_splits * c->n_sm + blocks - 1) / blocks;
    } else {
        want = LC_MAX(1, fa_blocks_per_sm(c, D, dec) * c->n_sm / blocks);
    }
    const int n_split = LC_MAX(1, LC_MIN(want, (len + FA_SPLIT_MIN - 1) / FA_SPLIT_MIN));
    if (want > 1) { /* partials sized for the most splits: no regrowth as positions advance */
        size_t part = (size_t)T * n_head * want * (D + 2) * sizeof(float);
        if ((c->err = lc_cu_grow(c, (void **)&c->attn_part, &c->attn_part_bytes, part))) return;
    }
    fa_args a;
    memset(&a, 0, sizeof a); /* padding too: the arguments are a recorded step's signature */
    a.q = q;
    a.k = kv->k[il];
    a.v = kv->v[il];
    a.pk = pk;
    a.out = out;
    a.part = c->attn_part;
    a.T = T;
    a.n_head = n_head;
    a.G = G;
    a.TQ = TQ;
    a.n_split = n_split;
    a.BT = kv->block_tokens;
    a.row_bytes = kv->row_bytes;
    a.head_bytes = (size_t)D * 2;
    a.scale_log2 = scale * 1.44269504089f;
    /* split ranges: the kernels after these are let in only at their exit (programmatic launch:
     * H100, 8B tg128 at depth 32k 189-191 tok/s letting them in at entry, 200 at exit, as without
     * programmatic launches; bench/results/cuda-h100.md) */
    a.late = n_split > 1;
    /* the output's q8 form for Wo, from the decode kernel (one split) or the merge */
    if (dec || n_split > 1) a.q8 = attn_q8(c, T, n_head, D, &a.dq8);
    dim3 grid((unsigned)n_tiles, (unsigned)kv->n_kv_head, (unsigned)n_split);
    cu_k(c, fa_kernel(c, D, dec), grid, 32 * 4, a);
    if (n_split > 1)
        cu_k(c, k_attn_merge, dim3((unsigned)n_head, (unsigned)T), AM_THREADS, c->attn_part, out, n_split, D, a.late,
             a.q8, a.dq8);
    if (a.q8) cu_q8_set(c, out, (size_t)T * n_head * D, a.q8, a.dq8); /* after the launches, which clear it */
    CU_LAUNCH(c);
}

void lc_cu_attention(lc_backend *be, float *out, const float *q, lc_kv *kv, int il,
                                const lc_attn_batch *b, int n_head, float scale) {
    lc_cuda *c = cu_of(be);
    if (c->err) return;
    if (kv->head_dim > 32 * AT_MAX_PER_LANE) {
        c->err = lc_fail(LC_ERR_UNSUPPORTED, "CUDA attention: head dimension %d > %d", kv->head_dim, 32 * AT_MAX_PER_LANE);
        return;
    }
    int mp;
    const int32_t *pk = upload_batch(c, b, kv->block_tokens, &mp);
    if (!pk) return;
    int T = b->n_tokens, len = mp + 1;
    const int D = kv->head_dim, G = n_head / kv->n_kv_head;
    if (c->attn_exact && c->cpu_model && kv->type == LC_TYPE_F16 && kv->block_tokens == LC_ATTN_BT && n_head % kv->n_kv_head == 0 &&
        (D == 64 || D == 128) && T <= AX_MAX_TOK && len <= AX_MAX_POS && cpu_arith(b, G)) {
        at_args a;
        memset(&a, 0, sizeof a); /* padding too: the arguments are a recorded step's signature */
        a.q = q, a.k = kv->k[il], a.v = kv->v[il], a.pk = pk, a.out = out;
        a.T = T, a.n_head = n_head, a.n_kv_head = kv->n_kv_head, a.D = D, a.BT = kv->block_tokens;
        a.type = kv->type, a.row_bytes = kv->row_bytes, a.head_bytes = (size_t)D * 2, a.scale = scale;
        a.q8 = attn_q8(c, T, n_head, D, &a.dq8);
        const dim3 grid((unsigned)n_head, (unsigned)T);
        if (D == 64) cu_k(c, T == 1 ? k_attn_exact<64, 64> : k_attn_exact<64, 16>, grid, AX_THREADS, a);
        else cu_k(c, T == 1 ? k_attn_exact<128, 64> : k_attn_exact<128, 16>, grid, AX_THREADS, a);
        if (a.q8) cu_q8_set(c, out, (size_t)T * n_head * D, a.q8, a.dq8); /* after the launch, which clears it */
        CU_LAUNCH(c);
        return;
    }
    if (fa_ok(c, kv, n_head)) {
        fattn(c, out, q, kv, il, pk, T, len, n_head, scale);
        return;
    }
    /* splits: enough blocks to fill every SM 16 deep (a warp walks its positions one at a time, so
     * long contexts are latency-bound: only more warps in flight help), each split at least
     * AT_SPLIT_MIN positions. Two waves gave 27 tok/s at depth 32k on an 8B model (H200). */
    int want = (16 * c->n_sm + T * n_head - 1) / (T * n_head);
    int n_split = LC_MAX(1, LC_MIN(want, (len + AT_SPLIT_MIN - 1) / AT_SPLIT_MIN));
    /* partials for the most splits this batch size can take: the buffer does not grow (and
     * break a recorded step) every AT_SPLIT_MIN positions */
    size_t part = (size_t)T * n_head * LC_MAX(want, 1) * AT_WARPS * (kv->head_dim + 2) * sizeof(float);
    if ((c->err = lc_cu_grow(c, (void **)&c->attn_part, &c->attn_part_bytes, part))) return;
    at_args a;
    memset(&a, 0, sizeof a); /* padding too: the arguments are a recorded step's signature */
    a.q = q;
    a.k = kv->k[il];
    a.v = kv->v[il];
    a.pk = pk;
    a.part = c->attn_part;
    a.T = T;
    a.n_head = n_head;
    a.n_kv_head = kv->n_kv_head;
    a.D = kv->head_dim;
    a.BT = kv->block_tokens;
    a.type = kv->type;
    a.n_split = n_split;
    a.row_bytes = kv->row_bytes;
    a.head_bytes = lc_type_row_size(kv->type, kv->head_dim);
    a.scale = scale;
    float2 *dq8; /* from the merge: a warp's 32 elements one block of one head */
    int8_t *q8 = attn_q8(c, T, n_head, kv->head_dim, &dq8);
    cu_k(c, k_attn, dim3((unsigned)n_head, (unsigned)T, (unsigned)n_split), 32 * AT_WARPS, a);
    cu_k(c, k_attn_merge, dim3((unsigned)n_head, (unsigned)T), AM_THREADS, c->attn_part, out, n_split * AT_WARPS,
         kv->head_dim, 0, q8, dq8);
    if (q8) cu_q8_set(c, out, (size_t)T * n_head * kv->head_dim, q8, dq8);
    CU_LAUNCH(c);
}
