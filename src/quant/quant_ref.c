/* quant_ref.c — scalar reference quantize and dequantize of the GGUF block formats.
 *
 * Owns: lc_quant_<t> / lc_dequant_<t> for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 and Q2_K..Q8_K, and
 * lc_quantize_rows. The arithmetic (order of float operations, rounding helpers, the searches
 * for K-quant scales) mirrors ggml's reference quantizers without an importance matrix, so a
 * file quantized here is byte-identical to llama.cpp's; tests/golden/quant checks it.
 * Not here: SIMD (kernels_<isa>.c), threads (callers split rows).
 */
#include "quant_ref.h"

#include "base/base.h"
#include "quant.h"
#include "quant_blocks.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, via the 1.5*2^23 trick ggml uses (valid for |f| < 2^22). */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ==== Legacy 32-element formats ==== */

/* Q4_0: the scale maps the element of largest magnitude to -8 exactly. */
void lc_quant_q4_0(const float *x, void *dst, int64_t n) {
    lc_block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++, x += LC_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < LC_QK; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lc_f32_to_f16(d);
        for (int j = 0; j < LC_QK / 2; j++) {
            uint8_t a = (uint8_t)imin(15, (int8_t)(x[j] * id + 8.5f));
            uint8_t b = (uint8_t)imin(15, (int8_t)(x[j + LC_QK / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

void lc_dequant_q4_0(const void *src, float *y, int64_t n) {
    const lc_block_q4_0 *x = src;
    for (int64_t i = 0; i < n / LC_QK; i++, y += LC_QK) {
        const float d = lc_f16_to_f32(x[i].d);
        for (int j = 0; j < LC_QK / 2; j++) {
            y[j] = ((x[i].qs[j] & 0xF) - 8) * d;
            y[j + LC_QK / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* Q4_1: min and (max-min)/15 per block. */
void lc_quant_q4_1(const float *x, void *dst, int64_t n) {
    lc_block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++, x += LC_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < LC_QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lc_f32_to_f16(d);
        y[i].m = lc_f32_to_f16(min);
        for (int j = 0; j < LC_QK / 2; j++) {
            uint8_t a = (uint8_t)imin(15, (int8_t)((x[j] - min) * id + 0.5f));
            uint8_t b = (uint8_t)imin(15, (int8_t)((x[j + LC_QK / 2] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

void lc_dequant_q4_1(const void *src, float *y, int64_t n) {
    const lc_block_q4_1 *x = src;
    for (int64_t i = 0; i < n / LC_QK; i++, y += LC_QK) {
        const float d = lc_f16_to_f32(x[i].d), m = lc_f16_to_f32(x[i].m);
        for (int j = 0; j < LC_QK / 2; j++) {
            y[j] = (x[i].qs[j] & 0xF) * d + m;
            y[j + LC_QK / 2] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* Q5_0: as Q4_0 with 32 levels; the fifth bits go to qh. */
void lc_quant_q5_0(const float *x, void *dst, int64_t n) {
    lc_block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++, x += LC_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < LC_QK; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lc_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < LC_QK / 2; j++) {
            uint8_t a = (uint8_t)imin(31, (int8_t)(x[j] * id + 16.5f));
            uint8_t b = (uint8_t)imin(31, (int8_t)(x[j + LC_QK / 2] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
            qh |= ((uint32_t)(a >> 4) & 1u) << j;
            qh |= ((uint32_t)(b >> 4) & 1u) << (j + LC_QK / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void lc_dequant_q5_0(const void *src, float *y, int64_t n) {
    const lc_block_q5_0 *x = src;
    for (int64_t i = 0; i < n / LC_QK; i++, y += LC_QK) {
        const float d = lc_f16_to_f32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < LC_QK / 2; j++) {
            int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (((x[i].qs[j] & 0xF) | h0) - 16) * d;
            y[j + LC_QK / 2] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

/* Q5_1: as Q4_1 with 32 levels. */
void lc_quant_q5_1(const float *x, void *dst, int64_t n) {
    lc_block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++, x += LC_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < LC_QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lc_f32_to_f16(d);
        y[i].m = lc_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < LC_QK / 2; j++) {
            uint8_t a = (uint8_t)((x[j] - min) * id + 0.5f);
            uint8_t b = (uint8_t)((x[j + LC_QK / 2] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
            qh |= ((uint32_t)(a >> 4) & 1u) << j;
            qh |= ((uint32_t)(b >> 4) & 1u) << (j + LC_QK / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void lc_dequant_q5_1(const void *src, float *y, int64_t n) {
    const lc_block_q5_1 *x = src;
    for (int64_t i = 0; i < n / LC_QK; i++, y += LC_QK) {
        const float d = lc_f16_to_f32(x[i].d), m = lc_f16_to_f32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < LC_QK / 2; j++) {
            int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = ((x[i].qs[j] & 0xF) | h0) * d + m;
            y[j + LC_QK / 2] = ((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

/* Q8_0: amax/127, rounded half away from zero (roundf). */
void lc_quant_q8_0(const float *x, void *dst, int64_t n) {
    lc_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++, x += LC_QK) {
        float amax = 0.0f;
        for (int j = 0; j < LC_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lc_f32_to_f16(d);
        for (int j = 0; j < LC_QK; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void lc_dequant_q8_0(const void *src, float *y, int64_t n) {
    const lc_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / LC_QK; i++, y += LC_QK) {
        const float d = lc_f16_to_f32(x[i].d);
        for (int j = 0; j < LC_QK; j++) y[j] = x[i].qs[j] * d;
    }
}

/* Q8_1: Q8_0 plus s = d * sum(q), kept so dot products with Q4_1/Q5_1 get the min term. */
void lc_quant_q8_1(const float *x, void *dst, int64_t n) {
    lc_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++, x += LC_QK) {
        float amax = 0.0f;
        for (int j = 0; j < LC_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lc_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < LC_QK; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = lc_f32_to_f16(sum * d);
    }
}

void lc_dequant_q8_1(const void *src, float *y, int64_t n) {
    const lc_block_q8_1 *x = src;
    for (int64_t i = 0; i < n / LC_QK; i++, y += LC_QK) {
        const float d = lc_f16_to_f32(x[i].d);
        for (int j = 0; j < LC_QK; j++) y[j] = x[i].qs[j] * d;
    }
}

/* ==== Scale searches of the K formats ==== */

/* Symmetric levels -nmax..nmax-1 for n values. Starts from the scale that maps the element of
 * largest magnitude to -nmax, then tries 18 nearby scales and keeps the one that maximises the
 * weighted fit (sum w*x*l)^2 / sum w*l*l with w = x^2 (rmse_type 1). L gets levels + nmax. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's sub-block search: symmetric levels, then up to 5 passes of coordinate descent moving
 * one level at a time while the x^2-weighted fit improves. L gets levels + nmax. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int nl = imax(-nmax, imin(nmax - 1, nearest_int(x[i] * sl2 / slx)));
                if (nl != L[i]) {
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric levels 0..nmax with a min <= 0: x ~ scale*l - the_min. Tries nstep+1 scales
 * around nmax/(max-min), solving the weighted least-squares scale and min for each set of
 * levels, and keeps the one with the smallest weighted error (|.| if use_mad, else squared). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Packs four 2-bit planes: per 128 elements, byte l gets L[l], L[l+32], L[l+64], L[l+96]. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < LC_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* ==== Q2_K ==== */

void lc_quant_q2_K(const float *x, void *dst, int64_t n) {
    lc_block_q2_K *y = dst;
    uint8_t L[LC_QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / LC_QK_K; i++, x += LC_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            y[i].d = lc_f32_to_f16(max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, 16);
            y[i].d = lc_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < 16; j++)
                y[i].scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = lc_f32_to_f16(max_min / q4scale);
        } else {
            y[i].dmin = lc_f32_to_f16(0.f);
        }
        for (int j = 0; j < 16; j++) {
            const float d = lc_f16_to_f32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = lc_f16_to_f32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

void lc_dequant_q2_K(const void *src, float *y, int64_t n) {
    const lc_block_q2_K *x = src;
    for (int64_t i = 0; i < n / LC_QK_K; i++) {
        const float d = lc_f16_to_f32(x[i].d), min = lc_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int c = 0; c < LC_QK_K; c += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    uint8_t sc = x[i].scales[is++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* ==== Q3_K ==== */

void lc_quant_q3_K(const float *x, void *dst, int64_t n) {
    lc_block_q3_K *y = dst;
    int8_t L[LC_QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / LC_QK_K; i++, x += LC_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            float a = fabsf(scales[j]);
            if (a > amax) { amax = a; max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = imax(-32, imin(31, (int8_t)nearest_int(iscale * scales[j]))) + 32;
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = lc_f32_to_f16(1 / iscale);
        } else {
            y[i].d = lc_f32_to_f16(0.f);
        }
        int8_t sc[16];
        lc_q3k_scales(y[i].scales, sc);
        for (int j = 0; j < 16; j++) {
            float d = lc_f16_to_f32(y[i].d) * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = imax(-4, imin(3, nearest_int(x[16 * j + ii] / d)));
                L[16 * j + ii] = (int8_t)(l + 4);
            }
        }
        memset(y[i].hmask, 0, 32);
        for (int j = 0; j < LC_QK_K; j++) {
            if (L[j] > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                L[j] -= 4;
            }
        }
        pack_2bit((const uint8_t *)L, y[i].qs);
    }
}

void lc_dequant_q3_K(const void *src, float *y, int64_t n) {
    const lc_block_q3_K *x = src;
    for (int64_t i = 0; i < n / LC_QK_K; i++) {
        const float d_all = lc_f16_to_f32(x[i].d);
        int8_t sc[16];
        lc_q3k_scales(x[i].scales, sc);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        int is = 0;
        uint8_t m = 1;
        for (int c = 0; c < LC_QK_K; c += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++) {
                    float dl = d_all * sc[is++];
                    for (int l = 0; l < 16; l++) {
                        int k = l + 16 * half;
                        *y++ = dl * (((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                    }
                }
            }
        }
    }
}

/* ==== Q4_K and Q5_K ==== */

/* Packs 8 (scale, min) pairs of 6 bits into Q4_K/Q5_K's 12 scale bytes. */
static void pack_k4_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *s) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* The shared part of Q4_K/Q5_K quantization: per 32-element sub-block a (scale, min) search
 * weighted by rms + |x|, 6-bit super-block quantization of both, then the final levels
 * 0..nmax against the rounded scales. Writes d, dmin, scales and L. */
static void quant_k4_common(const float *x, int nmax, float rmin, float rdelta, int nstep,
                            uint16_t *dd, uint16_t *dmin, uint8_t *sc12, uint8_t *L) {
    float mins[8], scales[8], weights[32];
    uint8_t Laux[32], ls[8], lm[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, rdelta, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)imin(63, (uint8_t)nearest_int(inv_scale * scales[j]));
        lm[j] = (uint8_t)imin(63, (uint8_t)nearest_int(inv_min * mins[j]));
    }
    memset(sc12, 0, 12);
    pack_k4_scales(ls, lm, sc12);
    *dd = lc_f32_to_f16(max_scale / 63.f);
    *dmin = lc_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        lc_k4_scale_min(j, sc12, &sc, &m);
        const float d = lc_f16_to_f32(*dd) * sc;
        if (!d) continue;
        const float dm = lc_f16_to_f32(*dmin) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

void lc_quant_q4_K(const float *x, void *dst, int64_t n) {
    lc_block_q4_K *y = dst;
    uint8_t L[LC_QK_K];
    for (int64_t i = 0; i < n / LC_QK_K; i++, x += LC_QK_K) {
        quant_k4_common(x, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < LC_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void lc_dequant_q4_K(const void *src, float *y, int64_t n) {
    const lc_block_q4_K *x = src;
    for (int64_t i = 0; i < n / LC_QK_K; i++) {
        const float d = lc_f16_to_f32(x[i].d), min = lc_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0, is = 0; j < LC_QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            lc_k4_scale_min(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            lc_k4_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void lc_quant_q5_K(const float *x, void *dst, int64_t n) {
    lc_block_q5_K *y = dst;
    uint8_t L[LC_QK_K];
    for (int64_t i = 0; i < n / LC_QK_K; i++, x += LC_QK_K) {
        quant_k4_common(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, 32);
        uint8_t m1 = 1, m2 = 2;
        for (int c = 0; c < LC_QK_K; c += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[c + j], l2 = L[c + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

void lc_dequant_q5_K(const void *src, float *y, int64_t n) {
    const lc_block_q5_K *x = src;
    for (int64_t i = 0; i < n / LC_QK_K; i++) {
        const float d = lc_f16_to_f32(x[i].d), min = lc_f16_to_f32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < LC_QK_K; j += 64, ql += 32, is += 2) {
            uint8_t sc, m;
            lc_k4_scale_min(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            lc_k4_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

/* ==== Q6_K ==== */

void lc_quant_q6_K(const float *x, void *dst, int64_t n) {
    lc_block_q6_K *y = dst;
    int8_t L[LC_QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / LC_QK_K; i++, x += LC_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            float a = fabsf(scales[ib]);
            if (a > max_abs_scale) { max_abs_scale = a; max_scale = scales[ib]; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = lc_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; j++) {
            float d = lc_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = imax(-32, imin(31, nearest_int(x[16 * j + ii] / d)));
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < LC_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

void lc_dequant_q6_K(const void *src, float *y, int64_t n) {
    const lc_block_q6_K *x = src;
    for (int64_t i = 0; i < n / LC_QK_K; i++) {
        const float d = lc_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int c = 0; c < LC_QK_K; c += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

/* ==== Q8_K ==== */

/* Activations for the K formats: float scale mapping the largest magnitude to -127 (so its sign
 * is the scale's), plus sums of 16-element groups for the min terms. */
void lc_quant_q8_K(const float *x, void *dst, int64_t n) {
    lc_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / LC_QK_K; i++, x += LC_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < LC_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < LC_QK_K; j++) y[i].qs[j] = (int8_t)imin(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[16 * j + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void lc_dequant_q8_K(const void *src, float *y, int64_t n) {
    const lc_block_q8_K *x = src;
    for (int64_t i = 0; i < n / LC_QK_K; i++, y += LC_QK_K)
        for (int j = 0; j < LC_QK_K; j++) y[j] = x[i].d * x[i].qs[j];
}

/* ==== Whole tensors ==== */

size_t lc_quantize_rows(lc_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row) {
    const lc_type_info *ti = lc_type_get((int)t);
    if (!ti || !ti->from_float || n_per_row % ti->block_size) return 0;
    size_t row = lc_type_row_size(t, n_per_row);
    for (int64_t r = 0; r < nrows; r++)
        ti->from_float(src + r * n_per_row, (uint8_t *)dst + (size_t)r * row, n_per_row);
    return row * (size_t)nrows;
}
