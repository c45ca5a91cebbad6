/* quant_ref_pending.c — TEMPORARY placeholders so the tree links while quant_ref.c is written.
 * Every function fails loudly; this file is deleted when quant_ref.c lands. */
#include "quant_ref.h"

#include <stdio.h>
#include <stdlib.h>

#define PENDING(t)                                                                           \
    void lc_dequant_##t(const void *src, float *dst, int64_t n) {                            \
        (void)src; (void)dst; (void)n;                                                       \
        fprintf(stderr, "lc_dequant_" #t " not yet implemented\n");                          \
        abort();                                                                             \
    }                                                                                        \
    void lc_quant_##t(const float *src, void *dst, int64_t n) {                              \
        (void)src; (void)dst; (void)n;                                                       \
        fprintf(stderr, "lc_quant_" #t " not yet implemented\n");                            \
        abort();                                                                             \
    }

PENDING(q4_0) PENDING(q4_1) PENDING(q5_0) PENDING(q5_1) PENDING(q8_0) PENDING(q8_1)
PENDING(q2_K) PENDING(q3_K) PENDING(q4_K) PENDING(q5_K) PENDING(q6_K) PENDING(q8_K)
