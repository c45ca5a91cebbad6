/* quant_blocks.h — the in-memory layout of every GGUF block format we compute with.
 *
 * Each struct is byte-for-byte ggml's block of the same name (checked by the static asserts at
 * the bottom), so quantized weights are read in place from a mapped GGUF file. Half-precision
 * fields are raw IEEE binary16 bits (uint16_t); convert with lc_f16_to_f32 from base.h.
 * Not here: code beyond the small inline decoders of scales and levels at the end. Reference
 * (de)quantizers are in quant_ref.c, kernels in kernels_<isa>.c.
 */
#ifndef LC_QUANT_BLOCKS_H
#define LC_QUANT_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#define LC_QK 32   /* elements per block of the legacy formats (Q4_0 ... Q8_1) */
#define LC_QK_K 256 /* elements per super-block of the K formats */

/* Q4_0: x = d * (q - 8), q in 0..15; byte j holds element j (low nibble) and j+16 (high). */
typedef struct { uint16_t d; uint8_t qs[LC_QK / 2]; } lc_block_q4_0;
/* Q4_1: x = d * q + m, q in 0..15, nibbles as Q4_0. */
typedef struct { uint16_t d, m; uint8_t qs[LC_QK / 2]; } lc_block_q4_1;
/* Q5_0: x = d * (q - 16); low 4 bits as Q4_0, bit 4 of element j in bit j of qh. */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[LC_QK / 2]; } lc_block_q5_0;
/* Q5_1: x = d * q + m, bits as Q5_0. */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[LC_QK / 2]; } lc_block_q5_1;
/* Q8_0: x = d * q, q in -127..127 (also the activation format of Q4_0/Q5_0/Q8_0). */
typedef struct { uint16_t d; int8_t qs[LC_QK]; } lc_block_q8_0;
/* Q8_1: activation format of Q4_1/Q5_1: x = d * q, and s = d * sum(q) (for the min term). */
typedef struct { uint16_t d, s; int8_t qs[LC_QK]; } lc_block_q8_1;

/* Q2_K: 16 sub-blocks of 16; scales[j] low nibble = scale, high nibble = min (4 bits each);
 * x = d*sc*q - dmin*m, q in 0..3. qs: per 128 elements, byte l holds elements l, l+32, l+64,
 * l+96 in bit pairs 0-1, 2-3, 4-5, 6-7. */
typedef struct {
    uint8_t scales[LC_QK_K / 16];
    uint8_t qs[LC_QK_K / 4];
    uint16_t d, dmin;
} lc_block_q2_K;
/* Q3_K: 16 sub-blocks of 16 with 6-bit signed scales (biased by 32) packed in 12 bytes;
 * x = d*(sc-32)*(q-4), q = 2 low bits (qs, packed as Q2_K) + high bit (hmask: element j's bit
 * is bit j/32 of hmask[j%32]). */
typedef struct {
    uint8_t hmask[LC_QK_K / 8];
    uint8_t qs[LC_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} lc_block_q3_K;
/* Q4_K: 8 sub-blocks of 32 with 6-bit scale and min packed in 12 bytes (get_scale_min_k4);
 * x = d*sc*q - dmin*m; qs: per 64 elements, byte l holds element l (low) and l+32 (high). */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[LC_QK_K / 2];
} lc_block_q4_K;
/* Q5_K: as Q4_K plus a 5th bit: element 64*c + l (+32) has its bit in qh[l] bit 2c (2c+1). */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[LC_QK_K / 8];
    uint8_t qs[LC_QK_K / 2];
} lc_block_q5_K;
/* Q6_K: 16 sub-blocks of 16 with int8 scales; x = d*sc*(q-32), q 6 bits: per 128 elements,
 * ql[l] = low nibbles of l (lo) and l+64 (hi), ql[l+32] of l+32 and l+96; qh[l] has the two
 * high bits of l, l+32, l+64, l+96 in bit pairs 0-1, 2-3, 4-5, 6-7. */
typedef struct {
    uint8_t ql[LC_QK_K / 2];
    uint8_t qh[LC_QK_K / 4];
    int8_t scales[LC_QK_K / 16];
    uint16_t d;
} lc_block_q6_K;
/* Q8_K: activation format of the K quants: x = d * q, bsums[j] = sum of q[16j .. 16j+15]. */
typedef struct {
    float d;
    int8_t qs[LC_QK_K];
    int16_t bsums[LC_QK_K / 16];
} lc_block_q8_K;

static_assert(sizeof(lc_block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(lc_block_q4_1) == 20, "q4_1 layout");
static_assert(sizeof(lc_block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(lc_block_q5_1) == 24, "q5_1 layout");
static_assert(sizeof(lc_block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(lc_block_q8_1) == 36, "q8_1 layout");
static_assert(sizeof(lc_block_q2_K) == 84, "q2_K layout");
static_assert(sizeof(lc_block_q3_K) == 110, "q3_K layout");
static_assert(sizeof(lc_block_q4_K) == 144, "q4_K layout");
static_assert(sizeof(lc_block_q5_K) == 176, "q5_K layout");
static_assert(sizeof(lc_block_q6_K) == 210, "q6_K layout");
static_assert(sizeof(lc_block_q8_K) == 292, "q8_K layout");

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static inline void lc_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The 16 signed scales (sc - 32) of a Q3_K block. */
static inline void lc_q3k_scales(const uint8_t *s12, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (s12[j] & 0xF) : (s12[j - 8] >> 4);
        int hi = (s12[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* The level of element e (0..255) of a K-format super-block, one element at a time (the scalar
 * table and the reference GEMMs; the layouts are the structs' comments above):
 *   lc_k_pair: bit pair of e in a 64-byte run packed as Q2_K's qs (Q2_K/Q3_K's low bits, Q6_K's
 *              high bits in qh);
 *   lc_q3k_hbit: Q3_K's third bit (hmask);
 *   lc_k4_level: Q4_K's nibble, with Q5_K's fifth bit from qh (qh NULL: Q4_K);
 *   lc_q6k_level: Q6_K's 6 bits, unsigned (the stored q, 0..63). */
static inline int lc_k_pair(const uint8_t *q, int e) { return (q[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }
static inline int lc_q3k_hbit(const uint8_t *hmask, int e) { return (hmask[e % 32] >> (e / 32)) & 1; }
static inline int lc_k4_level(const uint8_t *qs, const uint8_t *qh, int e) {
    int q = (qs[32 * (e / 64) + e % 32] >> (4 * ((e % 64) / 32))) & 0xF;
    return qh ? q | (((qh[e % 32] >> (e / 32)) & 1) << 4) : q;
}
static inline int lc_q6k_level(const uint8_t *ql, const uint8_t *qh, int e) {
    const int j = e / 128, k = (e % 128) / 32, b = e % 32;
    return ((ql[64 * j + 32 * (k % 2) + b] >> (4 * (k / 2))) & 0xF) | (lc_k_pair(qh, e) << 4);
}

#endif /* LC_QUANT_BLOCKS_H */
