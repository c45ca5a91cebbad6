/* tile_macros.h — the macros every GEMM unit builds its entry points with: always-inlined
 * helpers, fully unrolled tile loops (so accumulator arrays stay in registers), the driver that
 * covers an nr x nc output with GM x GN tiles plus edge tiles, and the per-type entry points of a
 * GEMM that takes the type. Included by kernels_x86_impl.h, kernels_avx512bf16.c and gemm_ref.c;
 * no code of its own.
 */
#ifndef LC_TILE_MACROS_H
#define LC_TILE_MACROS_H

#define LC_INLINE static inline __attribute__((always_inline))
/* Fully unrolls a loop over a tile dimension: at -O2 GCC keeps it rolled, and then the
 * accumulator arrays live on the stack instead of in registers (a 3-4x slower tile). */
#define LC_UNROLL _Pragma("GCC unroll 8")

/* Runs a tile function over the whole nr x nc output in GM x GN tiles plus edge tiles. */
#define LC_GEMM_DRIVER(name, tile, GM, GN, QK)                                                   \
    static void name(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, \
                     float *out, size_t ldo) {                                                   \
        const uint8_t *W = w, *X = x;                                                            \
        const int nb = n / (QK);                                                                 \
        int r = 0;                                                                               \
        for (; r + (GM) <= nr; r += (GM)) {                                                      \
            int c = 0;                                                                           \
            for (; c + (GN) <= nc; c += (GN))                                                    \
                tile(nb, GM, GN, W + r * ws, ws, X + c * xs, xs, out + c * ldo + r, ldo);        \
            for (; c < nc; c++) tile(nb, GM, 1, W + r * ws, ws, X + c * xs, xs, out + c * ldo + r, ldo); \
        }                                                                                        \
        for (; r < nr; r++) {                                                                    \
            int c = 0;                                                                           \
            for (; c + (GN) <= nc; c += (GN))                                                    \
                tile(nb, 1, GN, W + r * ws, ws, X + c * xs, xs, out + c * ldo + r, ldo);         \
            for (; c < nc; c++) tile(nb, 1, 1, W + r * ws, ws, X + c * xs, xs, out + c * ldo + r, ldo); \
        }                                                                                        \
    }

/* The lc_gemm_fn of one type: fn(type, ...), a GEMM written once for several formats. */
#define LC_GEMM_OF_TYPE(name, fn, type)                                                          \
    static void name(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, \
                     float *out, size_t ldo) {                                                   \
        fn(type, n, nr, nc, w, ws, x, xs, out, ldo);                                             \
    }

#endif
