/* kernels_avx512bf16.c — BF16 weights on CPUs with AVX512_BF16 (compiled with -mavx512bf16),
 * in llama.cpp's arithmetic there: vdpbf16ps, which adds each lane's two bf16 products into an
 * f32 accumulator one after the other (FMA-exact products, denormals flushed).
 *   gemm: llamafile's tinyBLAS<32, __m512, __m512bh> — per output 16 lanes, one vdpbf16ps per 32
 *         elements, then GCC's _mm512_reduce_add_ps; 2 tokens on, rows % 4, cols % 32 (matmul.c);
 *   vec_dot: ggml_vec_dot_bf16 — two accumulators over steps of 64, each reduced, summed in
 *         double with the leftover products.
 * The activations are bf16 too (the type's vec_dot_type), rounded as ggml rounds them.
 * Entry point: lc_kernels_fill_avx512bf16 (dispatch.c, over the avx512 table when the CPU has it);
 * tests/unit/test_kernels.c checks both against gemm_ref.c's emulation bit for bit.
 */
#include "quant.h"

#include "base/base.h"

#include "tile_macros.h"

#include <immintrin.h>
#include <stdint.h>

static inline __m512bh ld32(const uint8_t *p, int l) {
    return (__m512bh)_mm512_loadu_ps((const float *)((const uint16_t *)p + l));
}

/* A tile of RM rows x RN tokens over nb steps of 32 elements. */
LC_INLINE void bf_tile(int nb, int RM, int RN, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *out,
                       size_t ldo) {
    __m512 acc[4][4];
    LC_UNROLL
    for (int r = 0; r < RM; r++)
        LC_UNROLL
        for (int c = 0; c < RN; c++) acc[r][c] = _mm512_setzero_ps();
    for (int l = 0; l < 32 * nb; l += 32) {
        __m512bh a[4];
        LC_UNROLL
        for (int r = 0; r < RM; r++) a[r] = ld32(w + (size_t)r * ws, l);
        LC_UNROLL
        for (int c = 0; c < RN; c++) {
            __m512bh b = ld32(x + (size_t)c * xs, l);
            LC_UNROLL
            for (int r = 0; r < RM; r++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a[r], b);
        }
    }
    LC_UNROLL
    for (int c = 0; c < RN; c++)
        LC_UNROLL
        for (int r = 0; r < RM; r++) out[(size_t)c * ldo + r] = _mm512_reduce_add_ps(acc[r][c]);
}

LC_GEMM_DRIVER(gemm_bf16, bf_tile, 4, 4, 32)

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    __m512 c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        c1 = _mm512_dpbf16_ps(c1, ld32(x, i), ld32(y, i));
        c2 = _mm512_dpbf16_ps(c2, ld32(x, i + 32), ld32(y, i + 32));
    }
    double sum = (double)_mm512_reduce_add_ps(c1);
    sum += (double)_mm512_reduce_add_ps(c2);
    for (; i < n; i++)
        sum += (double)(lc_bf16_to_f32(((const uint16_t *)vx)[i]) * lc_bf16_to_f32(((const uint16_t *)vy)[i]));
    *s = (float)sum;
}

void lc_kernels_fill_avx512bf16(lc_kernels *k) {
    k->vec_dot[LC_TYPE_BF16] = dot_bf16;
    k->gemm[LC_TYPE_BF16] = gemm_bf16;
    k->bf16_dp = true;
}
