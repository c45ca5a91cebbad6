/* types.c — the table of GGUF/ggml element types: names, block geometry, activation format,
 * reference conversions. Sizes of types without kernels are listed too so that GGUF files
 * holding them can still be read and described (locara info), just not run.
 */
#include "quant.h"

#include "base/base.h"

#include <string.h>
#include <strings.h>

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = lc_f16_to_f32(s[i]);
}
static void f16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = lc_f32_to_f16(src[i]);
}
static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = lc_bf16_to_f32(s[i]);
}
static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = lc_f32_to_bf16(src[i]);
}

/* Reference conversions of the block formats live in quant_ref.c. */
#include "quant_ref.h"

#define T(id, nm, bs, ts, comp, vdt, tf, ff) [id] = {nm, bs, ts, comp, vdt, tf, ff}
static const lc_type_info type_table[LC_TYPE_COUNT] = {
    T(LC_TYPE_F32, "f32", 1, 4, true, LC_TYPE_F32, f32_to_float, f32_from_float),
    T(LC_TYPE_F16, "f16", 1, 2, true, LC_TYPE_F16, f16_to_float, f16_from_float),
    T(LC_TYPE_BF16, "bf16", 1, 2, true, LC_TYPE_BF16, bf16_to_float, bf16_from_float),
    T(LC_TYPE_Q4_0, "q4_0", 32, 18, true, LC_TYPE_Q8_0, lc_dequant_q4_0, lc_quant_q4_0),
    T(LC_TYPE_Q4_1, "q4_1", 32, 20, true, LC_TYPE_Q8_1, lc_dequant_q4_1, lc_quant_q4_1),
    T(LC_TYPE_Q5_0, "q5_0", 32, 22, true, LC_TYPE_Q8_0, lc_dequant_q5_0, lc_quant_q5_0),
    T(LC_TYPE_Q5_1, "q5_1", 32, 24, true, LC_TYPE_Q8_1, lc_dequant_q5_1, lc_quant_q5_1),
    T(LC_TYPE_Q8_0, "q8_0", 32, 34, true, LC_TYPE_Q8_0, lc_dequant_q8_0, lc_quant_q8_0),
    T(LC_TYPE_Q8_1, "q8_1", 32, 36, false, LC_TYPE_Q8_1, lc_dequant_q8_1, lc_quant_q8_1),
    T(LC_TYPE_Q2_K, "q2_K", 256, 84, true, LC_TYPE_Q8_K, lc_dequant_q2_K, lc_quant_q2_K),
    T(LC_TYPE_Q3_K, "q3_K", 256, 110, true, LC_TYPE_Q8_K, lc_dequant_q3_K, lc_quant_q3_K),
    T(LC_TYPE_Q4_K, "q4_K", 256, 144, true, LC_TYPE_Q8_K, lc_dequant_q4_K, lc_quant_q4_K),
    T(LC_TYPE_Q5_K, "q5_K", 256, 176, true, LC_TYPE_Q8_K, lc_dequant_q5_K, lc_quant_q5_K),
    T(LC_TYPE_Q6_K, "q6_K", 256, 210, true, LC_TYPE_Q8_K, lc_dequant_q6_K, lc_quant_q6_K),
    T(LC_TYPE_Q8_K, "q8_K", 256, 292, false, LC_TYPE_Q8_K, lc_dequant_q8_K, lc_quant_q8_K),
    T(LC_TYPE_IQ2_XXS, "iq2_xxs", 256, 66, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_IQ2_XS, "iq2_xs", 256, 74, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_IQ3_XXS, "iq3_xxs", 256, 98, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_IQ1_S, "iq1_s", 256, 50, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_IQ4_NL, "iq4_nl", 32, 18, false, LC_TYPE_Q8_0, NULL, NULL),
    T(LC_TYPE_IQ3_S, "iq3_s", 256, 110, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_IQ2_S, "iq2_s", 256, 82, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_IQ4_XS, "iq4_xs", 256, 136, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_I8, "i8", 1, 1, false, LC_TYPE_I8, NULL, NULL),
    T(LC_TYPE_I16, "i16", 1, 2, false, LC_TYPE_I16, NULL, NULL),
    T(LC_TYPE_I32, "i32", 1, 4, false, LC_TYPE_I32, NULL, NULL),
    T(LC_TYPE_I64, "i64", 1, 8, false, LC_TYPE_I64, NULL, NULL),
    T(LC_TYPE_F64, "f64", 1, 8, false, LC_TYPE_F64, NULL, NULL),
    T(LC_TYPE_IQ1_M, "iq1_m", 256, 56, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_TQ1_0, "tq1_0", 256, 54, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_TQ2_0, "tq2_0", 256, 66, false, LC_TYPE_Q8_K, NULL, NULL),
    T(LC_TYPE_MXFP4, "mxfp4", 32, 17, false, LC_TYPE_Q8_0, NULL, NULL),
};
#undef T

const lc_type_info *lc_type_get(int t) {
    if (t < 0 || t >= LC_TYPE_COUNT || !type_table[t].name) return NULL;
    return &type_table[t];
}

size_t lc_type_row_size(lc_type t, int64_t n) {
    const lc_type_info *ti = lc_type_get((int)t);
    if (!ti) return 0;
    return (size_t)(n / ti->block_size) * ti->type_size;
}

int lc_type_from_name(const char *name) {
    for (int t = 0; t < LC_TYPE_COUNT; t++)
        if (type_table[t].name && !strcasecmp(type_table[t].name, name)) return t;
    return -1;
}

const char *lc_type_name(lc_type t) {
    const lc_type_info *ti = lc_type_get((int)t);
    return ti ? ti->name : "unknown";
}
