/* test_cuda_moe.c — the CUDA backend's expert products of prefill-sized batches (moe.cu: pairs
 * grouped by expert on the device, one tensor-core launch) against the CPU backend and a float64
 * product of the dequantized weights: 128 experts top-8 and 4 experts top-2, 5 to 300 tokens,
 * Q4_K / Q6_K / Q8_0 / Q4_0, inputs per token and per pair, unbalanced routing (empty experts,
 * one expert with the most pairs), device routing reused by consecutive products and replaced by
 * the next routing, and the forced token tiles and the old host-grouped path (LOCARA_CUDA_MOE).
 * Exits 77 with "SKIP: no CUDA device" where there is none.
 *   test_cuda_moe --bench   times Qwen3-30B-A3B-shaped expert products in each mode instead.
 */
#include "testutil.h"

#include "backend/cuda/cuda_backend.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)((urand() >> 8) * (1.0 / 8388608.0)) - 1.0f; } /* [-1, 1) */
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}

/* ||a - b|| / ||b||, infinite when a holds a NaN (a row never written) */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i])) return INFINITY;
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Host weights stay allocated until the backends are freed: the backend names its device copies
 * by host address. */
/* Weight bytes a backend may still point at, freed at the end (freeing one early would leave a
 * live backend a dangling host pointer, so the array is sized for every weight the tests make). */
static void *kept[256];
static int n_kept;
static void keep(void *p) {
    if (n_kept < 256) kept[n_kept++] = p;
}

/* A random weight from this test's stream (testutil.h). */
static lc_weight make_weight(lc_type t, int64_t rows, int64_t cols, int64_t n_expert, float **f32_out) {
    return test_random_weight(t, rows, cols, n_expert, fill, f32_out);
}

/* Unbalanced routing: slot 0 of every token is expert `hot` (the most pairs), the other slots
 * distinct even experts, so every other odd expert has no pairs. */
static void make_ids(int32_t *ids, int T, int k, int n_exp) {
    const int hot = 1;
    for (int t = 0; t < T; t++) {
        int32_t *r = ids + (size_t)t * k;
        r[0] = hot;
        for (int j = 1; j < k; j++) {
            int e, dup;
            do {
                e = 2 * (int)(urand() % (uint32_t)(n_exp / 2));
                dup = 0;
                for (int q = 0; q < j; q++) dup |= r[q] == e;
            } while (dup);
            r[j] = e;
        }
    }
}

typedef struct env {
    lc_backend *cpu, *gpu;
} env;

/* out row p (n_pairs x rows) = x[p or p / k] @ W_ids[p]^T in float64 */
static void reference(const float *f, int rows, int cols, const float *x, bool xpp, const int32_t *ids, int n_pairs,
                      int k, float *ref) {
    for (int p = 0; p < n_pairs; p++) {
        const float *xr = x + (size_t)(xpp ? p : p / k) * cols;
        const float *we = f + (size_t)ids[p] * rows * cols;
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += (double)we[(size_t)r * cols + c] * xr[c];
            ref[(size_t)p * rows + r] = (float)s;
        }
    }
}

/* The worst row's error against the reference (a wrong or missing pair shows here even when
 * the whole product's error is small). */
static double worst_row(const float *got, const float *ref, int n_pairs, int rows) {
    double m = 0;
    for (int p = 0; p < n_pairs; p++) m = fmax(m, rel_err(got + (size_t)p * rows, ref + (size_t)p * rows, (size_t)rows));
    return m;
}

/* One product on both backends: ids either a host array (uploaded) or the GPU's routing array
 * ids_g (with the CPU's equal routing ids_c). Checks the GPU against float64 and the CPU. */
static void product(env *e, lc_backend *gpu, const lc_weight *w, const float *f, const float *x, bool xpp,
                    const int32_t *ids_g, const int32_t *ids_c, int T, int k, const char *what) {
    int rows = (int)w->rows, cols = (int)w->cols, n_pairs = T * k;
    size_t nx = (size_t)(xpp ? n_pairs : T) * cols, ny = (size_t)n_pairs * rows;
    float *ref = calloc(ny, 4), *got = calloc(ny, 4), *nan = malloc(ny * 4);
    for (size_t i = 0; i < ny; i++) nan[i] = NAN;
    float *gx = gpu->ops->alloc(gpu, nx), *gy = gpu->ops->alloc(gpu, ny);
    float *cx = e->cpu->ops->alloc(e->cpu, nx), *cy = e->cpu->ops->alloc(e->cpu, ny);
    lc_backend_cuda_from_host(gpu, gx, x, nx);
    lc_backend_cuda_from_host(gpu, gy, nan, ny); /* rows never written stay NaN */
    memcpy(cx, x, nx * 4);
    lc_status st = gpu->ops->matmul_experts(gpu, w, gy, gx, xpp, ids_g, T, k);
    CHECKF(st == LC_OK, "%s: %s", what, lc_last_error());
    CHECK(e->cpu->ops->matmul_experts(e->cpu, w, cy, cx, xpp, ids_c, T, k) == LC_OK);
    gpu->ops->to_host(gpu, got, gy, ny);
    reference(f, rows, cols, x, xpp, ids_c, n_pairs, k, ref);
    double err = rel_err(got, ref, ny), row = worst_row(got, ref, n_pairs, rows), cerr = rel_err(got, cy, ny);
    CHECKF(err < 2e-3, "%s: rel err %.2e vs float64 (tol 2e-3)", what, err);
    CHECKF(row < 1e-2, "%s: worst row rel err %.2e vs float64 (tol 1e-2)", what, row);
    CHECKF(cerr < 3e-2, "%s: rel err %.2e vs the CPU backend", what, cerr);
    gpu->ops->free(gpu, gx), gpu->ops->free(gpu, gy);
    e->cpu->ops->free(e->cpu, cx), e->cpu->ops->free(e->cpu, cy);
    free(ref), free(got), free(nan);
}

static const lc_type TYPES[] = {LC_TYPE_Q4_K, LC_TYPE_Q6_K, LC_TYPE_Q8_0, LC_TYPE_Q4_0};

/* Host ids: every token count, both input layouts, two expert shapes. */
static void test_products(env *e) {
    const struct { int n_exp, k, rows; } shapes[] = {{128, 8, 136}, {4, 2, 75}};
    const int toks[] = {5, 9, 64, 300};
    for (size_t ti = 0; ti < LC_ARRAY_LEN(TYPES); ti++) {
        lc_type t = TYPES[ti];
        /* K-quants need whole 256-blocks; the legacy types get a reduction with a partial stage */
        int cols = lc_type_get(t)->block_size == 256 ? 512 : 288;
        for (size_t si = 0; si < LC_ARRAY_LEN(shapes); si++) {
            int n_exp = shapes[si].n_exp, k = shapes[si].k, rows = shapes[si].rows;
            float *f;
            lc_weight w = make_weight(t, rows, cols, n_exp, &f);
            CHECK(lc_backend_cuda_add_weight(e->gpu, &w) == LC_OK);
            for (size_t q = 0; q < LC_ARRAY_LEN(toks); q++) {
                int T = toks[q];
                int32_t *ids = malloc((size_t)T * k * 4);
                float *x = malloc((size_t)T * k * cols * 4);
                make_ids(ids, T, k, n_exp);
                for (int xpp = 0; xpp < 2; xpp++) {
                    fill(x, (size_t)(xpp ? T * k : T) * cols, 1.0f);
                    char what[128];
                    snprintf(what, sizeof what, "%s %d experts top-%d rows %d cols %d T=%d %s", lc_type_name(t), n_exp,
                             k, rows, cols, T, xpp ? "per pair" : "per token");
                    product(e, e->gpu, &w, f, x, xpp, ids, ids, T, k, what);
                }
                free(ids), free(x);
            }
            keep((void *)w.data), free(f);
        }
    }
}

/* Device routing: two products of one routing (the grouping is made once and reused), then a
 * new routing into the same host array (the grouping must be made again). */
static void test_routed(env *e) {
    const int n_exp = 128, k = 8, rows = 136, cols = 512, toks[] = {9, 300};
    float *f;
    lc_weight w = make_weight(LC_TYPE_Q4_K, rows, cols, n_exp, &f);
    CHECK(lc_backend_cuda_add_weight(e->gpu, &w) == LC_OK);
    for (size_t q = 0; q < LC_ARRAY_LEN(toks); q++) {
        int T = toks[q];
        size_t nl = (size_t)T * n_exp;
        int32_t *ids_g = malloc((size_t)T * k * 4), *ids_c = malloc((size_t)T * k * 4);
        float *lg = malloc(nl * 4), *x = malloc((size_t)T * k * cols * 4);
        float *glg = e->gpu->ops->alloc(e->gpu, nl), *gw = e->gpu->ops->alloc(e->gpu, (size_t)T * k);
        float *clg = e->cpu->ops->alloc(e->cpu, nl), *cw = e->cpu->ops->alloc(e->cpu, (size_t)T * k);
        for (int round = 0; round < 2; round++) {
            fill(lg, nl, 3.0f);
            lc_backend_cuda_from_host(e->gpu, glg, lg, nl);
            memcpy(clg, lg, nl * 4);
            e->gpu->ops->moe_route(e->gpu, glg, T, n_exp, k, true, ids_g, gw);
            e->cpu->ops->moe_route(e->cpu, clg, T, n_exp, k, true, ids_c, cw);
            for (int xpp = 0; xpp < 2; xpp++) {
                char what[96];
                snprintf(what, sizeof what, "routed Q4_K T=%d routing %d product %d", T, round, xpp);
                fill(x, (size_t)(xpp ? T * k : T) * cols, 1.0f);
                product(e, e->gpu, &w, f, x, xpp, ids_g, ids_c, T, k, what);
            }
        }
        e->gpu->ops->free(e->gpu, glg), e->gpu->ops->free(e->gpu, gw);
        e->cpu->ops->free(e->cpu, clg), e->cpu->ops->free(e->cpu, cw);
        free(ids_g), free(ids_c), free(lg), free(x);
    }
    keep((void *)w.data), free(f);
}

/* LOCARA_CUDA_MOE (read by a backend at its first expert product): the forced token tiles, the
 * 8-warp kernel with and without pipelined stages for both types, and the old host-grouped path
 * give the same products. */
static void test_modes(env *e) {
    const char *modes[] = {"mma32", "mma64", "mma64w", "mma64wp", "old"};
    const lc_type types[] = {LC_TYPE_Q4_K, LC_TYPE_Q6_K};
    const int n_exp = 128, k = 8, rows = 136, cols = 512, T = 300;
    int32_t *ids = malloc((size_t)T * k * 4);
    float *x = malloc((size_t)T * cols * 4);
    make_ids(ids, T, k, n_exp);
    fill(x, (size_t)T * cols, 1.0f);
    for (size_t ti = 0; ti < LC_ARRAY_LEN(types); ti++) {
        float *f;
        lc_weight w = make_weight(types[ti], rows, cols, n_exp, &f);
        for (size_t m = 0; m < LC_ARRAY_LEN(modes); m++) {
            setenv("LOCARA_CUDA_MOE", modes[m], 1);
            lc_backend *gpu;
            lc_status st = lc_backend_cuda_create(NULL, 0, 0, &gpu);
            CHECKF(st == LC_OK, "%s", lc_last_error());
            if (st) continue;
            CHECK(lc_backend_cuda_add_weight(gpu, &w) == LC_OK);
            char what[64];
            snprintf(what, sizeof what, "LOCARA_CUDA_MOE=%s %s T=%d", modes[m], lc_type_name(types[ti]), T);
            product(e, gpu, &w, f, x, false, ids, ids, T, k, what);
            lc_backend_cuda_free(gpu);
        }
        free(f), free((void *)w.data);
    }
    unsetenv("LOCARA_CUDA_MOE");
    free(ids), free(x);
}

/* The decode MoE block as the forward issues it (route, gate, up, SwiGLU, down, weighted sum)
 * on the default backend, whose expert products wait for the op that reads them and run fused
 * with it (PEND_EXPERTS), on one with LOCARA_CUDA_MOE_FUSE=0 and on one whose fused gate/up
 * kernel takes 32-row blocks (LOCARA_CUDA_MOE_GLU_ROWS=32): the same bits, for 1 and 3 tokens,
 * top 4 and top 8, every int8 type, rows of 256 elements (8 lanes a row everywhere) and the
 * Qwen3-30B-A3B shapes (hidden 2048: gate/up a warp a row; down rows of 768: 8 lanes). With LOCARA_CUDA_MOE_DOT=0 (a warp a row, a chunk at a time) the sums run in another
 * order: within 1e-5. */
static void test_fused_block(void) {
    enum { NB = 4 };
    const int n_exp = 16, shapes[][2] = {{256, 256}, {2048, 768}}, toks[] = {1, 3}, ks[] = {4, 8};
    const char *env_var[NB] = {NULL, "LOCARA_CUDA_MOE_FUSE", "LOCARA_CUDA_MOE_GLU_ROWS", "LOCARA_CUDA_MOE_DOT"};
    const char *env_val[NB] = {NULL, "0", "32", "0"};
    lc_backend *be[NB] = {NULL};
    for (int s = 0; s < NB; s++)
        if (!(be[s] = test_cuda_backend_env(env_var[s], env_val[s]))) return;
    for (size_t si = 0; si < LC_ARRAY_LEN(shapes); si++)
        for (size_t ti = 0; ti < LC_ARRAY_LEN(TYPES); ti++) {
            const int E = shapes[si][0], F = shapes[si][1];
            float *f[3];
            lc_weight wg = make_weight(TYPES[ti], F, E, n_exp, &f[0]), wu = make_weight(TYPES[ti], F, E, n_exp, &f[1]);
            lc_weight wd = make_weight(TYPES[ti], E, F, n_exp, &f[2]);
            for (int s = 0; s < NB; s++)
                CHECK(lc_backend_cuda_add_weight(be[s], &wg) == LC_OK && lc_backend_cuda_add_weight(be[s], &wu) == LC_OK &&
                      lc_backend_cuda_add_weight(be[s], &wd) == LC_OK);
            for (size_t qi = 0; qi < LC_ARRAY_LEN(toks); qi++)
                for (size_t ki = 0; ki < LC_ARRAY_LEN(ks); ki++) {
                    const int T = toks[qi], k = ks[ki], P = T * k;
                    float *lg = malloc((size_t)T * n_exp * 4), *h = malloc((size_t)T * E * 4), *res[NB];
                    fill(lg, (size_t)T * n_exp, 3.0f), fill(h, (size_t)T * E, 1.0f);
                    for (int s = 0; s < NB; s++) {
                        lc_backend *b = be[s];
                        int32_t *ids = malloc((size_t)P * 4);
                        float *glg = b->ops->alloc(b, (size_t)T * n_exp), *gw = b->ops->alloc(b, (size_t)P);
                        float *gh = b->ops->alloc(b, (size_t)T * E), *gg = b->ops->alloc(b, (size_t)P * F);
                        float *gu = b->ops->alloc(b, (size_t)P * F), *gdn = b->ops->alloc(b, (size_t)P * E);
                        float *go = b->ops->alloc(b, (size_t)T * E);
                        lc_backend_cuda_from_host(b, glg, lg, (size_t)T * n_exp);
                        lc_backend_cuda_from_host(b, gh, h, (size_t)T * E);
                        b->ops->moe_route(b, glg, T, n_exp, k, true, ids, gw);
                        CHECKF(b->ops->matmul_experts(b, &wg, gg, gh, false, ids, T, k) == LC_OK &&
                                   b->ops->matmul_experts(b, &wu, gu, gh, false, ids, T, k) == LC_OK,
                               "%s", lc_last_error());
                        b->ops->swiglu(b, gg, gg, gu, (size_t)P * F);
                        CHECKF(b->ops->matmul_experts(b, &wd, gdn, gg, true, ids, T, k) == LC_OK, "%s", lc_last_error());
                        b->ops->moe_combine(b, go, gdn, gw, T, k, E);
                        res[s] = malloc((size_t)T * E * 4);
                        b->ops->to_host(b, res[s], go, (size_t)T * E);
                        float *bufs[] = {glg, gw, gh, gg, gu, gdn, go};
                        for (size_t i = 0; i < LC_ARRAY_LEN(bufs); i++) b->ops->free(b, bufs[i]);
                        free(ids);
                    }
                    for (int s = 1; s < NB; s++) {
                        const double err = rel_err(res[s], res[0], (size_t)T * E);
                        CHECKF(s < 3 ? !memcmp(res[0], res[s], (size_t)T * E * 4) : err < 1e-5,
                               "%s %dx%d T=%d top-%d: the fused MoE block differs with %s=%s (rel err %.2e)",
                               lc_type_name(TYPES[ti]), E, F, T, k, env_var[s], env_val[s], err);
                    }
                    for (int s = 0; s < NB; s++) free(res[s]);
                    free(lg), free(h);
                }
            for (int i = 0; i < 3; i++) free(f[i]);
            keep((void *)wg.data), keep((void *)wu.data), keep((void *)wd.data);
        }
    for (int s = 0; s < NB; s++) lc_backend_cuda_free(be[s]);
}

/* MoE routing on the device (k_moe_route_rank) against LOCARA_CUDA_ROUTE=old (k rounds of a warp
 * arg-max): the same ids and the same weight bits, and the CPU's ids, for 8 to 256 experts (not
 * all multiples of 32), top 1 to 8 and more than there are experts (ids -1, weight 0), normalised
 * and not, logits with ties (the lower id first); with NaN logits, distinct ids that take the
 * NaNs last. */
static void test_route(env *e) {
    const int n_exps[] = {8, 100, 128, 256}, ks[] = {1, 2, 8, 12}, T = 5;
    lc_backend *old = test_cuda_backend_env("LOCARA_CUDA_ROUTE", "old");
    if (!old) return;
    for (size_t ni = 0; ni < LC_ARRAY_LEN(n_exps); ni++)
        for (size_t ki = 0; ki < LC_ARRAY_LEN(ks); ki++)
            for (int norm = 0; norm < 2; norm++)
                for (int ties = 0; ties < 3; ties++) {
                    const int n_exp = n_exps[ni], k = ks[ki], P = T * k;
                    float *lg = malloc((size_t)T * n_exp * 4), *w[3];
                    int32_t *ids[3];
                    fill(lg, (size_t)T * n_exp, 3.0f);
                    for (int i = 0; i < T * n_exp; i++) {
                        if (ties == 1) lg[i] = (float)(int)(lg[i] * 2.0f); /* many equal logits */
                        if (ties == 2 && i % 7 == 3) lg[i] = NAN;
                    }
                    lc_backend *bs[3] = {e->gpu, old, e->cpu};
                    for (int s = 0; s < 3; s++) {
                        lc_backend *b = bs[s];
                        float *blg = b->ops->alloc(b, (size_t)T * n_exp), *bw = b->ops->alloc(b, (size_t)P);
                        if (s < 2) lc_backend_cuda_from_host(b, blg, lg, (size_t)T * n_exp);
                        else memcpy(blg, lg, (size_t)T * n_exp * 4);
                        ids[s] = malloc((size_t)P * 4), w[s] = malloc((size_t)P * 4);
                        b->ops->moe_route(b, blg, T, n_exp, k, norm, ids[s], bw);
                        if (s < 2) b->ops->to_host(b, w[s], bw, (size_t)P);
                        else memcpy(w[s], bw, (size_t)P * 4);
                        if (s < 2) CHECK(lc_backend_cuda_route_ids(b, ids[s], (size_t)P) == LC_OK);
                        b->ops->free(b, blg), b->ops->free(b, bw);
                    }
                    if (ties < 2)
                        CHECKF(!memcmp(ids[0], ids[1], (size_t)P * 4) && !memcmp(w[0], w[1], (size_t)P * 4),
                               "routing %d experts top-%d norm %d logits %d: differs from LOCARA_CUDA_ROUTE=old", n_exp,
                               k, norm, ties);
                    else /* the old kernel may pick a NaN; the new one takes them last */
                        for (int t = 0; t < T; t++) {
                            int finite = 0, bad = 0;
                            for (int i = 0; i < n_exp; i++) finite += !isnan(lg[t * n_exp + i]);
                            for (int s = 0; s < k; s++) {
                                const int id = ids[0][t * k + s];
                                bad += s < LC_MIN(k, n_exp) ? id < 0 || id >= n_exp || (s < finite && isnan(lg[t * n_exp + id]))
                                                            : id != -1;
                                for (int s2 = 0; s2 < s; s2++) bad += id >= 0 && ids[0][t * k + s2] == id;
                            }
                            CHECKF(!bad, "routing %d experts top-%d with NaN logits: token %d's ids", n_exp, k, t);
                        }
                    if (ties < 2 && k <= n_exp)
                        CHECKF(!memcmp(ids[0], ids[2], (size_t)P * 4) && rel_err(w[0], w[2], (size_t)P) < 1e-5,
                               "routing %d experts top-%d norm %d logits %d: differs from the CPU's", n_exp, k, norm, ties);
                    for (int s = 0; s < 3; s++) free(ids[s]), free(w[s]);
                    free(lg);
                }
    lc_backend_cuda_free(old);
}

/* ==== Timing (--bench) ==== */

/* Qwen3-30B-A3B-shaped expert products (128 experts, top 8) of 512 and 2048 tokens in every
 * LOCARA_CUDA_MOE mode: microseconds per product and useful TFLOP/s. Weights are random bytes with
 * every 16-bit word's exponent tamed: timing only, values irrelevant. */
static void bench(void) {
    const struct { lc_type t; int rows, cols; const char *what; } cases[] = {
        {LC_TYPE_Q4_K, 768, 2048, "gate/up"}, {LC_TYPE_Q6_K, 2048, 768, "down"}, {LC_TYPE_Q4_K, 2048, 768, "down"}};
    const char *modes[] = {"old", "auto", "mma32", "mma64w", "mma64wp"};
    const int n_exp = 128, k = 8, toks[] = {512, 2048};
    lc_weight w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (lc_weight){.type = cases[i].t, .rows = cases[i].rows, .cols = cases[i].cols, .n_expert = n_exp};
        w[i].row_bytes = lc_type_row_size(w[i].type, w[i].cols);
        w[i].expert_bytes = w[i].row_bytes * (size_t)w[i].rows;
        size_t n = w[i].expert_bytes * n_exp / 2;
        uint16_t *d = malloc(n * 2);
        for (size_t j = 0; j < n; j++) d[j] = (uint16_t)(urand() & 0x3BFF);
        w[i].data = d;
    }
    int32_t *ids = malloc((size_t)2048 * k * 4);
    for (int t = 0; t < 2048; t++) /* uniform routing, distinct experts per token */
        for (int j = 0; j < k; j++) {
            int e, dup;
            do {
                e = (int)(urand() % n_exp);
                dup = 0;
                for (int q = 0; q < j; q++) dup |= ids[t * k + q] == e;
            } while (dup);
            ids[t * k + j] = e;
        }
    printf("%-7s %-5s %5s %-7s %10s %8s\n", "mode", "type", "T", "weight", "us/call", "TFLOP/s");
    for (size_t m = 0; m < LC_ARRAY_LEN(modes); m++) {
        if (strcmp(modes[m], "auto")) setenv("LOCARA_CUDA_MOE", modes[m], 1);
        else unsetenv("LOCARA_CUDA_MOE");
        lc_backend *gpu;
        if (lc_backend_cuda_create(NULL, 0, 0, &gpu)) {
            printf("backend: %s\n", lc_last_error());
            continue;
        }
        for (int i = 0; i < 3; i++) CHECK(lc_backend_cuda_add_weight(gpu, &w[i]) == LC_OK);
        float *x = gpu->ops->alloc(gpu, (size_t)2048 * k * 2048), *y = gpu->ops->alloc(gpu, (size_t)2048 * k * 2048), h;
        for (size_t q = 0; q < LC_ARRAY_LEN(toks); q++)
            for (int i = 0; i < 3; i++) {
                int T = toks[q], iters = 10;
                if (gpu->ops->matmul_experts(gpu, &w[i], y, x, false, ids, T, k)) {
                    printf("matmul_experts: %s\n", lc_last_error());
                    continue;
                }
                gpu->ops->to_host(gpu, &h, y, 1);
                int64_t t0 = lc_time_us();
                for (int it = 0; it < iters; it++) gpu->ops->matmul_experts(gpu, &w[i], y, x, false, ids, T, k);
                gpu->ops->to_host(gpu, &h, y, 1);
                double us = (double)(lc_time_us() - t0) / iters;
                printf("%-7s %-5s %5d %-7s %10.1f %8.1f\n", modes[m], lc_type_name(w[i].type), T, cases[i].what, us,
                       2.0 * T * k * w[i].rows * w[i].cols / (us * 1e6));
            }
        gpu->ops->free(gpu, x), gpu->ops->free(gpu, y);
        lc_backend_cuda_free(gpu);
    }
    unsetenv("LOCARA_CUDA_MOE");
    for (int i = 0; i < 3; i++) free((void *)w[i].data);
    free(ids);
}

int main(int argc, char **argv) {
    if (lc_cuda_device_count() <= 0) return test_skip("no CUDA device");
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        bench();
        return test_done();
    }
    unsetenv("LOCARA_CUDA_MOE");
    env e;
    CHECK(lc_backend_cpu_create(2, &e.cpu) == LC_OK);
    lc_status st = lc_backend_cuda_create(NULL, 0, 0, &e.gpu);
    CHECKF(st == LC_OK, "%s", lc_last_error());
    if (st) return test_done();
    test_products(&e);
    test_routed(&e);
    test_modes(&e);
    test_fused_block();
    test_route(&e);
    lc_backend_cuda_free(e.gpu);
    lc_backend_cpu_free(e.cpu);
    for (int i = 0; i < n_kept; i++) free(kept[i]);
    return test_done();
}
