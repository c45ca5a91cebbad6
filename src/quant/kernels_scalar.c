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

/* Not the order of ggml's generic kernels (which the header speaks of): all five sum in ggml's
 * x86 order (ggml_vec_dot_q{2..6}_K_q8_K, the __AVX2__ branch, which llama.cpp's -march=native
 * build takes on AVX-512 CPUs too), which the SIMD row dots reproduce bit for bit (test_kernels;
 * fmaf is explicit, the build does not contract a*b+c on its own). ggml works on 32-byte
 * chunks of levels, each against 32 activations, and keeps 8 i32 lanes per super-block: lane l
 * gets the scaled products of positions 4l..4l+3 of every chunk, which for every K layout is
 * element e's lane (e % 32) / 4.
 * Per super-block the 8 lanes are turned to float and added by FMA, lane-wise, into 8 float
 * accumulators (d = y.d * x.d, a float product), summed at the end as hsum8. What differs per
 * type is the min / bias term (see each function); Q6_K's integer lanes carry their -32 bias by
 * bsums pairs, so a lane is not the plain dot of its elements there. The integer parts are exact
 * in any order; only the float steps above decide the bits. */

/* One super-block's 8 integer lanes: acc[l] += d * lane[l], by FMA as vfmadd231ps does. */
static void k_lanes(const int32_t *lane, float d, float *acc) {
    for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
}

/* The 8 lanes of sum(sc(e) * q(e) * y(e)) over a super-block: q its 256 levels, sc16 the scale
 * of each 16-element group. */
static void k_dot_lanes(const int *q, const int *sc16, const int8_t *y, int32_t *lane) {
    for (int l = 0; l < 8; l++) lane[l] = 0;
    for (int e = 0; e < LC_QK_K; e++) lane[(e % 32) / 4] += sc16[e / 16] * q[e] * y[e];
}

/* Q2_K: levels 0..3 with 4-bit scales; the min term dmin * m * bsum goes into the same 8 lanes
 * first (lane l: m[2l] bsums[2l] + m[2l+1] bsums[2l+1], times -y.d*dmin), then the levels'. */
static void dot_q2_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q2_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc[8] = {0};
    int q[LC_QK_K], sc[16];
    int32_t lane[8];
    for (int i = 0; i < n / LC_QK_K; i++) {
        const float d = y[i].d * lc_f16_to_f32(x[i].d), dmin = -(y[i].d * lc_f16_to_f32(x[i].dmin));
        for (int l = 0; l < 8; l++)
            lane[l] = (x[i].scales[2 * l] >> 4) * y[i].bsums[2 * l] + (x[i].scales[2 * l + 1] >> 4) * y[i].bsums[2 * l + 1];
        k_lanes(lane, dmin, acc);
        for (int e = 0; e < LC_QK_K; e++) q[e] = lc_k_pair(x[i].qs, e);
        for (int j = 0; j < 16; j++) sc[j] = x[i].scales[j] & 0xF;
        k_dot_lanes(q, sc, y[i].qs, lane);
        k_lanes(lane, d, acc);
    }
    *s = hsum8(acc);
}

/* Q3_K: levels -4..3 (the high bit from hmask: element e's is bit e / 32 of hmask[e % 32]),
 * signed 6-bit scales; no min term, the -4 is inside the lanes. */
static void dot_q3_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q3_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc[8] = {0};
    int q[LC_QK_K], sc[16];
    int32_t lane[8];
    for (int i = 0; i < n / LC_QK_K; i++) {
        int8_t sc8[16];
        lc_q3k_scales(x[i].scales, sc8);
        for (int j = 0; j < 16; j++) sc[j] = sc8[j];
        for (int e = 0; e < LC_QK_K; e++)
            q[e] = lc_k_pair(x[i].qs, e) - (lc_q3k_hbit(x[i].hmask, e) ? 0 : 4);
        k_dot_lanes(q, sc, y[i].qs, lane);
        k_lanes(lane, y[i].d * lc_f16_to_f32(x[i].d), acc);
    }
    *s = hsum8(acc);
}

/* Q4_K / Q5_K levels (Q4_K: qh NULL), with the scales and mins of the 32-element sub-blocks. */
static void k4_levels(const uint8_t *qs, const uint8_t *qh, const uint8_t *s12, int *q, int *sc16, int *mins) {
    for (int e = 0; e < LC_QK_K; e++) q[e] = lc_k4_level(qs, qh, e);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        lc_k4_scale_min(j, s12, &sc, &m);
        sc16[2 * j] = sc16[2 * j + 1] = sc;
        mins[j] = m;
    }
}

/* Q4_K's min term: 4 float lanes (ggml's acc_m), lane k += -y.d*dmin * (m[2k] (bsums 4k + 4k+1)
 * + m[2k+1] (bsums 4k+2 + 4k+3)) by FMA; at the end (0+2) + (1+3), added to the 8 lanes' sum. */
static void dot_q4_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q4_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc[8] = {0}, accm[4] = {0};
    int q[LC_QK_K], sc[16], m[8];
    int32_t lane[8];
    for (int i = 0; i < n / LC_QK_K; i++) {
        const int16_t *bs = y[i].bsums;
        const float d = y[i].d * lc_f16_to_f32(x[i].d), dmin = -(y[i].d * lc_f16_to_f32(x[i].dmin));
        k4_levels(x[i].qs, NULL, x[i].scales, q, sc, m);
        for (int k = 0; k < 4; k++) {
            int p = m[2 * k] * (bs[4 * k] + bs[4 * k + 1]) + m[2 * k + 1] * (bs[4 * k + 2] + bs[4 * k + 3]);
            accm[k] = fmaf(dmin, (float)p, accm[k]);
        }
        k_dot_lanes(q, sc, y[i].qs, lane);
        k_lanes(lane, d, acc);
    }
    *s = hsum8(acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]));
}

/* Q5_K's min term is one float: summs += -y.d*dmin * (the block's integer min sum), by FMA (the
 * contraction GCC makes of ggml's `summs += dmin * ...`), added after the 8 lanes' sum. */
static void dot_q5_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q5_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc[8] = {0}, summs = 0;
    int q[LC_QK_K], sc[16], m[8];
    int32_t lane[8];
    for (int i = 0; i < n / LC_QK_K; i++) {
        const int16_t *bs = y[i].bsums;
        const float d = y[i].d * lc_f16_to_f32(x[i].d), dmin = -(y[i].d * lc_f16_to_f32(x[i].dmin));
        k4_levels(x[i].qs, x[i].qh, x[i].scales, q, sc, m);
        int p = 0;
        for (int j = 0; j < 8; j++) p += m[j] * (bs[2 * j] + bs[2 * j + 1]);
        summs = fmaf(dmin, (float)p, summs);
        k_dot_lanes(q, sc, y[i].qs, lane);
        k_lanes(lane, d, acc);
    }
    *s = hsum8(acc) + summs;
}

/* Q6_K: unsigned levels 0..63 (lc_q6k_level), int8 scales; the -32 comes off lane l as
 * 32 (sc[2l] bsums[2l] + sc[2l+1] bsums[2l+1]) before the lanes go to float. */
static void dot_q6_K(int n, float *s, const void *vx, const void *vy) {
    const lc_block_q6_K *x = vx;
    const lc_block_q8_K *y = vy;
    float acc[8] = {0};
    int q[LC_QK_K], sc[16];
    int32_t lane[8];
    for (int i = 0; i < n / LC_QK_K; i++) {
        for (int e = 0; e < LC_QK_K; e++) q[e] = lc_q6k_level(x[i].ql, x[i].qh, e);
        for (int j = 0; j < 16; j++) sc[j] = x[i].scales[j];
        k_dot_lanes(q, sc, y[i].qs, lane);
        for (int l = 0; l < 8; l++)
            lane[l] -= 32 * (sc[2 * l] * y[i].bsums[2 * l] + sc[2 * l + 1] * y[i].bsums[2 * l + 1]);
        k_lanes(lane, y[i].d * lc_f16_to_f32(x[i].d), acc);
    }
    *s = hsum8(acc);
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
