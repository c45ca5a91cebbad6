/* kernels_scalar.c — the portable kernel table: dot products of every compute type against its
 * activation format, activation quantizers and dequantizers, in plain C.
 *
 * These are the reference every SIMD table is tested against (tests/unit/test_kernels.c), and
 * the fallback for CPUs without AVX2. Each dot product accumulates exact integer sums per
 * (sub-)block and scales them in float, as ggml's generic kernels do.
 * Entry point: lc_kernels_fill_scalar. Not here: tiles (gemm stays NULL but for the K formats,
 * whose reference gemm is gemm_ref.c), threading.
 */
#include "quant.h"

#include "base/base.h"
#include "quant_blocks.h"
#include "quant_ref.h"

#include <math.h>
#include <string.h>

/* ==== Float types ==== */

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double acc = 0;
    for (int i = 0; i < n; i++) acc += (double)x[i] * y[i];
    *s = (float)acc;
}

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double acc = 0;
    for (int i = 0; i < n; i++) acc += (double)lc_f16_to_f32(x[i]) * lc_f16_to_f32(y[i]);
    *s = (float)acc;
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double acc = 0;
    for (int i = 0; i < n; i++) acc += (double)lc_bf16_to_f32(x[i]) * lc_bf16_to_f32(y[i]);
    *s = (float)acc;
}

/* ==== Activation quantizers ==== */

/* Q8_0 / Q8_1 activations as ggml's x86 quantize_row_q8_0/q8_1 make them (the CPU reference the
 * goldens are taken from): d = amax / 127, but the multiplier is 127 / amax (not 1 / d) and the
 * products are rounded half to even (rintf in the default rounding mode). The weight quantizer
 * (quant_ref.c: 1 / d, half away from zero) is a different function on purpose: files must stay
 * byte-identical to llama.cpp's, and ggml's activations do not use its reference either. One
 * element in ~10^3 of real activations lands on the other side of a rounding, which the int8
 * step (1/127 of the block's max) makes a 1e-4-sized change of a matmul output. */
static int act_block32(const float *x, int8_t *qs, float *dout) {
    float amax = 0.0f;
    for (int j = 0; j < LC_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < LC_QK; j++) {
        qs[j] = (int8_t)rintf(x[j] * id);
        sum += qs[j];
    }
    *dout = amax / 127.f;
    return sum;
}

static void act_q8_0(const float *x, void *dst, int64_t n) {
    lc_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++) {
        float d;
        act_block32(x + i * LC_QK, y[i].qs, &d);
        y[i].d = lc_f32_to_f16(d);
    }
}

static void act_q8_1(const float *x, void *dst, int64_t n) {
    lc_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / LC_QK; i++) {
        float d;
        int sum = act_block32(x + i * LC_QK, y[i].qs, &d);
        y[i].d = lc_f32_to_f16(d);
        y[i].s = lc_f32_to_f16((float)sum * d);
    }
}

/* ==== Legacy formats against Q8_0 / Q8_1 ==== */

/* All five sum in ggml's x86 order (ggml_vec_dot_q4_0_q8_0 ... _q8_0_q8_0, AVX2 and AVX-512
 * builds alike), which the SIMD row dots and tiles reproduce bit for bit (test_kernels): 8 float
 * lanes, lane l holding the integer sum of elements 4l..4l+3 of each block, each lane += d * that
 * sum by FMA (d = dx*dy rounded to float) block after block, then the lanes added as
 * hsum_float_8. Q4_1 / Q5_1 sum their min terms m*s apart and add them last. */

/* The horizontal sum of 8 lanes in the order of ggml's hsum_float_8 (and the x86 kernels'
 * hsum_ps): halves added lane-wise, then (0+2) + (1+3). */
static float hsum8(const float *a) {
    float r0 = a[0] + a[4], r1 = a[1] + a[5], r2 = a[2] + a[6], r3 = a[3] + a[7];
    return (r0 + r2) + (r1 + r3);
}

/* One block: w the 32 weight levels in element order, y the activations. */
static void lanes8(const int *w, const int8_t *y, float d, float *acc) {
    for (int l = 0; l < 8; l++) {
        int sumi = 0;
        for (int j = 4 * l; j < 4 * l + 4; j++) sumi += w[j] * y[j];
        acc[l] = fmaf(d, (float)sumi, acc[l]);
    }
}

/* Element j < 16 is the low nibble of byte j, element j + 16 its high nibble; fifth bits from qh. */
static void levels4(const uint8_t *qs, const uint8_t *qh, int off, int *w) {
    uint32_t h = 0;
    if (qh) memcpy(&h, qh, 4);
    for (int j = 0; j < 16; j++) {
        w[j] = (qs[j] & 0xF) + (qh ? (int)((h >> j) & 1) << 4 : 0) - off;
        w[j + 16] = (qs[j] >> 4) + (qh ? (int)((h >> (j + 16)) & 1) << 4 : 0) - off;
    }
}

static void dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_0 *x = vx;
    const lc_block_q8_0 *y = vy;
    float acc[8] = {0};
    int w[LC_QK];
    for (int i = 0; i < n / LC_QK; i++) {
        levels4(x[i].qs, NULL, 8, w);
        lanes8(w, y[i].qs, lc_f16_to_f32(x[i].d) * lc_f16_to_f32(y[i].d), acc);
    }
    *s = hsum8(acc);
}

/* Q4_1: sum(d*q + m)(dy*qy) = d*dy*sum(q*qy) + m * (dy*sum(qy)) and Q8_1 stores dy*sum(qy). */
static void dot_q4_1(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_1 *x = vx;
    const lc_block_q8_1 *y = vy;
    float acc[8] = {0}, summ = 0;
    int w[LC_QK];
    for (int i = 0; i < n / LC_QK; i++) {
        levels4(x[i].qs, NULL, 0, w);
        lanes8(w, y[i].qs, lc_f16_to_f32(x[i].d) * lc_f16_to_f32(y[i].d), acc);
        summ += lc_f16_to_f32(x[i].m) * lc_f16_to_f32(y[i].s); /* exact product: FMA or not */
    }
    *s = hsum8(acc) + summ;
}

static void dot_q5_0(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_0 *x = vx;
    const lc_block_q8_0 *y = vy;
    float acc[8] = {0};
    int w[LC_QK];
    for (int i = 0; i < n / LC_QK; i++) {
        levels4(x[i].qs, x[i].qh, 16, w);
        lanes8(w, y[i].qs, lc_f16_to_f32(x[i].d) * lc_f16_to_f32(y[i].d), acc);
    }
    *s = hsum8(acc);
}

static void dot_q5_1(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_1 *x = vx;
    const lc_block_q8_1 *y = vy;
    float acc[8] = {0}, summ = 0;
    int w[LC_QK];
    for (int i = 0; i < n / LC_QK; i++) {
        levels4(x[i].qs, x[i].qh, 0, w);
        lanes8(w, y[i].qs, lc_f16_to_f32(x[i].d) * lc_f16_to_f32(y[i].d), acc);
        summ += lc_f16_to_f32(x[i].m) * lc_f16_to_f32(y[i].s);
    }
    *s = hsum8(acc) + summ;
}

static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q8_0 *x = vx, *y = vy;
    float acc[8] = {0};
    int w[LC_QK];
    for (int i = 0; i < n / LC_QK; i++) {
        for (int j = 0; j < LC_QK; j++) w[j] = x[i].qs[j];
        lanes8(w, y[i].qs, lc_f16_to_f32(x[i].d) * lc_f16_to_f32(y[i].d), acc);
    }
    *s = hsum8(acc);
}

/* ==== K formats against Q8_K ==== */

/* Q2_K: per 16-element sub-block, d*sc*sum(q*qy) - dmin*m*bsum. */
static void dot_q2_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q2_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc = 0;
    for (int i = 0; i < n / LC_QK_K; i++) {
        int summs = 0, isum = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
        const int8_t *q8 = y[i].qs;
        int is = 0;
        for (int c = 0; c < 2; c++) {
            const uint8_t *q2 = x[i].qs + 32 * c;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++, is++) {
                    int sum = 0;
                    for (int l = 0; l < 16; l++) sum += ((q2[l + 16 * half] >> shift) & 3) * q8[l];
                    isum += sum * (x[i].scales[is] & 0xF);
                    q8 += 16;
                }
            }
        }
        const float dall = y[i].d * lc_f16_to_f32(x[i].d), dmin = y[i].d * lc_f16_to_f32(x[i].dmin);
        acc += dall * isum - dmin * summs;
    }
    *s = acc;
}

static void dot_q3_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q3_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc = 0;
    for (int i = 0; i < n / LC_QK_K; i++) {
        int8_t sc[16];
        lc_q3k_scales(x[i].scales, sc);
        const int8_t *q8 = y[i].qs;
        int isum = 0, is = 0;
        uint8_t m = 1;
        for (int c = 0; c < 2; c++) {
            const uint8_t *q3 = x[i].qs + 32 * c;
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++, is++) {
                    int sum = 0;
                    for (int l = 0; l < 16; l++) {
                        int k = l + 16 * half;
                        int q = ((q3[k] >> shift) & 3) - ((x[i].hmask[k] & m) ? 0 : 4);
                        sum += q * q8[l];
                    }
                    isum += sum * sc[is];
                    q8 += 16;
                }
            }
        }
        acc += lc_f16_to_f32(x[i].d) * y[i].d * isum;
    }
    *s = acc;
}

/* Q4_K: per 32-element sub-block d*sc*sum(q*qy) - dmin*m*(bsum pair). */
static void dot_q4_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc = 0;
    for (int i = 0; i < n / LC_QK_K; i++) {
        int isum = 0, summs = 0;
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        for (int j = 0; j < 8; j += 2, q4 += 32) {
            uint8_t sc0, m0, sc1, m1;
            lc_k4_scale_min(j, x[i].scales, &sc0, &m0);
            lc_k4_scale_min(j + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q4[l] & 0xF) * q8[l];
                s1 += (q4[l] >> 4) * q8[l + 32];
            }
            q8 += 64;
            isum += s0 * sc0 + s1 * sc1;
            summs += m0 * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]) +
                     m1 * (y[i].bsums[2 * j + 2] + y[i].bsums[2 * j + 3]);
        }
        acc += y[i].d * lc_f16_to_f32(x[i].d) * isum - y[i].d * lc_f16_to_f32(x[i].dmin) * summs;
    }
    *s = acc;
}

static void dot_q5_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc = 0;
    for (int i = 0; i < n / LC_QK_K; i++) {
        int isum = 0, summs = 0;
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        for (int j = 0; j < 8; j += 2, ql += 32) {
            uint8_t sc0, m0, sc1, m1;
            lc_k4_scale_min(j, x[i].scales, &sc0, &m0);
            lc_k4_scale_min(j + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += ((ql[l] & 0xF) | (((qh[l] >> j) & 1) << 4)) * q8[l];
                s1 += ((ql[l] >> 4) | (((qh[l] >> (j + 1)) & 1) << 4)) * q8[l + 32];
            }
            q8 += 64;
            isum += s0 * sc0 + s1 * sc1;
            summs += m0 * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]) +
                     m1 * (y[i].bsums[2 * j + 2] + y[i].bsums[2 * j + 3]);
        }
        acc += y[i].d * lc_f16_to_f32(x[i].d) * isum - y[i].d * lc_f16_to_f32(x[i].dmin) * summs;
    }
    *s = acc;
}

static void dot_q6_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q6_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc = 0;
    for (int i = 0; i < n / LC_QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs, *sc = x[i].scales;
        int isum = 0;
        for (int c = 0; c < 2; c++, ql += 64, qh += 32, q8 += 128, sc += 8) {
            int sums[8] = {0};
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                sums[is] += q1 * q8[l];
                sums[is + 2] += q2 * q8[l + 32];
                sums[is + 4] += q3 * q8[l + 64];
                sums[is + 6] += q4 * q8[l + 96];
            }
            for (int k = 0; k < 8; k++) isum += sums[k] * sc[k];
        }
        acc += lc_f16_to_f32(x[i].d) * y[i].d * isum;
    }
    *s = acc;
}

/* ==== The table ==== */

void lc_kernels_fill_scalar(lc_kernels *k) {
    memset(k, 0, sizeof *k);
    k->isa = "scalar";
    k->vec_dot[LC_TYPE_F32] = dot_f32;
    k->vec_dot[LC_TYPE_F16] = dot_f16;
    k->vec_dot[LC_TYPE_BF16] = dot_bf16;
    k->vec_dot[LC_TYPE_Q4_0] = dot_q4_0;
    k->vec_dot[LC_TYPE_Q4_1] = dot_q4_1;
    k->vec_dot[LC_TYPE_Q5_0] = dot_q5_0;
    k->vec_dot[LC_TYPE_Q5_1] = dot_q5_1;
    k->vec_dot[LC_TYPE_Q8_0] = dot_q8_0;
    k->vec_dot[LC_TYPE_Q2_K] = dot_q2_K;
    k->vec_dot[LC_TYPE_Q3_K] = dot_q3_K;
    k->vec_dot[LC_TYPE_Q4_K] = dot_q4_K;
    k->vec_dot[LC_TYPE_Q5_K] = dot_q5_K;
    k->vec_dot[LC_TYPE_Q6_K] = dot_q6_K;
    /* activation quantizers: Q8_0/Q8_1/Q8_K are activation formats; F16/BF16 for f16 weights */
    static const lc_type act[] = {LC_TYPE_Q8_0, LC_TYPE_Q8_1, LC_TYPE_Q8_K, LC_TYPE_F16, LC_TYPE_BF16, LC_TYPE_F32};
    for (size_t i = 0; i < LC_ARRAY_LEN(act); i++) k->quantize[act[i]] = lc_type_get(act[i])->from_float;
    k->quantize[LC_TYPE_Q8_0] = act_q8_0;
    k->quantize[LC_TYPE_Q8_1] = act_q8_1;
    for (int t = 0; t < LC_TYPE_COUNT; t++) {
        const lc_type_info *ti = lc_type_get(t);
        if (ti && ti->to_float) k->to_float[t] = ti->to_float;
    }
    lc_kgemm_fill_ref(k);
}
