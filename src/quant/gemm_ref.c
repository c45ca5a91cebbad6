/* gemm_ref.c — scalar reference GEMMs for the products whose SIMD tiles sum in another order
 * than the row dots, as llama.cpp's x86 CPU backend does; the SIMD tiles (kernels_x86_impl.h,
 * kernels_avx512.c) must match them bit for bit (tests/unit/test_kernels.c).
 *
 * K formats (Q2_K ... Q6_K against Q8_K rows): llama.cpp's tiled K-quant matmul, which its x86
 * build uses for batches of 8 tokens or more. Per output and super-block the integer parts are
 * exact: S1 = sum over 16-element groups of scale * sum(level * q8) with the levels centred
 * (Q3_K: q - 4, Q6_K: q - 32) and S2 = sum of min * bsum; then r = float(S1) * d, minus
 * dmin * float(S2) by one FMA where the format has mins, and the output accumulates
 * fma(r, q8.d, acc) super-block after super-block from zero.
 * F32 / F16 (lc_gemm_f_ref): llamafile's tinyBLAS<16, __m512>, 16 FMA lanes and GCC's
 * _mm512_reduce_add_ps fold; only the AVX-512 table has that tile. Its row dots (lc_dot_f_ref)
 * are ggml_vec_dot_f32 / _f16 as built for AVX-512: 4 x 16 lanes, folded, then the same reduce.
 * BF16 (the same two entry points): vdpbf16ps emulated (per lane the odd pair's product
 * then the even pair's, each added by one rounding, denormals flushed), in tinyBLAS's and
 * ggml_vec_dot_bf16's orders.
 */
#include "quant.h"
#include "quant_blocks.h"
#include "base/base.h"
#include "tile_macros.h"

#include <math.h>

/* One super-block as integers: centred levels, per-16 scales and mins (the 32-element sub-block
 * formats repeat theirs), and the float d / dmin. */
typedef struct {
    int lv[LC_QK_K];
    int sc[16], mn[16];
    float d, dmin;
    int has_min;
} kblock;

static void unpack_ref(lc_type t, const void *blk, kblock *k) {
    k->has_min = 0;
    k->dmin = 0;
    for (int g = 0; g < 16; g++) k->mn[g] = 0;
    switch (t) {
    case LC_TYPE_Q2_K: {
        const lc_block_q2_K *b = blk;
        for (int e = 0; e < LC_QK_K; e++) k->lv[e] = lc_k_pair(b->qs, e);
        for (int g = 0; g < 16; g++) {
            k->sc[g] = b->scales[g] & 0xF;
            k->mn[g] = b->scales[g] >> 4;
        }
        k->d = lc_f16_to_f32(b->d);
        k->dmin = lc_f16_to_f32(b->dmin);
        k->has_min = 1;
        break;
    }
    case LC_TYPE_Q3_K: {
        const lc_block_q3_K *b = blk;
        int8_t sc[16];
        lc_q3k_scales(b->scales, sc);
        for (int e = 0; e < LC_QK_K; e++) k->lv[e] = lc_k_pair(b->qs, e) + 4 * lc_q3k_hbit(b->hmask, e) - 4;
        for (int g = 0; g < 16; g++) k->sc[g] = sc[g];
        k->d = lc_f16_to_f32(b->d);
        break;
    }
    case LC_TYPE_Q4_K:
    case LC_TYPE_Q5_K: {
        const int five = t == LC_TYPE_Q5_K;
        const lc_block_q4_K *b4 = blk;
        const lc_block_q5_K *b5 = blk;
        const uint8_t *qs = five ? b5->qs : b4->qs, *s12 = five ? b5->scales : b4->scales;
        for (int e = 0; e < LC_QK_K; e++) k->lv[e] = lc_k4_level(qs, five ? b5->qh : NULL, e);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            lc_k4_scale_min(j, s12, &sc, &m);
            k->sc[2 * j] = k->sc[2 * j + 1] = sc;
            k->mn[2 * j] = k->mn[2 * j + 1] = m;
        }
        k->d = lc_f16_to_f32(five ? b5->d : b4->d);
        k->dmin = lc_f16_to_f32(five ? b5->dmin : b4->dmin);
        k->has_min = 1;
        break;
    }
    default: { /* LC_TYPE_Q6_K */
        const lc_block_q6_K *b = blk;
        for (int e = 0; e < LC_QK_K; e++) k->lv[e] = lc_q6k_level(b->ql, b->qh, e) - 32;
        for (int g = 0; g < 16; g++) k->sc[g] = b->scales[g];
        k->d = lc_f16_to_f32(b->d);
        break;
    }
    }
}

/* Each weight super-block is unpacked once and added into the outputs of every token; each
 * output still accumulates its super-blocks in order, from zero. */
static void kgemm_ref(lc_type t, int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,
                      float *out, size_t ldo) {
    const size_t bsz = lc_type_get(t)->type_size;
    kblock k;
    for (int r = 0; r < nr; r++) {
        for (int c = 0; c < nc; c++) out[(size_t)c * ldo + r] = 0;
        for (int b = 0; b < n / LC_QK_K; b++) {
            unpack_ref(t, (const uint8_t *)w + (size_t)r * ws + (size_t)b * bsz, &k);
            for (int c = 0; c < nc; c++) {
                const lc_block_q8_K *y = (const lc_block_q8_K *)((const uint8_t *)x + (size_t)c * xs) + b;
                int s1 = 0, s2 = 0;
                for (int g = 0; g < 16; g++) {
                    int raw = 0;
                    for (int e = 16 * g; e < 16 * g + 16; e++) raw += k.lv[e] * y->qs[e];
                    s1 += k.sc[g] * raw;
                    s2 += k.mn[g] * y->bsums[g];
                }
                float v = (float)s1 * k.d;
                if (k.has_min) v = fmaf(-k.dmin, (float)s2, v);
                float *o = &out[(size_t)c * ldo + r];
                *o = fmaf(v, y->d, *o);
            }
        }
    }
}

LC_GEMM_OF_TYPE(gemm_q2_K_ref, kgemm_ref, LC_TYPE_Q2_K)
LC_GEMM_OF_TYPE(gemm_q3_K_ref, kgemm_ref, LC_TYPE_Q3_K)
LC_GEMM_OF_TYPE(gemm_q4_K_ref, kgemm_ref, LC_TYPE_Q4_K)
LC_GEMM_OF_TYPE(gemm_q5_K_ref, kgemm_ref, LC_TYPE_Q5_K)
LC_GEMM_OF_TYPE(gemm_q6_K_ref, kgemm_ref, LC_TYPE_Q6_K)

void lc_kgemm_fill_ref(lc_kernels *k) {
    k->gemm[LC_TYPE_Q2_K] = gemm_q2_K_ref;
    k->gemm[LC_TYPE_Q3_K] = gemm_q3_K_ref;
    k->gemm[LC_TYPE_Q4_K] = gemm_q4_K_ref;
    k->gemm[LC_TYPE_Q5_K] = gemm_q5_K_ref;
    k->gemm[LC_TYPE_Q6_K] = gemm_q6_K_ref;
}

/* GCC's _mm512_reduce_add_ps on 16 lanes. */
static float reduce16(const float *v) {
    float h[8], q[4];
    for (int i = 0; i < 8; i++) h[i] = v[8 + i] + v[i];
    for (int i = 0; i < 4; i++) q[i] = h[4 + i] + h[i];
    return (q[0] + q[2]) + (q[1] + q[3]);
}

/* Element i of an F32 or F16 row, as a float. */
static float fval(lc_type t, const void *p, int i) {
    return t == LC_TYPE_F16 ? lc_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static void gemm_bf16_ref(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                          size_t ldo);
static float dot_bf16_ref(int n, const void *x, const void *y);

void lc_gemm_f_ref(lc_type t, int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                   size_t ldo) {
    if (t == LC_TYPE_BF16) {
        gemm_bf16_ref(n, nr, nc, w, ws, x, xs, out, ldo);
        return;
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws, *xr = (const uint8_t *)x + (size_t)c * xs;
            float lane[16] = {0};
            for (int l = 0; l < n; l += 16)
                for (int i = 0; i < 16; i++) lane[i] = fmaf(fval(t, wr, l + i), fval(t, xr, l + i), lane[i]);
            out[(size_t)c * ldo + r] = reduce16(lane);
        }
}

float lc_dot_f_ref(lc_type t, int n, const void *x, const void *y) {
    if (t == LC_TYPE_BF16) return dot_bf16_ref(n, x, y);
    float lane[4][16] = {{0}};
    const int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) {
                int e = i + 16 * j + l;
                lane[j][l] = fmaf(fval(t, x, e), fval(t, y, e), lane[j][l]);
            }
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = (lane[0][l] + lane[2][l]) + (lane[1][l] + lane[3][l]);
    float r = reduce16(v);
    if (t != LC_TYPE_F16) {
        for (int i = np; i < n; i++) r = fmaf(fval(t, x, i), fval(t, y, i), r);
        return r;
    }
    double d = r;
    for (int i = np; i < n; i++) d += (double)(fval(t, x, i) * fval(t, y, i));
    return (float)d;
}

/* One vdpbf16ps lane: acc + a1*b1, then + a0*b0, each FMA-rounded; denormal inputs and results
 * are zero. */
static float dp_lane(float acc, const uint16_t *a, const uint16_t *b) {
    float x[4] = {lc_bf16_to_f32(a[1]), lc_bf16_to_f32(b[1]), lc_bf16_to_f32(a[0]), lc_bf16_to_f32(b[0])};
    for (int i = 0; i < 4; i++)
        if (fabsf(x[i]) < 1.17549435e-38f) x[i] = 0;
    acc = fmaf(x[0], x[1], acc);
    if (fabsf(acc) < 1.17549435e-38f) acc = copysignf(0, acc);
    acc = fmaf(x[2], x[3], acc);
    if (fabsf(acc) < 1.17549435e-38f) acc = copysignf(0, acc);
    return acc;
}

/* 16 lanes over elements [l0, l1) in steps of 32 (one vdpbf16ps each). */
static void dp_run(float *lane, const uint16_t *x, const uint16_t *y, int l0, int l1) {
    for (int l = l0; l < l1; l += 32)
        for (int i = 0; i < 16; i++) lane[i] = dp_lane(lane[i], x + l + 2 * i, y + l + 2 * i);
}

static void gemm_bf16_ref(int n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, float *out,
                          size_t ldo) {
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            float lane[16] = {0};
            dp_run(lane, (const uint16_t *)((const uint8_t *)w + (size_t)r * ws),
                   (const uint16_t *)((const uint8_t *)x + (size_t)c * xs), 0, n);
            out[(size_t)c * ldo + r] = reduce16(lane);
        }
}

static float dot_bf16_ref(int n, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    float c1[16] = {0}, c2[16] = {0};
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        dp_run(c1, a, b, i, i + 32);
        dp_run(c2, a, b, i + 32, i + 64);
    }
    double sum = (double)reduce16(c1);
    sum += (double)reduce16(c2);
    for (; i < n; i++) sum += (double)(lc_bf16_to_f32(a[i]) * lc_bf16_to_f32(b[i]));
    return (float)sum;
}
