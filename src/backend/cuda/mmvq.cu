/* mmvq.cu — decode matrix-vector products on int8 activations (Q4_K, Q5_K, Q6_K, Q8_0 and the
 * legacy Q4_0, Q4_1, Q5_0, Q5_1 weights).
 *
 * The input rows are quantized once per call to q8_1 style blocks of 32 (int8 values, a scale
 * d and d * sum(q)), then each weight row is dotted with integer dp4a instructions: a lane takes
 * 16 or 32 weight elements at a time (one 16-byte load for Q4_K), unpacks them to int8 with a
 * few mask/shift operations and needs one float multiply-add per 16-32 elements instead of one
 * per element (the float path of matmul.cu was instruction-bound at ~20% of bandwidth). Every
 * weight byte is read once per call; up to 8 tokens share it. Other types stay on matmul.cu's
 * float path. One-token products of few rows split rows over 2 or 4 warps and may start loading
 * weights before their predecessor kernel ends (PDL); a group of weights of different int8 types
 * runs as one launch (k_mmvq_mix). Expert products of decode fuse with their SwiGLU and with the
 * weighted sum. Entry points: lc_cu_mmvq_ok, lc_cu_mmvq_mixes, lc_cu_mmvq, lc_cu_mmvq_ids,
 * lc_cu_experts_swiglu, lc_cu_experts_combine.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/quant_dev.cuh"

#define MQ_WARPS 4   /* rows (one per warp) per thread block */
#define MQ_MAX_TOK 8 /* most tokens one launch takes */

/* Whether a one-token product group may hold weights of two int8 types (a and b) in one launch
 * (k_mmvq_mix; LOCARA_CUDA_MMVQ_MIX=0 turns it off, A/B). */
bool lc_cu_mmvq_mixes(const lc_cuda *c, lc_type a, lc_type b, int T) {
    return c->mmvq_mix && T == 1 && lc_cu_mmvq_ok(c, a) && lc_cu_mmvq_ok(c, b) &&
           !(c->cpu_order && (lc_cu_cpu_type(a) || lc_cu_cpu_type(b)));
}

bool lc_cu_mmvq_ok(const lc_cuda *c, lc_type t) {
    if (c->mmv_float) return false;
    return t == LC_TYPE_Q4_K || t == LC_TYPE_Q5_K || t == LC_TYPE_Q6_K || t == LC_TYPE_Q8_0 || t == LC_TYPE_Q4_0 ||
           t == LC_TYPE_Q4_1 || t == LC_TYPE_Q5_0 || t == LC_TYPE_Q5_1;
}

/* ==== Activation quantization ==== */

/* x (n_blk * 32 floats) -> xq int8 and dx[b] = {d, d * sum(q)} per block of 32; one warp per block. */
__global__ void k_quantize_q8_1(const float *x, int8_t *xq, float2 *dx, int n_blk) {
    cu_pdl_entry();
    const int b = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (b >= n_blk) return;
    cu_q8_block(x[(size_t)b * 32 + (threadIdx.x & 31)], xq + (size_t)b * 32, dx + b);
}

/* ==== Per-type row dots: acc[t] += dot(W row, x[t]) over this lane's share ====
 *
 * A row is cut into chunks of CH elements; lane l takes chunks l, l + 32, ... Each type has a
 * chunk struct (the weight bytes of one chunk, in registers), a load and a dot. The driver
 * (rows_dot_q8) takes one chunk of each of its rows at a time, loaded before any is multiplied;
 * taking 2 or 4 chunks ahead, or unrolling the loop, measured slower on an H100
 * (bench/results/cuda-h100.md). */

__device__ __forceinline__ int ld_u16x2(const uint8_t *p) { /* 4 bytes at a 2-byte aligned address */
    const uint16_t *h = (const uint16_t *)p;
    return (int)((uint32_t)h[0] | ((uint32_t)h[1] << 16));
}

__device__ __forceinline__ float h16_lo(uint32_t w) { return __half2float(__ushort_as_half((uint16_t)(w & 0xFFFF))); }
__device__ __forceinline__ float h16_hi(uint32_t w) { return __half2float(__ushort_as_half((uint16_t)(w >> 16))); }

/* The primary template: the legacy formats of blocks of 32, a chunk a block (legacy_fmt, below);
 * the others specialize it. */
template <int TYPE> struct mq_chunk {
    enum { CH = 32 };
    int w[4];    /* the 16 bytes of nibbles */
    uint32_t qh; /* Q5_0 / Q5_1: the fifth bits */
    float d, m;  /* Q4_1 / Q5_1: m */
};

/* Q4_K (144-byte blocks of 256, 16-byte aligned in a row): chunk c = 2j + h of block b takes
 * qs[32j + 16h .. +16], i.e. elements 64j + 16h + 0..15 (low nibbles, sub-block 2j) and
 * 64j + 32 + 16h + 0..15 (high, sub-block 2j+1), and the block's first 16 bytes: d, dmin and the
 * twelve bytes of 6-bit scales and mins. The min term of each sub-block is added once, by its
 * h == 0 chunk. */
template <> struct mq_chunk<LC_TYPE_Q4_K> {
    enum { CH = 32 };
    uint4 q, hd;
};

__device__ __forceinline__ void mq_load(mq_chunk<LC_TYPE_Q4_K> &k, const uint8_t *wr, int ci) {
    const int b = ci >> 3, c = ci & 7;
    const uint8_t *blk = wr + (size_t)b * 144;
    k.hd = *(const uint4 *)blk;
    k.q = *(const uint4 *)(blk + 16 + 32 * (c >> 1) + 16 * (c & 1));
}

__device__ __forceinline__ int byte_of(uint4 v, int i) { /* byte i (0..15) of v; i is lane-constant */
    const uint32_t w = i < 4 ? v.x : i < 8 ? v.y : i < 12 ? v.z : v.w;
    return (int)((w >> (8 * (i & 3))) & 0xFF);
}

/* The dot of a Q4_K/Q5_K chunk (j, h) of block b: lo and hi are its 16 values of sub-blocks 2j and
 * 2j+1 as int8 words, hd the block's first 16 bytes (d, dmin, 6-bit scales and mins). */
template <int NT>
__device__ __forceinline__ void k4_dot(uint4 hd, const int *lo, const int *hi, int ci, int cols, const int8_t *xq,
                                       const float2 *dx, int T, float *acc) {
    const int b = ci >> 3, c = ci & 7, j = c >> 1, h = c & 1, nxb = cols / 32;
    const float d = h16_lo(hd.x), dmin = h16_hi(hd.x);
    int sc0, m0, sc1, m1; /* scales bytes are bytes 4..15 of the header */
    if (j < 2) {
        sc0 = byte_of(hd, 4 + 2 * j) & 63, m0 = byte_of(hd, 8 + 2 * j) & 63;
        sc1 = byte_of(hd, 5 + 2 * j) & 63, m1 = byte_of(hd, 9 + 2 * j) & 63;
    } else {
        const int a = 4 + 2 * j, bb = a + 1; /* s[2j] is header byte 4 + 2j */
        sc0 = (byte_of(hd, a + 4) & 0xF) | ((byte_of(hd, a - 4) >> 6) << 4);
        m0 = (byte_of(hd, a + 4) >> 4) | ((byte_of(hd, a) >> 6) << 4);
        sc1 = (byte_of(hd, bb + 4) & 0xF) | ((byte_of(hd, bb - 4) >> 6) << 4);
        m1 = (byte_of(hd, bb + 4) >> 4) | ((byte_of(hd, bb) >> 6) << 4);
    }
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
            sl = __dp4a(lo[i], xl[i], sl);
            sh = __dp4a(hi[i], xh[i], sh);
        }
        const float2 da = dx[(size_t)t * nxb + xb0], db = dx[(size_t)t * nxb + xb0 + 1];
        float r = d * ((float)sc0 * da.x * (float)sl + (float)sc1 * db.x * (float)sh);
        if (h == 0) r -= dmin * ((float)m0 * da.y + (float)m1 * db.y);
        acc[t] += r;
    }
}

template <int NT>
__device__ __forceinline__ void mq_dot(const mq_chunk<LC_TYPE_Q4_K> &k, int ci, int cols, const int8_t *xq,
                                       const float2 *dx, int T, float *acc) {
    const int qw[4] = {(int)k.q.x, (int)k.q.y, (int)k.q.z, (int)k.q.w};
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; i++) lo[i] = qw[i] & 0x0F0F0F0F, hi[i] = (qw[i] >> 4) & 0x0F0F0F0F;
    k4_dot<NT>(k.hd, lo, hi, ci, cols, xq, dx, T, acc);
}

/* Q5_K (176-byte blocks of 256, 16-byte aligned in a row): as Q4_K, with the fifth bit of element
 * 64j + l (l < 32) in bit 2j of qh[l] and of element 64j + 32 + l in bit 2j + 1; chunk (j, h) takes
 * qs[32j + 16h .. +16] and qh[16h .. +16]. Layout: d, dmin, scales[12], qh[32], qs[128]. */
template <> struct mq_chunk<LC_TYPE_Q5_K> {
    enum { CH = 32 };
    uint4 q, qh, hd;
};

__device__ __forceinline__ void mq_load(mq_chunk<LC_TYPE_Q5_K> &k, const uint8_t *wr, int ci) {
    const int b = ci >> 3, c = ci & 7;
    const uint8_t *blk = wr + (size_t)b * 176;
    k.hd = *(const uint4 *)blk;
    k.qh = *(const uint4 *)(blk + 16 + 16 * (c & 1));
    k.q = *(const uint4 *)(blk + 48 + 32 * (c >> 1) + 16 * (c & 1));
}

template <int NT>
__device__ __forceinline__ void mq_dot(const mq_chunk<LC_TYPE_Q5_K> &k, int ci, int cols, const int8_t *xq,
                                       const float2 *dx, int T, float *acc) {
    const int j = (ci & 7) >> 1;
    const int qw[4] = {(int)k.q.x, (int)k.q.y, (int)k.q.z, (int)k.q.w};
    const int hw[4] = {(int)k.qh.x, (int)k.qh.y, (int)k.qh.z, (int)k.qh.w};
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        lo[i] = (qw[i] & 0x0F0F0F0F) | ((((unsigned)hw[i] >> (2 * j)) & 0x01010101u) << 4);
        hi[i] = ((qw[i] >> 4) & 0x0F0F0F0F) | ((((unsigned)hw[i] >> (2 * j + 1)) & 0x01010101u) << 4);
    }
    k4_dot<NT>(k.hd, lo, hi, ci, cols, xq, dx, T, acc);
}

/* Q6_K (210-byte blocks of 256: only 2-byte aligned): chunk c = 4n + g takes l = 8g .. 8g+7 of
 * half n, i.e. the elements 128n + 32k + l for k = 0..3 (low/high nibbles of ql[l] and ql[l+32],
 * two bits of qh[l] each), with scales sc[8n + l/16 + 2k]. */
template <> struct mq_chunk<LC_TYPE_Q6_K> {
    enum { CH = 32 };
    int a[2], bq[2], hq[2], sc; /* sc: the four int8 scales */
    float d;
};

__device__ __forceinline__ void mq_load(mq_chunk<LC_TYPE_Q6_K> &k, const uint8_t *wr, int ci) {
    const int b = ci >> 3, c = ci & 7, n = c >> 2, l0 = 8 * (c & 3);
    const uint8_t *blk = wr + (size_t)b * 210;
    const uint8_t *ql = blk + 64 * n + l0, *qh = blk + 128 + 32 * n + l0, *sc = blk + 192 + 8 * n + l0 / 16;
#pragma unroll
    for (int i = 0; i < 2; i++) k.a[i] = ld_u16x2(ql + 4 * i), k.bq[i] = ld_u16x2(ql + 32 + 4 * i), k.hq[i] = ld_u16x2(qh + 4 * i);
    k.sc = (int)((uint32_t)sc[0] | ((uint32_t)sc[2] << 8) | ((uint32_t)sc[4] << 16) | ((uint32_t)sc[6] << 24));
    k.d = __half2float(__ushort_as_half(*(const uint16_t *)(blk + 208)));
}

template <int NT>
__device__ __forceinline__ void mq_dot(const mq_chunk<LC_TYPE_Q6_K> &k, int ci, int cols, const int8_t *xq,
                                       const float2 *dx, int T, float *acc) {
    const int b = ci >> 3, c = ci & 7, n = c >> 2, l0 = 8 * (c & 3), nxb = cols / 32;
    int v[4][2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int A = k.a[i], B = k.bq[i], H = k.hq[i];
        v[0][i] = __vsubss4((A & 0x0F0F0F0F) | ((H << 4) & 0x30303030), 0x20202020);
        v[1][i] = __vsubss4((B & 0x0F0F0F0F) | ((H << 2) & 0x30303030), 0x20202020);
        v[2][i] = __vsubss4(((A >> 4) & 0x0F0F0F0F) | (H & 0x30303030), 0x20202020);
        v[3][i] = __vsubss4(((B >> 4) & 0x0F0F0F0F) | ((H >> 2) & 0x30303030), 0x20202020);
    }
    const float s[4] = {(float)(int8_t)(k.sc & 0xFF), (float)(int8_t)((k.sc >> 8) & 0xFF),
                        (float)(int8_t)((k.sc >> 16) & 0xFF), (float)(int8_t)(k.sc >> 24)};
    const int e0 = b * 256 + 128 * n + l0, xb0 = b * 8 + 4 * n;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t >= T) break;
        const int8_t *xt = xq + (size_t)t * cols + e0;
        float r = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            const int2 xv = *(const int2 *)(xt + 32 * kk);
            const int is = __dp4a(v[kk][1], xv.y, __dp4a(v[kk][0], xv.x, 0));
            r += s[kk] * dx[(size_t)t * nxb + xb0 + kk].x * (float)is;
        }
        acc[t] += k.d * r;
    }
}

/* Q8_0 (34-byte blocks of 32): a chunk is half a block (16 elements). */
template <> struct mq_chunk<LC_TYPE_Q8_0> {
    enum { CH = 16 };
    int w[4];
    float d;
};

__device__ __forceinline__ void mq_load(mq_chunk<LC_TYPE_Q8_0> &k, const uint8_t *wr, int ci) {
    const uint8_t *blk = wr + (size_t)(ci >> 1) * 34;
    k.d = __half2float(__ushort_as_half(*(const uint16_t *)blk));
#pragma unroll
    for (int i = 0; i < 4; i++) k.w[i] = ld_u16x2(blk + 2 + 16 * (ci & 1) + 4 * i);
}

template <int NT>
__device__ __forceinline__ void mq_dot(const mq_chunk<LC_TYPE_Q8_0> &k, int ci, int cols, const int8_t *xq,
                                       const float2 *dx, int T, float *acc) {
    const int b = ci >> 1, h = ci & 1, nxb = cols / 32;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t >= T) break;
        const int4 xv = *(const int4 *)(xq + (size_t)t * cols + 32 * b + 16 * h);
        int s = __dp4a(k.w[0], xv.x, 0);
        s = __dp4a(k.w[1], xv.y, s);
        s = __dp4a(k.w[2], xv.z, s);
        s = __dp4a(k.w[3], xv.w, s);
        acc[t] += k.d * dx[(size_t)t * nxb + b].x * (float)s;
    }
}

/* The legacy formats (blocks of 32, a chunk is one block) sum as the CPU backend does up to the
 * order of the float additions: the integer dot of the block's levels with the activation's
 * int8 values, times d_w * d_x, plus for Q4_1 / Q5_1 m_w * s_x (kernels_scalar.c); Q4_0 and
 * Q5_0 subtract their offset from the levels (__vsub4 per byte: the results fit int8), as the CPU
 * does, rather than through s_x, which holds the activation sum only to f16 precision. */
__device__ __forceinline__ int legacy_dot(const int *lo, const int *hi, const int8_t *xb) {
    const int4 xa = *(const int4 *)xb, xc = *(const int4 *)(xb + 16);
    const int xl[4] = {xa.x, xa.y, xa.z, xa.w}, xh[4] = {xc.x, xc.y, xc.z, xc.w};
    int s = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) s = __dp4a(hi[i], xh[i], __dp4a(lo[i], xl[i], s));
    return s;
}

/* The fifth bits of four consecutive elements (bits 0..3 of b) as bit 4 of four bytes. */
__device__ __forceinline__ int q5_bits(uint32_t b) {
    return (int)(((b & 1u) << 4) | ((b & 2u) << 11) | ((b & 4u) << 18) | ((b & 8u) << 25));
}

/* Q4_0 (18 bytes: d, 16 bytes of nibbles; value q - 8), Q4_1 (20: d, m, nibbles; value d q + m),
 * Q5_0 (22: d, qh, nibbles; value q - 16), Q5_1 (24: d, m, qh, nibbles). Element j < 16 is the low
 * nibble of byte j, element j + 16 the high one; the fifth bit of element j is bit j of qh. */
template <int TYPE> struct legacy_fmt;
template <> struct legacy_fmt<LC_TYPE_Q4_0> { enum { BYTES = 18, QS = 2, MIN = 0, HIGH = 0, OFF = 8 }; };
template <> struct legacy_fmt<LC_TYPE_Q4_1> { enum { BYTES = 20, QS = 4, MIN = 1, HIGH = 0, OFF = 0 }; };
template <> struct legacy_fmt<LC_TYPE_Q5_0> { enum { BYTES = 22, QS = 6, MIN = 0, HIGH = 1, OFF = 16 }; };
template <> struct legacy_fmt<LC_TYPE_Q5_1> { enum { BYTES = 24, QS = 8, MIN = 1, HIGH = 1, OFF = 0 }; };

template <int TYPE>
__device__ __forceinline__ void mq_load(mq_chunk<TYPE> &k, const uint8_t *wr, int ci) {
    typedef legacy_fmt<TYPE> F;
    const uint8_t *blk = wr + (size_t)ci * F::BYTES; /* 2-byte aligned (Q4_0, Q5_0) or 4 */
    k.d = __half2float(__ushort_as_half(*(const uint16_t *)blk));
    k.m = F::MIN ? __half2float(__ushort_as_half(*(const uint16_t *)(blk + 2))) : 0.0f;
    k.qh = F::HIGH ? (uint32_t)ld_u16x2(blk + F::QS - 4) : 0u;
#pragma unroll
    for (int i = 0; i < 4; i++) k.w[i] = ld_u16x2(blk + F::QS + 4 * i);
}

template <int NT, int TYPE>
__device__ __forceinline__ void mq_dot(const mq_chunk<TYPE> &k, int b, int cols, const int8_t *xq,
                                       const float2 *dx, int T, float *acc) {
    typedef legacy_fmt<TYPE> F;
    const int nxb = cols / 32;
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        lo[i] = k.w[i] & 0x0F0F0F0F, hi[i] = (k.w[i] >> 4) & 0x0F0F0F0F;
        if (F::HIGH) lo[i] |= q5_bits(k.qh >> (4 * i)), hi[i] |= q5_bits(k.qh >> (16 + 4 * i));
        if (F::OFF) lo[i] = (int)__vsub4((unsigned)lo[i], F::OFF * 0x01010101u), hi[i] = (int)__vsub4((unsigned)hi[i], F::OFF * 0x01010101u);
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t >= T) break;
        const int s = legacy_dot(lo, hi, xq + (size_t)t * cols + 32 * b);
        const float2 dd = dx[(size_t)t * nxb + b];
        if (F::MIN) acc[t] += (k.d * dd.x) * (float)s + k.m * dd.y;
        else acc[t] += (k.d * dd.x) * (float)s;
    }
}

/* acc[r][t] = dot(W_r row, x[t]) for NR rows of one type and shape (a gate and an up row) and
 * t < T, summed over the L lanes that make the rows (L = 32: the warp; L < 32: the warp's lane
 * group lane / L, every group with rows of its own) and returned in each of them. With S > 1 the
 * group takes only its share `part` of the chunks (S groups make a row). A lane takes the chunks
 * ci = lane % L + L * part + L * S * i in ascending order, U at a time: their loads are all issued
 * before any is multiplied (U changes no bit: each lane still adds its chunks in order). With pre,
 * the kernel's wait for its predecessor (cu_pdl_entry) comes after the first loads: weight rows
 * are no kernel's output, so they are on their way while the predecessor finishes; the caller
 * must not have read anything another kernel writes. Every lane of the warp must call it. */
template <int TYPE, int NT, int NR, int S = 1, int L = 32, int U = 1>
__device__ __forceinline__ void rows_dot_q8(const uint8_t *const *wr, int cols, const int8_t *xq, const float2 *dx,
                                            int T, float (*acc)[NT], int part = 0, bool pre = false) {
    typedef mq_chunk<TYPE> K;
    const int li = threadIdx.x & (L - 1), n_chunks = cols / K::CH;
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
#pragma unroll 1
    for (int c0 = li + L * part; c0 < n_chunks; c0 += L * S * U) {
        K k[U][NR];
#pragma unroll
        for (int u = 0; u < U; u++)
            if (c0 + L * S * u < n_chunks)
#pragma unroll
                for (int r = 0; r < NR; r++) mq_load(k[u][r], wr[r], c0 + L * S * u);
        if (pre) {
            cu_pdl_entry();
            pre = false;
        }
#pragma unroll
        for (int u = 0; u < U; u++)
            if (c0 + L * S * u < n_chunks)
#pragma unroll
                for (int r = 0; r < NR; r++) mq_dot<NT>(k[u][r], c0 + L * S * u, cols, xq, dx, T, acc[r]);
    }
    if (pre) cu_pdl_entry(); /* a lane with no chunk */
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int o = L / 2; o > 0; o >>= 1) acc[r][t] += __shfl_xor_sync(0xffffffffu, acc[r][t], o);
}

/* acc[t] = dot(W row, x[t]) for t < T, summed over the warp (every lane gets it); pre as rows_dot_q8's. */
template <int TYPE, int NT>
__device__ __forceinline__ void row_dot_q8(const uint8_t *wr, int cols, const int8_t *xq, const float2 *dx, int T,
                                           float *acc, bool pre = false) {
    float a[1][NT];
    rows_dot_q8<TYPE, NT, 1>(&wr, cols, xq, dx, T, a, 0, pre);
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = a[0][t];
}

/* Expert rows are short (Qwen3-30B-A3B's down rows: 768 elements, 24 chunks), so their dots take
 * a lane group of L lanes, U chunks at a time, chosen from the row length alone (ids_short), so
 * that every kernel multiplying a weight (fused or not) adds in the same order. Longer rows take
 * a warp, a chunk at a time: 2 at a time measured no faster for 30B-A3B's gate/up rows (2048
 * elements; 89 registers, 2.3 waves against one). */
#define IDS_L_SHORT 8 /* rows of at most 32 chunks: 4 rows a warp, 8 lanes and 3 chunks at a time each (768
                       * elements: 24 chunks; 4 at a time spilled Q5_K's registers under 64) */
static bool ids_short(const lc_cuda *c, int n_chunks) { return c->moe_dot && n_chunks <= 32; }

static int chunk_elems(lc_type t) { return t == LC_TYPE_Q8_0 ? 16 : 32; } /* mq_chunk<t>::CH */

/* Calls L(type) with the type as a compile-time constant, for the types lc_cu_mmvq_ok takes. */
#define MQ_DISPATCH(type, L)                        \
    switch ((int)(type)) {                          \
    case LC_TYPE_Q4_K: L(LC_TYPE_Q4_K); break;      \
    case LC_TYPE_Q5_K: L(LC_TYPE_Q5_K); break;      \
    case LC_TYPE_Q6_K: L(LC_TYPE_Q6_K); break;      \
    case LC_TYPE_Q8_0: L(LC_TYPE_Q8_0); break;      \
    case LC_TYPE_Q4_1: L(LC_TYPE_Q4_1); break;      \
    case LC_TYPE_Q5_0: L(LC_TYPE_Q5_0); break;      \
    case LC_TYPE_Q5_1: L(LC_TYPE_Q5_1); break;      \
    default: L(LC_TYPE_Q4_0); break;                \
    }

/* ==== Kernels ==== */

typedef struct mq_args {
    const uint8_t *w[4];
    float *out[4];
    size_t row_bytes[4];
    int rows[4];
    int first_blk[5]; /* first grid block of each weight */
    int n_w, cols, T;
    int pre;          /* the weights' first loads before the wait for the predecessor (rows_dot_q8) */
    int type[4];      /* the weights' types (k_mmvq_mix) */
    const int8_t *xq; /* (T, cols) */
    const float2 *dx; /* (T, cols / 32) */
} mq_args;

/* ==== The legacy formats in the CPU backend's order ====
 *
 * With c->cpu_order (LOCARA_CUDA_CPU_ORDER, default on) a row of Q8_0, Q4_1, Q5_0 or Q5_1 sums
 * exactly as the CPU backend's row dot (kernels_scalar.c, ggml's x86 order): 8 lanes, lane l the
 * integer dot of elements 4l..4l+3 of each block, each lane += (d_w * d_x) * that dot by FMA block
 * after block, the lanes added as hsum8 ((0+4) + (2+6)) + ((1+5) + (3+7)), then for Q4_1 / Q5_1
 * the min terms m_w * s_x (exact products), added in block order apart, added last. With the
 * activations quantized as the CPU does (cu_q8_block), every output has the CPU's bits, so a model
 * of these formats decodes the CPU's tokens. (Q4_0 is left out: the CPU's AVX-512 build sums its
 * blocks in pairs, ggml's AVX-512 path.)
 * A warp takes a row, 32 blocks at a time: each lane the integer dots and d_w * d_x of one block
 * (the loads of 32 consecutive blocks at once), staged in shared memory; then the sequential FMA
 * chains (8 a token, and the min terms' sum) each run on a lane of their own. */
/* The types k_mmvq_cpu takes. */
bool lc_cu_cpu_type(lc_type t) { return t == LC_TYPE_Q8_0 || t == LC_TYPE_Q4_1 || t == LC_TYPE_Q5_0 || t == LC_TYPE_Q5_1; }

/* Block b of a row (mq_load's layouts; Q8_0 as its two half-block chunks): its levels as 8 words
 * (Q8_0: the 32 bytes; else the 16 bytes of nibbles, then nothing), fifth bits, d and m (0 but for
 * Q4_1 / Q5_1). */
template <int TYPE>
__device__ __forceinline__ void cpu_block(const uint8_t *wr, int b, int *qs, uint32_t *qh, float *d, float *m) {
    if constexpr (TYPE == LC_TYPE_Q8_0) {
        mq_chunk<TYPE> k0, k1;
        mq_load(k0, wr, 2 * b);
        mq_load(k1, wr, 2 * b + 1);
#pragma unroll
        for (int i = 0; i < 4; i++) qs[i] = k0.w[i], qs[4 + i] = k1.w[i];
        *qh = 0, *d = k0.d, *m = 0.0f;
    } else {
        mq_chunk<TYPE> k;
        mq_load(k, wr, b);
#pragma unroll
        for (int i = 0; i < 4; i++) qs[i] = k.w[i];
        *qh = k.qh, *d = k.d, *m = k.m;
    }
}

/* Lane l's levels of a block (elements 4l..4l+3) as int8 bytes, from cpu_block's words. */
template <int TYPE>
__device__ __forceinline__ int cpu_levels(const int *qs, uint32_t qh, int l) {
    if constexpr (TYPE == LC_TYPE_Q8_0) {
        return qs[l];
    } else {
        typedef legacy_fmt<TYPE> F;
        int v = (l < 4 ? qs[l] : qs[l - 4] >> 4) & 0x0F0F0F0F; /* element j < 16: low nibble of byte j */
        if (F::HIGH) v |= q5_bits(qh >> (4 * l));
        if (F::OFF) v = (int)__vsub4((unsigned)v, F::OFF * 0x01010101u);
        return v;
    }
}

template <int TYPE, int NT>
__global__ void __launch_bounds__(32 * MQ_WARPS) k_mmvq_cpu(mq_args a) {
    constexpr int NC = NT * 9; /* chains: 8 lanes and the min terms, per token */
    __shared__ float st[MQ_WARPS][NT][32][10]; /* per block: the 8 dots, m_w * s_x, d_w * d_x */
    cu_pdl_entry();
    int wi;
    const int row = cu_group_row(a, MQ_WARPS, &wi), lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (row >= a.rows[wi]) return; /* whole warps */
    const int nb = a.cols / 32;
    const uint8_t *wr = a.w[wi] + (size_t)row * a.row_bytes[wi];
    float acc[(NC + 31) / 32];
#pragma unroll
    for (int k = 0; k < (NC + 31) / 32; k++) acc[k] = 0.0f;
    for (int b0 = 0; b0 < nb; b0 += 32) {
        const int b = b0 + lane;
        if (b < nb) {
            int qs[8];
            uint32_t qh;
            float d, m;
            cpu_block<TYPE>(wr, b, qs, &qh, &d, &m);
#pragma unroll
            for (int t = 0; t < NT; t++) {
                if (t >= a.T) break;
                const int4 *xp = (const int4 *)(a.xq + (size_t)t * a.cols + 32 * b);
                const int4 x0 = xp[0], x1 = xp[1];
                const int xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
                const float2 dd = a.dx[(size_t)t * nb + b];
                float *o = st[w][t][lane];
#pragma unroll
                for (int l = 0; l < 8; l++) o[l] = (float)__dp4a(cpu_levels<TYPE>(qs, qh, l), xs[l], 0);
                o[8] = __fmul_rn(m, dd.y); /* f16 x f16: exact */
                o[9] = __fmul_rn(d, dd.x);
            }
        }
        __syncwarp();
        const int n = min(32, nb - b0);
#pragma unroll
        for (int k = 0; k < (NC + 31) / 32; k++) {
            const int ch = lane + 32 * k, t = ch / 9, l = ch % 9;
            if (ch < NC && t < a.T)
                for (int i = 0; i < n; i++) {
                    const float *o = st[w][t][i];
                    acc[k] = l < 8 ? fmaf(o[9], o[l], acc[k]) : __fadd_rn(acc[k], o[8]);
                }
        }
        __syncwarp();
    }
    float *red = &st[w][0][0][0]; /* the chains' ends: NC floats */
#pragma unroll
    for (int k = 0; k < (NC + 31) / 32; k++)
        if (lane + 32 * k < NC) red[lane + 32 * k] = acc[k];
    __syncwarp();
    if (lane < a.T) {
        const float *c = red + 9 * lane;
        const float r0 = __fadd_rn(c[0], c[4]), r1 = __fadd_rn(c[1], c[5]), r2 = __fadd_rn(c[2], c[6]), r3 = __fadd_rn(c[3], c[7]);
        a.out[wi][(size_t)lane * a.rows[wi] + row] = __fadd_rn(__fadd_rn(__fadd_rn(r0, r2), __fadd_rn(r1, r3)), c[8]);
    }
}

/* out_w (T, rows_w) for up to 4 weights of one type sharing the input, S warps a row. S 1: one
 * warp a row. S 2 or 4 (one token, products of few rows: one warp a row left most of the chip
 * idle, ncu: 12% occupancy for 1024 rows): warp w of a block takes share w % S of row
 * (MQ_WARPS / S) * block + w / S, and the row's first warp adds the S partial dots in order. */
template <int TYPE, int NT, int S>
__device__ __forceinline__ void mmvq_rows(const mq_args &a, int wi, int row) {
    if constexpr (S == 1) {
        if (row >= a.rows[wi]) return;
        float acc[NT];
        row_dot_q8<TYPE, NT>(a.w[wi] + (size_t)row * a.row_bytes[wi], a.cols, a.xq, a.dx, a.T, acc, a.pre);
        cu_row_store<NT>(acc, a.T, a.out[wi], a.rows[wi], row);
    } else {
        static_assert(NT == 1, "several warps a row: one token");
        float acc[1][1] = {{0.0f}};
        const bool ok = row < a.rows[wi];
        if (ok) {
            const uint8_t *wr = a.w[wi] + (size_t)row * a.row_bytes[wi];
            rows_dot_q8<TYPE, 1, 1, S>(&wr, a.cols, a.xq, a.dx, 1, acc, (threadIdx.x >> 5) % S, a.pre);
        }
        cu_split_store<S, MQ_WARPS>(acc[0][0], ok, a.out[wi] + row);
    }
}

template <int TYPE, int NT, int S>
__global__ void __launch_bounds__(32 * MQ_WARPS) k_mmvq(mq_args a) {
    if (!a.pre) cu_pdl_entry();
    int wi;
    const int row = cu_group_row(a, MQ_WARPS / S, &wi, S);
    mmvq_rows<TYPE, NT, S>(a, wi, row);
}

/* k_mmvq<type, 1, S> for one token and weights of different int8 types sharing the input (a Q4_K Q
 * and K beside a Q6_K V): each block multiplies rows of one weight, so the type is the block's. */
template <int S>
__global__ void __launch_bounds__(32 * MQ_WARPS) k_mmvq_mix(mq_args a) {
    if (!a.pre) cu_pdl_entry();
    int wi;
    const int row = cu_group_row(a, MQ_WARPS / S, &wi, S);
#define L(TY) mmvq_rows<TY, 1, S>(a, wi, row)
    MQ_DISPATCH(a.type[wi], L);
#undef L
}

/* Expert pairs: pair p = blockIdx.y uses expert ids[p] and input row p (x_per_pair) or p / k; lane
 * group g of warp w takes row (MQ_WARPS * blockIdx.x + w) * (32 / L) + g (ids_short). */
template <int TYPE, int L, int U>
__global__ void __launch_bounds__(32 * MQ_WARPS)
    k_mmvq_ids(const uint8_t *w, size_t row_bytes, size_t expert_bytes, int rows, int cols, int n_expert,
               const int8_t *xq, const float2 *dx, bool x_per_pair, int k, const int32_t *ids, float *out) {
    cu_pdl_entry();
    constexpr int R = 32 / L;
    const int p = blockIdx.y, row0 = (blockIdx.x * MQ_WARPS + (threadIdx.x >> 5)) * R, row = row0 + (threadIdx.x & 31) / L;
    if (row0 >= rows) return;
    const int e = ids[p];
    if (e < 0 || e >= n_expert) return;
    const int xr = x_per_pair ? p : p / k;
    const uint8_t *wr = w + (size_t)e * expert_bytes + (size_t)min(row, rows - 1) * row_bytes;
    float acc[1][1];
    rows_dot_q8<TYPE, 1, 1, 1, L, U>(&wr, cols, xq + (size_t)xr * cols, dx + (size_t)xr * (cols / 32), 1, acc);
    if ((threadIdx.x & (L - 1)) == 0 && row < rows) out[(size_t)p * rows + row] = acc[0][0];
}

/* Gate and up products of the same pairs and their SwiGLU, one launch (decode): block (RB rows,
 * pair p), lane group g (ids_short) of the block takes row RB * blockIdx.x + g of both weights of
 * expert ids[p], loading their chunks together; up_out gets u, out gets silu(g) * u as k_swiglu
 * computes it, and with q (RB 32, rows a multiple of 32) the q8 form of out, each block of 32 as
 * k_swiglu's. */
template <int TYPE, int RB, int L, int U>
__global__ void __launch_bounds__(RB * L, RB * L == 128 && L == 32 ? 12 : 1) /* 12 blocks an SM: one wave, 30B-A3B */
    k_mmvq_ids_glu(const uint8_t *wg, const uint8_t *wu, size_t row_bytes, size_t expert_bytes, int rows, int cols,
                   int n_expert, const int8_t *xq, const float2 *dx, int k, const int32_t *ids, float *out,
                   float *up_out, int8_t *q, float2 *dq) {
    cu_pdl_entry();
    __shared__ float vals[32];
    const int p = blockIdx.y, g = threadIdx.x / L, row = blockIdx.x * RB + g, e = ids[p];
    float v = 0.0f;
    if (e >= 0 && e < n_expert && (int)blockIdx.x * RB + (int)(threadIdx.x >> 5) * (32 / L) < rows) {
        const size_t off = (size_t)e * expert_bytes + (size_t)min(row, rows - 1) * row_bytes;
        const uint8_t *wr[2] = {wg + off, wu + off};
        float acc[2][1];
        const int xr = p / k;
        rows_dot_q8<TYPE, 1, 2, 1, L, U>(wr, cols, xq + (size_t)xr * cols, dx + (size_t)xr * (cols / 32), 1, acc);
        const float a = acc[0][0];
        v = cu_silu(a) * acc[1][0];
        if ((threadIdx.x & (L - 1)) == 0 && row < rows)
            up_out[(size_t)p * rows + row] = acc[1][0], out[(size_t)p * rows + row] = v;
    }
    if (RB != 32 || !q) return;
    if ((threadIdx.x & (L - 1)) == 0) vals[g] = v;
    __syncthreads();
    const size_t i0 = (size_t)p * rows + (size_t)blockIdx.x * 32;
    if (threadIdx.x < 32) cu_q8_block(vals[threadIdx.x], q + i0, dq + i0 / 32);
}

/* Down products of each token's k pairs and their weighted sum (moe_combine), one launch
 * (decode): block (32 / L rows, token t), warp j takes pair t * k + j, its lane group g row
 * (32 / L) * blockIdx.x + g; out[t, row] = sum over j in order of weights[pair] * dot, as
 * k_moe_combine adds them. */
template <int TYPE, int L, int U>
__global__ void __launch_bounds__(1024) /* top-32: 64 registers; 30B-A3B's top-8: 4 blocks an SM, one wave */
    k_mmvq_ids_sum(const uint8_t *w, size_t row_bytes, size_t expert_bytes, int rows, int cols, int n_expert,
                   const int8_t *xq, const float2 *dx, int k, const int32_t *ids, const float *weights, float *out) {
    cu_pdl_entry();
    constexpr int R = 32 / L;
    __shared__ float dots[32][R];
    const int t = blockIdx.y, j = threadIdx.x >> 5, g = (threadIdx.x & 31) / L, row = blockIdx.x * R + g;
    const int p = t * k + j, e = ids[p];
    float acc[1][1] = {{0.0f}};
    if (e >= 0 && e < n_expert) {
        const uint8_t *wr = w + (size_t)e * expert_bytes + (size_t)min(row, rows - 1) * row_bytes;
        rows_dot_q8<TYPE, 1, 1, 1, L, U>(&wr, cols, xq + (size_t)p * cols, dx + (size_t)p * (cols / 32), 1, acc);
    }
    if ((threadIdx.x & (L - 1)) == 0) dots[j][g] = acc[0][0];
    __syncthreads();
    const int r = blockIdx.x * R + threadIdx.x;
    if (threadIdx.x < R && r < rows) {
        float s = 0.0f;
        for (int i = 0; i < k; i++) s += weights[t * k + i] * dots[i][threadIdx.x];
        out[(size_t)t * rows + r] = s;
    }
}

/* ==== Entry points ==== */

/* Bytes of the q8 form of n elements (a multiple of 32) in the scratch: the int8 values, then the
 * block scales. */
static size_t q8_bytes(size_t n) { return (n + 255) / 256 * 256 + (n / 32 * sizeof(float2) + 255) / 256 * 256; }

/* The backend's q8 scratch for nq elements, placed after the q8 form of skip elements (which a
 * fused op still reads while it writes this one). */
lc_status lc_cu_q8_scratch(lc_cuda *c, size_t skip, size_t nq, int8_t **xq, float2 **dx) {
    const size_t at = skip ? q8_bytes(skip) : 0;
    lc_status st = lc_cu_grow(c, &c->xq, &c->xq_bytes, at + q8_bytes(nq));
    if (st) return st;
    *xq = (int8_t *)c->xq + at;
    *dx = (float2 *)((uint8_t *)c->xq + at + (nq + 255) / 256 * 256);
    return LC_OK;
}

/* Quantizes x (n_rows, cols) into the backend's q8 scratch; *xq, *dx point at the result. When the
 * op that wrote x, or the quantization for an earlier product, already left its q8 form there
 * (c->xq_tag: no launch but products' since), nothing runs. */
lc_status lc_cu_quantize_q8(lc_cuda *c, const float *x, int n_rows, int cols, const int8_t **xq,
                            const float2 **dx) {
    if (cols % 32) return lc_fail(LC_ERR_UNSUPPORTED, "CUDA backend: row length %d is not a multiple of 32", cols);
    const size_t nq = (size_t)n_rows * cols;
    if (c->xq_tag.src == x && c->xq_tag.n == nq) {
        *xq = c->xq_tag.q;
        *dx = c->xq_tag.d;
        return LC_OK;
    }
    int8_t *q;
    float2 *d;
    lc_status st = lc_cu_q8_scratch(c, 0, nq, &q, &d);
    if (st) return st;
    *xq = q;
    *dx = d;
    const int n_blk = (int)(nq / 32);
    cu_k(c, k_quantize_q8_1, (n_blk + 7) / 8, 256, x, q, d, n_blk);
    cu_q8_set(c, x, nq, q, d); /* for the next product of the same input (cu_q8_keep) */
    return CU_LAUNCH(c);
}

/* Launches k_mmvq<type, NT, S> over the blocks. */
template <int NT, int S>
static void mmvq_launch(lc_cuda *c, lc_type t, int blocks, const mq_args &a) {
#define L(TY) cu_k(c, k_mmvq<TY, NT, S>, blocks, 32 * MQ_WARPS, a)
    MQ_DISPATCH(t, L);
#undef L
}

/* out[i] (T, rows_i) = x (T, cols) @ W_i^T for n_w (<= 4) weights of lc_cu_mmvq_ok types (of one
 * type, or mixed where lc_cu_mmvq_mixes allows); x is already quantized (lc_cu_quantize_q8). More
 * than MQ_MAX_TOK tokens take one launch per MQ_MAX_TOK (each reads the weights again). */
lc_status lc_cu_mmvq(lc_cuda *c, int n_w, const lc_weight *const *w, const uint8_t *const *wd, float *const *out,
                     const int8_t *xq, const float2 *dx, int T) {
    if (T > MQ_MAX_TOK) { /* a short prompt (lc_cu_matmul): MQ_MAX_TOK tokens a launch */
        const size_t cols = (size_t)w[0]->cols;
        for (int t0 = 0; t0 < T; t0 += MQ_MAX_TOK) {
            float *o[4];
            for (int i = 0; i < n_w; i++) o[i] = out[i] + (size_t)t0 * w[i]->rows;
            lc_status st = lc_cu_mmvq(c, n_w, w, wd, o, xq + t0 * cols, dx + t0 * cols / 32, LC_MIN(MQ_MAX_TOK, T - t0));
            if (st) return st;
        }
        return LC_OK;
    }
    mq_args a;
    if (c->cpu_order && lc_cu_cpu_type(w[0]->type)) { /* one type (lc_cu_mmvq_mixes), a warp a row */
        const int blocks = lc_cu_group_args(a, n_w, w, wd, out, T, MQ_WARPS);
        a.xq = xq;
        a.dx = dx;
#define L(TY)                                                                                     \
    if (T == 1) cu_k(c, k_mmvq_cpu<TY, 1>, blocks, 32 * MQ_WARPS, a);                            \
    else if (T <= 4) cu_k(c, k_mmvq_cpu<TY, 4>, blocks, 32 * MQ_WARPS, a);                       \
    else cu_k(c, k_mmvq_cpu<TY, MQ_MAX_TOK>, blocks, 32 * MQ_WARPS, a)
        switch ((int)w[0]->type) {
        case LC_TYPE_Q8_0: L(LC_TYPE_Q8_0); break;
        case LC_TYPE_Q4_1: L(LC_TYPE_Q4_1); break;
        case LC_TYPE_Q5_0: L(LC_TYPE_Q5_0); break;
        default: L(LC_TYPE_Q5_1); break;
        }
#undef L
        return CU_LAUNCH(c);
    }
    /* one token: S warps a row when the products have too few rows to keep about c->mmvq_warps
     * warps on each SM */
    int rows = 0, S = 1;
    for (int i = 0; i < n_w; i++) rows += (int)w[i]->rows;
    while (T == 1 && S < 4 && (int64_t)rows * S < (int64_t)c->mmvq_warps * c->n_sm) S *= 2;
    int blocks = lc_cu_group_args(a, n_w, w, wd, out, T, MQ_WARPS / S);
    a.xq = xq;
    a.dx = dx;
    a.pre = T == 1 && (c->preload & (S > 1 ? 1 : 2));
    bool mixed = false;
    for (int i = 0; i < n_w; i++) a.type[i] = (int)w[i]->type, mixed |= w[i]->type != w[0]->type;
    if (mixed) { /* lc_cu_mmvq_mixes allowed it: one token */
        if (S == 1) cu_k(c, k_mmvq_mix<1>, blocks, 32 * MQ_WARPS, a);
        else if (S == 2) cu_k(c, k_mmvq_mix<2>, blocks, 32 * MQ_WARPS, a);
        else cu_k(c, k_mmvq_mix<4>, blocks, 32 * MQ_WARPS, a);
    } else if (S == 2) mmvq_launch<1, 2>(c, w[0]->type, blocks, a);
    else if (S == 4) mmvq_launch<1, 4>(c, w[0]->type, blocks, a);
    else if (T == 1) mmvq_launch<1, 1>(c, w[0]->type, blocks, a);
    else if (T <= 4) mmvq_launch<4, 1>(c, w[0]->type, blocks, a);
    else mmvq_launch<MQ_MAX_TOK, 1>(c, w[0]->type, blocks, a);
    return CU_LAUNCH(c);
}

/* Calls F<L, U> for the expert dot layout of rows of `cols` elements of type t (ids_short). */
#define IDS_LAYOUT(c, t, cols, F, ...)                                                       \
    do {                                                                                     \
        if (ids_short(c, (cols) / chunk_elems(t))) F<IDS_L_SHORT, 3>(__VA_ARGS__);           \
        else F<32, 1>(__VA_ARGS__);                                                          \
    } while (0)

template <int LN, int UN>
static void launch_ids_lu(lc_cuda *c, const cu_experts *e) {
    const lc_weight *w = e->w;
    const int rows_per_block = MQ_WARPS * (32 / LN);
    dim3 grid((unsigned)((w->rows + rows_per_block - 1) / rows_per_block), (unsigned)(e->n_tok * e->k));
#define L(TY)                                                                                                 \
    cu_k(c, k_mmvq_ids<TY, LN, UN>, grid, 32 * MQ_WARPS, e->wd, w->row_bytes, w->expert_bytes, (int)w->rows, \
         (int)w->cols, (int)w->n_expert, e->xq, e->dx, e->x_per_pair, e->k, e->ids, e->out)
    MQ_DISPATCH(w->type, L);
#undef L
}

static void launch_ids(lc_cuda *c, const cu_experts *e) { IDS_LAYOUT(c, e->w->type, (int)e->w->cols, launch_ids_lu, c, e); }

/* Whether b is the up product that may join the held gate product a: same input and routing, the
 * same type and shape, a weight of its own. */
static bool joins(const cu_experts *a, const cu_experts *b) {
    return a->x == b->x && !a->x_per_pair && !b->x_per_pair && a->ids == b->ids && a->n_tok == b->n_tok &&
           a->k == b->k && a->w->type == b->w->type && a->w->rows == b->w->rows && a->w->cols == b->w->cols &&
           a->w->row_bytes == b->w->row_bytes && a->w->expert_bytes == b->w->expert_bytes &&
           a->w->n_expert == b->w->n_expert && a->out != b->out && a->wd != b->wd;
}

void lc_cu_experts_flush(lc_cuda *c, const cu_pend *p) {
    for (int i = 0; i < p->n_ex; i++) launch_ids(c, &p->ex[i]);
}

/* Expert products for n_pairs (token, expert) pairs with device-resident ids (decode). With
 * c->moe_fuse the product is held back (PEND_EXPERTS) for lc_cu_experts_swiglu or
 * lc_cu_experts_combine. */
lc_status lc_cu_mmvq_ids(lc_cuda *c, const lc_weight *w, const uint8_t *wd, float *out, const float *x,
                         bool x_per_pair, const int32_t *ids_dev, int n_tok, int k) {
    const int n_pairs = n_tok * k, n_x = x_per_pair ? n_pairs : n_tok;
    cu_experts e = {w, wd, out, x, x_per_pair, ids_dev, n_tok, k, NULL, NULL};
    lc_status st = lc_cu_quantize_q8(c, x, n_x, (int)w->cols, &e.xq, &e.dx);
    if (st) return st;
    const cu_q8_tag tag = cu_q8_take(c);
    cu_pend *pd = &c->pend;
    if (c->moe_fuse && k <= 32) {
        if (pd->kind == PEND_EXPERTS && pd->n_ex == 1 && joins(&pd->ex[0], &e)) {
            pd->ex[1] = e, pd->n_ex = 2;
            return LC_OK;
        }
        lc_cu_flush(c);
        *pd = (cu_pend){};
        pd->kind = PEND_EXPERTS;
        pd->ex[0] = e, pd->n_ex = 1;
        cu_q8_keep(c, tag, &out, 1); /* what the flush launched was no writer of x */
        return LC_OK;
    }
    launch_ids(c, &e);
    cu_q8_keep(c, tag, &out, 1);
    return CU_LAUNCH(c);
}

/* k_mmvq_ids_glu over the held gate and up products: 32 rows a block (the block makes the q8 form
 * q of its outputs) with c->moe_glu_rows 32, else 4 warps a block (1024-thread blocks ran one a SM:
 * 192 of them for a 30B-A3B layer took two waves; the down product quantizes). */
template <int LN, int UN>
static void launch_glu(lc_cuda *c, const cu_experts *g, const cu_experts *u, int8_t *q, float2 *dq) {
    const lc_weight *w = g->w;
    const int rb = c->moe_glu_rows == 32 ? 32 : 4 * (32 / LN);
    dim3 grid((unsigned)((w->rows + rb - 1) / rb), (unsigned)(g->n_tok * g->k));
#define ARGS                                                                                                      \
    g->wd, u->wd, w->row_bytes, w->expert_bytes, (int)w->rows, (int)w->cols, (int)w->n_expert, g->xq, g->dx, g->k, \
        g->ids, g->out, u->out, q, dq
#define L(TY)                                                                              \
    if (rb == 32) cu_k(c, k_mmvq_ids_glu<TY, 32, LN, UN>, grid, 32 * LN, ARGS);            \
    else cu_k(c, k_mmvq_ids_glu<TY, 4 * (32 / LN), LN, UN>, grid, 4 * 32, ARGS)
    MQ_DISPATCH(w->type, L);
#undef L
#undef ARGS
}

/* k_mmvq_ids_sum over the held down product: a block per token and 32 / LN rows. */
template <int LN, int UN>
static void launch_sum(lc_cuda *c, const cu_experts *d, const float *weights, float *out) {
    const lc_weight *w = d->w;
    const int R = 32 / LN;
    dim3 grid((unsigned)((w->rows + R - 1) / R), (unsigned)d->n_tok);
#define ARGS                                                                                                        \
    d->wd, w->row_bytes, w->expert_bytes, (int)w->rows, (int)w->cols, (int)w->n_expert, d->xq, d->dx, d->k, d->ids, \
        weights, out
#define L(TY) cu_k(c, k_mmvq_ids_sum<TY, LN, UN>, grid, 32 * d->k, ARGS)
    MQ_DISPATCH(w->type, L);
#undef L
#undef ARGS
}

bool lc_cu_experts_swiglu(lc_cuda *c, float *out, const float *gate, const float *up, size_t n) {
    cu_pend *pd = &c->pend;
    if (pd->kind != PEND_EXPERTS || pd->n_ex != 2) return false;
    const cu_experts g = pd->ex[0], u = pd->ex[1];
    const lc_weight *w = g.w;
    const int n_pairs = g.n_tok * g.k;
    if (out != g.out || gate != g.out || up != u.out || n != (size_t)n_pairs * w->rows) return false;
    int8_t *q = NULL;
    float2 *dq = NULL;
    if (c->moe_glu_rows == 32 && c->fuse_q8 && w->rows % 32 == 0 && n <= (size_t)CU_GRAPH_MAX_TOK * 32768 &&
        g.xq == (const int8_t *)c->xq) {
        const size_t nx = (size_t)g.n_tok * w->cols; /* the input's q8 form stays first: the launch reads it */
        if (q8_bytes(nx) + q8_bytes(n) > c->xq_bytes) { /* growing loses it: the held products run first, */
            lc_cu_grow(c, &c->xq, &c->xq_bytes, q8_bytes(nx) + q8_bytes(n)); /* unfused this once */
            return false;
        }
        if (lc_cu_q8_scratch(c, nx, n, &q, &dq)) return false;
    }
    pd->kind = PEND_NONE;
    IDS_LAYOUT(c, w->type, (int)w->cols, launch_glu, c, &g, &u, q, dq);
    if (q) cu_q8_set(c, out, n, q, dq); /* after the launch, which clears it */
    CU_LAUNCH(c);
    return true;
}

bool lc_cu_experts_combine(lc_cuda *c, float *out, const float *y, const float *weights, int n_tok, int k, int n) {
    cu_pend *pd = &c->pend;
    if (pd->kind != PEND_EXPERTS || pd->n_ex != 1) return false;
    const cu_experts d = pd->ex[0];
    const lc_weight *w = d.w;
    if (!d.x_per_pair || y != d.out || n_tok != d.n_tok || k != d.k || n != w->rows || out == d.x) return false;
    pd->kind = PEND_NONE;
    IDS_LAYOUT(c, w->type, (int)w->cols, launch_sum, c, &d, weights, out);
    CU_LAUNCH(c);
    return true;
}
