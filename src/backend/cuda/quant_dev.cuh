/* quant_dev.cuh — device-side dequantization of GGUF blocks: deq8<T>(block, j, v) writes the 8
 * consecutive elements 8j .. 8j+7 of one block as floats. Every matrix product, embedding lookup
 * and prefill dequantization in matmul.cu is built on these, so each format is decoded in one
 * place. Layouts as in src/quant/quant_blocks.h (ggml's); offsets are written out because the
 * blocks are byte-packed (most are not 4-byte aligned). Also the arithmetic the kernels share with
 * the CPU backend (int8 activations, its exp and silu) and warp and block reductions.
 */
#ifndef LC_QUANT_DEV_CUH
#define LC_QUANT_DEV_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

__device__ __forceinline__ float cu_h2f(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(h));
}

/* Sum over the 32 lanes of a warp, returned to every lane. */
template <typename F>
__device__ __forceinline__ F cu_warp_sum(F v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The maximum of every thread's v over the block (red: a float per warp, free until the next
 * barrier after the call); every thread gets it. */
__device__ __forceinline__ float cu_block_max(float v, float *red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    v = red[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) v = fmaxf(v, red[w]);
    return v;
}

/* exp(x) as the CPU backend's lc_vec_gexp (ggml_v_expf's polynomial): the same operations, so the
 * same bits. Used where the CPU backend uses it (silu, the short-context softmax). */
__device__ __forceinline__ float cu_gexp(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r), n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x)), u = b * b;
    const float p = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    return ldexpf(p, (int)n);
}

/* silu(g) as the CPU backend's AVX-512 swiglu computes it: g / (1 + gexp(0 - g)). */
__device__ __forceinline__ float cu_silu(float g) { return g / (1.0f + cu_gexp(0.0f - g)); }

/* Activation quantization in the CPU backend's arithmetic (src/quant/kernels_scalar.c, act_block32:
 * ggml's x86 quantize_row_q8_0/q8_1), so that the GPU's int8 products of the legacy types take the
 * CPU's int8 values and scales: the multiplier is 127 / amax (not 1 / d), rounded half to even, and
 * the block's d = amax / 127 and q8_1's s = d * sum(q) are kept as f16 values, as the CPU's blocks
 * store them. cu_q8_mul gives the multiplier, cu_q8_ds the pair {d, s} a product reads. */
__device__ __forceinline__ float cu_q8_mul(float amax) { return amax != 0.0f ? 127.0f / amax : 0.0f; }

__device__ __forceinline__ float2 cu_q8_ds(float amax, int sum) {
    const float d = amax / 127.0f;
    return make_float2(__half2float(__float2half_rn(d)), __half2float(__float2half_rn(d * (float)sum)));
}

/* q8_1-style activation quantization of one block of 32 floats held one per lane of a warp (all
 * lanes active): q[lane] and, from lane 0, the block's {d, s} (cu_q8_ds). The decode products'
 * input format (mmvq.cu); also written directly by the ops that produce their input (cuda.cu's
 * RMS norm and SwiGLU), with the same arithmetic. */
__device__ __forceinline__ void cu_q8_block(float v, int8_t *q, float2 *d) {
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const int qi = __float2int_rn(v * cu_q8_mul(amax));
    int s = qi;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    q[threadIdx.x & 31] = (int8_t)qi;
    if ((threadIdx.x & 31) == 0) *d = cu_q8_ds(amax, s);
}

/* cu_q8_block's arithmetic for a block of 32 held 4 values a lane by 8 lanes (mask: the warp's lanes
 * that call it, whole groups of 8 consecutive lanes): returns the 4 values' int8 levels and, in
 * *ds, the block's {d, s}. Where the 4 values sit in the block does not matter (the maximum and
 * the sum do not depend on the order). */
__device__ __forceinline__ char4 cu_q8_quad(float4 v, unsigned mask, float2 *ds) {
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(mask, amax, o));
    const float id = cu_q8_mul(amax);
    const int q0 = __float2int_rn(v.x * id), q1 = __float2int_rn(v.y * id), q2 = __float2int_rn(v.z * id),
              q3 = __float2int_rn(v.w * id);
    int s = q0 + q1 + q2 + q3;
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) s += __shfl_xor_sync(mask, s, o);
    *ds = cu_q8_ds(amax, s);
    return make_char4((signed char)q0, (signed char)q1, (signed char)q2, (signed char)q3);
}

/* The end of a product of one warp a row: lane 0 writes the row's dot with each of the T tokens
 * (acc[t], NT a compile-time bound on T) to out (T, rows). */
template <int NT>
__device__ __forceinline__ void cu_row_store(const float *acc, int T, float *out, int rows, int row) {
    if ((threadIdx.x & 31) != 0) return;
#pragma unroll
    for (int t = 0; t < NT; t++)
        if (t < T) out[(size_t)t * rows + row] = acc[t];
}

/* The end of a one-token product that takes S warps a row (WARPS warps a block, WARPS / S rows):
 * lane 0 of each warp holds its share of the row's dot in acc, the row's first warp adds the S
 * shares in warp order and writes the sum to *dst when ok. Every thread of the block calls it. */
template <int S, int WARPS>
__device__ __forceinline__ void cu_split_store(float acc, bool ok, float *dst) {
    __shared__ float part[WARPS];
    const int w = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) part[w] = acc;
    __syncthreads();
    if (threadIdx.x % (32 * S) == 0 && ok) {
        float sum = part[w];
#pragma unroll
        for (int j = 1; j < S; j++) sum += part[w + j];
        *dst = sum;
    }
}

/* Block size (elements) and bytes of each type the GPU computes with. */
template <int T> struct qt;
template <> struct qt<0> { enum { BS = 8, BYTES = 32 }; };   /* F32 */
template <> struct qt<1> { enum { BS = 8, BYTES = 16 }; };   /* F16 */
template <> struct qt<30> { enum { BS = 8, BYTES = 16 }; };  /* BF16 */
template <> struct qt<2> { enum { BS = 32, BYTES = 18 }; };  /* Q4_0 */
template <> struct qt<3> { enum { BS = 32, BYTES = 20 }; };  /* Q4_1 */
template <> struct qt<6> { enum { BS = 32, BYTES = 22 }; };  /* Q5_0 */
template <> struct qt<7> { enum { BS = 32, BYTES = 24 }; };  /* Q5_1 */
template <> struct qt<8> { enum { BS = 32, BYTES = 34 }; };  /* Q8_0 */
template <> struct qt<10> { enum { BS = 256, BYTES = 84 }; }; /* Q2_K */
template <> struct qt<11> { enum { BS = 256, BYTES = 110 }; };/* Q3_K */
template <> struct qt<12> { enum { BS = 256, BYTES = 144 }; };/* Q4_K */
template <> struct qt<13> { enum { BS = 256, BYTES = 176 }; };/* Q5_K */
template <> struct qt<14> { enum { BS = 256, BYTES = 210 }; };/* Q6_K */

template <int T> __device__ __forceinline__ void deq8(const uint8_t *b, int j, float *v);

template <> __device__ __forceinline__ void deq8<0>(const uint8_t *b, int j, float *v) {
    const float4 *p = (const float4 *)b;
    float4 a = p[0], c = p[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = c.x; v[5] = c.y; v[6] = c.z; v[7] = c.w;
}

template <> __device__ __forceinline__ void deq8<1>(const uint8_t *b, int j, float *v) {
    uint4 u = *(const uint4 *)b;
    const __half2 *h = (const __half2 *)&u;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __half22float2(h[i]);
        v[2 * i] = f.x;
        v[2 * i + 1] = f.y;
    }
}

template <> __device__ __forceinline__ void deq8<30>(const uint8_t *b, int j, float *v) {
    uint4 u = *(const uint4 *)b;
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
    }
}

/* Legacy formats: element e < 16 is the low nibble of qs[e], e >= 16 the high nibble of qs[e-16]. */
template <> __device__ __forceinline__ void deq8<2>(const uint8_t *b, int j, float *v) {
    float d = cu_h2f(b);
    const uint8_t *qs = b + 2 + (j & 1) * 8;
    int sh = (j >> 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = d * (float)(((qs[i] >> sh) & 15) - 8);
}

template <> __device__ __forceinline__ void deq8<3>(const uint8_t *b, int j, float *v) {
    float d = cu_h2f(b), m = cu_h2f(b + 2);
    const uint8_t *qs = b + 4 + (j & 1) * 8;
    int sh = (j >> 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = d * (float)((qs[i] >> sh) & 15) + m;
}

template <> __device__ __forceinline__ void deq8<6>(const uint8_t *b, int j, float *v) {
    float d = cu_h2f(b);
    uint32_t qh = b[2] | (b[3] << 8) | (b[4] << 16) | ((uint32_t)b[5] << 24);
    const uint8_t *qs = b + 6 + (j & 1) * 8;
    int sh = (j >> 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int q = ((qs[i] >> sh) & 15) | (((qh >> (8 * j + i)) & 1) << 4);
        v[i] = d * (float)(q - 16);
    }
}

template <> __device__ __forceinline__ void deq8<7>(const uint8_t *b, int j, float *v) {
    float d = cu_h2f(b), m = cu_h2f(b + 2);
    uint32_t qh = b[4] | (b[5] << 8) | (b[6] << 16) | ((uint32_t)b[7] << 24);
    const uint8_t *qs = b + 8 + (j & 1) * 8;
    int sh = (j >> 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int q = ((qs[i] >> sh) & 15) | (((qh >> (8 * j + i)) & 1) << 4);
        v[i] = d * (float)q + m;
    }
}

template <> __device__ __forceinline__ void deq8<8>(const uint8_t *b, int j, float *v) {
    float d = cu_h2f(b);
    const int8_t *qs = (const int8_t *)b + 2 + 8 * j;
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = d * (float)qs[i];
}

/* Q2_K: element e: qs[32*(e/128) + e%32] >> 2*((e%128)/32), scale byte e/16. */
template <> __device__ __forceinline__ void deq8<10>(const uint8_t *b, int j, float *v) {
    int e = 8 * j;
    float d = cu_h2f(b + 80), dmin = cu_h2f(b + 82);
    uint8_t sc = b[e / 16];
    float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
    const uint8_t *qs = b + 16 + 32 * (e / 128) + (e % 32);
    int sh = 2 * ((e % 128) / 32);
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = dl * (float)((qs[i] >> sh) & 3) - ml;
}

/* Q3_K: 2 low bits as Q2_K, high bit in hmask[e%32] bit (4*(e/128) + (e%128)/32); 6-bit scales. */
template <> __device__ __forceinline__ void deq8<11>(const uint8_t *b, int j, float *v) {
    int e = 8 * j, s = e / 16;
    const uint8_t *sc = b + 96;
    int lo = s < 8 ? (sc[s] & 15) : (sc[s - 8] >> 4);
    int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    float dl = cu_h2f(b + 108) * (float)((lo | (hi << 4)) - 32);
    const uint8_t *qs = b + 32 + 32 * (e / 128) + (e % 32);
    const uint8_t *hm = b + (e % 32);
    int g = (e % 128) / 32, sh = 2 * g, hb = 4 * (e / 128) + g;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int q = ((qs[i] >> sh) & 3) - (((hm[i] >> hb) & 1) ? 0 : 4);
        v[i] = dl * (float)q;
    }
}

__device__ __forceinline__ void cu_k4_scale_min(int j, const uint8_t *q, float *sc, float *m) {
    if (j < 4) {
        *sc = (float)(q[j] & 63);
        *m = (float)(q[j + 4] & 63);
    } else {
        *sc = (float)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q4_K: per 64 elements, qs[32c + l] holds element 64c + l (low) and 64c + 32 + l (high). */
template <> __device__ __forceinline__ void deq8<12>(const uint8_t *b, int j, float *v) {
    int e = 8 * j, sb = e / 32;
    float sc, m;
    cu_k4_scale_min(sb, b + 4, &sc, &m);
    float d = cu_h2f(b) * sc, mn = cu_h2f(b + 2) * m;
    const uint8_t *qs = b + 16 + 32 * (e / 64) + (e % 32);
    int sh = (sb & 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = d * (float)((qs[i] >> sh) & 15) - mn;
}

/* Q5_K: Q4_K plus a fifth bit in qh[e%32] bit sb (the sub-block of 32). */
template <> __device__ __forceinline__ void deq8<13>(const uint8_t *b, int j, float *v) {
    int e = 8 * j, sb = e / 32;
    float sc, m;
    cu_k4_scale_min(sb, b + 4, &sc, &m);
    float d = cu_h2f(b) * sc, mn = cu_h2f(b + 2) * m;
    const uint8_t *qh = b + 16 + (e % 32);
    const uint8_t *qs = b + 48 + 32 * (e / 64) + (e % 32);
    int sh = (sb & 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int q = ((qs[i] >> sh) & 15) | (((qh[i] >> sb) & 1) << 4);
        v[i] = d * (float)q - mn;
    }
}

/* Q6_K: per 128 elements, group g = (e%128)/32: low nibble from ql[64n + 32(g&1) + l] (>>4 when
 * g >= 2), high bits qh[32n + l] >> 2g; int8 scale e/16. */
template <> __device__ __forceinline__ void deq8<14>(const uint8_t *b, int j, float *v) {
    int e = 8 * j, n = e / 128, g = (e % 128) / 32, l = e % 32;
    float d = cu_h2f(b + 208) * (float)((const int8_t *)b)[192 + e / 16];
    const uint8_t *ql = b + 64 * n + 32 * (g & 1) + l;
    const uint8_t *qh = b + 128 + 32 * n + l;
    int sh = (g >> 1) * 4, hs = 2 * g;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int q = ((ql[i] >> sh) & 15) | (((qh[i] >> hs) & 3) << 4);
        v[i] = d * (float)(q - 32);
    }
}

/* Calls F with the type as a compile-time constant (the dispatch of every templated kernel). */
#define LC_CU_DISPATCH(type, F)                \
    switch (type) {                            \
    case 0: F(0); break;                       \
    case 1: F(1); break;                       \
    case 30: F(30); break;                     \
    case 2: F(2); break;                       \
    case 3: F(3); break;                       \
    case 6: F(6); break;                       \
    case 7: F(7); break;                       \
    case 8: F(8); break;                       \
    case 10: F(10); break;                     \
    case 11: F(11); break;                     \
    case 12: F(12); break;                     \
    case 13: F(13); break;                     \
    case 14: F(14); break;                     \
    default: break;                            \
    }

#endif /* LC_QUANT_DEV_CUH */
