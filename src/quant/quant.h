/* quant.h — tensor element types bit-compatible with GGUF/ggml, and their kernels.
 *
 * Owns: the type table (names, block sizes, bytes per block), reference (scalar) quantize and
 * dequantize for every supported type, and the CPU kernel table (dot products of a weight row
 * against quantized activations, small GEMM tiles, activation quantizers) picked once at start-up
 * by CPUID from one translation unit per instruction set (kernels_scalar.c, kernels_avx2.c,
 * kernels_avx512.c; NEON would be one more). Not here: threading and shapes (backend/cpu).
 *
 * Block layouts follow ggml exactly (see the struct comments in quant_blocks.h).
 */
#ifndef LC_QUANT_H
#define LC_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ggml type ids, as stored in GGUF tensor infos. */
typedef enum lc_type {
    LC_TYPE_F32 = 0,
    LC_TYPE_F16 = 1,
    LC_TYPE_Q4_0 = 2,
    LC_TYPE_Q4_1 = 3,
    LC_TYPE_Q5_0 = 6,
    LC_TYPE_Q5_1 = 7,
    LC_TYPE_Q8_0 = 8,
    LC_TYPE_Q8_1 = 9,
    LC_TYPE_Q2_K = 10,
    LC_TYPE_Q3_K = 11,
    LC_TYPE_Q4_K = 12,
    LC_TYPE_Q5_K = 13,
    LC_TYPE_Q6_K = 14,
    LC_TYPE_Q8_K = 15,
    LC_TYPE_IQ2_XXS = 16,
    LC_TYPE_IQ2_XS = 17,
    LC_TYPE_IQ3_XXS = 18,
    LC_TYPE_IQ1_S = 19,
    LC_TYPE_IQ4_NL = 20,
    LC_TYPE_IQ3_S = 21,
    LC_TYPE_IQ2_S = 22,
    LC_TYPE_IQ4_XS = 23,
    LC_TYPE_I8 = 24,
    LC_TYPE_I16 = 25,
    LC_TYPE_I32 = 26,
    LC_TYPE_I64 = 27,
    LC_TYPE_F64 = 28,
    LC_TYPE_IQ1_M = 29,
    LC_TYPE_BF16 = 30,
    LC_TYPE_TQ1_0 = 34,
    LC_TYPE_TQ2_0 = 35,
    LC_TYPE_MXFP4 = 39,
    LC_TYPE_COUNT = 40,
} lc_type;

/* Scalar conversions: src holds n elements of the type (n a multiple of the block size). */
typedef void (*lc_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*lc_from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct lc_type_info {
    const char *name;      /* "q4_K" as ggml spells it; NULL for an unused id */
    int block_size;        /* elements per block */
    size_t type_size;      /* bytes per block */
    bool compute;          /* this build has kernels for it (matmul weights) */
    lc_type vec_dot_type;  /* the activation format its dot product takes */
    lc_to_float_fn to_float;     /* scalar reference dequantize (NULL if unsupported) */
    lc_from_float_fn from_float; /* scalar reference quantize (NULL if unsupported) */
} lc_type_info;

/* The row of t in the type table, or NULL when t is not a known type id. */
const lc_type_info *lc_type_get(int t);
/* Bytes of n elements of t (n a multiple of its block size); 0 if t is unknown. */
size_t lc_type_row_size(lc_type t, int64_t n);
/* Type by name ("q4_k" or "Q4_K", case-insensitive); -1 if none. */
int lc_type_from_name(const char *name);
const char *lc_type_name(lc_type t);

/* ==== CPU kernels (dispatched per instruction set) ==== */

/* *s = dot(x, y) over n elements: x is a weight row of the kernel's type, y the activations
 * quantized to its vec_dot_type. n is a multiple of the block size. */
typedef void (*lc_vec_dot_fn)(int n, float *s, const void *x, const void *y);

/* A tile of dot products: out[c * ldo + r] = dot(w row r, x row c) (token-major, as activations are) for r < nr, c < nc;
 * w rows are wstride bytes apart, x rows (vec_dot_type) xstride bytes apart. */
typedef void (*lc_gemm_fn)(int n, int nr, int nc, const void *w, size_t wstride, const void *x,
                           size_t xstride, float *out, size_t ldo);

typedef struct lc_kernels {
    const char *isa;                         /* "scalar", "avx2", "avx512" */
    lc_vec_dot_fn vec_dot[LC_TYPE_COUNT];    /* per weight type */
    lc_gemm_fn gemm[LC_TYPE_COUNT];          /* per weight type; NULL: op layer uses vec_dot */
    /* per weight type, where gemm[t] (for nc >= 2) sums in another order than llama.cpp's: a gemm
     * whose every output is bit-identical to llama.cpp's prompt matmul (llamafile's tinyBLAS, the
     * same order as the vec_dot of this table); NULL where gemm[t] already is, or has none */
    lc_gemm_fn gemm_exact[LC_TYPE_COUNT];
    lc_from_float_fn quantize[LC_TYPE_COUNT];/* fast activation quantizers (Q8_0, Q8_1, Q8_K, F16, BF16) */
    lc_to_float_fn to_float[LC_TYPE_COUNT];  /* fast dequantize (rows of weights, KV blocks) */
    bool bf16_dp;                            /* BF16 entries use vdpbf16ps (kernels_avx512bf16.c) */
} lc_kernels;

/* The best kernel table for this CPU (honours LOCARA_CPU=scalar|avx2|avx512). */
const lc_kernels *lc_kernels_best(void);
/* A specific table by ISA name, or NULL if the CPU lacks it; used by tests and benchmarks. */
const lc_kernels *lc_kernels_named(const char *isa);

/* Per-ISA tables, defined in kernels_<isa>.c; each fills only what it accelerates and falls
 * back to the previous level's entries. */
void lc_kernels_fill_scalar(lc_kernels *k);
void lc_kernels_fill_avx2(lc_kernels *k);
void lc_kernels_fill_avx512(lc_kernels *k);
/* BF16 by vdpbf16ps over the avx512 table, on CPUs with AVX512_BF16. */
void lc_kernels_fill_avx512bf16(lc_kernels *k);
/* The scalar K-format GEMM in llama.cpp's tiled arithmetic (gemm_ref.c), for the scalar table. */
void lc_kgemm_fill_ref(lc_kernels *k);
/* F32 / F16 / BF16 weights (t) against activations of the same type, in the order of the AVX-512
 * table's gemm and row dot (gemm_ref.c: llama.cpp's tinyBLAS and ggml_vec_dot_*; BF16 as
 * vdpbf16ps, which that table uses when lc_kernels.bf16_dp); n a multiple of 16 (BF16: 32) for the
 * gemm. For tests. */
void lc_gemm_f_ref(lc_type t, int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                   size_t ldo);
float lc_dot_f_ref(lc_type t, int n, const void *x, const void *y);

/* ==== Quantizing whole tensors (locara quantize) ==== */

/* Quantizes nrows rows of n_per_row floats into dst (type t) with the reference quantizer
 * (the same search llama.cpp uses without an importance matrix). Returns bytes written. */
size_t lc_quantize_rows(lc_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row);

#ifdef __cplusplus
}
#endif

#endif /* LC_QUANT_H */
