/* test_cuda_ops.c — every CUDA backend op against the CPU backend (and matrix products against a
 * float64 product of the dequantized weights) on random data: matmul for each weight type on the
 * decode (T <= 8), short-prompt (int8 types, T <= 32) and prefill (cuBLAS) paths, expert products
 * with routing on the device, norms, RoPE, SwiGLU, adds, embedding rows, gather, KV store and paged
 * attention (f16 and q8_0 caches, short and split-K long contexts; short ones also against the
 * CPU's arithmetic). Exits 77 with "SKIP: no CUDA device" where there is none.
 *   test_cuda_ops --bench   also times decode-shaped matrix-vector products (GB/s).
 */
#include "testutil.h"

#include "backend/cpu/vec.h" /* lc_vec_gexp: the CPU backend's exp, for attn_ref_cpu */
#include "backend/cuda/cuda_backend.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}

/* ||a - b|| / ||b|| */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        if (isnan(a[i])) return INFINITY;
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Host weights stay allocated until the backend is freed: the backend names its device copies
 * by host address, and a freed-then-reused address would find an older weight's copy. */
static void *kept[256];
static int n_kept;
static void keep(const void *p) {
    if (n_kept < 256) kept[n_kept++] = (void *)p;
}

typedef struct env {
    lc_backend *cpu, *gpu;
    bool exact; /* gpu takes the short-context attention kernel (LOCARA_CUDA_ATTN_EXACT, default on) */
} env;

/* A backend buffer on each side holding the same host data. */
static float *gbuf(env *e, const float *h, size_t n) {
    float *d = e->gpu->ops->alloc(e->gpu, n);
    if (d && h) lc_backend_cuda_from_host(e->gpu, d, h, n);
    return d;
}
static float *cbuf(env *e, const float *h, size_t n) {
    float *d = e->cpu->ops->alloc(e->cpu, n);
    if (d && h) memcpy(d, h, n * sizeof(float));
    return d;
}
static void fetch(env *e, float *h, const float *d, size_t n) { e->gpu->ops->to_host(e->gpu, h, d, n); }

/* A random weight from this test's stream (testutil.h). */
static lc_weight make_weight(lc_type t, int64_t rows, int64_t cols, int64_t n_expert, float **f32_out) {
    return test_random_weight(t, rows, cols, n_expert, fill, f32_out);
}

static const lc_type TYPES[] = {LC_TYPE_F32,  LC_TYPE_F16,  LC_TYPE_BF16, LC_TYPE_Q8_0, LC_TYPE_Q4_0,
                                LC_TYPE_Q4_1, LC_TYPE_Q5_0, LC_TYPE_Q5_1, LC_TYPE_Q2_K, LC_TYPE_Q3_K,
                                LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K};

/* ==== Matrix products ==== */

/* The types of mmvq.cu's int8 products: the K-quants (the CPU takes Q8_K activations for them) and
 * the legacy formats of blocks of 32 (Q8_0 / Q8_1 activations, the CPU's arithmetic). */
static bool is_int8(lc_type t) { return t == LC_TYPE_Q4_K || t == LC_TYPE_Q5_K || t == LC_TYPE_Q6_K; }
static bool is_legacy(lc_type t) {
    return t == LC_TYPE_Q8_0 || t == LC_TYPE_Q4_0 || t == LC_TYPE_Q4_1 || t == LC_TYPE_Q5_0 || t == LC_TYPE_Q5_1;
}

static void test_matmul(env *e) {
    const int rows = 67, cols = 512, toks[] = {1, 3, 8, 20, 40}; /* decode; int8 prompt; f16 tiles */
    for (size_t ti = 0; ti < LC_ARRAY_LEN(TYPES); ti++) {
        lc_type t = TYPES[ti];
        float *f0, *f1;
        lc_weight w0 = make_weight(t, rows, cols, 1, &f0), w1 = make_weight(t, rows + 5, cols, 1, &f1);
        CHECK(lc_backend_cuda_add_weight(e->gpu, &w0) == LC_OK);
        CHECK(lc_backend_cuda_add_weight(e->gpu, &w1) == LC_OK);
        for (size_t k = 0; k < LC_ARRAY_LEN(toks); k++) {
            int T = toks[k];
            float *x = malloc((size_t)T * cols * 4), *ref = malloc((size_t)T * (rows + 5) * 4);
            float *got = malloc((size_t)T * (rows + 5) * 4), *cpu_got = malloc((size_t)T * (rows + 5) * 4);
            fill(x, (size_t)T * cols, 1.0f);
            float *gx = gbuf(e, x, (size_t)T * cols), *go0 = gbuf(e, NULL, (size_t)T * rows), *go1 = gbuf(e, NULL, (size_t)T * (rows + 5));
            float *cx = cbuf(e, x, (size_t)T * cols), *co0 = cbuf(e, NULL, (size_t)T * rows), *co1 = cbuf(e, NULL, (size_t)T * (rows + 5));
            const lc_weight *ws[2] = {&w0, &w1};
            float *go[2] = {go0, go1}, *co[2] = {co0, co1};
            lc_status st = e->gpu->ops->matmul(e->gpu, 2, ws, go, gx, T);
            CHECKF(st == LC_OK, "%s: %s", lc_type_name(t), lc_last_error());
            e->cpu->ops->matmul(e->cpu, 2, ws, co, cx, T);
            for (int wi = 0; wi < 2; wi++) {
                int R = wi ? rows + 5 : rows;
                const float *f = wi ? f1 : f0;
                for (int tt = 0; tt < T; tt++)
                    for (int r = 0; r < R; r++) {
                        double s = 0;
                        for (int c = 0; c < cols; c++) s += (double)f[(size_t)r * cols + c] * x[(size_t)tt * cols + c];
                        ref[(size_t)tt * R + r] = (float)s;
                    }
                fetch(e, got, go[wi], (size_t)T * R);
                double err = rel_err(got, ref, (size_t)T * R), cerr = rel_err(got, co[wi], (size_t)T * R);
                double tol = T <= 8 ? 1e-5 : 2e-3; /* f32 decode path; f16 tensor-core prefill path */
                if (t == LC_TYPE_BF16 || t == LC_TYPE_F16) tol = T <= 8 ? 1e-5 : 3e-3;
                /* int8 activations (mmvq.cu, prompts of up to 32 tokens too), as the CPU backend's q8 dot products */
                if (T <= 32 && (is_int8(t) || is_legacy(t))) tol = 1e-2;
                CHECKF(err < tol, "matmul %s T=%d w%d: rel err %.2e vs float64 (tol %.0e)", lc_type_name(t), T, wi, err, tol);
                /* the legacy formats take the CPU's int8 values and scales (Q8_0 / Q8_1 activations): only
                 * the order of the float sums differs */
                const double ctol = T <= 32 && is_legacy(t) ? 1e-5 : 3e-2;
                CHECKF(cerr < ctol, "matmul %s T=%d w%d: rel err %.2e vs the CPU backend (tol %.0e)", lc_type_name(t), T, wi, cerr, ctol);
                /* and in the CPU's order (mmvq.cu, k_mmvq_cpu), bit for bit where the CPU takes its row
                 * dot's order: always for Q4_1, Q5_0, Q5_1, up to 7 tokens for Q8_0 (Q4_0: the CPU's
                 * AVX-512 dot sums block pairs, which the GPU does not follow) */
                if (is_legacy(t) && t != LC_TYPE_Q4_0 && T <= 32 && (t != LC_TYPE_Q8_0 || T < 8))
                    CHECKF(!memcmp(got, co[wi], (size_t)T * R * 4), "matmul %s T=%d w%d: not the CPU's bits (rel err %.2e)",
                           lc_type_name(t), T, wi, cerr);
            }
            e->gpu->ops->free(e->gpu, gx), e->gpu->ops->free(e->gpu, go0), e->gpu->ops->free(e->gpu, go1);
            e->cpu->ops->free(e->cpu, cx), e->cpu->ops->free(e->cpu, co0), e->cpu->ops->free(e->cpu, co1);
            free(x), free(ref), free(got), free(cpu_got);
        }
        /* embedding rows */
        int32_t ids[5] = {3, 0, 66, 3, 17};
        float *go = gbuf(e, NULL, 5 * (size_t)cols), *got = malloc(5 * (size_t)cols * 4);
        e->gpu->ops->get_rows(e->gpu, go, &w0, ids, 5);
        fetch(e, got, go, 5 * (size_t)cols);
        double err = 0;
        for (int i = 0; i < 5; i++) err = fmax(err, rel_err(got + (size_t)i * cols, f0 + (size_t)ids[i] * cols, (size_t)cols));
        CHECKF(err < 1e-6, "get_rows %s: rel err %.2e", lc_type_name(t), err);
        e->gpu->ops->free(e->gpu, go);
        free(got);
        keep(w0.data), keep(w1.data), free(f0), free(f1);
    }
}

/* Routing, expert products (device ids for small batches, host grouping for large) and combine. */
static void test_moe(env *e) {
    const int n_exp = 8, k = 2, rows = 40, cols = 256;
    const lc_type types[] = {LC_TYPE_Q4_K, LC_TYPE_Q8_0, LC_TYPE_Q6_K};
    const int toks[] = {1, 3, 12};
    for (size_t ti = 0; ti < LC_ARRAY_LEN(types); ti++) {
        float *f;
        lc_weight w = make_weight(types[ti], rows, cols, n_exp, &f);
        CHECK(lc_backend_cuda_add_weight(e->gpu, &w) == LC_OK);
        for (size_t q = 0; q < LC_ARRAY_LEN(toks); q++) {
            int T = toks[q];
            size_t nl = (size_t)T * n_exp, nx = (size_t)T * cols, ny = (size_t)T * k * rows;
            float *lg = malloc(nl * 4), *x = malloc(nx * 4), *a = malloc(ny * 4), *b = malloc(ny * 4);
            float *wa = malloc((size_t)T * k * 4), *wb = malloc((size_t)T * k * 4), *ca = malloc((size_t)T * rows * 4);
            int32_t *ids_g = malloc((size_t)T * k * 4), *ids_c = malloc((size_t)T * k * 4);
            fill(lg, nl, 3.0f);
            fill(x, nx, 1.0f);
            float *glg = gbuf(e, lg, nl), *gx = gbuf(e, x, nx), *gy = gbuf(e, NULL, ny), *gw = gbuf(e, NULL, (size_t)T * k);
            float *go = gbuf(e, NULL, (size_t)T * rows);
            float *clg = cbuf(e, lg, nl), *cx = cbuf(e, x, nx), *cy = cbuf(e, NULL, ny), *cw = cbuf(e, NULL, (size_t)T * k);
            float *co = cbuf(e, NULL, (size_t)T * rows);
            e->gpu->ops->moe_route(e->gpu, glg, T, n_exp, k, true, ids_g, gw);
            e->cpu->ops->moe_route(e->cpu, clg, T, n_exp, k, true, ids_c, cw);
            CHECK(e->gpu->ops->matmul_experts(e->gpu, &w, gy, gx, false, ids_g, T, k) == LC_OK);
            e->cpu->ops->matmul_experts(e->cpu, &w, cy, cx, false, ids_c, T, k);
            e->gpu->ops->moe_combine(e->gpu, go, gy, gw, T, k, rows);
            e->cpu->ops->moe_combine(e->cpu, co, cy, cw, T, k, rows);
            fetch(e, wa, gw, (size_t)T * k);
            CHECKF(rel_err(wa, cw, (size_t)T * k) < 1e-5, "moe_route weights T=%d", T);
            fetch(e, a, gy, ny);
            CHECKF(rel_err(a, cy, ny) < 3e-2, "matmul_experts %s T=%d: %.2e", lc_type_name(types[ti]), T, rel_err(a, cy, ny));
            fetch(e, ca, go, (size_t)T * rows);
            CHECKF(rel_err(ca, co, (size_t)T * rows) < 3e-2, "moe_combine %s T=%d", lc_type_name(types[ti]), T);
            /* per-pair inputs with host ids */
            float *xp = malloc((size_t)T * k * cols * 4);
            fill(xp, (size_t)T * k * cols, 1.0f);
            float *gxp = gbuf(e, xp, (size_t)T * k * cols), *cxp = cbuf(e, xp, (size_t)T * k * cols);
            for (int i = 0; i < T * k; i++) ids_c[i] = (i * 5 + 3) % n_exp;
            CHECK(e->gpu->ops->matmul_experts(e->gpu, &w, gy, gxp, true, ids_c, T, k) == LC_OK);
            e->cpu->ops->matmul_experts(e->cpu, &w, cy, cxp, true, ids_c, T, k);
            fetch(e, a, gy, ny);
            CHECKF(rel_err(a, cy, ny) < 3e-2, "matmul_experts per pair %s T=%d", lc_type_name(types[ti]), T);
            e->gpu->ops->free(e->gpu, gxp), e->cpu->ops->free(e->cpu, cxp), free(xp);
            float *gb[] = {glg, gx, gy, gw, go}, *cb[] = {clg, cx, cy, cw, co};
            for (int i = 0; i < 5; i++) e->gpu->ops->free(e->gpu, gb[i]), e->cpu->ops->free(e->cpu, cb[i]);
            free(lg), free(x), free(a), free(b), free(wa), free(wb), free(ca), free(ids_g), free(ids_c);
        }
        keep(w.data), free(f);
    }
}

/* ==== Element-wise ops ==== */

static void test_elementwise(env *e) {
    const int R = 7, N = 384;
    size_t n = (size_t)R * N;
    float *x = malloc(n * 4), *y = malloc(n * 4), *g = malloc(N * 4), *a = malloc(n * 4), *b = malloc(n * 4);
    fill(x, n, 2.0f), fill(y, n, 2.0f), fill(g, N, 1.0f);
    float *gx = gbuf(e, x, n), *gy = gbuf(e, y, n), *gg = gbuf(e, g, N), *go = gbuf(e, NULL, n);
    float *cx = cbuf(e, x, n), *cy = cbuf(e, y, n), *co = cbuf(e, NULL, n);
#define CMP(what, tol)                                                  \
    do {                                                                \
        fetch(e, a, go, n);                                             \
        double err_ = rel_err(a, co, n);                                \
        CHECKF(err_ < (tol), "%s: rel err %.2e", what, err_);           \
    } while (0)
    e->gpu->ops->rms_norm(e->gpu, go, gx, gg, R, N, 1e-5f);
    e->cpu->ops->rms_norm(e->cpu, co, cx, g, R, N, 1e-5f);
    CMP("rms_norm", 1e-6);
    e->gpu->ops->rms_norm(e->gpu, go, gx, NULL, R * 6, N / 6, 1e-6f);
    e->cpu->ops->rms_norm(e->cpu, co, cx, NULL, R * 6, N / 6, 1e-6f);
    CMP("rms_norm per head", 1e-6);
    e->gpu->ops->swiglu(e->gpu, go, gx, gy, n);
    e->cpu->ops->swiglu(e->cpu, co, cx, cy, n);
    CMP("swiglu", 1e-6);
    lc_backend_cuda_from_host(e->gpu, go, x, n), memcpy(co, x, n * 4);
    e->gpu->ops->add(e->gpu, go, gy, n);
    e->cpu->ops->add(e->cpu, co, cy, n);
    CMP("add", 1e-7);
    e->gpu->ops->add_bias(e->gpu, go, gg, R, N);
    e->cpu->ops->add_bias(e->cpu, co, g, R, N);
    CMP("add_bias", 1e-7);
    int32_t idx[3] = {6, 0, 3};
    e->gpu->ops->gather(e->gpu, go, gx, idx, 3, N);
    e->cpu->ops->gather(e->cpu, co, cx, idx, 3, N);
    fetch(e, a, go, 3 * (size_t)N);
    CHECK(rel_err(a, co, 3 * (size_t)N) == 0);
    /* RoPE: normal and NeoX, partial rotation, Llama-3 factors; positions far apart */
    int32_t pos[7] = {0, 1, 2, 100, 1000, 4095, 31};
    float ff[32];
    for (int i = 0; i < 32; i++) ff[i] = 1.0f + (float)i / 8;
    float *gff = gbuf(e, ff, 32);
    for (int v = 0; v < 3; v++) {
        lc_rope r = {.n_dims = v == 2 ? 32 : 64, .neox = v != 0, .freq_base = 500000.0f, .freq_scale = 1.0f, .freq_factors = v == 1 ? gff : NULL};
        float *cr = v == 1 ? ff : NULL;
        lc_backend_cuda_from_host(e->gpu, go, x, n), memcpy(co, x, n * 4);
        e->gpu->ops->rope(e->gpu, go, pos, R, N / 64, 64, &r);
        r.freq_factors = cr;
        e->cpu->ops->rope(e->cpu, co, pos, R, N / 64, 64, &r);
        CMP(v == 0 ? "rope" : v == 1 ? "rope neox + factors" : "rope partial", 1e-5);
        if (v != 1) /* batches of up to 32 tokens rotate by the host's angles, as the CPU (the factors
                     * of v 1 are a device buffer here: the kernel's own angles) */
            CHECKF(!memcmp(a, co, n * 4), "rope %s: not the CPU's bits", v == 0 ? "normal" : "partial");
    }
    /* fused launches (cuda.cu holds an add back for the norm of its sum, a RoPE for the next
     * one): add then rms_norm of the sum, bit-identical to the two ops issued apart (to_host in
     * between), and near the CPU; RoPE of q then k (other heads, same positions) */
    {
        float *gz = gbuf(e, NULL, n), *cz = cbuf(e, NULL, n), *sep = malloc(n * 4), *sep_sum = malloc(n * 4);
        lc_backend_cuda_from_host(e->gpu, go, x, n);
        e->gpu->ops->add(e->gpu, go, gy, n);
        fetch(e, sep_sum, go, n); /* issues the add alone */
        e->gpu->ops->rms_norm(e->gpu, gz, go, gg, R, N, 1e-5f);
        fetch(e, sep, gz, n);
        lc_backend_cuda_from_host(e->gpu, go, x, n);
        e->gpu->ops->add(e->gpu, go, gy, n);
        e->gpu->ops->rms_norm(e->gpu, gz, go, gg, R, N, 1e-5f); /* fused */
        fetch(e, a, gz, n);
        fetch(e, b, go, n);
        CHECK(memcmp(a, sep, n * 4) == 0);
        CHECK(memcmp(b, sep_sum, n * 4) == 0);
        memcpy(co, x, n * 4);
        e->cpu->ops->add(e->cpu, co, cy, n);
        e->cpu->ops->rms_norm(e->cpu, cz, co, g, R, N, 1e-5f);
        CHECKF(rel_err(a, cz, n) < 1e-6, "add + rms_norm: rel err %.2e", rel_err(a, cz, n));
        /* out = y (the forward norms x + h into h) */
        lc_backend_cuda_from_host(e->gpu, go, x, n);
        lc_backend_cuda_from_host(e->gpu, gz, y, n);
        e->gpu->ops->add(e->gpu, go, gz, n);
        e->gpu->ops->rms_norm(e->gpu, gz, go, gg, R, N, 1e-5f);
        fetch(e, a, gz, n);
        CHECK(memcmp(a, sep, n * 4) == 0);
        lc_rope r = {.n_dims = 64, .neox = true, .freq_base = 10000.0f, .freq_scale = 1.0f, .freq_factors = NULL};
        lc_backend_cuda_from_host(e->gpu, go, x, n);
        lc_backend_cuda_from_host(e->gpu, gz, y, n);
        e->gpu->ops->rope(e->gpu, go, pos, R, N / 64, 64, &r);
        e->gpu->ops->rope(e->gpu, gz, pos, R, N / 128, 64, &r); /* fused with the one above */
        memcpy(co, x, n * 4), memcpy(cz, y, n * 4);
        e->cpu->ops->rope(e->cpu, co, pos, R, N / 64, 64, &r);
        e->cpu->ops->rope(e->cpu, cz, pos, R, N / 128, 64, &r);
        fetch(e, a, go, n);
        fetch(e, b, gz, n / 2);
        CHECKF(rel_err(a, co, n) < 1e-5, "rope q (fused): rel err %.2e", rel_err(a, co, n));
        CHECKF(rel_err(b, cz, n / 2) < 1e-5, "rope k (fused): rel err %.2e", rel_err(b, cz, n / 2));
        e->gpu->ops->free(e->gpu, gz);
        e->cpu->ops->free(e->cpu, cz);
        free(sep), free(sep_sum);
    }
#undef CMP
    float *gb[] = {gx, gy, gg, go, gff}, *cb[] = {cx, cy, co};
    for (int i = 0; i < 5; i++) e->gpu->ops->free(e->gpu, gb[i]);
    for (int i = 0; i < 3; i++) e->cpu->ops->free(e->cpu, cb[i]);
    free(x), free(y), free(g), free(a), free(b);
}

/* ==== KV cache and attention ==== */

/* Double-precision attention over K/V rounded through the cache type (the reference for both
 * backends): token t at position n_past + t sees positions 0 .. n_past + t. */
static void attn_ref(const float *k, const float *v, const float *q, lc_type kvt, int n_past, int T, int n_head,
                     int n_kv, int D, float scale, float *out) {
    const int len = n_past + T, W = n_kv * D;
    const lc_type_info *ti = lc_type_get((int)kvt);
    float *kr = malloc((size_t)len * W * 4), *vr = malloc((size_t)len * W * 4);
    uint8_t *row = malloc(lc_type_row_size(kvt, W));
    double *w = malloc((size_t)len * sizeof *w);
    for (int p = 0; p < len; p++) {
        ti->from_float(k + (size_t)p * W, row, W), ti->to_float(row, kr + (size_t)p * W, W);
        ti->from_float(v + (size_t)p * W, row, W), ti->to_float(row, vr + (size_t)p * W, W);
    }
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            const int g = h / (n_head / n_kv), np = n_past + t + 1;
            const float *qh = q + ((size_t)t * n_head + h) * D;
            double mx = -1e300, sum = 0;
            for (int p = 0; p < np; p++) {
                double sc = 0;
                for (int d = 0; d < D; d++) sc += (double)qh[d] * kr[(size_t)p * W + g * D + d];
                w[p] = sc * scale;
                if (w[p] > mx) mx = w[p];
            }
            for (int p = 0; p < np; p++) sum += (w[p] = exp(w[p] - mx));
            for (int d = 0; d < D; d++) {
                double o = 0;
                for (int p = 0; p < np; p++) o += w[p] * vr[(size_t)p * W + g * D + d];
                out[((size_t)t * n_head + h) * D + d] = (float)(o / sum);
            }
        }
    free(kr), free(vr), free(row), free(w);
}

static float round16(float x) { return lc_f16_to_f32(lc_f32_to_f16(x)); }

/* The attention of the CPU backend's unsplit tiles with an f16 cache (llama.cpp's without flash
 * attention, vec.h's "_g" orders), which the GPU follows for short batches and contexts
 * (attn.cu, k_attn_exact): written out here from vec.h's description, so that both backends are
 * held to it bit for bit. Lanes 64 for a batch of one token, 16 for more. */
static void attn_ref_cpu(const float *k, const float *v, const float *q, int n_past, int T, int n_head, int n_kv, int D,
                         float scale, float *out) {
    const int len = n_past + T, W = n_kv * D, lanes = T == 1 ? 64 : 16;
    float *kr = malloc((size_t)len * W * 4), *vr = malloc((size_t)len * W * 4), *e = malloc((size_t)(len + 16) * 4);
    float *A = malloc((size_t)64 * D * 4), q16[256], a[64], f[16];
    for (size_t i = 0; i < (size_t)len * W; i++) kr[i] = round16(k[i]), vr[i] = round16(v[i]);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            const int g = h / (n_head / n_kv), np = n_past + t + 1, nc = (np + 15) / 16;
            for (int d = 0; d < D; d++) q16[d] = round16(q[((size_t)t * n_head + h) * D + d]);
            float mx = -INFINITY;
            for (int p = 0; p < np; p++) {
                memset(a, 0, sizeof a);
                for (int d = 0; d < D; d++) a[d % lanes] = fmaf(kr[(size_t)p * W + g * D + d], q16[d], a[d % lanes]);
                if (lanes == 64)
                    for (int l = 0; l < 16; l++) a[l] = (a[l] + a[l + 32]) + (a[l + 16] + a[l + 48]);
                e[p] = lc_vec_tree16(a) * scale;
                mx = fmaxf(mx, e[p]);
            }
            double sum = 0;
            for (int p = 0; p < 16 * nc; p++) e[p] = p < np ? lc_vec_gexp(e[p] - mx) : 0.0f;
            for (int c = 0; c < nc; c++) sum += (double)lc_vec_tree16(e + 16 * c);
            const float inv = (float)(1.0 / sum);
            memset(A, 0, (size_t)64 * D * 4);
            for (int p = 0; p < np; p++) {
                const float pr = round16(e[p] * inv);
                for (int d = 0; d < D; d++) A[(p % lanes) * D + d] = fmaf(pr, vr[(size_t)p * W + g * D + d], A[(p % lanes) * D + d]);
            }
            for (int d = 0; d < D; d++) {
                for (int l = 0; l < 16; l++)
                    f[l] = lanes == 64 ? (A[l * D + d] + A[(l + 32) * D + d]) + (A[(l + 16) * D + d] + A[(l + 48) * D + d])
                                       : A[l * D + d];
                out[((size_t)t * n_head + h) * D + d] = lc_vec_tree16(f);
            }
        }
    free(kr), free(vr), free(e), free(A);
}

/* Whether the GPU takes k_attn_exact for T tokens of one sequence after n_past (attn.cu: f16
 * cache, head 64 or 128, at most 32 tokens and 1024 positions, tiles the CPU computes so). */
static bool attn_exact_case(lc_type kvt, int D, int G, int n_past, int T) {
    if (kvt != LC_TYPE_F16 || (D != 64 && D != 128) || T > 32 || n_past + T > 1024) return false;
    const int nb = (n_past + T - 1) / 32 + 1;
    return T == 1 || (long)nb * 32 * ((T * G + 15) / 16 * 16) <= 65536;
}

/* One sequence whose block table is a permutation of the pool; n_past tokens stored first, then
 * T tokens stored and attended (each sees positions <= its own). */
static void attn_case(env *e, lc_type kvt, int D, int n_head, int n_kv, int n_past, int T) {
    const int BT = 32; /* the engine's block size, the only one the CPU backend takes */
    int len = n_past + T, nblk = (len + BT - 1) / BT + 2;
    if (nblk % 7 == 0) nblk++; /* the table below must be a permutation */
    lc_kv kvs[2];
    for (int s = 0; s < 2; s++) {
        memset(&kvs[s], 0, sizeof kvs[s]);
        kvs[s] = (lc_kv){.n_layer = 1, .n_kv_head = n_kv, .head_dim = D, .block_tokens = BT, .n_blocks = nblk, .type = kvt,
                         .row_bytes = lc_type_row_size(kvt, (int64_t)n_kv * D)};
    }
    lc_backend *be[2] = {e->cpu, e->gpu};
    for (int s = 0; s < 2; s++) CHECK(be[s]->ops->kv_alloc(be[s], &kvs[s]) == LC_OK);
    int32_t *table = malloc((size_t)nblk * 4);
    for (int i = 0; i < nblk; i++) table[i] = (i * 7 + 3) % nblk;
    int W = n_kv * D, Hq = n_head * D;
    int32_t *pos = malloc((size_t)len * 4), *slot = malloc((size_t)len * 4), *seq = calloc((size_t)len, 4);
    const int32_t **tabs = malloc((size_t)len * sizeof *tabs);
    for (int p = 0; p < len; p++) pos[p] = p, slot[p] = table[p / BT] * BT + p % BT, tabs[p] = table;
    float *k = malloc((size_t)len * W * 4), *v = malloc((size_t)len * W * 4), *q = malloc((size_t)T * Hq * 4);
    fill(k, (size_t)len * W, 2.0f), fill(v, (size_t)len * W, 1.0f), fill(q, (size_t)T * Hq, 2.0f);
    float *outs[2], *a = malloc((size_t)T * Hq * 4), *c = malloc((size_t)T * Hq * 4);
    for (int s = 0; s < 2; s++) {
        float *(*mk)(env *, const float *, size_t) = s ? gbuf : cbuf;
        float *bk = mk(e, k, (size_t)len * W), *bv = mk(e, v, (size_t)len * W), *bq = mk(e, q, (size_t)T * Hq);
        outs[s] = mk(e, NULL, (size_t)T * Hq);
        if (n_past) {
            lc_attn_batch b0 = {n_past, pos, seq, slot, tabs};
            be[s]->ops->kv_store(be[s], &kvs[s], 0, bk, bv, &b0);
        }
        lc_attn_batch b1 = {T, pos + n_past, seq, slot + n_past, tabs};
        be[s]->ops->kv_store(be[s], &kvs[s], 0, bk + (size_t)n_past * W, bv + (size_t)n_past * W, &b1);
        be[s]->ops->attention(be[s], outs[s], bq, &kvs[s], 0, &b1, n_head, 1.0f / sqrtf((float)D));
        be[s]->ops->free(be[s], bk), be[s]->ops->free(be[s], bv), be[s]->ops->free(be[s], bq);
    }
    memcpy(c, outs[0], (size_t)T * Hq * 4);
    fetch(e, a, outs[1], (size_t)T * Hq);
    /* the GPU against double precision; the CPU backend's distance is reported when it is off */
    float *r = malloc((size_t)T * Hq * 4);
    attn_ref(k, v, q, kvt, n_past, T, n_head, n_kv, D, 1.0f / sqrtf((float)D), r);
    double err = rel_err(a, r, (size_t)T * Hq), cerr = rel_err(c, r, (size_t)T * Hq);
    /* 2e-3: the tensor-core kernel (f16 cache) rounds q and the softmax weights to f16, as the
     * q8_0/q4_0 caches round K/V further */
    CHECKF(err < 2e-3, "attention %s D=%d heads %d/%d past %d T %d: rel err %.2e vs float64",
           lc_type_name(kvt), D, n_head, n_kv, n_past, T, err);
    if (e->exact && attn_exact_case(kvt, D, n_head / n_kv, n_past, T)) { /* bit for bit */
        attn_ref_cpu(k, v, q, n_past, T, n_head, n_kv, D, 1.0f / sqrtf((float)D), r);
        size_t off = 0, off_cpu = 0;
        for (size_t i = 0; i < (size_t)T * Hq; i++) off += a[i] != r[i], off_cpu += c[i] != r[i];
        CHECKF(off == 0, "attention D=%d heads %d/%d past %d T %d: %zu of %d outputs differ from the CPU's arithmetic "
               "(rel err %.2e)", D, n_head, n_kv, n_past, T, off, T * Hq, rel_err(a, r, (size_t)T * Hq));
        if (lc_vec_best()->ggml_native) /* the CPU backend computes so on AVX-512 machines */
            CHECKF(off_cpu == 0, "attention D=%d heads %d/%d past %d T %d: the CPU backend differs from its arithmetic "
                   "in %zu of %d outputs", D, n_head, n_kv, n_past, T, off_cpu, T * Hq);
    }
    if (!(cerr < 2e-3))
        printf("note: CPU backend attention %s D=%d heads %d/%d past %d T %d: rel err %.2e vs float64 (GPU %.2e)\n",
               lc_type_name(kvt), D, n_head, n_kv, n_past, T, cerr, err);
    free(r);
    /* the stored rows themselves: copy block 0 onto the last block on both sides and compare outputs again */
    for (int s = 0; s < 2; s++) be[s]->ops->free(be[s], outs[s]), be[s]->ops->kv_free(be[s], &kvs[s]);
    free(table), free(pos), free(slot), free(seq), free(tabs), free(k), free(v), free(q), free(a), free(c);
}

/* Several sequences in one attention call (the server's batches): sequence i has past[i] tokens
 * stored and n[i] new ones, its own K/V and block table (disjoint blocks of one pool); every
 * sequence's rows must match the double-precision reference of that sequence alone. GPU only. */
static void attn_multi(env *e, int D, int n_head, int n_kv, int n_seq, const int *past, const int *n) {
    const int BT = 32, W = n_kv * D, Hq = n_head * D;
    int nblk = 0, T = 0;
    for (int i = 0; i < n_seq; i++) nblk += (past[i] + n[i] + BT - 1) / BT, T += n[i];
    lc_kv kv = {.n_layer = 1, .n_kv_head = n_kv, .head_dim = D, .block_tokens = BT, .n_blocks = nblk,
                .type = LC_TYPE_F16, .row_bytes = lc_type_row_size(LC_TYPE_F16, (int64_t)W)};
    CHECK(e->gpu->ops->kv_alloc(e->gpu, &kv) == LC_OK);
    int32_t *tab = malloc((size_t)nblk * 4), *pos = malloc((size_t)T * 4), *slot = malloc((size_t)T * 4);
    int32_t *seq = malloc((size_t)T * 4);
    const int32_t **tabs = malloc((size_t)T * sizeof *tabs);
    float *q = malloc((size_t)T * Hq * 4), *ref = malloc((size_t)T * Hq * 4), *got = malloc((size_t)T * Hq * 4);
    fill(q, (size_t)T * Hq, 2.0f);
    float *bq = gbuf(e, q, (size_t)T * Hq), *bo = gbuf(e, NULL, (size_t)T * Hq);
    /* blocks of sequence i: the next nb of the pool, in reverse order */
    for (int i = 0, b0 = 0, t0 = 0; i < n_seq; i++) {
        const int len = past[i] + n[i], nb = (len + BT - 1) / BT;
        int32_t *ti = tab + b0, *ps = malloc((size_t)len * 4), *ss = malloc((size_t)len * 4), *sq = calloc((size_t)len, 4);
        const int32_t **tt = malloc((size_t)len * sizeof *tt);
        for (int j = 0; j < nb; j++) ti[j] = b0 + nb - 1 - j;
        for (int p = 0; p < len; p++) ps[p] = p, ss[p] = ti[p / BT] * BT + p % BT, tt[p] = ti;
        float *k = malloc((size_t)len * W * 4), *v = malloc((size_t)len * W * 4);
        fill(k, (size_t)len * W, 2.0f), fill(v, (size_t)len * W, 1.0f);
        float *bk = gbuf(e, k, (size_t)len * W), *bv = gbuf(e, v, (size_t)len * W);
        lc_attn_batch b = {len, ps, sq, ss, tt};
        e->gpu->ops->kv_store(e->gpu, &kv, 0, bk, bv, &b);
        attn_ref(k, v, q + (size_t)t0 * Hq, LC_TYPE_F16, past[i], n[i], n_head, n_kv, D, 1.0f / sqrtf((float)D),
                 ref + (size_t)t0 * Hq);
        for (int t = 0; t < n[i]; t++)
            pos[t0 + t] = past[i] + t, slot[t0 + t] = ss[past[i] + t], seq[t0 + t] = i, tabs[t0 + t] = ti;
        e->gpu->ops->free(e->gpu, bk), e->gpu->ops->free(e->gpu, bv);
        free(ps), free(ss), free(sq), free(tt), free(k), free(v);
        b0 += nb, t0 += n[i];
    }
    lc_attn_batch b = {T, pos, seq, slot, tabs};
    e->gpu->ops->attention(e->gpu, bo, bq, &kv, 0, &b, n_head, 1.0f / sqrtf((float)D));
    fetch(e, got, bo, (size_t)T * Hq);
    for (int i = 0, t0 = 0; i < n_seq; t0 += n[i], i++) {
        double err = rel_err(got + (size_t)t0 * Hq, ref + (size_t)t0 * Hq, (size_t)n[i] * Hq);
        CHECKF(err < 2e-3, "attention, %d sequences in one batch, D=%d heads %d/%d: sequence %d (past %d, %d new) rel err %.2e",
               n_seq, D, n_head, n_kv, i, past[i], n[i], err);
    }
    e->gpu->ops->free(e->gpu, bq), e->gpu->ops->free(e->gpu, bo), e->gpu->ops->kv_free(e->gpu, &kv);
    free(tab), free(pos), free(slot), free(seq), free(tabs), free(q), free(ref), free(got);
}

/* RoPE of q and k followed by kv_store into an f16 cache runs as one launch (the store joins the
 * held RoPE): roped q and k, the cache and the attention over it must be those of the ops run
 * apart (a fetch between RoPE and store issues the RoPE alone), bit for bit; as the forward calls
 * them: 1 and 5 tokens at positions past 40, GQA 8/2, D 64 and 128, normal and NeoX RoPE. With
 * qkn, Qwen3's per-head q- and k-norm come first and run inside the same launch; apart, a fetch
 * between the norms and the RoPE issues the norms alone. The fused norm sums the same squares in
 * the same order, yet a few values come out one float step apart on an H100 (relative error
 * ~4e-8): held to 1e-6 there, roped q and k only (the attention reads unwritten cache rows, so
 * its NaNs are only comparable bit for bit). */
static void test_rope_store(env *e) {
    const int BT = 32, n_head = 8, n_kv = 2, dims[] = {64, 128}, toks[] = {1, 5};
    for (int qkn = 0; qkn < 2; qkn++)
    for (size_t di = 0; di < LC_ARRAY_LEN(dims); di++)
        for (size_t ti = 0; ti < LC_ARRAY_LEN(toks); ti++)
            for (int neox = 0; neox < 2; neox++) {
                const int D = dims[di], T = toks[ti], W = n_kv * D, Hq = n_head * D, nblk = 4;
                lc_rope r = {.n_dims = D, .neox = neox, .freq_base = 10000.0f, .freq_scale = 1.0f, .freq_factors = NULL};
                int32_t table[4] = {2, 0, 3, 1}, pos[5], slot[5], seq[5] = {0};
                const int32_t *tabs[5];
                for (int t = 0; t < T; t++) pos[t] = 40 + t, slot[t] = table[pos[t] / BT] * BT + pos[t] % BT, tabs[t] = table;
                float *q = malloc((size_t)T * Hq * 4), *k = malloc((size_t)T * W * 4), *v = malloc((size_t)T * W * 4);
                fill(q, (size_t)T * Hq, 2.0f), fill(k, (size_t)T * W, 2.0f), fill(v, (size_t)T * W, 1.0f);
                float gq[128], gk[128];
                fill(gq, (size_t)D, 1.0f), fill(gk, (size_t)D, 1.0f);
                float *got[2][3];
                for (int s = 0; s < 2; s++) {
                    lc_kv kv = {.n_layer = 1, .n_kv_head = n_kv, .head_dim = D, .block_tokens = BT, .n_blocks = nblk,
                                .type = LC_TYPE_F16, .row_bytes = lc_type_row_size(LC_TYPE_F16, (int64_t)W)};
                    CHECK(e->gpu->ops->kv_alloc(e->gpu, &kv) == LC_OK);
                    float *bq = gbuf(e, q, (size_t)T * Hq), *bk = gbuf(e, k, (size_t)T * W), *bv = gbuf(e, v, (size_t)T * W);
                    float *bo = gbuf(e, NULL, (size_t)T * Hq);
                    for (int i = 0; i < 3; i++) got[s][i] = malloc((size_t)T * Hq * 4);
                    lc_attn_batch b = {T, pos, seq, slot, tabs};
                    /* the batch uploaded before, as by an earlier layer (an upload issues what is held) */
                    e->gpu->ops->kv_store(e->gpu, &kv, 0, bv, bk, &b);
                    float *bgq = gbuf(e, gq, (size_t)D), *bgk = gbuf(e, gk, (size_t)D);
                    if (qkn) {
                        e->gpu->ops->rope(e->gpu, bo, pos, T, n_head, D, &r); /* uploads pos: the next uploads issue nothing */
                        e->gpu->ops->rms_norm(e->gpu, bq, bq, bgq, T * n_head, D, 1e-6f);
                        e->gpu->ops->rms_norm(e->gpu, bk, bk, bgk, T * n_kv, D, 1e-6f);
                        if (s) fetch(e, got[s][1], bk, (size_t)T * W); /* issues the norms alone */
                    }
                    e->gpu->ops->rope(e->gpu, bq, pos, T, n_head, D, &r);
                    e->gpu->ops->rope(e->gpu, bk, pos, T, n_kv, D, &r);
                    if (s && !qkn) fetch(e, got[s][1], bk, (size_t)T * W); /* issues the RoPE: the store runs apart */
                    e->gpu->ops->kv_store(e->gpu, &kv, 0, bk, bv, &b);
                    e->gpu->ops->attention(e->gpu, bo, bq, &kv, 0, &b, n_head, 1.0f / sqrtf((float)D));
                    fetch(e, got[s][0], bq, (size_t)T * Hq);
                    fetch(e, got[s][1], bk, (size_t)T * W);
                    fetch(e, got[s][2], bo, (size_t)T * Hq);
                    float *bufs[] = {bq, bk, bv, bo, bgq, bgk};
                    for (int i = 0; i < 6; i++) e->gpu->ops->free(e->gpu, bufs[i]);
                    e->gpu->ops->kv_free(e->gpu, &kv);
                }
                const size_t len[3] = {(size_t)T * Hq, (size_t)T * W, (size_t)T * Hq};
                const char *what[3] = {"roped q", "roped k", "attention"};
                for (int i = 0; i < 3; i++) {
                    if (qkn && i == 2) { /* the cache below position 40 is unwritten: NaN may come out */
                        free(got[0][i]), free(got[1][i]);
                        continue;
                    }
                    if (qkn) /* the fused norm's values: the last bit of a few may differ (H100) */
                        CHECKF(rel_err(got[0][i], got[1][i], len[i]) < 1e-6,
                               "q/k-norm + rope + kv_store fused, D=%d T=%d neox=%d: %s: rel err %.2e from the ops apart",
                               D, T, neox, what[i], rel_err(got[0][i], got[1][i], len[i]));
                    else
                        CHECKF(!memcmp(got[0][i], got[1][i], len[i] * 4),
                               "rope + kv_store fused, D=%d T=%d neox=%d: %s differs from the ops apart", D, T, neox,
                               what[i]);
                    free(got[0][i]), free(got[1][i]);
                }
                free(q), free(k), free(v);
            }
}

static void test_attention(env *e) {
    attn_case(e, LC_TYPE_F16, 128, 32, 8, 0, 100);  /* tensor cores: 7 tiles of 16 tokens x 4 heads */
    attn_case(e, LC_TYPE_F16, 64, 9, 3, 50, 70);    /* group of 3: 21 tokens a tile, a padding row */
    attn_case(e, LC_TYPE_F16, 128, 8, 8, 200, 3);   /* no grouping: 64 tokens a tile */
    attn_case(e, LC_TYPE_F16, 64, 64, 1, 100, 2);   /* group of 64: one token a tile */
    attn_case(e, LC_TYPE_F16, 128, 32, 8, 700, 300); /* prefill at depth, split */
    {
        const int past[3] = {40, 130, 0}, n[3] = {20, 1, 37};
        attn_multi(e, 128, 32, 8, 3, past, n);
        const int past2[4] = {1000, 3, 65, 200}, n2[4] = {1, 1, 1, 1};
        attn_multi(e, 64, 4, 2, 4, past2, n2); /* a decode batch */
    }
    attn_case(e, LC_TYPE_F16, 64, 4, 2, 0, 9);      /* prefill from empty */
    attn_case(e, LC_TYPE_F16, 128, 8, 2, 37, 1);    /* decode */
    attn_case(e, LC_TYPE_F16, 128, 32, 8, 1500, 1); /* long: split-K */
    attn_case(e, LC_TYPE_F16, 48, 6, 6, 20, 5);     /* head_dim not a multiple of 32 */
    attn_case(e, LC_TYPE_F16, 128, 8, 2, 600, 4);   /* split-K with several tokens */
    attn_case(e, LC_TYPE_Q8_0, 128, 8, 2, 300, 3);
    attn_case(e, LC_TYPE_Q8_0, 128, 8, 2, 40, 3);
    attn_case(e, LC_TYPE_Q8_0, 64, 4, 4, 2000, 1);
    attn_case(e, LC_TYPE_Q4_0, 64, 4, 2, 100, 2);
}

/* Tiles of at most 16 valid query rows (tokens x group <= 16) take the tensor-core kernel's
 * decode variant (every warp the same rows, a quarter of each tile's positions, the warps' softmax
 * states merged at the end): one token with groups of 1, 4, 8 and 16 at depths around the
 * 64-position tile (0, 5, 63, 64, 65) and long enough to split (1000, 5000), head sizes 64 and
 * 128; 2 to 4 tokens of a group of 4 (8, 12, 16 rows) and 5 (20 rows: the full kernel again);
 * decode batches of several sequences of different depths (some splits empty for the short ones);
 * and a backend with LOCARA_CUDA_FA=3 (the full kernel at decode too) on a few of the same shapes. */
static void test_attention_decode(env *e) {
    static const int heads[][2] = {{8, 8}, {32, 8}, {16, 2}, {16, 1}}; /* groups of 1, 4, 8, 16 */
    static const int pasts[] = {0, 5, 63, 64, 65, 1000, 5000}, dims[] = {64, 128};
    for (size_t di = 0; di < LC_ARRAY_LEN(dims); di++)
        for (size_t hi = 0; hi < LC_ARRAY_LEN(heads); hi++)
            for (size_t pi = 0; pi < LC_ARRAY_LEN(pasts); pi++)
                attn_case(e, LC_TYPE_F16, dims[di], heads[hi][0], heads[hi][1], pasts[pi], 1);
    for (int T = 2; T <= 5; T++) {
        attn_case(e, LC_TYPE_F16, 128, 32, 8, 100 * T, T);
        attn_case(e, LC_TYPE_F16, 64, 8, 2, 3000, T);
    }
    {
        const int past[4] = {5000, 0, 64, 300}, n[4] = {1, 1, 1, 1};
        attn_multi(e, 128, 32, 8, 4, past, n);
        const int past2[3] = {63, 2000, 7}, n2[3] = {1, 1, 1};
        attn_multi(e, 64, 16, 2, 3, past2, n2);
        const int past3[3] = {700, 20, 4100}, n3[3] = {2, 4, 3}; /* several tokens a sequence, group 4 */
        attn_multi(e, 128, 32, 8, 3, past3, n3);
    }
    env e3 = *e;
    setenv("LOCARA_CUDA_ATTN_EXACT", e->exact ? "1" : "0", 1);
    e3.gpu = test_cuda_backend_env("LOCARA_CUDA_FA", "3");
    unsetenv("LOCARA_CUDA_ATTN_EXACT");
    if (!e3.gpu) return;
    attn_case(&e3, LC_TYPE_F16, 128, 32, 8, 1000, 1);
    attn_case(&e3, LC_TYPE_F16, 64, 16, 1, 65, 1);
    attn_case(&e3, LC_TYPE_F16, 128, 32, 8, 300, 3);
    lc_backend_cuda_free(e3.gpu);
}

/* ==== Decode-shaped timing ==== */

static void bench(env *e) {
    const struct { lc_type t; int rows, cols; } cases[] = {
        {LC_TYPE_Q4_K, 4096, 4096}, {LC_TYPE_Q4_K, 14336, 4096}, {LC_TYPE_Q6_K, 4096, 14336},
        {LC_TYPE_Q8_0, 4096, 4096}, {LC_TYPE_Q4_0, 14336, 4096}, {LC_TYPE_F16, 4096, 4096},
        {LC_TYPE_Q5_K, 4096, 4096}, {LC_TYPE_Q3_K, 4096, 4096}, {LC_TYPE_Q2_K, 4096, 4096},
    };
    printf("%-6s %6s %6s %4s %10s %8s\n", "type", "rows", "cols", "T", "us/call", "rate");
    for (size_t i = 0; i < LC_ARRAY_LEN(cases); i++) {
        lc_weight w = {.type = cases[i].t, .rows = cases[i].rows, .cols = cases[i].cols, .n_expert = 1};
        w.row_bytes = lc_type_row_size(w.type, w.cols);
        w.expert_bytes = w.row_bytes * (size_t)w.rows;
        /* random bytes with every 16-bit word's exponent bits tamed: timing only, values irrelevant */
        uint16_t *d = malloc(w.expert_bytes);
        for (size_t j = 0; j < w.expert_bytes / 2; j++) d[j] = (uint16_t)((frand() + 1.0f) * 16383) & 0x3BFF;
        w.data = d;
        if (lc_backend_cuda_add_weight(e->gpu, &w)) {
            printf("upload failed: %s\n", lc_last_error());
            keep(d);
            continue;
        }
        static const int toks[] = {1, 8, 512};
        for (size_t k = 0; k < LC_ARRAY_LEN(toks); k++) {
            int T = toks[k];
            float *x = gbuf(e, NULL, (size_t)T * w.cols), *o = gbuf(e, NULL, (size_t)T * w.rows), h;
            const lc_weight *ws[1] = {&w};
            int iters = T == 512 ? 20 : 200;
            if (e->gpu->ops->matmul(e->gpu, 1, ws, &o, x, T)) {
                printf("matmul failed: %s\n", lc_last_error());
                break;
            }
            fetch(e, &h, o, 1);
            int64_t t0 = lc_time_us();
            for (int it = 0; it < iters; it++) e->gpu->ops->matmul(e->gpu, 1, ws, &o, x, T);
            fetch(e, &h, o, 1);
            double us = (double)(lc_time_us() - t0) / iters;
            double gbs = (double)w.expert_bytes / (us * 1e3);
            if (T == 512) printf("%-6s %6d %6d %4d %10.1f   %6.1f TFLOP/s\n", lc_type_name(w.type), cases[i].rows, cases[i].cols, T, us, 2.0 * T * w.rows * w.cols / (us * 1e6));
            else printf("%-6s %6d %6d %4d %10.1f %8.0f GB/s\n", lc_type_name(w.type), cases[i].rows, cases[i].cols, T, us, gbs);
            e->gpu->ops->free(e->gpu, x), e->gpu->ops->free(e->gpu, o);
        }
        keep(d);
    }
}

/* A decode variant chosen by an environment variable at backend creation must not change a bit:
 * the default backend against one with var=val (LOCARA_CUDA_FUSE_Q8=0: RMS norm and SwiGLU no longer
 * leave the q8 form of their output for the next product; LOCARA_CUDA_PRELOAD=0: nothing is read
 * before the wait for the kernel before), on norm -> product and SwiGLU -> product chains of 1, 3
 * and 8 tokens in decode steps (recorded as graphs), every int8 type. */
static void test_decode_variants(env *e, const char *var, const char *val) {
    lc_backend *b2 = test_cuda_backend_env(var, val);
    if (!b2) return;
    lc_backend *be[2] = {e->gpu, b2};
    const lc_type types[] = {LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K, LC_TYPE_Q8_0,
                             LC_TYPE_Q4_0, LC_TYPE_Q4_1, LC_TYPE_Q5_0, LC_TYPE_Q5_1};
    const int cols = 512, rows = 67, toks[] = {1, 3, 8};
    for (size_t ti = 0; ti < LC_ARRAY_LEN(types); ti++) {
        float *f0;
        lc_weight w = make_weight(types[ti], rows, cols, 1, &f0);
        for (int s = 0; s < 2; s++) CHECK(lc_backend_cuda_add_weight(be[s], &w) == LC_OK);
        for (size_t k = 0; k < LC_ARRAY_LEN(toks); k++) {
            const int T = toks[k];
            const size_t nx = (size_t)T * cols, no = (size_t)T * rows;
            float *x = malloc(nx * 4), *u = malloc(nx * 4), *g = malloc(cols * 4), *out[2][2];
            fill(x, nx, 2.0f), fill(u, nx, 1.0f), fill(g, cols, 1.0f);
            for (int s = 0; s < 2; s++) {
                lc_backend *b = be[s];
                float *bx = b->ops->alloc(b, nx), *bu = b->ops->alloc(b, nx), *bg = b->ops->alloc(b, cols);
                float *bn = b->ops->alloc(b, nx), *bo = b->ops->alloc(b, no);
                lc_backend_cuda_from_host(b, bx, x, nx), lc_backend_cuda_from_host(b, bu, u, nx);
                lc_backend_cuda_from_host(b, bg, g, cols);
                const lc_weight *ws[1] = {&w};
                for (int chain = 0; chain < 2; chain++) {
                    /* a decode step as context.c's run_forward runs one: a recording an op cannot
                     * make (a buffer that grows) is dropped and the step runs again */
                    bool redo = true;
                    lc_status st = LC_OK;
                    for (int pass = 0; pass < 3 && redo; pass++) {
                        b->ops->step_begin(b, T);
                        if (chain == 0) b->ops->rms_norm(b, bn, bx, bg, T, cols, 1e-5f);
                        else b->ops->swiglu(b, bn, bx, bu, nx);
                        float *o1[1] = {bo};
                        st = b->ops->matmul(b, 1, ws, o1, bn, T);
                        lc_status e2 = b->ops->step_end(b, st == LC_OK, &redo);
                        if (!st && !redo) st = e2;
                    }
                    CHECKF(st == LC_OK && !redo, "%s", lc_last_error());
                    out[s][chain] = malloc(no * 4);
                    b->ops->to_host(b, out[s][chain], bo, no);
                }
                b->ops->free(b, bx), b->ops->free(b, bu), b->ops->free(b, bg), b->ops->free(b, bn), b->ops->free(b, bo);
            }
            for (int chain = 0; chain < 2; chain++) {
                CHECKF(memcmp(out[0][chain], out[1][chain], no * 4) == 0,
                       "%s T=%d %s -> product: %s=%s differs from the default", lc_type_name(types[ti]), T,
                       chain ? "swiglu" : "rms_norm", var, val);
                free(out[0][chain]), free(out[1][chain]);
            }
            free(x), free(u), free(g);
        }
        keep(w.data), free(f0);
    }
    lc_backend_cuda_free(b2);
}

/* The q8 form of a product's input is kept for the next product of the same input (the gate and
 * up products of a MoE layer share it), so it must be dropped whenever the input changes: norm ->
 * product -> residual add into the normed rows -> product must read the sum, as a product of the
 * same sum uploaded from the host does (bit for bit: both quantize the same floats). */
static void test_q8_reuse(env *e) {
    lc_backend *b = e->gpu;
    const lc_type types[] = {LC_TYPE_Q4_K, LC_TYPE_Q8_0};
    const int cols = 512, rows = 67, T = 3;
    const size_t nx = (size_t)T * cols, no = (size_t)T * rows;
    for (size_t ti = 0; ti < LC_ARRAY_LEN(types); ti++) {
        float *f0;
        lc_weight w = make_weight(types[ti], rows, cols, 1, &f0);
        CHECK(lc_backend_cuda_add_weight(b, &w) == LC_OK);
        const lc_weight *ws[1] = {&w};
        float *x = malloc(nx * 4), *u = malloc(nx * 4), *g = malloc(cols * 4), *h = malloc(nx * 4);
        float *got = malloc(no * 4), *want = malloc(no * 4);
        fill(x, nx, 2.0f), fill(u, nx, 1.0f), fill(g, cols, 1.0f);
        float *bx = b->ops->alloc(b, nx), *bu = b->ops->alloc(b, nx), *bg = b->ops->alloc(b, cols);
        float *bn = b->ops->alloc(b, nx), *bm = b->ops->alloc(b, nx), *bo = b->ops->alloc(b, no);
        lc_backend_cuda_from_host(b, bx, x, nx), lc_backend_cuda_from_host(b, bu, u, nx);
        lc_backend_cuda_from_host(b, bg, g, cols);
        float *o1[1] = {bo};
        b->ops->rms_norm(b, bn, bx, bg, T, cols, 1e-5f);
        CHECKF(b->ops->matmul(b, 1, ws, o1, bn, T) == LC_OK, "%s", lc_last_error());
        b->ops->add(b, bn, bu, nx);
        CHECKF(b->ops->matmul(b, 1, ws, o1, bn, T) == LC_OK, "%s", lc_last_error());
        b->ops->to_host(b, got, bo, no);
        b->ops->to_host(b, h, bn, nx); /* the sum, uploaded afresh */
        lc_backend_cuda_from_host(b, bm, h, nx);
        CHECKF(b->ops->matmul(b, 1, ws, o1, bm, T) == LC_OK, "%s", lc_last_error());
        b->ops->to_host(b, want, bo, no);
        CHECKF(memcmp(got, want, no * 4) == 0, "%s: a product after a residual add read the q8 form of the rows before it",
               lc_type_name(types[ti]));
        b->ops->free(b, bx), b->ops->free(b, bu), b->ops->free(b, bg), b->ops->free(b, bn), b->ops->free(b, bm);
        b->ops->free(b, bo);
        free(x), free(u), free(g), free(h), free(got), free(want);
        keep(w.data), free(f0);
    }
}

/* Attention leaves its output's q8 form for the output projection: the short-context kernel (1 to
 * 8 tokens), the tensor-core decode kernel (one split) and the merges of split ranges (f16 cache:
 * the tensor-core kernel's; q8_0 cache: the CUDA-core kernel's). Attention -> product must equal
 * the product of the same output uploaded afresh, bit for bit (both quantize the same floats), for
 * a Q4_1 (the CPU's order) and a Q4_K weight. */
static void test_attn_q8(env *e) {
    const int D = 64, n_head = 8, n_kv = 2, BT = 32, W = n_kv * D, Hq = n_head * D, rows = 67; /* Hq 512: Q4_K rows */
    const lc_type types[] = {LC_TYPE_Q4_1, LC_TYPE_Q4_K};
    const struct { int T, len; lc_type kv; } cases[] = {
        {1, 41, LC_TYPE_F16}, {8, 48, LC_TYPE_F16}, {1, 300, LC_TYPE_F16}, {1, 700, LC_TYPE_Q8_0}, {2, 41, LC_TYPE_Q8_0}};
    enum { MAX_LEN = 700, MAX_BLK = (MAX_LEN + 31) / 32 };
    lc_backend *b = e->gpu;
    for (size_t ci = 0; ci < LC_ARRAY_LEN(cases); ci++) {
        const int T = cases[ci].T, len = cases[ci].len, nblk = (len + BT - 1) / BT;
        lc_kv kv = {.n_layer = 1, .n_kv_head = n_kv, .head_dim = D, .block_tokens = BT, .n_blocks = nblk,
                    .type = cases[ci].kv, .row_bytes = lc_type_row_size(cases[ci].kv, (int64_t)W)};
        CHECK(b->ops->kv_alloc(b, &kv) == LC_OK);
        static int32_t table[MAX_BLK], pos[MAX_LEN], slot[MAX_LEN], seq[MAX_LEN];
        static const int32_t *tabs[MAX_LEN];
        for (int i = 0; i < nblk; i++) table[i] = nblk - 1 - i;
        for (int p = 0; p < len; p++) pos[p] = p, slot[p] = table[p / BT] * BT + p % BT, tabs[p] = table, seq[p] = 0;
        float *k = malloc((size_t)len * W * 4), *v = malloc((size_t)len * W * 4), *q = malloc((size_t)T * Hq * 4);
        fill(k, (size_t)len * W, 2.0f), fill(v, (size_t)len * W, 1.0f), fill(q, (size_t)T * Hq, 2.0f);
        float *bk = gbuf(e, k, (size_t)len * W), *bv = gbuf(e, v, (size_t)len * W), *bq = gbuf(e, q, (size_t)T * Hq);
        float *bo = gbuf(e, NULL, (size_t)T * Hq), *bc = gbuf(e, NULL, (size_t)T * Hq), *by = gbuf(e, NULL, (size_t)T * rows);
        lc_attn_batch b0 = {len - T, pos, seq, slot, tabs}, b1 = {T, pos + len - T, seq, slot + len - T, tabs};
        b->ops->kv_store(b, &kv, 0, bk, bv, &b0);
        b->ops->kv_store(b, &kv, 0, bk + (size_t)(len - T) * W, bv + (size_t)(len - T) * W, &b1);
        float *h = malloc((size_t)T * Hq * 4), *got = malloc((size_t)T * rows * 4), *want = malloc((size_t)T * rows * 4);
        for (size_t ti = 0; ti < LC_ARRAY_LEN(types); ti++) {
            float *f0;
            lc_weight w = make_weight(types[ti], rows, Hq, 1, &f0);
            CHECK(lc_backend_cuda_add_weight(b, &w) == LC_OK);
            const lc_weight *ws[1] = {&w};
            float *o1[1] = {by};
            b->ops->attention(b, bo, bq, &kv, 0, &b1, n_head, 0.125f);
            CHECKF(b->ops->matmul(b, 1, ws, o1, bo, T) == LC_OK, "%s", lc_last_error());
            b->ops->to_host(b, got, by, (size_t)T * rows);
            b->ops->to_host(b, h, bo, (size_t)T * Hq);
            lc_backend_cuda_from_host(b, bc, h, (size_t)T * Hq);
            CHECKF(b->ops->matmul(b, 1, ws, o1, bc, T) == LC_OK, "%s", lc_last_error());
            b->ops->to_host(b, want, by, (size_t)T * rows);
            CHECKF(!memcmp(got, want, (size_t)T * rows * 4),
                   "attention (%s cache, %d positions) -> %s product, T=%d: not the product of the output uploaded afresh",
                   lc_type_name(cases[ci].kv), len, lc_type_name(types[ti]), T);
            keep(w.data), free(f0);
        }
        b->ops->free(b, bk), b->ops->free(b, bv), b->ops->free(b, bq), b->ops->free(b, bo), b->ops->free(b, bc);
        b->ops->free(b, by), b->ops->kv_free(b, &kv);
        free(k), free(v), free(q), free(h), free(got), free(want);
    }
}

/* One-token products of few rows take 2 or 4 warps a row (LOCARA_CUDA_MMVQ_WARPS): the same
 * dots as one warp a row up to the order of the partial sums, for every int8 type and three float
 * path types (4 warps a row there: a MoE router), one weight and a group of three (uneven rows),
 * with 1 warp (0), the default and 2 or 4 warps a row forced. */
static void test_mmvq_split(void) {
    const lc_type types[] = {LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K, LC_TYPE_Q8_0, LC_TYPE_Q4_0,
                             LC_TYPE_Q4_1, LC_TYPE_Q5_0, LC_TYPE_Q5_1, LC_TYPE_F32,  LC_TYPE_F16,  LC_TYPE_BF16};
    const char *modes[] = {"0", NULL, "1", "100000"}; /* one warp a row; default; few; as many as 4 */
    const int cols = 1024, rows[3] = {67, 1500, 33};
    lc_backend *be[4] = {NULL, NULL, NULL, NULL};
    for (int m = 0; m < 4; m++)
        if (!(be[m] = test_cuda_backend_env(modes[m] ? "LOCARA_CUDA_MMVQ_WARPS" : NULL, modes[m]))) return;
    float *x = malloc((size_t)cols * 4);
    fill(x, (size_t)cols, 2.0f);
    for (size_t ti = 0; ti < LC_ARRAY_LEN(types); ti++) {
        float *f[3];
        lc_weight w[3];
        for (int i = 0; i < 3; i++) w[i] = make_weight(types[ti], rows[i], cols, 1, &f[i]);
        for (int m = 0; m < 4; m++)
            for (int i = 0; i < 3; i++) CHECK(lc_backend_cuda_add_weight(be[m], &w[i]) == LC_OK);
        for (int n_w = 1; n_w <= 3; n_w += 2) {
            float *got[4];
            for (int m = 0; m < 4; m++) {
                lc_backend *b = be[m];
                const lc_weight *ws[3] = {&w[0], &w[1], &w[2]};
                float *bx = b->ops->alloc(b, (size_t)cols), *bo[3], *res = malloc((size_t)(67 + 1500 + 33) * 4);
                for (int i = 0; i < 3; i++) bo[i] = b->ops->alloc(b, (size_t)rows[i]);
                lc_backend_cuda_from_host(b, bx, x, (size_t)cols);
                CHECKF(b->ops->matmul(b, n_w, ws, bo, bx, 1) == LC_OK, "%s", lc_last_error());
                for (int i = 0, at = 0; i < n_w; at += rows[i], i++) b->ops->to_host(b, res + at, bo[i], (size_t)rows[i]);
                b->ops->free(b, bx);
                for (int i = 0; i < 3; i++) b->ops->free(b, bo[i]);
                got[m] = res;
            }
            const size_t n = n_w == 1 ? 67 : 67 + 1500 + 33;
            for (int m = 1; m < 4; m++)
                CHECKF(rel_err(got[m], got[0], n) < 1e-5, "%s, %d weight(s), LOCARA_CUDA_MMVQ_WARPS=%s: rel err %.2e from one warp a row",
                       lc_type_name(types[ti]), n_w, modes[m] ? modes[m] : "default", rel_err(got[m], got[0], n));
            for (int m = 0; m < 4; m++) free(got[m]);
        }
        for (int i = 0; i < 3; i++) free(f[i]), keep(w[i].data);
    }
    free(x);
    for (int m = 0; m < 4; m++) lc_backend_cuda_free(be[m]);
}

/* One-token products of weights of different int8 types sharing the input (a Q4_K Q and K beside a
 * Q6_K V, uneven rows) run in one launch (k_mmvq_mix): the same dots as one launch per type
 * (LOCARA_CUDA_MMVQ_MIX=0) up to the order of the split rows' partial sums, and a CPU product. */
static void test_mmvq_mix(env *e) {
    const lc_type types[][3] = {{LC_TYPE_Q4_K, LC_TYPE_Q4_K, LC_TYPE_Q6_K}, {LC_TYPE_Q8_0, LC_TYPE_Q5_K, LC_TYPE_Q4_0},
                                {LC_TYPE_Q4_1, LC_TYPE_Q5_0, LC_TYPE_Q5_1}};
    const int cols = 2048, rows[3] = {4096, 512, 520};
    lc_backend *apart = test_cuda_backend_env("LOCARA_CUDA_MMVQ_MIX", "0");
    if (!apart) return;
    float *x = malloc((size_t)cols * 4);
    fill(x, (size_t)cols, 2.0f);
    for (size_t gi = 0; gi < LC_ARRAY_LEN(types); gi++) {
        float *f[3], *got[3];
        lc_weight w[3];
        const lc_weight *ws[3] = {&w[0], &w[1], &w[2]};
        const size_t n = (size_t)rows[0] + rows[1] + rows[2];
        for (int i = 0; i < 3; i++) {
            w[i] = make_weight(types[gi][i], rows[i], cols, 1, &f[i]);
            CHECK(lc_backend_cuda_add_weight(e->gpu, &w[i]) == LC_OK && lc_backend_cuda_add_weight(apart, &w[i]) == LC_OK);
        }
        lc_backend *bs[3] = {e->gpu, apart, e->cpu};
        for (int s = 0; s < 3; s++) {
            lc_backend *b = bs[s];
            float *bx = b->ops->alloc(b, (size_t)cols), *bo[3];
            if (s < 2) lc_backend_cuda_from_host(b, bx, x, (size_t)cols);
            else memcpy(bx, x, (size_t)cols * 4);
            for (int i = 0; i < 3; i++) bo[i] = b->ops->alloc(b, (size_t)rows[i]);
            CHECKF(b->ops->matmul(b, 3, ws, bo, bx, 1) == LC_OK, "%s", lc_last_error());
            got[s] = malloc(n * 4);
            for (int i = 0, at = 0; i < 3; at += rows[i], i++) {
                if (s < 2) b->ops->to_host(b, got[s] + at, bo[i], (size_t)rows[i]);
                else memcpy(got[s] + at, bo[i], (size_t)rows[i] * 4);
                b->ops->free(b, bo[i]);
            }
            b->ops->free(b, bx);
        }
        CHECKF(rel_err(got[0], got[1], n) < 1e-5, "mixed group %zu: rel err %.2e from one launch per type", gi,
               rel_err(got[0], got[1], n));
        CHECKF(rel_err(got[0], got[2], n) < 3e-2, "mixed group %zu: rel err %.2e from the CPU", gi, rel_err(got[0], got[2], n));
        for (int i = 0; i < 3; i++) free(got[i]), free(f[i]), keep(w[i].data);
    }
    free(x);
    lc_backend_cuda_free(apart);
}

int main(int argc, char **argv) {
    if (lc_cuda_device_count() <= 0) return test_skip("no CUDA device");
    env e;
    CHECK(lc_backend_cpu_create(2, &e.cpu) == LC_OK);
    lc_status st = lc_backend_cuda_create(NULL, 0, 0, &e.gpu);
    CHECKF(st == LC_OK, "%s", lc_last_error());
    if (st) return test_done();
    e.exact = true;
    test_elementwise(&e);
    test_attention(&e);
    test_attention_decode(&e);
    { /* the same shapes on the other kernels, which short contexts no longer take by default */
        env e0 = e;
        e0.exact = false;
        if ((e0.gpu = test_cuda_backend_env("LOCARA_CUDA_ATTN_EXACT", "0"))) {
            test_attention(&e0);
            test_attention_decode(&e0);
            lc_backend_cuda_free(e0.gpu);
        }
    }
    test_matmul(&e);
    test_moe(&e);
    test_decode_variants(&e, "LOCARA_CUDA_FUSE_Q8", "0");
    test_decode_variants(&e, "LOCARA_CUDA_PRELOAD", "0");
    test_q8_reuse(&e);
    test_attn_q8(&e);
    test_rope_store(&e);
    test_mmvq_split();
    test_mmvq_mix(&e);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) bench(&e);
    lc_backend_cuda_free(e.gpu);
    lc_backend_cpu_free(e.cpu);
    for (int i = 0; i < n_kept; i++) free(kept[i]);
    return test_done();
}
