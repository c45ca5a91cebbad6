/* kernels_avx2.c — the AVX2 + FMA + F16C kernel table (compiled with -mavx2 -mfma -mf16c).
 *
 * Integer dot products use vpmaddubsw + vpmaddwd; the kernel bodies are shared with the
 * AVX-512 unit through kernels_x86_impl.h. Entry point: lc_kernels_fill_avx2.
 */
#include "quant.h"

#include "base/base.h"
#include "quant_blocks.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* acc + per-lane sums of 4 u8*s8 products. u <= 127 or s small enough that pairs fit i16. */
static inline __m256i dot_acc(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
static inline __m256i dot_sc_acc(__m256i acc, __m256i u, __m256i s, __m256i w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), w));
}
/* Byte j = v where bit j of bits is set: broadcast the 4 bytes, spread, test one bit each. */
static inline __m256i bytes_from_bits(uint32_t bits, int v) {
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                    _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                       0x0303030303030303LL));
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
    b = _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
    return _mm256_and_si256(b, _mm256_set1_epi8((char)v));
}

#include "kernels_x86_impl.h"

LC_GEMM_DRIVER(gemm_q8_0, tile_q8_0, 3, 4, LC_QK)
LC_GEMM_DRIVER(gemm_q4_0, tile_q4_0, 3, 4, LC_QK)
LC_GEMM_DRIVER(gemm_q4_1, tile_q4_1, 3, 4, LC_QK)
LC_GEMM_K(gemm_q2_K, lc_block_q2_K, unpack_q2_K)
LC_GEMM_K(gemm_q3_K, lc_block_q3_K, unpack_q3_K)
LC_GEMM_K(gemm_q4_K, lc_block_q4_K, unpack_q4_K)
LC_GEMM_K(gemm_q5_K, lc_block_q5_K, unpack_q5_K)
LC_GEMM_K(gemm_q6_K, lc_block_q6_K, unpack_q6_K)

void lc_kernels_fill_avx2(lc_kernels *k) {
    k->isa = "avx2";
    fill_common(k);
    k->gemm[LC_TYPE_Q8_0] = gemm_q8_0;
    k->gemm[LC_TYPE_Q4_0] = gemm_q4_0;
    k->gemm[LC_TYPE_Q4_1] = gemm_q4_1;
    k->gemm[LC_TYPE_Q2_K] = gemm_q2_K;
    k->gemm[LC_TYPE_Q3_K] = gemm_q3_K;
    k->gemm[LC_TYPE_Q4_K] = gemm_q4_K;
    k->gemm[LC_TYPE_Q5_K] = gemm_q5_K;
    k->gemm[LC_TYPE_Q6_K] = gemm_q6_K;
}
