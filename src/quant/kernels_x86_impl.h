/* kernels_x86_impl.h — the body of the x86 kernel units, included once by kernels_avx2.c and once
 * by kernels_avx512.c; not a header for anyone else.
 *
 * Each including unit first defines the integer primitives that differ per ISA:
 *   dot_acc(acc, u, s)        acc + sums of 4 u8*s8 products per i32 lane (maddubs+madd | vpdpbusd)
 *   dot_sc_acc(acc, u, s, w)  acc + (u8*s8 pairs summed to i16) * w (i16), pairwise (madd | vpdpwssd)
 *   bytes_from_bits(b, v)     32 bytes: v where bit j of b is set, else 0
 * then includes this file, which defines every vec_dot, the activation quantizers and the gemm
 * tiles on 256-bit vectors, and fill_common(k) to put them in a table.
 * Layout contracts are in quant_blocks.h; results are compared with kernels_scalar.c by
 * tests/unit/test_kernels.c (integer parts exact, float sums to rounding).
 */
#include "tile_macros.h"

/* ==== Small helpers ==== */

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline float f16(uint16_t h) { return _cvtsh_ss(h); }

/* 32 nibbles of a 16-byte legacy block as bytes: low nibbles (elements 0..15) then high. */
static inline __m256i nibbles16(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i b = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* A scale for i32 lanes 0-3 (lo) and 4-7 (hi), as i16 pairs for dot_sc_acc. */
static inline __m256i scale2(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* ==== Float types ==== */

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float r = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) r += x[i] * y[i];
    *s = r;
}

static inline __m256 load_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
static inline __m256 load_bf16x8(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(load_f16x8(x + i + 8), load_f16x8(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), a0);
    float r = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) r += f16(x[i]) * f16(y[i]);
    *s = r;
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), load_bf16x8(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), a0);
    float r = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) r += lc_bf16_to_f32(x[i]) * lc_bf16_to_f32(y[i]);
    *s = r;
}

/* ==== Legacy formats ==== */

/* Signed x signed: |x| * (y with x's sign), the usual way to feed an unsigned-signed dot. */
static inline __m256i dot_ss(__m256i acc, __m256i x, __m256i y) {
    return dot_acc(acc, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q8_0 *x = vx, *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK; i++) {
        __m256i p = dot_ss(_mm256_setzero_si256(), load256(x[i].qs), load256(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

/* Q4_0: sum((q-8)*y) = sum(q*y) - 8*sum(y); both as unsigned-signed dots. */
static void dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_0 *x = vx;
    const lc_block_q8_0 *y = vy;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK; i++) {
        __m256i yv = load256(y[i].qs);
        __m256i p = _mm256_sub_epi32(dot_acc(_mm256_setzero_si256(), nibbles16(x[i].qs), yv),
                                     dot_acc(_mm256_setzero_si256(), eight, yv));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

static void dot_q4_1(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_1 *x = vx;
    const lc_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / LC_QK; i++) {
        __m256i p = dot_acc(_mm256_setzero_si256(), nibbles16(x[i].qs), load256(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), _mm256_cvtepi32_ps(p), acc);
        summ += f16(x[i].m) * f16(y[i].s);
    }
    *s = hsum_ps(acc) + summ;
}

static void dot_q5_0(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_0 *x = vx;
    const lc_block_q8_0 *y = vy;
    const __m256i sixteen = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        __m256i q = _mm256_or_si256(nibbles16(x[i].qs), bytes_from_bits(qh, 0x10));
        __m256i yv = load256(y[i].qs);
        __m256i p = _mm256_sub_epi32(dot_acc(_mm256_setzero_si256(), q, yv),
                                     dot_acc(_mm256_setzero_si256(), sixteen, yv));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

static void dot_q5_1(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_1 *x = vx;
    const lc_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / LC_QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        __m256i q = _mm256_or_si256(nibbles16(x[i].qs), bytes_from_bits(qh, 0x10));
        __m256i p = dot_acc(_mm256_setzero_si256(), q, load256(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), _mm256_cvtepi32_ps(p), acc);
        summ += f16(x[i].m) * f16(y[i].s);
    }
    *s = hsum_ps(acc) + summ;
}

/* ==== K formats ==== */

/* The five row dots sum in ggml's x86 order (ggml_vec_dot_q{2..6}_K_q8_K, __AVX2__ branch, as
 * llama.cpp's native build compiles it on AVX2 and AVX-512 CPUs), so a decode token's result is
 * llama.cpp's bit for bit (kernels_scalar.c spells the order out; test_kernels checks it): per
 * super-block 8 i32 lanes, lane l holding positions 4l..4l+3 of every 32-byte chunk of levels
 * (what dot_sc_acc on a chunk gives), then acc = fma(d, float(lanes), acc) with d = y.d * x.d,
 * and hsum_ps at the end. The integer lanes may be formed in any order; the min and bias terms
 * must go where ggml puts them (see each function). */

/* The 8 i32 lanes of a 512-bit integer sum folded onto 8 (lane l + lane l+8): exact, and
 * ggml's lane l when lanes 8-15 hold the second of two 32-byte chunks. */
static inline __m256i fold8(__m256i lo, __m256i hi) { return _mm256_add_epi32(lo, hi); }

/* Sum over the 8 sub-blocks of m_j * (bsums[2j] + bsums[2j+1]) for Q5_K. */
static inline int kmins_dot(const uint8_t *mins8, const int16_t *bsums) {
    __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mins8));
    __m256i m2 = _mm256_cvtepu16_epi32(m);                   /* 8 x i32 */
    m2 = _mm256_or_si256(m2, _mm256_slli_epi32(m2, 16));      /* each m_j in both i16 halves */
    __m256i b = load256(bsums);
    return hsum_i32(_mm256_madd_epi16(b, m2));
}

/* Q4_K's min term as ggml keeps it: 4 float lanes, lane k += dmin * (m[2k] (bsums 4k + 4k+1) +
 * m[2k+1] (bsums 4k+2 + 4k+3)) by FMA (dmin = -y.d * x.dmin); scm holds the mins in bytes 8-15. */
static inline __m128 k4_mins4(__m128 accm, __m128i scm, const int16_t *bsums, float dmin) {
    __m256i b = load256(bsums);
    __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    __m128i prod = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(scm, scm)), pairs);
    return _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), accm);
}

/* The 4 lanes of k4_mins4 summed as ggml does: (0 + 2) + (1 + 3). */
static inline float hsum4_ps(__m128 v) {
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}

/* Q5_K's min term: one float, summs += dmin * msum (the block's integer min sum) by FMA (GCC
 * contracts ggml's `summs += dmin * ...` into vfmadd231ss; fmaf is that instruction here, as
 * this unit is built with FMA), added after the lanes' hsum. */
static inline float k5_mins(float summs, int msum, float dmin) { return fmaf(dmin, (float)msum, summs); }

/* The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a Q4_K/Q5_K block, in one vector, by
 * word arithmetic on the 12 packed bytes (w0 = bytes 0-3, w1 = 4-7, w2 = 8-11): scales 0-3 are
 * w0's low 6 bits, mins 0-3 w1's; scales 4-7 take w2's low nibbles with w0's top 2 bits above,
 * mins 4-7 w2's high nibbles with w1's top 2 bits (lc_k4_scale_min spelled for 4 lanes at once). */
static inline __m128i k4_scales_mins(const uint8_t *s12) {
    uint32_t w0, w1, w2;
    memcpy(&w0, s12, 4);
    memcpy(&w1, s12 + 4, 4);
    memcpy(&w2, s12 + 8, 4);
    const uint32_t lo6 = 0x3f3f3f3fu, nib = 0x0f0f0f0fu, top2 = 0x03030303u;
    uint32_t sc_lo = w0 & lo6, mn_lo = w1 & lo6;
    uint32_t sc_hi = (w2 & nib) | (((w0 >> 6) & top2) << 4);
    uint32_t mn_hi = ((w2 >> 4) & nib) | (((w1 >> 6) & top2) << 4);
    return _mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo);
}

/* The 8 scales and 8 mins of a Q4_K/Q5_K block. */
static inline void k4_unpack(const uint8_t *s12, uint8_t sc[8], uint8_t m[8]) {
    __m128i v = k4_scales_mins(s12);
    _mm_storel_epi64((__m128i *)sc, v);
    _mm_storel_epi64((__m128i *)m, _mm_unpackhi_epi64(v, v));
}

static void dot_q4_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int i = 0; i < n / LC_QK_K; i++) {
        __m128i scm = k4_scales_mins(x[i].scales);
        uint8_t sc[8];
        _mm_storel_epi64((__m128i *)sc, scm);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            __m256i q = load256(q4);
            sumi = dot_sc_acc(sumi, _mm256_and_si256(q, m4), load256(q8), _mm256_set1_epi16(sc[2 * j]));
            sumi = dot_sc_acc(sumi, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), load256(q8 + 32),
                              _mm256_set1_epi16(sc[2 * j + 1]));
        }
        const float d = y[i].d * f16(x[i].d), dmin = -(y[i].d * f16(x[i].dmin));
        accm = k4_mins4(accm, scm, y[i].bsums, dmin);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) + hsum4_ps(accm);
}

static void dot_q5_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b16 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int i = 0; i < n / LC_QK_K; i++) {
        uint8_t sc[8], mn[8];
        k4_unpack(x[i].scales, sc, mn);
        const uint8_t *ql = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i hb = load256(x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++, ql += 32, q8 += 64) {
            __m256i q = load256(ql);
            __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(hb, 4), b16); /* bit 2j -> 0x10 */
            __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(hb, 3), b16); /* bit 2j+1 -> 0x10 */
            hb = _mm256_srli_epi16(hb, 2);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            sumi = dot_sc_acc(sumi, lo, load256(q8), _mm256_set1_epi16(sc[2 * j]));
            sumi = dot_sc_acc(sumi, hi, load256(q8 + 32), _mm256_set1_epi16(sc[2 * j + 1]));
        }
        const float d = y[i].d * f16(x[i].d), dmin = -(y[i].d * f16(x[i].dmin));
        summs = k5_mins(summs, kmins_dot(mn, y[i].bsums), dmin);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) + summs;
}

/* Q6_K's -32 level bias per i32 lane as ggml takes it off: lane l = 32 (sc[2l] bsums[2l] +
 * sc[2l+1] bsums[2l+1]) (int8 scales). */
static inline __m256i q6_bias8(const int8_t *sc, const int16_t *bsums) {
    __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
    return _mm256_slli_epi32(_mm256_madd_epi16(s16, load256(bsums)), 5);
}

/* Q6_K: q in 0..63 unsigned against y, minus the per-lane bias (q6_bias8), in i32. */
static void dot_q6_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q6_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs, *sc = x[i].scales;
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), q6_bias8(x[i].scales, y[i].bsums));
        for (int c = 0; c < 2; c++, ql += 64, qh += 32, q8 += 128, sc += 8) {
            __m256i l0 = load256(ql), l1 = load256(ql + 32), h = load256(qh);
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m3));
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m3));
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m3));
            __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(h, 2), m3));
            sumi = dot_sc_acc(sumi, q1, load256(q8), scale2(sc[0], sc[1]));
            sumi = dot_sc_acc(sumi, q2, load256(q8 + 32), scale2(sc[2], sc[3]));
            sumi = dot_sc_acc(sumi, q3, load256(q8 + 64), scale2(sc[4], sc[5]));
            sumi = dot_sc_acc(sumi, q4, load256(q8 + 96), scale2(sc[6], sc[7]));
        }
        const float d = y[i].d * f16(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* The 16 signed scales of a Q3_K block (lc_q3k_scales by word arithmetic): scale j has its low
 * nibble from byte j%8 (low nibble for j < 8, high above) and its top 2 bits from byte 8 + j%4
 * at bit 2*(j/4); w0, w1 = bytes 0-3, 4-7 and w2 = bytes 8-11 give 4 scales per word op. */
static inline __m128i q3k_scales_vec(const uint8_t *s12) {
    uint32_t w0, w1, w2;
    memcpy(&w0, s12, 4);
    memcpy(&w1, s12 + 4, 4);
    memcpy(&w2, s12 + 8, 4);
    const uint32_t nib = 0x0f0f0f0fu, two = 0x03030303u;
    uint32_t a = (w0 & nib) | ((w2 & two) << 4), b = (w1 & nib) | (((w2 >> 2) & two) << 4);
    uint32_t c = ((w0 >> 4) & nib) | (((w2 >> 4) & two) << 4), d = ((w1 >> 4) & nib) | (((w2 >> 6) & two) << 4);
    return _mm_sub_epi8(_mm_setr_epi32((int)a, (int)b, (int)c, (int)d), _mm_set1_epi8(32));
}

/* Q3_K: levels q - 4 in -4..3 kept inside each lane, as ggml does: per chunk, the i16 pair sums
 * of (2 low bits) * y minus those of (4 where the high bit is clear) * y, times the scales. */
static void dot_q3_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q3_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK_K; i++) {
        int8_t sc[16];
        _mm_storeu_si128((__m128i *)sc, q3k_scales_vec(x[i].scales));
        const int8_t *q8 = y[i].qs;
        __m256i hm = load256(x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        int is = 0;
        for (int c = 0; c < 2; c++) {
            __m256i q = load256(x[i].qs + 32 * c);
            for (int sh = 0; sh < 4; sh++, q8 += 32, is += 2) {
                __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * sh), m2);
                /* hmask bit (4c+sh) of byte l clear -> 4 */
                __m256i h4 = _mm256_slli_epi16(_mm256_andnot_si256(_mm256_srli_epi16(hm, 4 * c + sh), one), 2);
                __m256i yv = load256(q8);
                __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(lo, yv), _mm256_maddubs_epi16(h4, yv));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, scale2(sc[is], sc[is + 1])));
            }
        }
        const float d = y[i].d * f16(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* Q2_K: q in 0..3, 4-bit scales; the min term goes into the same 8 lanes first (lane l: m[2l]
 * bsums[2l] + m[2l+1] bsums[2l+1], times dmin = -y.d * x.dmin), then the levels' lanes. */
static void dot_q2_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q2_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m256i m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK_K; i++) {
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        int is = 0;
        for (int c = 0; c < 2; c++) {
            __m256i q = load256(x[i].qs + 32 * c);
            for (int sh = 0; sh < 4; sh++, q8 += 32, is += 2) {
                __m256i qq = _mm256_and_si256(_mm256_srli_epi16(q, 2 * sh), m2);
                sumi = dot_sc_acc(sumi, qq, load256(q8), scale2(x[i].scales[is] & 0xF, x[i].scales[is + 1] & 0xF));
            }
        }
        __m256i mins = _mm256_cvtepu8_epi16(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)x[i].scales), 4));
        mins = _mm256_and_si256(mins, _mm256_set1_epi16(0x0F));
        __m256i prod = _mm256_madd_epi16(mins, load256(y[i].bsums));
        const float d = y[i].d * f16(x[i].d), dmin = -(y[i].d * f16(x[i].dmin));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* ==== Activation quantizers (bit-identical to quant_ref.c) ==== */

static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Packs 4 x 8 int32 (in order) into 32 int8. */
static inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i r = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline int quant_block32(const float *x, int8_t *qs, float *dout) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
           v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                             _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
    /* as ggml's x86 quantize_row_q8_0 (and the scalar act_block32): 127 / amax, half to even */
    const float amax = hmax_ps(m), d = amax / 127.f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), b = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id)),
            c = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), e = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
    _mm256_storeu_si256((__m256i *)qs, pack32(a, b, c, e));
    *dout = d;
    return hsum_i32(_mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, e)));
}

static void quant_q8_0(const float *x, void *dst, int64_t n) {
    lc_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++) {
        float d;
        quant_block32(x + i * LC_QK, y[i].qs, &d);
        y[i].d = lc_f32_to_f16(d);
    }
}

static void quant_q8_1(const float *x, void *dst, int64_t n) {
    lc_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++) {
        float d;
        int sum = quant_block32(x + i * LC_QK, y[i].qs, &d);
        y[i].d = lc_f32_to_f16(d);
        y[i].s = lc_f32_to_f16(sum * d);
    }
}

static void quant_q8_K(const float *x, void *dst, int64_t n) {
    lc_block_q8_K *y = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / LC_QK_K; i++, x += LC_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < LC_QK_K; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
        const float amax = hmax_ps(m);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0;
        for (int j = 0; j < LC_QK_K; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int j = 0; j < LC_QK_K; j += 32) {
            __m256i a = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j))), lim);
            __m256i b = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8))), lim);
            __m256i c = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 16))), lim);
            __m256i e = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 24))), lim);
            y[i].bsums[j / 16] = (int16_t)hsum_i32(_mm256_add_epi32(a, b));
            y[i].bsums[j / 16 + 1] = (int16_t)hsum_i32(_mm256_add_epi32(c, e));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pack32(a, b, c, e));
        }
        y[i].d = 1 / iscale;
    }
}

static void quant_f16(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = lc_f32_to_f16(x[i]);
}

static void quant_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(v, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(v, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
        /* NaN: keep the payload's top and set the quiet bit */
        __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
        __m256i qn = _mm256_or_si256(_mm256_srli_epi32(v, 16), _mm256_set1_epi32(64));
        r = _mm256_blendv_epi8(r, qn, isnan);
        __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(y + i), p);
    }
    for (; i < n; i++) y[i] = lc_f32_to_bf16(x[i]);
}

/* ==== Dequantizers used on hot paths ==== */

static void deq_q8_0(const void *src, float *y, int64_t n) {
    const lc_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / LC_QK; i++, y += LC_QK) {
        __m256 d = _mm256_set1_ps(f16(x[i].d));
        for (int j = 0; j < LC_QK; j += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].qs + j)));
            _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
    }
}

static void deq_f16(const void *src, float *y, int64_t n) {
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16x8(x + i));
    for (; i < n; i++) y[i] = f16(x[i]);
}

/* ==== GEMM tiles ==== */

/* Tiles for the 32-element formats: RM weight rows x RN activation rows per call keep RM*RN
 * float accumulators in registers; every weight block is unpacked once per tile and every
 * activation block loaded once per tile. The helpers are always inlined with constant RM, RN
 * so the accumulator arrays live in registers. */

LC_INLINE void tile_q8_0(int nb, int RM, int RN, const uint8_t *w, size_t ws, const uint8_t *x,
                         size_t xs, float *out, size_t ldo) {
    __m256 acc[4][4];
    LC_UNROLL
    for (int r = 0; r < RM; r++)
        LC_UNROLL
        for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i yv[4];
        float dy[4];
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            const lc_block_q8_0 *yb = (const lc_block_q8_0 *)(x + c * xs) + b;
            yv[c] = load256(yb->qs);
            dy[c] = f16(yb->d);
        }
        LC_UNROLL
        for (int r = 0; r < RM; r++) {
            const lc_block_q8_0 *wb = (const lc_block_q8_0 *)(w + r * ws) + b;
            __m256i q = load256(wb->qs);
            __m256i uq = _mm256_sign_epi8(q, q);
            float dw = f16(wb->d);
            LC_UNROLL
            for (int c = 0; c < RN; c++) {
                __m256i p = dot_acc(_mm256_setzero_si256(), uq, _mm256_sign_epi8(yv[c], q));
                acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy[c]), _mm256_cvtepi32_ps(p), acc[r][c]);
            }
        }
    }
    LC_UNROLL
    for (int r = 0; r < RM; r++)
        LC_UNROLL
        for (int c = 0; c < RN; c++) out[c * ldo + r] = hsum_ps(acc[r][c]);
}

LC_INLINE void tile_q4_0(int nb, int RM, int RN, const uint8_t *w, size_t ws, const uint8_t *x,
                         size_t xs, float *out, size_t ldo) {
    __m256 acc[4][4];
    LC_UNROLL
    for (int r = 0; r < RM; r++)
        LC_UNROLL
        for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    for (int b = 0; b < nb; b++) {
        __m256i yv[4], corr[4];
        float dy[4];
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            const lc_block_q8_0 *yb = (const lc_block_q8_0 *)(x + c * xs) + b;
            yv[c] = load256(yb->qs);
            corr[c] = _mm256_sub_epi32(_mm256_setzero_si256(), dot_acc(_mm256_setzero_si256(), eight, yv[c]));
            dy[c] = f16(yb->d);
        }
        LC_UNROLL
        for (int r = 0; r < RM; r++) {
            const lc_block_q4_0 *wb = (const lc_block_q4_0 *)(w + r * ws) + b;
            __m256i q = nibbles16(wb->qs);
            float dw = f16(wb->d);
            LC_UNROLL
            for (int c = 0; c < RN; c++) {
                __m256i p = dot_acc(corr[c], q, yv[c]);
                acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy[c]), _mm256_cvtepi32_ps(p), acc[r][c]);
            }
        }
    }
    LC_UNROLL
    for (int r = 0; r < RM; r++)
        LC_UNROLL
        for (int c = 0; c < RN; c++) out[c * ldo + r] = hsum_ps(acc[r][c]);
}

/* Q4_1 in ggml's order (ggml_vec_dot_q4_1_q8_1, x86): per block, 8 lanes += d*dy * (i32 sum of 4
 * products) by FMA, and the min term m*s summed apart (f16 x f16: the product is exact in f32, so
 * one FMA per token is the same as ggml's multiply-add); output = hsum(lanes) + min sum. Every
 * output is that arithmetic wherever it sits in a tile, so a token's result does not depend on
 * its batch and equals llama.cpp's bit for bit (tests/unit/test_kernels.c). The min sums of up to
 * 4 tokens of one row share a 128-bit vector. */
LC_INLINE void tile_q4_1(int nb, int RM, int RN, const uint8_t *w, size_t ws, const uint8_t *x,
                         size_t xs, float *out, size_t ldo) {
    __m256 acc[4][4];
    __m128 summ[4];
    LC_UNROLL
    for (int r = 0; r < RM; r++) {
        summ[r] = _mm_setzero_ps();
        LC_UNROLL
        for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
        __m256i yv[4];
        float dy[4];
        short sh[4] = {0, 0, 0, 0}; /* the tokens' s as f16, converted together (in registers) */
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            const lc_block_q8_1 *yb = (const lc_block_q8_1 *)(x + c * xs) + b;
            yv[c] = load256(yb->qs);
            dy[c] = f16(yb->d);
            sh[c] = (short)yb->s;
        }
        const __m128 s4 = _mm_cvtph_ps(_mm_setr_epi16(sh[0], sh[1], sh[2], sh[3], 0, 0, 0, 0));
        LC_UNROLL
        for (int r = 0; r < RM; r++) {
            const lc_block_q4_1 *wb = (const lc_block_q4_1 *)(w + r * ws) + b;
            __m256i q = nibbles16(wb->qs);
            float dw = f16(wb->d);
            summ[r] = _mm_fmadd_ps(_mm_set1_ps(f16(wb->m)), s4, summ[r]);
            LC_UNROLL
            for (int c = 0; c < RN; c++) {
                __m256i p = dot_acc(_mm256_setzero_si256(), q, yv[c]);
                acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy[c]), _mm256_cvtepi32_ps(p), acc[r][c]);
            }
        }
    }
    LC_UNROLL
    for (int r = 0; r < RM; r++) {
        float sm[4];
        _mm_storeu_ps(sm, summ[r]);
        LC_UNROLL
        for (int c = 0; c < RN; c++) out[c * ldo + r] = hsum_ps(acc[r][c]) + sm[c];
    }
}


/* K formats, in the arithmetic of llama.cpp's tiled K-quant matmul (gemm_ref.c says it): per
 * output and super-block the exact integers S1 = sum of scale * (levels . q8) over the 16-element
 * groups, levels centred by corr (Q3_K 4, Q6_K 32, through the bsums), and S2 = mins . bsums; then
 * r = float(S1) * d - dmin * float(S2) (one FMA), and acc = fma(r, q8.d, acc) from zero, super-block
 * after super-block. Each weight super-block is unpacked once into unsigned levels and 16-bit
 * scales in L1 and dotted with up to 4 activation rows, whose outputs share one 4-lane float
 * vector. Batches under 8 tokens go to vec_dot instead (matmul.c), as in llama.cpp. */
typedef struct {
    uint8_t q[LC_QK_K];   /* unsigned levels */
    int16_t sc[16];       /* scale of each 16-element group */
    float d, dmin;        /* super-block scales (dmin 0 without mins) */
    int16_t mins[16];     /* min of each 16-element group (Q2_K/Q4_K/Q5_K), 0 otherwise */
    int corr_mul;         /* levels are stored + corr_mul (Q3_K: 4, Q6_K: 32), subtracted via bsums */
} kunpacked;

static inline void unpack_q4_K(const lc_block_q4_K *b, kunpacked *u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    uint8_t sc[8], mn[8];
    k4_unpack(b->scales, sc, mn);
    for (int j = 0; j < 4; j++) {
        __m256i q = load256(b->qs + 32 * j);
        _mm256_storeu_si256((__m256i *)(u->q + 64 * j), _mm256_and_si256(q, m4));
        _mm256_storeu_si256((__m256i *)(u->q + 64 * j + 32), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
    }
    for (int j = 0; j < 16; j++) { u->sc[j] = sc[j / 2]; u->mins[j] = mn[j / 2]; }
    u->d = f16(b->d);
    u->dmin = f16(b->dmin);
    u->corr_mul = 0;
}

static inline void unpack_q5_K(const lc_block_q5_K *b, kunpacked *u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), b16 = _mm256_set1_epi8(0x10);
    uint8_t sc[8], mn[8];
    k4_unpack(b->scales, sc, mn);
    __m256i hb = load256(b->qh);
    for (int j = 0; j < 4; j++) {
        __m256i q = load256(b->qs + 32 * j);
        __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(hb, 4), b16);
        __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(hb, 3), b16);
        hb = _mm256_srli_epi16(hb, 2);
        _mm256_storeu_si256((__m256i *)(u->q + 64 * j), _mm256_or_si256(_mm256_and_si256(q, m4), h0));
        _mm256_storeu_si256((__m256i *)(u->q + 64 * j + 32),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1));
    }
    for (int j = 0; j < 16; j++) { u->sc[j] = sc[j / 2]; u->mins[j] = mn[j / 2]; }
    u->d = f16(b->d);
    u->dmin = f16(b->dmin);
    u->corr_mul = 0;
}

static inline void unpack_q6_K(const lc_block_q6_K *b, kunpacked *u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x30);
    for (int c = 0; c < 2; c++) {
        const uint8_t *ql = b->ql + 64 * c, *qh = b->qh + 32 * c;
        uint8_t *o = u->q + 128 * c;
        __m256i l0 = load256(ql), l1 = load256(ql + 32), h = load256(qh);
        _mm256_storeu_si256((__m256i *)o, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m3)));
        _mm256_storeu_si256((__m256i *)(o + 32), _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m3)));
        _mm256_storeu_si256((__m256i *)(o + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m3)));
        _mm256_storeu_si256((__m256i *)(o + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                                                 _mm256_and_si256(_mm256_srli_epi16(h, 2), m3)));
    }
    for (int j = 0; j < 16; j++) { u->sc[j] = b->scales[j]; u->mins[j] = 0; }
    u->d = f16(b->d);
    u->dmin = 0;
    u->corr_mul = 32;
}

/* Q2_K and Q3_K levels: bit pair 2k of byte l of each 32-byte half is element 128c + 32k + l;
 * Q3_K adds hmask bit 4c+k of byte l as +4. */
static inline void unpack_q23_K(const uint8_t *qs, const uint8_t *hmask, kunpacked *u) {
    const __m256i m2 = _mm256_set1_epi8(3), b4 = _mm256_set1_epi8(4);
    __m256i hm = hmask ? load256(hmask) : _mm256_setzero_si256();
    for (int c = 0; c < 2; c++) {
        __m256i q = load256(qs + 32 * c);
        for (int k = 0; k < 4; k++) {
            __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2);
            __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hm, 4 * c + k), 2), b4);
            _mm256_storeu_si256((__m256i *)(u->q + 128 * c + 32 * k), _mm256_or_si256(v, h));
        }
    }
}

static inline void unpack_q2_K(const lc_block_q2_K *b, kunpacked *u) {
    unpack_q23_K(b->qs, NULL, u);
    for (int j = 0; j < 16; j++) { u->sc[j] = b->scales[j] & 0xF; u->mins[j] = b->scales[j] >> 4; }
    u->d = f16(b->d);
    u->dmin = f16(b->dmin);
    u->corr_mul = 0;
}

static inline void unpack_q3_K(const lc_block_q3_K *b, kunpacked *u) {
    int8_t sc[16];
    unpack_q23_K(b->qs, b->hmask, u);
    lc_q3k_scales(b->scales, sc);
    for (int j = 0; j < 16; j++) { u->sc[j] = sc[j]; u->mins[j] = 0; }
    u->d = f16(b->d);
    u->dmin = 0;
    u->corr_mul = 4;
}

/* The lane sums of four i32 vectors, one per 32-bit element (exact: integers). */
static inline __m128i hsum4_i32(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* One unpacked super-block against RN (<= 4) activation super-blocks: acc element c +=
 * (float(S1) * d - dmin * float(S2)) * yb[c]->d, in the arithmetic of the comment above. */
LC_INLINE void kdot(const kunpacked *u, int RN, const lc_block_q8_K *const *yb, __m128 *acc) {
    __m256i sumi[4], mt[4], ct[4];
    LC_UNROLL
    for (int c = 0; c < 4; c++) sumi[c] = mt[c] = ct[c] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        __m256i q = load256(u->q + 32 * j);
        __m256i s = scale2(u->sc[2 * j], u->sc[2 * j + 1]);
        LC_UNROLL
        for (int c = 0; c < RN; c++) sumi[c] = dot_sc_acc(sumi[c], q, load256(yb[c]->qs + 32 * j), s);
    }
    __m256i sc16 = load256(u->sc), mn16 = load256(u->mins);
    float dy[4] = {0, 0, 0, 0};
    LC_UNROLL
    for (int c = 0; c < RN; c++) {
        __m256i bs = load256(yb[c]->bsums);
        mt[c] = _mm256_madd_epi16(mn16, bs);
        ct[c] = _mm256_madd_epi16(sc16, bs);
        dy[c] = yb[c]->d;
    }
    __m128i s1 = hsum4_i32(sumi[0], sumi[1], sumi[2], sumi[3]);
    __m128i s2 = hsum4_i32(mt[0], mt[1], mt[2], mt[3]);
    if (u->corr_mul) s1 = _mm_sub_epi32(s1, _mm_mullo_epi32(hsum4_i32(ct[0], ct[1], ct[2], ct[3]), _mm_set1_epi32(u->corr_mul)));
    __m128 r = _mm_mul_ps(_mm_cvtepi32_ps(s1), _mm_set1_ps(u->d));
    r = _mm_fnmadd_ps(_mm_set1_ps(u->dmin), _mm_cvtepi32_ps(s2), r); /* S2 is 0 without mins */
    *acc = _mm_fmadd_ps(r, _mm_loadu_ps(dy), *acc);
}

#define LC_GEMM_K(name, btype, unpack)                                                           \
    static void name(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, \
                     float *out, size_t ldo) {                                                   \
        const int nb = n / LC_QK_K;                                                              \
        kunpacked u;                                                                             \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                                     \
            const int rn = nc - c0 < 4 ? nc - c0 : 4;                                            \
            for (int r = 0; r < nr; r++) {                                                       \
                const btype *wb = (const btype *)((const uint8_t *)w + r * ws);                  \
                __m128 acc = _mm_setzero_ps();                                                   \
                for (int b = 0; b < nb; b++) {                                                   \
                    const lc_block_q8_K *yb[4];                                                  \
                    for (int c = 0; c < rn; c++)                                                 \
                        yb[c] = (const lc_block_q8_K *)((const uint8_t *)x + (c0 + c) * xs) + b; \
                    unpack(wb + b, &u);                                                          \
                    if (rn == 4) kdot(&u, 4, yb, &acc);                                          \
                    else kdot(&u, rn, yb, &acc);                                                 \
                }                                                                                \
                float o[4];                                                                      \
                _mm_storeu_ps(o, acc);                                                           \
                for (int c = 0; c < rn; c++) out[(c0 + c) * ldo + r] = o[c];                     \
            }                                                                                    \
        }                                                                                        \
    }

/* ==== Table ==== */

static void fill_common(lc_kernels *k) {
    k->vec_dot[LC_TYPE_F32] = dot_f32;
    k->vec_dot[LC_TYPE_F16] = dot_f16;
    k->vec_dot[LC_TYPE_BF16] = dot_bf16;
    k->vec_dot[LC_TYPE_Q4_0] = dot_q4_0;
    k->vec_dot[LC_TYPE_Q4_1] = dot_q4_1;
    k->vec_dot[LC_TYPE_Q5_0] = dot_q5_0;
    k->vec_dot[LC_TYPE_Q5_1] = dot_q5_1;
    k->vec_dot[LC_TYPE_Q8_0] = dot_q8_0;
    k->vec_dot[LC_TYPE_Q2_K] = dot_q2_K;
    k->vec_dot[LC_TYPE_Q3_K] = dot_q3_K;
    k->vec_dot[LC_TYPE_Q4_K] = dot_q4_K;
    k->vec_dot[LC_TYPE_Q5_K] = dot_q5_K;
    k->vec_dot[LC_TYPE_Q6_K] = dot_q6_K;
    k->quantize[LC_TYPE_Q8_0] = quant_q8_0;
    k->quantize[LC_TYPE_Q8_1] = quant_q8_1;
    k->quantize[LC_TYPE_Q8_K] = quant_q8_K;
    k->quantize[LC_TYPE_F16] = quant_f16;
    k->quantize[LC_TYPE_BF16] = quant_bf16;
    k->to_float[LC_TYPE_Q8_0] = deq_q8_0;
    k->to_float[LC_TYPE_F16] = deq_f16;
}
