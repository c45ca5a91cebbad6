/* kernels_avx512.c — the AVX-512 (F, BW, VL, DQ, VNNI) kernel table.
 *
 * Same kernel bodies as the AVX2 unit (kernels_x86_impl.h) on 256-bit vectors, but integer dots
 * go through VNNI (vpdpbusd, vpdpwssd: one instruction instead of three), bit expansion through
 * mask registers, 512-bit row dots, and panel GEMMs (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K: 16 weight rows
 * unpacked once per call into one i32 lane each, tiles of 16 rows x 8 tokens). The Q4_0 / Q8_0
 * panels sum a block in i32 first; gemm_exact has them in llama.cpp's order (8 FMA lanes per
 * output, about 1.7x the time; see "in llama.cpp's order" below).
 * Entry point: lc_kernels_fill_avx512 (called after the AVX2 fill, overriding its entries).
 */
#include "quant.h"

#include "base/base.h"
#include "quant_blocks.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline __m256i dot_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
static inline __m256i dot_sc_acc(__m256i acc, __m256i u, __m256i s, __m256i w) {
    return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), w);
}
static inline __m256i bytes_from_bits(uint32_t bits, int v) {
    return _mm256_maskz_mov_epi8((__mmask32)bits, _mm256_set1_epi8((char)v));
}

#include "kernels_x86_impl.h"

/* ==== 512-bit vec_dot ==== */

/* The K formats take a super-block as four 512-bit vectors, with the scales spread over the lanes
 * by vpermw; each vector holds two 32-byte chunks (lanes 0-7 and 8-15), so folding the i32 sums
 * onto 8 lanes gives ggml's lanes exactly, and the float steps are then the 256-bit dots' (ggml's
 * order, bit for bit: kernels_x86_impl.h, test_kernels). Of the 32-element formats only Q4_0
 * keeps a 512-bit row dot (two blocks per vector); Q8_0 and Q4_1 decode rows go two rows per
 * vector in ggml's order (below), and their vec_dot is the 256-bit one, in that order too. */

static inline __m512i load512(const void *p) { return _mm512_loadu_si512(p); }
static inline __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Floats [a x8, b x8] from two f16 values. */
static inline __m512 f16_pair(uint16_t a, uint16_t b) {
    __m256i h = _mm256_mask_set1_epi16(_mm256_set1_epi16((short)a), 0xFF00, (short)b);
    return _mm512_cvtph_ps(h);
}

/* Signed x signed bytes, per i32 lane: |x| against y with x's sign. */
static inline __m512i dot_ss512(__m512i x, __m512i y) {
    __m512i ys = _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(x), _mm512_setzero_si512(), y);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(x), ys);
}

/* ==== One-token rows ==== */

/* Q4_0: two blocks per 512-bit vector (block 0 in i32 lanes 0-7, block 1 in 8-15), two vectors
 * per iteration into independent accumulators, a lone last block through the 256-bit dot. Not
 * ggml's order (that is the 256-bit dot_q4_0's, which the AVX2 table uses): a two-row version in
 * ggml's order (as rows_q8_0) measured 15-20% slower in 1B Q4_0 decode, streaming four rows. */
static inline __m512i nibbles_pair(const uint8_t *q0, const uint8_t *q1) {
    __m256i v = _mm256_loadu2_m128i((const __m128i *)q1, (const __m128i *)q0);
    __m512i z = join256(v, _mm256_srli_epi16(v, 4));          /* [q0, q1, q0>>4, q1>>4] */
    z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
    return _mm512_shuffle_i64x2(z, z, 0xD8);                  /* lanes 0, 2, 1, 3 */
}


static inline __m512i q8_pair(const int8_t *a, const int8_t *b) { return join256(load256(a), load256(b)); }

static inline __m512 q4_0_pair(__m512 acc, const lc_block_q4_0 *x, const lc_block_q8_0 *y) {
    __m512i yv = q8_pair(y[0].qs, y[1].qs);
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_pair(x[0].qs, x[1].qs), yv);
    p = _mm512_sub_epi32(p, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), yv));
    __m512 d = _mm512_mul_ps(f16_pair(x[0].d, x[1].d), f16_pair(y[0].d, y[1].d));
    return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
}

/* A row dot over block pairs: two pairs per iteration into independent accumulators, a last
 * pair, and a lone last block through the 256-bit dot1. */
#define LC_DOT_PAIRS(name, bx, by, pair, dot1)                          \
    static void name(int n, float *s, const void *vx, const void *vy) { \
        const bx *x = vx;                                               \
        const by *y = vy;                                               \
        const int nb = n / LC_QK;                                       \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;                       \
        int i = 0;                                                      \
        for (; i + 4 <= nb; i += 4) {                                   \
            a0 = pair(a0, x + i, y + i);                                \
            a1 = pair(a1, x + i + 2, y + i + 2);                        \
        }                                                               \
        if (i + 2 <= nb) a0 = pair(a0, x + i, y + i), i += 2;           \
        float r = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));          \
        if (i < nb) {                                                   \
            float t;                                                    \
            dot1(LC_QK, &t, x + i, y + i);                              \
            r += t;                                                     \
        }                                                               \
        *s = r;                                                         \
    }

LC_DOT_PAIRS(dot_q4_0_512, lc_block_q4_0, lc_block_q8_0, q4_0_pair, dot_q4_0)

/* Rows r .. r + 3 of w for rows_q8_0's step (w2, w3 repeat w1 when only two are left); whether four. */
LC_INLINE bool q8_rows4(const void *w, size_t ws, int r, int nr, const lc_block_q8_0 *wr[4]) {
    const bool four = r + 4 <= nr;
    wr[0] = (const lc_block_q8_0 *)((const uint8_t *)w + (size_t)r * ws);
    wr[1] = (const lc_block_q8_0 *)((const uint8_t *)wr[0] + ws);
    wr[2] = four ? (const lc_block_q8_0 *)((const uint8_t *)wr[1] + ws) : wr[1];
    wr[3] = four ? (const lc_block_q8_0 *)((const uint8_t *)wr[2] + ws) : wr[1];
    return four;
}

/* Q8_0 rows against nc (<= RQ8_MAX_TOK) Q8_0 activation rows (stride xs), each output summed exactly
 * as ggml_vec_dot_q8_0_q8_0 (x86) and the 256-bit dot_q8_0 sum it: 8 lanes (lane j: the i32 sum of
 * elements 4j..4j+3 of a block), each += dw*dy * lane by FMA block after block, then hsum_ps. Two
 * rows share a 512-bit vector (row r in lanes 0-7, r+1 in 8-15), four rows (two chains) a pass, each
 * pair of weight blocks loaded once for every token: a token's sums do not depend on how many others
 * share the call, so a sequence's logits do not depend on how many others share a decode step (the
 * panel adds in another order: a server's concurrent requests flipped near ties of the default
 * model's Q8_0 output head). One token: quant_bench, one thread, gemm(nc=1) 15 -> 18 GB/s in L2 and
 * 7 -> 9 from memory against the pairwise row dot. */
#define RQ8_MAX_TOK 7
LC_INLINE void rows_q8_0_n(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                           size_t ldo) {
    const int nb = n / LC_QK;
    int r = 0;
    for (; r + 2 <= nr; r += 2) {
        const lc_block_q8_0 *q[4];
        const bool four = q8_rows4(w, ws, r, nr, q);
        __m512 a0[RQ8_MAX_TOK], a1[RQ8_MAX_TOK];
        for (int t = 0; t < nc; t++) a0[t] = a1[t] = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) { /* the four rows' blocks b, loaded once for every token */
            const __m512i q01 = join256(load256(q[0][b].qs), load256(q[1][b].qs));
            const __m512i q23 = join256(load256(q[2][b].qs), load256(q[3][b].qs));
            const __m512 d01 = f16_pair(q[0][b].d, q[1][b].d), d23 = f16_pair(q[2][b].d, q[3][b].d);
            for (int t = 0; t < nc; t++) {
                const lc_block_q8_0 *y = (const lc_block_q8_0 *)((const uint8_t *)x + (size_t)t * xs);
                const __m512i yv = _mm512_broadcast_i64x4(load256(y[b].qs));
                const __m512 dy = _mm512_set1_ps(f16(y[b].d));
                a0[t] = _mm512_fmadd_ps(_mm512_mul_ps(d01, dy), _mm512_cvtepi32_ps(dot_ss512(q01, yv)), a0[t]);
                if (four) a1[t] = _mm512_fmadd_ps(_mm512_mul_ps(d23, dy), _mm512_cvtepi32_ps(dot_ss512(q23, yv)), a1[t]);
            }
        }
        for (int t = 0; t < nc; t++) {
            float *o = out + (size_t)t * ldo + r;
            o[0] = hsum_ps(_mm512_castps512_ps256(a0[t]));
            o[1] = hsum_ps(_mm512_extractf32x8_ps(a0[t], 1));
            if (four) {
                o[2] = hsum_ps(_mm512_castps512_ps256(a1[t]));
                o[3] = hsum_ps(_mm512_extractf32x8_ps(a1[t], 1));
            }
        }
        if (four) r += 2;
    }
    if (r < nr)
        for (int t = 0; t < nc; t++)
            dot_q8_0(n, out + (size_t)t * ldo + r, (const uint8_t *)w + (size_t)r * ws, (const uint8_t *)x + (size_t)t * xs);
}

/* One token: rows_q8_0_n's one-token case, compiled apart (nc a constant). */
static void rows_q8_0(int n, int nr, const void *w, size_t ws, const void *x, float *out) {
    rows_q8_0_n(n, nr, 1, w, ws, x, 0, out, 0);
}

/* The same for Q4_1 against one Q8_1 row (ggml_vec_dot_q4_1_q8_1's order): the lanes as above
 * without the -8, and the min terms m*s of four rows summed apart in one 128-bit vector (an f16 x
 * f16 product: exact, so the FMA is ggml's multiply-add), added after the lanes' hsum. */
static void rows_q4_1(int n, int nr, const void *w, size_t ws, const void *x, float *out) {
    const lc_block_q8_1 *y = x;
    const int nb = n / LC_QK;
    int r = 0;
    for (; r + 4 <= nr; r += 4) {
        const lc_block_q4_1 *w0 = (const lc_block_q4_1 *)((const uint8_t *)w + (size_t)r * ws);
        const lc_block_q4_1 *w1 = (const lc_block_q4_1 *)((const uint8_t *)w0 + ws);
        const lc_block_q4_1 *w2 = (const lc_block_q4_1 *)((const uint8_t *)w1 + ws);
        const lc_block_q4_1 *w3 = (const lc_block_q4_1 *)((const uint8_t *)w2 + ws);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        __m128 sm = _mm_setzero_ps();
        for (int b = 0; b < nb; b++) {
            __m512i yv = _mm512_broadcast_i64x4(load256(y[b].qs));
            __m512 dy = _mm512_set1_ps(f16(y[b].d));
            __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), join256(nibbles16(w0[b].qs), nibbles16(w1[b].qs)), yv);
            __m512i p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), join256(nibbles16(w2[b].qs), nibbles16(w3[b].qs)), yv);
            a0 = _mm512_fmadd_ps(_mm512_mul_ps(f16_pair(w0[b].d, w1[b].d), dy), _mm512_cvtepi32_ps(p0), a0);
            a1 = _mm512_fmadd_ps(_mm512_mul_ps(f16_pair(w2[b].d, w3[b].d), dy), _mm512_cvtepi32_ps(p1), a1);
            __m128 m4 = _mm_cvtph_ps(_mm_setr_epi16((short)w0[b].m, (short)w1[b].m, (short)w2[b].m, (short)w3[b].m, 0, 0, 0, 0));
            sm = _mm_fmadd_ps(m4, _mm_set1_ps(f16(y[b].s)), sm);
        }
        float s4[4];
        _mm_storeu_ps(s4, sm);
        out[r] = hsum_ps(_mm512_castps512_ps256(a0)) + s4[0];
        out[r + 1] = hsum_ps(_mm512_extractf32x8_ps(a0, 1)) + s4[1];
        out[r + 2] = hsum_ps(_mm512_castps512_ps256(a1)) + s4[2];
        out[r + 3] = hsum_ps(_mm512_extractf32x8_ps(a1, 1)) + s4[3];
    }
    for (; r < nr; r++) dot_q4_1(n, out + r, (const uint8_t *)w + (size_t)r * ws, x);
}

/* vpermw indices putting i16 scale a in lanes 0-15 and b in 16-31 (32-element sub-blocks). */
static inline __m512i idx_2x16(int a, int b) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1);
}
/* ... and scales a..a+3 in lanes of 8 (16-element sub-blocks). */
static inline __m512i idx_4x8(int a) {
    return _mm512_setr_epi64(0x0001000100010001LL * a, 0x0001000100010001LL * a,
                             0x0001000100010001LL * (a + 1), 0x0001000100010001LL * (a + 1),
                             0x0001000100010001LL * (a + 2), 0x0001000100010001LL * (a + 2),
                             0x0001000100010001LL * (a + 3), 0x0001000100010001LL * (a + 3));
}

/* Q4_K / Q5_K share everything but the 5th bit and the min term. A 64-byte run of qs (h = 0, 1)
 * gives two level vectors without a shuffle: its low nibbles are elements 128h + 0..31 (bytes
 * 0-31) and 128h + 64..95 (bytes 32-63), its high nibbles the same + 32; the activations are
 * loaded to match (two 256-bit halves 64 apart). Lanes 0-7 and 8-15 each hold one 32-element
 * chunk, so the i32 sums fold onto ggml's 8 lanes. s16: i16 scales 0-7 and mins 8-15. */
static inline __m512i q8_split(const int8_t *p) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(p)), load256(p + 64), 1);
}

static inline __m256i k4_lanes(const __m512i q[4], __m512i s16, const lc_block_q8_K *y) {
    __m512i sa = _mm512_setzero_si512(), sb = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        __m512i p0 = _mm512_maddubs_epi16(q[2 * h], q8_split(y->qs + 128 * h));
        __m512i p1 = _mm512_maddubs_epi16(q[2 * h + 1], q8_split(y->qs + 128 * h + 32));
        sa = _mm512_dpwssd_epi32(sa, p0, _mm512_permutexvar_epi16(idx_2x16(4 * h, 4 * h + 2), s16));
        sb = _mm512_dpwssd_epi32(sb, p1, _mm512_permutexvar_epi16(idx_2x16(4 * h + 1, 4 * h + 3), s16));
    }
    __m512i t = _mm512_add_epi32(sa, sb);
    return fold8(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
}

/* k4_scales_mins in vector ops, from one 16-byte load at the scales (the 4 bytes past them are
 * the block's own qh / qs): bytes 0-7 the 8 scales, 8-15 the 8 mins. Per byte, scales/mins 0-3
 * are the low 6 bits of bytes 0-3 / 4-7; 4-7 take bytes 8-11's low / high nibble with the top 2
 * bits of bytes 0-3 / 4-7 above (the 16-bit shifts leave every bit used inside its byte). */
static inline __m128i k4_scm(const uint8_t *s12) {
    const __m128i v = _mm_loadu_si128((const __m128i *)s12), nib = _mm_set1_epi8(0x0F);
    __m128i lo6 = _mm_and_si128(v, _mm_set1_epi8(0x3F));                         /* d0: sc 0-3, d1: m 0-3 */
    __m128i top = _mm_and_si128(_mm_srli_epi16(v, 2), _mm_set1_epi8(0x30));      /* d0, d1: top 2 at 4-5 */
    __m128i n = _mm_unpackhi_epi32(_mm_and_si128(v, nib), _mm_and_si128(_mm_srli_epi16(v, 4), nib));
    return _mm_unpacklo_epi32(lo6, _mm_or_si128(n, top));                         /* sc 0-3, 4-7, m 0-3, 4-7 */
}

/* The mins term's i32 lanes: lane j = m_j * (bsums[2j] + bsums[2j+1]). */
static inline __m256i k4_min_lanes(__m256i s16, const int16_t *bsums) {
    const __m256i idx = _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    return _mm256_madd_epi16(_mm256_permutexvar_epi16(idx, s16), load256(bsums));
}

/* [x.d * y.d, x.dmin * y.d] in lanes 0 and 1 (the two f16 scales are adjacent). */
static inline __m128 k4_dd(const uint16_t *dd, float yd) {
    int v;
    memcpy(&v, dd, 4);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(v)), _mm_set1_ps(yd));
}

/* Q4_K's min term stays in ggml's 4-lane acc_m, here the even lanes of an 8-lane vector (lane
 * 2k = k4_mins4's lane k, by the same FMA: fnmadd with dmin is fma with -dmin). */
static void dot_q4_K_512(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK_K; i++) {
        __m512i q[4];
        for (int h = 0; h < 2; h++) {
            __m512i v = load512(x[i].qs + 64 * h);
            q[2 * h] = _mm512_and_si512(v, m4);
            q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        __m256i s16 = _mm256_cvtepu8_epi16(k4_scm(x[i].scales));
        __m256i sumi = k4_lanes(q, _mm512_castsi256_si512(s16), &y[i]);
        __m256i mi = k4_min_lanes(s16, y[i].bsums);
        mi = _mm256_add_epi32(mi, _mm256_srli_epi64(mi, 32)); /* lane 2k: ggml's prod lane k */
        __m128 f = k4_dd(&x[i].d, y[i].d);
        accm = _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(f)), _mm256_cvtepi32_ps(mi), accm);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(f), _mm256_cvtepi32_ps(sumi), acc);
    }
    /* ggml's (a0 + a2) + (a1 + a3), a_k = lane 2k */
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(accm), _mm256_extractf128_ps(accm, 1));
    *s = hsum_ps(acc) + _mm_cvtss_f32(_mm_add_ss(m, _mm_movehl_ps(m, m)));
}

/* Q5_K: element e's fifth bit is bit e / 32 of qh[e % 32], so for run k the low-nibble vector
 * wants bit 4k of hb = [qh, qh >> 2] (bytes 0-31 and 32-63) and the high-nibble one bit 4k + 1,
 * each shifted to bit 4 and merged by one ternary op (every bit used moves inside its byte, so
 * 16-bit shifts serve). */
static void dot_q5_K_512(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int i = 0; i < n / LC_QK_K; i++) {
        __m256i h = load256(x[i].qh);
        __m512i hb = join256(h, _mm256_srli_epi16(h, 2));
        __m512i q[4];
        for (int k = 0; k < 2; k++) {
            __m512i v = load512(x[i].qs + 64 * k);
            __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            __m512i h0 = k ? hb : _mm512_slli_epi16(hb, 4);
            __m512i h1 = k ? _mm512_srli_epi16(hb, 1) : _mm512_slli_epi16(hb, 3);
            q[2 * k] = _mm512_ternarylogic_epi32(lo, h0, b16, 0xF8); /* lo | (h0 & 0x10) */
            q[2 * k + 1] = _mm512_ternarylogic_epi32(hi, h1, b16, 0xF8);
        }
        __m256i s16 = _mm256_cvtepu8_epi16(k4_scm(x[i].scales));
        __m256i sumi = k4_lanes(q, _mm512_castsi256_si512(s16), &y[i]);
        __m128 f = k4_dd(&x[i].d, y[i].d);
        summs = k5_mins(summs, hsum_i32(k4_min_lanes(s16, y[i].bsums)), -_mm_cvtss_f32(_mm_movehdup_ps(f)));
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(f), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) + summs;
}

/* Q6_K: levels 0..63 against y (each vector two 32-element chunks, in lanes 0-7 and 8-15),
 * folded onto 8 lanes, minus ggml's per-lane bias (as q6_bias8, from the scales already here). */
static void dot_q6_K_512(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q6_K *x = vx;
    const lc_block_q8_K *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / LC_QK_K; i++) {
        __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        __m512i s16 = _mm512_castsi256_si512(sc);
        __m512i sa = _mm512_setzero_si512(), sb = _mm512_setzero_si512();
        for (int c = 0; c < 2; c++) {
            __m512i l = load512(x[i].ql + 64 * c);
            __m256i h = load256(x[i].qh + 32 * c);
            __m512i hh = join256(h, _mm256_srli_epi16(h, 2)); /* bits 0-1 | 2-3, and 4-5 | 6-7 at 4 */
            __m512i lo = _mm512_ternarylogic_epi32(l, m4, _mm512_and_si512(_mm512_slli_epi16(hh, 4), m3), 0xEA);
            __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), m4, _mm512_and_si512(hh, m3), 0xEA);
            const int8_t *q8 = y[i].qs + 128 * c;
            sa = _mm512_dpwssd_epi32(sa, _mm512_maddubs_epi16(lo, load512(q8)),
                                     _mm512_permutexvar_epi16(idx_4x8(8 * c), s16));
            sb = _mm512_dpwssd_epi32(sb, _mm512_maddubs_epi16(hi, load512(q8 + 64)),
                                     _mm512_permutexvar_epi16(idx_4x8(8 * c + 4), s16));
        }
        __m512i t = _mm512_add_epi32(sa, sb);
        __m256i sumi = _mm256_sub_epi32(fold8(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1)),
                                        _mm256_slli_epi32(_mm256_madd_epi16(sc, load256(y[i].bsums)), 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * f16(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* Q4_1 keeps the 256-bit tile for two tokens or more and takes rows_q4_1 for one: the arithmetic
 * per output is ggml's (ggml_vec_dot_q4_1_q8_1) in both, the same for one token or many
 * (llama.cpp's x86 build multiplies Q4_1 by vec_dot for every batch size: tinyBLAS has no Q4_1). */
LC_GEMM_DRIVER(gemm_q4_1_tiles, tile_q4_1, 4, 4, LC_QK)
static void gemm_q4_1(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                      size_t ldo) {
    if (nc == 1) rows_q4_1(n, nr, w, ws, x, out);
    else gemm_q4_1_tiles(n, nr, nc, w, ws, x, xs, out, ldo);
}

/* ==== Panel GEMM for the K formats ==== */

/* A panel is 16 weight rows (one i32 lane each) over KP_SB super-blocks, unpacked once per call
 * and shared by every token of it:
 *   q:  levels (unsigned) in vpdpbusd order: for k-step s (elements 4s..4s+3), lane r holds
 *       row r's 4 levels, so one zmm load x a 4-byte activation broadcast = 16 rows x 4 MACs;
 *   sc: the integer scale of each 16-element group, per row, as a float;
 *   mq: the (m[2j], m[2j+1]) i16 pairs of the mins, whose dot with the activation bsums gives S2
 *       (not filled for Q3_K/Q6_K, whose levels are stored + corr and centred through the bsums);
 *   d, dmin: the super-block scales per row.
 * The activations stay in their Q8_K rows (broadcast loads, no repacking). Tiles are 16 rows x
 * up to 8 tokens; each output is llama.cpp's tiled arithmetic (gemm_ref.c): exact S1 and S2 per
 * super-block, r = float(S1) * d - dmin * float(S2), acc = fma(r, q8.d, acc). So results do not
 * depend on how matmul.c chunks rows or tokens. */
#define KP_SB 4

typedef struct {
    uint8_t q[KP_SB][64][64];
    float sc[KP_SB][16][16];
    int32_t mq[KP_SB][8][16];
    float d[KP_SB][16], dmin[KP_SB][16];
} kpanel;


/* In-place transpose of a 16 x 16 matrix of dwords held in 16 zmm (row i -> column i). */
static inline void tr16x16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* r[4g + m], 128-bit lane L: column 4L + m of rows 4g..4g+3; gather lanes L over g */
    for (int m = 0; m < 4; m++) {
        __m512i s0 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0x44), s1 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0xEE);
        __m512i s2 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0x44), s3 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0xEE);
        t[m] = _mm512_shuffle_i32x4(s0, s2, 0x88);
        t[4 + m] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
        t[8 + m] = _mm512_shuffle_i32x4(s1, s3, 0x88);
        t[12 + m] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

static void kp_unpack(lc_type ty, const uint8_t *blk, kunpacked *u) {
    switch (ty) {
    case LC_TYPE_Q2_K: unpack_q2_K((const lc_block_q2_K *)blk, u); break;
    case LC_TYPE_Q3_K: unpack_q3_K((const lc_block_q3_K *)blk, u); break;
    case LC_TYPE_Q4_K: unpack_q4_K((const lc_block_q4_K *)blk, u); break;
    case LC_TYPE_Q5_K: unpack_q5_K((const lc_block_q5_K *)blk, u); break;
    default: unpack_q6_K((const lc_block_q6_K *)blk, u); break;
    }
}

/* Unpacks super-blocks b0 .. b0+nsb-1 of the 16 rows (row pointers; padding rows repeat the
 * last one) into the panel. */
static void kp_pack(kpanel *p, lc_type ty, const uint8_t *const rows[16], int b0, int nsb) {
    const size_t bsz = lc_type_get(ty)->type_size;
    _Alignas(64) kunpacked u[16];
    for (int sb = 0; sb < nsb; sb++) {
        for (int r = 0; r < 16; r++) kp_unpack(ty, rows[r] + (size_t)(b0 + sb) * bsz, &u[r]);
        __m512i v[16];
        for (int kb = 0; kb < 4; kb++) { /* 64 elements (16 k-steps) of every row at a time */
            for (int r = 0; r < 16; r++) v[r] = load512(u[r].q + 64 * kb);
            tr16x16(v);
            for (int s = 0; s < 16; s++) _mm512_store_si512(p->q[sb][16 * kb + s], v[s]);
        }
        for (int r = 0; r < 16; r++) v[r] = _mm512_castps_si512(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(load256(u[r].sc))));
        tr16x16(v);
        for (int g = 0; g < 16; g++) _mm512_store_si512(p->sc[sb][g], v[g]);
        for (int r = 0; r < 16; r++) {
            p->d[sb][r] = u[r].d;
            p->dmin[sb][r] = u[r].dmin;
        }
        if (ty == LC_TYPE_Q3_K || ty == LC_TYPE_Q6_K) continue; /* no mins: kp_tile centres them instead */
        for (int r = 0; r < 16; r++) v[r] = _mm512_zextsi256_si512(load256(u[r].mins)); /* i16 pairs */
        tr16x16(v);
        for (int j = 0; j < 8; j++) _mm512_store_si512(p->mq[sb][j], v[j]);
    }
}

static inline __m512i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* 16 rows x RN tokens over the panel's nsb super-blocks (activation super-blocks b0...): adds
 * into out (or starts from zero when first); SUBG = 16-element groups per scale (2: Q4_K/Q5_K);
 * CSH = log2 of the level offset (Q3_K 2, Q6_K 5; 0: the format has mins instead).
 * S1 is summed in float: each group's integer dot times its scale is below 2^24 in every format
 * (at most 32 x 31 x 127 x 63 for Q5_K; Q3_K/Q6_K levels are centred per group first, by starting
 * the group's dot at -corr * bsum), so each product is exact, and the sum stays exact while its
 * partial sums stay below 2^24 (real activations stay more than tenfold under). An integer
 * vpmulld per group instead costs 8-25% of the tile's speed (port 0, beside vpdpbusd). */
LC_INLINE void kp_tile(const kpanel *p, int nsb, int SUBG, int CSH, int RN, const uint8_t *x, size_t xs, int b0,
                       float *out, size_t ldo, __mmask16 m, int first) {
    __m512 acc[8];
    LC_UNROLL
    for (int c = 0; c < RN; c++) acc[c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, out + (size_t)c * ldo);
    for (int sb = 0; sb < nsb; sb++) {
        const lc_block_q8_K *yb[8];
        LC_UNROLL
        for (int c = 0; c < RN; c++) yb[c] = (const lc_block_q8_K *)(x + (size_t)c * xs) + b0 + sb;
        __m512 s1[8];
        __m512i is[8];
        _Alignas(64) int32_t cb[8][16]; /* CSH: minus each group's level offset, corr * bsum, per token */
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            s1[c] = _mm512_setzero_ps();
            if (CSH)
                _mm512_store_si512(cb[c], _mm512_sub_epi32(_mm512_setzero_si512(),
                                                           _mm512_slli_epi32(_mm512_cvtepi16_epi32(load256(yb[c]->bsums)), CSH)));
        }
        for (int g = 0; g < 16; g += SUBG) {
            LC_UNROLL
            for (int c = 0; c < RN; c++) is[c] = CSH ? _mm512_set1_epi32(cb[c][g]) : _mm512_setzero_si512();
            LC_UNROLL
            for (int s = 4 * g; s < 4 * (g + SUBG); s++) {
                __m512i wv = _mm512_load_si512(p->q[sb][s]);
                LC_UNROLL
                for (int c = 0; c < RN; c++) is[c] = _mm512_dpbusd_epi32(is[c], wv, bcast32(yb[c]->qs + 4 * s));
            }
            __m512 sc = _mm512_load_ps(p->sc[sb][g]);
            LC_UNROLL
            for (int c = 0; c < RN; c++) s1[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[c]), sc, s1[c]);
        }
        __m512 d = _mm512_load_ps(p->d[sb]);
        if (CSH) {
            LC_UNROLL
            for (int c = 0; c < RN; c++) acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(s1[c], d), _mm512_set1_ps(yb[c]->d), acc[c]);
            continue;
        }
        LC_UNROLL
        for (int c = 0; c < RN; c++) is[c] = _mm512_setzero_si512();
        LC_UNROLL
        for (int j = 0; j < 8; j++) {
            __m512i mv = _mm512_load_si512(p->mq[sb][j]);
            LC_UNROLL
            for (int c = 0; c < RN; c++) is[c] = _mm512_dpwssd_epi32(is[c], mv, bcast32(yb[c]->bsums + 2 * j));
        }
        __m512 dmin = _mm512_load_ps(p->dmin[sb]);
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            __m512 r = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(is[c]), _mm512_mul_ps(s1[c], d));
            acc[c] = _mm512_fmadd_ps(r, _mm512_set1_ps(yb[c]->d), acc[c]);
        }
    }
    LC_UNROLL
    for (int c = 0; c < RN; c++) _mm512_mask_storeu_ps(out + (size_t)c * ldo, m, acc[c]);
}

#define KP_TILE_CASE(SUBG, CSH, RN) \
    case RN: kp_tile(&p, nsb, SUBG, CSH, RN, xc, xs, b0, o, ldo, m, b0 == 0); break;
#define KP_TILES(SUBG, CSH)                                                                      \
    switch (rn) {                                                                                \
        KP_TILE_CASE(SUBG, CSH, 1) KP_TILE_CASE(SUBG, CSH, 2) KP_TILE_CASE(SUBG, CSH, 3)         \
        KP_TILE_CASE(SUBG, CSH, 4) KP_TILE_CASE(SUBG, CSH, 5) KP_TILE_CASE(SUBG, CSH, 6)         \
        KP_TILE_CASE(SUBG, CSH, 7) default: KP_TILE_CASE(SUBG, CSH, 8)                           \
    }

/* out (nc, ldo) rows 0..nr-1 = W (nr rows of n) . x (nc Q8_K rows of n), panel by panel. */
static void kp_gemm(lc_type ty, int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                    float *out, size_t ldo) {
    const int nb = n / LC_QK_K;
    _Alignas(64) kpanel p;
    const uint8_t *rows[16];
    for (int r0 = 0; r0 < nr; r0 += 16) {
        const int nv = nr - r0 < 16 ? nr - r0 : 16;
        const __mmask16 m = (__mmask16)((1u << nv) - 1);
        for (int i = 0; i < 16; i++) rows[i] = (const uint8_t *)w + (size_t)(r0 + (i < nv ? i : nv - 1)) * ws;
        for (int b0 = 0; b0 < nb; b0 += KP_SB) {
            const int nsb = nb - b0 < KP_SB ? nb - b0 : KP_SB;
            kp_pack(&p, ty, rows, b0, nsb);
            for (int c0 = 0; c0 < nc; c0 += 8) {
                const int rn = nc - c0 < 8 ? nc - c0 : 8;
                const uint8_t *xc = (const uint8_t *)x + (size_t)c0 * xs;
                float *o = out + (size_t)c0 * ldo + r0;
                switch (ty) {
                case LC_TYPE_Q2_K: KP_TILES(1, 0) break;
                case LC_TYPE_Q3_K: KP_TILES(1, 2) break;
                case LC_TYPE_Q6_K: KP_TILES(1, 5) break;
                default: KP_TILES(2, 0) break;
                }
            }
        }
    }
}

LC_GEMM_OF_TYPE(gemm_q2_K, kp_gemm, LC_TYPE_Q2_K)
LC_GEMM_OF_TYPE(gemm_q3_K, kp_gemm, LC_TYPE_Q3_K)
LC_GEMM_OF_TYPE(gemm_q4_K, kp_gemm, LC_TYPE_Q4_K)
LC_GEMM_OF_TYPE(gemm_q5_K, kp_gemm, LC_TYPE_Q5_K)
LC_GEMM_OF_TYPE(gemm_q6_K, kp_gemm, LC_TYPE_Q6_K)

/* ==== Panel GEMM for Q4_0 and Q8_0 ==== */

/* The K-format panel scheme (below) for the 32-element formats: 16 rows' levels unsigned in
 * vpdpbusd order (Q4_0: q in 0..15, Q8_0: q + 128) with the row scales as a float per lane, K
 * in slices of LP_SB blocks. What the unsigned levels add, off * sum(y) per token and block
 * (off = 8 or 128), is computed once per call and slice for every token, with the token's
 * scale as a float, and starts each block's integer sum; a block costs 8 vpdpbusd + 3 ops per
 * 16 rows x 1 token. As there, every output is the same arithmetic wherever it sits. */
#define LP_SB 32  /* blocks per K slice */
#define LP_TOK 64 /* tokens whose activation sums are kept at once */

enum { T_Q4_0, T_Q8_0 };

typedef struct {
    uint8_t q[LP_SB][8][64];  /* [block][k-step][row * 4 + byte] */
    float dx[LP_SB][16];
} lpanel;

typedef struct {
    int32_t corr; /* -off * sum of the block's q */
    float d;
} lsum;

/* The sums and scales of blocks b0 .. b0+nsb-1 of nt Q8_0 activation rows. */
static void lp_sums(lsum (*ys)[LP_SB], int off, const uint8_t *x, size_t xs, int nt, int b0, int nsb) {
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int c = 0; c < nt; c++) {
        const lc_block_q8_0 *yb = (const lc_block_q8_0 *)(x + (size_t)c * xs) + b0;
        for (int b = 0; b < nsb; b++) {
            /* sum of 32 signed bytes: sad of (q + 128) against zero, minus 32 * 128 */
            __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(load256(yb[b].qs), bias), _mm256_setzero_si256());
            __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            int sum = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
            ys[c][b].corr = -off * sum;
            ys[c][b].d = f16(yb[b].d);
        }
    }
}

/* Unpacks blocks b0 .. b0+nsb-1 of 16 rows (fmt T_Q4_0 or T_Q8_0) into a panel's levels q
 * ([block][k-step][row * 4 + byte], 64-byte aligned) and row scales dx ([block][row]). */
static void lp_pack(uint8_t (*q)[8][64], float (*dxs)[16], int fmt, const uint8_t *const rows[16], int b0, int nsb) {
    const size_t bsz = fmt == T_Q4_0 ? sizeof(lc_block_q4_0) : sizeof(lc_block_q8_0);
    _Alignas(64) uint8_t lv[16][64];
    __m512i v[16];
    float dx[2][16];
    for (int b = 0; b < nsb; b += 2) { /* two blocks = 64 levels = 16 k-steps per row */
        const int nbk = nsb - b < 2 ? 1 : 2;
        for (int r = 0; r < 16; r++) {
            for (int i = 0; i < nbk; i++) {
                const uint8_t *blk = rows[r] + (size_t)(b0 + b + i) * bsz;
                __m256i u = fmt == T_Q4_0 ? nibbles16(((const lc_block_q4_0 *)blk)->qs)
                                          : _mm256_xor_si256(load256(((const lc_block_q8_0 *)blk)->qs), _mm256_set1_epi8((char)0x80));
                _mm256_store_si256((__m256i *)(lv[r] + 32 * i), u);
                uint16_t d;
                memcpy(&d, blk, 2);
                dx[i][r] = f16(d);
            }
            v[r] = _mm512_load_si512(lv[r]);
        }
        tr16x16(v);
        for (int i = 0; i < nbk; i++) {
            for (int s = 0; s < 8; s++) _mm512_store_si512(q[b + i][s], v[8 * i + s]);
            memcpy(dxs[b + i], dx[i], sizeof dx[i]);
        }
    }
}

/* 16 rows x RN tokens over nsb blocks of the panel; ys = those tokens' sums. */
LC_INLINE void lp_tile(const lpanel *p, int nsb, int RN, const uint8_t *x, size_t xs, int b0,
                       const lsum (*ys)[LP_SB], float *out, size_t ldo, __mmask16 m, int first) {
    __m512 acc[8];
    LC_UNROLL
    for (int c = 0; c < RN; c++) acc[c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, out + (size_t)c * ldo);
    for (int b = 0; b < nsb; b++) {
        __m512i is[8];
        LC_UNROLL
        for (int c = 0; c < RN; c++) is[c] = _mm512_set1_epi32(ys[c][b].corr);
        LC_UNROLL
        for (int s = 0; s < 8; s++) {
            __m512i wv = _mm512_load_si512(p->q[b][s]);
            LC_UNROLL
            for (int c = 0; c < RN; c++)
                is[c] = _mm512_dpbusd_epi32(is[c], wv, bcast32(((const lc_block_q8_0 *)(x + (size_t)c * xs) + b0 + b)->qs + 4 * s));
        }
        __m512 dx = _mm512_load_ps(p->dx[b]);
        LC_UNROLL
        for (int c = 0; c < RN; c++)
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[c]), _mm512_mul_ps(dx, _mm512_set1_ps(ys[c][b].d)), acc[c]);
    }
    LC_UNROLL
    for (int c = 0; c < RN; c++) _mm512_mask_storeu_ps(out + (size_t)c * ldo, m, acc[c]);
}

#define LP_TILE_CASE(RN) \
    case RN: lp_tile(&p, nsb, RN, xc, xs, b0, ys + (c0 - t0), o, ldo, m, b0 == 0); break;

/* out (nc, ldo) rows 0..nr-1 = W (nr Q4_0/Q8_0 rows of n) . x (nc Q8_0 rows); a single token
 * goes to the row dot instead (gemm_q4_0 / gemm_q8_0 below). */
static void lp_gemm(int fmt, int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                    float *out, size_t ldo) {
    const int nb = n / LC_QK;
    _Alignas(64) lpanel p;
    lsum ys[LP_TOK][LP_SB];
    const uint8_t *rows[16];
    for (int t0 = 0; t0 < nc; t0 += LP_TOK) {
        const int nt = nc - t0 < LP_TOK ? nc - t0 : LP_TOK;
        for (int b0 = 0; b0 < nb; b0 += LP_SB) {
            const int nsb = nb - b0 < LP_SB ? nb - b0 : LP_SB;
            lp_sums(ys, fmt == T_Q4_0 ? 8 : 128, (const uint8_t *)x + (size_t)t0 * xs, xs, nt, b0, nsb);
            for (int r0 = 0; r0 < nr; r0 += 16) {
                const int nv = nr - r0 < 16 ? nr - r0 : 16;
                const __mmask16 m = (__mmask16)((1u << nv) - 1);
                for (int i = 0; i < 16; i++) rows[i] = (const uint8_t *)w + (size_t)(r0 + (i < nv ? i : nv - 1)) * ws;
                lp_pack(p.q, p.dx, fmt, rows, b0, nsb);
                for (int c0 = t0; c0 < t0 + nt; c0 += 8) {
                    const int rn = t0 + nt - c0 < 8 ? t0 + nt - c0 : 8;
                    const uint8_t *xc = (const uint8_t *)x + (size_t)c0 * xs;
                    float *o = out + (size_t)c0 * ldo + r0;
                    switch (rn) {
                        LP_TILE_CASE(1) LP_TILE_CASE(2) LP_TILE_CASE(3) LP_TILE_CASE(4)
                        LP_TILE_CASE(5) LP_TILE_CASE(6) LP_TILE_CASE(7) default: LP_TILE_CASE(8)
                    }
                }
            }
        }
    }
}

static void gemm_q4_0_panel(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                            float *out, size_t ldo) {
    lp_gemm(T_Q4_0, n, nr, nc, w, ws, x, xs, out, ldo);
}
static void gemm_q8_0_panel(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                            float *out, size_t ldo) {
    lp_gemm(T_Q8_0, n, nr, nc, w, ws, x, xs, out, ldo);
}

/* ==== Panel GEMM for Q4_0 and Q8_0 in llama.cpp's order ==== */

/* The same panels, but every output summed as tinyBLAS_Q0_AVX (llamafile's sgemm.cpp, which
 * llama.cpp runs for Q8_0 / Q4_0 prompts on x86) and ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0 sum it:
 * 8 float lanes per output, lane s += f32(dw) * f32(dy) times the exact i32 sum of the block's
 * products 4s..4s+3 (one FMA, block after block), then hsum: the two 128-bit halves added, then
 * movehl, then movehdup, i.e. ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)). In the panel a
 * k-step s of 16 rows is one vector, so lane s of 16 outputs is one accumulator, the 8 lanes are
 * 8 accumulators per token, and the hsum is 7 vertical adds. Each block's i32 sum starts from
 * LX_MAGIC - off * (the lane's activation sum), so the sum's bits are the float 1.5 * 2^23 + dot
 * (|dot| < 2^17) and one exact subtraction converts it (port 0 or 5, where vcvtdq2ps is port 0
 * only next to the vpdpbusd). Unlike the panels above, K is not sliced: a tile runs over the
 * whole row so its 8 x RN lane sums never leave registers; the panel of all nb blocks of 16 rows
 * (576 bytes a block) and the activation lane sums of all nc tokens live in one heap workspace
 * per call, streamed from L2. */
#define LX_MAGIC 0x4B400000 /* bits of 12582912.0f = 1.5 * 2^23 */
#define LX_RN 2             /* tokens per tile: 16 lane accumulators (3: 24 measured no faster) */

/* Lane sums of blocks 0..nb-1 of nc Q8_0 activation rows: corr[(c * nb + b) * 8 + s] =
 * LX_MAGIC - off * (y[4s] + .. + y[4s+3]) of block b of token c, dy[c * nb + b] its scale. */
static void lx_sums(int32_t *corr, float *dy, int off, const uint8_t *x, size_t xs, int nc, int nb) {
    const __m256i offv = _mm256_set1_epi8((char)off), magic = _mm256_set1_epi32(LX_MAGIC);
    for (int c = 0; c < nc; c++) {
        const lc_block_q8_0 *yb = (const lc_block_q8_0 *)(x + (size_t)c * xs);
        for (int b = 0; b < nb; b++) {
            __m256i ls = _mm256_dpbusd_epi32(_mm256_setzero_si256(), offv, load256(yb[b].qs));
            _mm256_store_si256((__m256i *)(corr + ((size_t)c * nb + b) * 8), _mm256_sub_epi32(magic, ls));
            dy[(size_t)c * nb + b] = f16(yb[b].d);
        }
    }
}

/* 16 rows x RN tokens over all nb blocks of the panel (q, dx); corr, dy = the first token's lane
 * sums and scales (tokens nb blocks apart). Writes out[c * ldo + row] for the rows in m. */
LC_INLINE void lx_tile(const uint8_t (*q)[8][64], const float (*dx)[16], int nb, int RN, const uint8_t *x,
                       size_t xs, const int32_t *corr, const float *dy, float *out, size_t ldo, __mmask16 m) {
    __m512 acc[LX_RN][8];
    const __m512 magic = _mm512_castsi512_ps(_mm512_set1_epi32(LX_MAGIC));
    LC_UNROLL
    for (int c = 0; c < RN; c++)
        LC_UNROLL
        for (int s = 0; s < 8; s++) acc[c][s] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const __m512 dw = _mm512_load_ps(dx[b]);
        __m512 sc[LX_RN];
        const int8_t *yq[LX_RN];
        const int32_t *cb[LX_RN];
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            sc[c] = _mm512_mul_ps(dw, _mm512_set1_ps(dy[(size_t)c * nb + b]));
            yq[c] = ((const lc_block_q8_0 *)(x + (size_t)c * xs) + b)->qs;
            cb[c] = corr + ((size_t)c * nb + b) * 8;
        }
        LC_UNROLL
        for (int s = 0; s < 8; s++) {
            const __m512i wv = _mm512_load_si512(q[b][s]);
            LC_UNROLL
            for (int c = 0; c < RN; c++) {
                __m512i is = _mm512_dpbusd_epi32(_mm512_set1_epi32(cb[c][s]), wv, bcast32(yq[c] + 4 * s));
                __m512 f = _mm512_sub_ps(_mm512_castsi512_ps(is), magic);
                acc[c][s] = _mm512_fmadd_ps(sc[c], f, acc[c][s]);
            }
        }
    }
    LC_UNROLL
    for (int c = 0; c < RN; c++) {
        __m512 h = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(acc[c][0], acc[c][4]), _mm512_add_ps(acc[c][2], acc[c][6])),
                                 _mm512_add_ps(_mm512_add_ps(acc[c][1], acc[c][5]), _mm512_add_ps(acc[c][3], acc[c][7])));
        _mm512_mask_storeu_ps(out + (size_t)c * ldo, m, h);
    }
}

/* out (nc, ldo) rows 0..nr-1 = W (nr Q4_0/Q8_0 rows of n) . x (nc Q8_0 rows), each output in
 * llama.cpp's order (above). Without memory for the workspace it falls back to the 256-bit row
 * dots, which sum in the same order. */
static void lx_gemm(int fmt, int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                    float *out, size_t ldo) {
    const int nb = n / LC_QK;
    const size_t qbytes = (size_t)nb * 8 * 64, dxbytes = (size_t)nb * 16 * sizeof(float);
    const size_t cbytes = (size_t)nc * nb * 8 * sizeof(int32_t), dybytes = (size_t)nc * nb * sizeof(float);
    uint8_t *ws_mem = lc_malloc_aligned(qbytes + dxbytes + cbytes + dybytes);
    if (!ws_mem) {
        lc_vec_dot_fn dot = fmt == T_Q4_0 ? dot_q4_0 : dot_q8_0;
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < nr; r++)
                dot(n, out + (size_t)c * ldo + r, (const uint8_t *)w + (size_t)r * ws, (const uint8_t *)x + (size_t)c * xs);
        return;
    }
    uint8_t(*q)[8][64] = (uint8_t(*)[8][64])ws_mem;
    float(*dx)[16] = (float(*)[16])(ws_mem + qbytes);
    int32_t *corr = (int32_t *)(ws_mem + qbytes + dxbytes);
    float *dy = (float *)(ws_mem + qbytes + dxbytes + cbytes);
    lx_sums(corr, dy, fmt == T_Q4_0 ? 8 : 128, x, xs, nc, nb);
    const uint8_t *rows[16];
    for (int r0 = 0; r0 < nr; r0 += 16) {
        const int nv = nr - r0 < 16 ? nr - r0 : 16;
        const __mmask16 m = (__mmask16)((1u << nv) - 1);
        for (int i = 0; i < 16; i++) rows[i] = (const uint8_t *)w + (size_t)(r0 + (i < nv ? i : nv - 1)) * ws;
        lp_pack(q, dx, fmt, rows, 0, nb);
        int c0 = 0;
        for (; c0 + LX_RN <= nc; c0 += LX_RN)
            lx_tile((const uint8_t(*)[8][64])q, (const float(*)[16])dx, nb, LX_RN, (const uint8_t *)x + (size_t)c0 * xs, xs,
                    corr + (size_t)c0 * nb * 8, dy + (size_t)c0 * nb, out + (size_t)c0 * ldo + r0, ldo, m);
        for (; c0 < nc; c0++)
            lx_tile((const uint8_t(*)[8][64])q, (const float(*)[16])dx, nb, 1, (const uint8_t *)x + (size_t)c0 * xs, xs,
                    corr + (size_t)c0 * nb * 8, dy + (size_t)c0 * nb, out + (size_t)c0 * ldo + r0, ldo, m);
    }
    lc_free_aligned(ws_mem);
}

/* One token: row dots in ggml_vec_dot's order, which is llama.cpp's one-token path (Q8_0:
 * rows_q8_0 as gemm_q8_0; Q4_0: the 256-bit dot_q4_0, not gemm_q4_0's faster pairwise one);
 * more: the exact panels. */
static void gemm_q4_0_exact(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                            float *out, size_t ldo) {
    if (nc == 1) for (int r = 0; r < nr; r++) dot_q4_0(n, out + r, (const uint8_t *)w + (size_t)r * ws, x);
    else lx_gemm(T_Q4_0, n, nr, nc, w, ws, x, xs, out, ldo);
}
static void gemm_q8_0_exact(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                            float *out, size_t ldo) {
    if (nc == 1) rows_q8_0(n, nr, w, ws, x, out);
    else lx_gemm(T_Q8_0, n, nr, nc, w, ws, x, xs, out, ldo);
}

/* One token: the row dots (Q8_0: in ggml's order, rows_q8_0; up to 7 tokens too, rows_q8_0_n); more:
 * the panels. */
static void gemm_q4_0(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                      size_t ldo) {
    if (nc == 1) for (int r = 0; r < nr; r++) dot_q4_0_512(n, out + r, (const uint8_t *)w + (size_t)r * ws, x);
    else gemm_q4_0_panel(n, nr, nc, w, ws, x, xs, out, ldo);
}
static void gemm_q8_0(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                      size_t ldo) {
    if (nc == 1) rows_q8_0(n, nr, w, ws, x, out);
    else if (nc <= RQ8_MAX_TOK) rows_q8_0_n(n, nr, nc, w, ws, x, xs, out, ldo);
    else gemm_q8_0_panel(n, nr, nc, w, ws, x, xs, out, ldo);
}

/* A row's 16 floats at element l: f32, or f16 widened (half). */
LC_INLINE __m512 ld16(int half, const uint8_t *p, int l) {
    return half ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + l)))
               : _mm512_loadu_ps((const float *)p + l);
}

/* ==== F32 / F16 row dots in ggml's AVX-512 order ==== */

/* ggml_vec_dot_f32 / _f16 (AVX-512 build): 4 accumulators of 16 lanes over steps of 64, sum[j] +=
 * x[i + 16j] * y[i + 16j] by FMA; then sum0 += sum2, sum1 += sum3, sum0 += sum1 and GCC's
 * _mm512_reduce_add_ps; the leftover elements one at a time (f32: FMA into the float sum, as GCC
 * contracts ggml's loop; f16: products added in double). */
LC_INLINE float fdot512(int half, int n, const uint8_t *x, const uint8_t *y) {
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        LC_UNROLL
        for (int j = 0; j < 4; j++) s[j] = _mm512_fmadd_ps(ld16(half, x, i + 16 * j), ld16(half, y, i + 16 * j), s[j]);
    s[0] = _mm512_add_ps(s[0], s[2]);
    s[1] = _mm512_add_ps(s[1], s[3]);
    s[0] = _mm512_add_ps(s[0], s[1]);
    float r = _mm512_reduce_add_ps(s[0]);
    if (!half) {
        for (int i = np; i < n; i++) r = fmaf(((const float *)x)[i], ((const float *)y)[i], r);
        return r;
    }
    double d = r;
    for (int i = np; i < n; i++) d += (double)(f16(((const uint16_t *)x)[i]) * f16(((const uint16_t *)y)[i]));
    return (float)d;
}

static void dot_f32_512(int n, float *s, const void *vx, const void *vy) { *s = fdot512(0, n, vx, vy); }
static void dot_f16_512(int n, float *s, const void *vx, const void *vy) { *s = fdot512(1, n, vx, vy); }

/* ==== F32 / F16 prompt GEMM in llama.cpp's tinyBLAS order ==== */

/* Per output 16 float lanes: lane i += w[l + i] * x[l + i] by FMA for l = 0, 16, ..., then
 * _mm512_reduce_add_ps (GCC's fold: the 256-bit halves, the 128-bit quarters, then pairs), as
 * llamafile's tinyBLAS<16, __m512> sums (F16: both sides widened from f16, the activations having
 * been rounded to f16 first). n must be a multiple of 16 (matmul.c sends only such products here,
 * as llama.cpp does). Tiles of 4 rows x 4 tokens share their loads; each output's arithmetic is
 * the same wherever it sits. Compared with lc_gemm_f_ref by tests/unit/test_kernels.c. */
LC_INLINE void ftile(int half, int nb, int RM, int RN, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs,
                     float *out, size_t ldo) {
    __m512 acc[4][4];
    LC_UNROLL
    for (int r = 0; r < RM; r++)
        LC_UNROLL
        for (int c = 0; c < RN; c++) acc[r][c] = _mm512_setzero_ps();
    for (int l = 0; l < 16 * nb; l += 16) {
        __m512 a[4];
        LC_UNROLL
        for (int r = 0; r < RM; r++) a[r] = ld16(half, w + (size_t)r * ws, l);
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            __m512 b = ld16(half, x + (size_t)c * xs, l);
            LC_UNROLL
            for (int r = 0; r < RM; r++) acc[r][c] = _mm512_fmadd_ps(a[r], b, acc[r][c]);
        }
    }
    LC_UNROLL
    for (int c = 0; c < RN; c++)
        LC_UNROLL
        for (int r = 0; r < RM; r++) out[(size_t)c * ldo + r] = _mm512_reduce_add_ps(acc[r][c]);
}

LC_INLINE void tile_f32(int nb, int RM, int RN, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *out,
                        size_t ldo) {
    ftile(0, nb, RM, RN, w, ws, x, xs, out, ldo);
}
LC_INLINE void tile_f16(int nb, int RM, int RN, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *out,
                        size_t ldo) {
    ftile(1, nb, RM, RN, w, ws, x, xs, out, ldo);
}
LC_GEMM_DRIVER(gemm_f32, tile_f32, 4, 4, 16)
LC_GEMM_DRIVER(gemm_f16, tile_f16, 4, 4, 16)

void lc_kernels_fill_avx512(lc_kernels *k) {
    k->isa = "avx512";
    fill_common(k);
    k->vec_dot[LC_TYPE_F32] = dot_f32_512;
    k->vec_dot[LC_TYPE_F16] = dot_f16_512;
    k->vec_dot[LC_TYPE_Q4_0] = dot_q4_0_512;
    k->vec_dot[LC_TYPE_Q4_K] = dot_q4_K_512;
    k->vec_dot[LC_TYPE_Q5_K] = dot_q5_K_512;
    k->vec_dot[LC_TYPE_Q6_K] = dot_q6_K_512;
    k->gemm[LC_TYPE_Q8_0] = gemm_q8_0;
    k->gemm[LC_TYPE_Q4_0] = gemm_q4_0;
    k->gemm[LC_TYPE_Q4_1] = gemm_q4_1;
    k->gemm[LC_TYPE_F32] = gemm_f32;
    k->gemm[LC_TYPE_F16] = gemm_f16;
    k->gemm[LC_TYPE_Q2_K] = gemm_q2_K;
    k->gemm[LC_TYPE_Q3_K] = gemm_q3_K;
    k->gemm[LC_TYPE_Q4_K] = gemm_q4_K;
    k->gemm[LC_TYPE_Q5_K] = gemm_q5_K;
    k->gemm[LC_TYPE_Q6_K] = gemm_q6_K;
    k->gemm_exact[LC_TYPE_Q8_0] = gemm_q8_0_exact;
    k->gemm_exact[LC_TYPE_Q4_0] = gemm_q4_0_exact;
}
