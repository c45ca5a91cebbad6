/* kernels_avx512.c — the AVX-512 (F, BW, VL, DQ, VNNI) kernel table.
 *
 * Same kernel bodies as the AVX2 unit (kernels_x86_impl.h) on 256-bit vectors, but integer dots
 * go through VNNI (vpdpbusd, vpdpwssd: one instruction instead of three), bit expansion through
 * mask registers, and the GEMM tiles are larger since AVX-512 has 32 vector registers.
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

LC_GEMM_DRIVER(gemm_q8_0, tile_q8_0, 4, 4, LC_QK)
LC_GEMM_DRIVER(gemm_q4_0, tile_q4_0, 4, 4, LC_QK)
LC_GEMM_DRIVER(gemm_q4_1, tile_q4_1, 4, 4, LC_QK)

void lc_kernels_fill_avx512(lc_kernels *k) {
    k->isa = "avx512";
    fill_common(k);
    k->gemm[LC_TYPE_Q8_0] = gemm_q8_0;
    k->gemm[LC_TYPE_Q4_0] = gemm_q4_0;
    k->gemm[LC_TYPE_Q4_1] = gemm_q4_1;
}
