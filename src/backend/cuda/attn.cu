/* attn.cu — attention over the paged KV cache on the GPU, and writing K/V into it (f16, q8_0,
 * q4_0 caches).
 *
 * Split-K flash decoding: the grid is (query head, token, split); each block of 4 warps walks
 * one contiguous range of its token's positions, a warp per position at a time: the q.k score
 * is a warp reduction (AT_ILP positions at once), the running maximum, sum and the V accumulator
 * (D/32 elements per lane) are updated online. Each block leaves (max, sum, acc) for its split;
 * a second kernel merges the splits and the warps. Long contexts get more splits so the chip stays full at batch one.
 * The batch (positions, slots, per-token block tables) arrives packed in one upload.
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

/* Packs pos, slot, table offsets and the block tables of b into one int array and mirrors it on
 * the device; tokens of one sequence (same table pointer) share one copy of the table. Layout:
 * [pos T][slot T][off T][tables]. */
static const int32_t *upload_batch(lc_cuda *c, const lc_attn_batch *b, int block_tokens, int *max_pos) {
    int T = b->n_tokens;
    size_t need = 3 * (size_t)T;
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
    size_t at = 3 * (size_t)T;
    for (int t = 0; t < T;) {
        int u = t, m = 0;
        for (; u < T && b->block_table[u] == b->block_table[t]; u++) m = LC_MAX(m, b->pos[u]);
        int nb = m / block_tokens + 1;
        memcpy(h + at, b->block_table[t], (size_t)nb * 4);
        for (int v = t; v < u; v++) h[2 * T + v] = (int32_t)at;
        at += (size_t)nb;
        t = u;
    }
    memset(h + at, 0, (padded - at) * 4); /* at == need */
    *max_pos = mp;
    return lc_cu_upload(c, SLOT_ATTN, h, padded);
}

/* ==== Store ==== */

/* f16 cache: one thread per element, K and V in one launch (blockIdx.y: 0 = K, 1 = V). */
__global__ void k_store_f16(const float *xk, const float *xv, const int32_t *pk, int T, int width, size_t row_bytes,
                            uint8_t *ck, uint8_t *cv) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * width) return;
    const float *x = blockIdx.y ? xv : xk;
    int t = (int)(i / width), e = (int)(i % width);
    __half *row = (__half *)((blockIdx.y ? cv : ck) + (size_t)pk[T + t] * row_bytes);
    row[e] = __float2half_rn(x[i]);
}

/* q8_0 / q4_0 cache: one warp per block of 32 elements, quantized as the CPU reference does. */
__global__ void k_store_q(const float *x, const int32_t *pk, int T, int width, size_t row_bytes, int type,
                          uint8_t *cache) {
    size_t wid = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31, nb = width / 32;
    if (wid >= (size_t)T * nb) return;
    int t = (int)(wid / nb), blk = (int)(wid % nb);
    float v = x[(size_t)t * width + blk * 32 + lane];
    uint8_t *row = cache + (size_t)pk[T + t] * row_bytes;
    if (type == LC_TYPE_Q8_0) {
        float amax = fabsf(v);
        for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        float d = amax / 127, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t *bp = row + blk * 34;
        if (lane == 0) *(__half *)bp = __float2half_rn(d); /* row_bytes are even: 2-byte aligned */
        ((int8_t *)bp)[2 + lane] = (int8_t)roundf(v * id);
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
    int T, n_head, n_kv_head, D, BT, type, n_split;
    size_t row_bytes, head_bytes;
    float scale;
} at_args;

__global__ void __launch_bounds__(32 * AT_WARPS) k_attn(at_args a) {
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

/* Merges the n_split * AT_WARPS partial results of each (token, head): one block, D threads. */
__global__ void k_attn_merge(const float *part, float *out, int n_part, int D) {
    size_t th = (size_t)blockIdx.y * gridDim.x + blockIdx.x; /* t * n_head + h */
    const float *pp = part + th * n_part * (D + 2);
    float M = -INFINITY;
    for (int i = 0; i < n_part; i++) M = fmaxf(M, pp[(size_t)i * (D + 2) + D]);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float num = 0.0f, den = 0.0f;
        for (int i = 0; i < n_part; i++) {
            const float *pi = pp + (size_t)i * (D + 2);
            float mi = pi[D];
            if (mi == -INFINITY) continue;
            float f = __expf(mi - M);
            num += f * pi[d];
            den += f * pi[D + 1];
        }
        out[th * D + d] = den > 0.0f ? num / den : 0.0f;
    }
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
    cu_k(c, k_attn, dim3((unsigned)n_head, (unsigned)T, (unsigned)n_split), 32 * AT_WARPS, a);
    cu_k(c, k_attn_merge, dim3((unsigned)n_head, (unsigned)T), 128, c->attn_part, out, n_split * AT_WARPS,
                                                                             kv->head_dim);
    CU_LAUNCH(c);
}
