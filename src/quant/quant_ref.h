/* quant_ref.h — scalar reference quantize/dequantize of every GGUF block format (quant_ref.c).
 * These are the ground truth every SIMD and CUDA kernel is tested against; their rounding
 * follows ggml's reference code so that quantized files match llama.cpp bit for bit.
 */
#ifndef LC_QUANT_REF_H
#define LC_QUANT_REF_H

#include <stdint.h>

#define LC_REF_PAIR(t)                                                   \
    void lc_dequant_##t(const void *src, float *dst, int64_t n);        \
    void lc_quant_##t(const float *src, void *dst, int64_t n);

LC_REF_PAIR(q4_0)
LC_REF_PAIR(q4_1)
LC_REF_PAIR(q5_0)
LC_REF_PAIR(q5_1)
LC_REF_PAIR(q8_0)
LC_REF_PAIR(q8_1)
LC_REF_PAIR(q2_K)
LC_REF_PAIR(q3_K)
LC_REF_PAIR(q4_K)
LC_REF_PAIR(q5_K)
LC_REF_PAIR(q6_K)
LC_REF_PAIR(q8_K)

#undef LC_REF_PAIR

#endif
