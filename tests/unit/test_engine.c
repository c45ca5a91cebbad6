/* test_engine.c — engine invariants on the default model: a prompt decoded in one batch gives
 * the same logits as token by token; two sequences sharing a batch give the same logits as
 * each alone; a sequence that reuses cached prefix blocks continues exactly as a fresh one;
 * bad batches are rejected with clear errors; a model split across two backends (the -ngl
 * plan, here two CPU backends) computes exactly what one backend does; a decode refused memory
 * leaves the context usable; every byte the engine allocates is freed. */
#include "engine/context.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N 40

static float max_diff(const float *a, const float *b, int n) {
    float m = 0;
    for (int i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* Rank of token t in x (0 = the largest). */
static int rank_of(const float *x, int n, int t) {
    int r = 0;
    for (int i = 0; i < n; i++) r += x[i] > x[t];
    return r;
}

static lc_context *make_ctx(lc_model *m, int n_seq, lc_kv_type kv) {
    lc_context_params p = lc_context_params_default();
    p.n_ctx = 512;
    p.n_batch = 64;
    p.n_seq_max = n_seq;
    p.n_threads = 2;
    p.kv_type = kv;
    lc_context *ctx = NULL;
    CHECKF(lc_context_create(m, p, &ctx) == LC_OK, "%s", lc_last_error());
    return ctx;
}

/* Decodes ids[0..n) of seq one at a time starting at position p0; logits of each step into out. */
static void one_by_one(lc_context *ctx, int seq, const lc_token *ids, int n, int p0, float *out, int nv) {
    for (int i = 0; i < n; i++) {
        int32_t pos = p0 + i, s = seq;
        int8_t w = 1;
        lc_batch b = {1, &ids[i], &pos, &s, &w};
        CHECKF(lc_decode(ctx, &b) == LC_OK, "%s", lc_last_error());
        memcpy(out + (size_t)i * nv, lc_get_logits(ctx, 0), (size_t)nv * sizeof(float));
    }
}

int main(void) {
    /* Batch invariance is a property of the online-softmax attention: the default (auto) mode
     * computes as llama.cpp does, which sums a one-token batch in another order than a longer
     * one (its ggml_vec_dot_f16 against tinyBLAS), so there a token's logits depend on its batch
     * (up to ~1.0 on this model), as llama.cpp's do. test_engine_golden checks that mode. */
    setenv("LOCARA_CPU_ATTN", "online", 1);
    const char *path = test_default_model();
    if (!path) return test_skip("default model not provisioned");
    size_t mem0 = lc_mem_in_use();
    lc_model *m;
    if (lc_model_load(path, lc_model_params_default(), &m) != LC_OK) {
        CHECKF(0, "%s", lc_last_error());
        return test_done();
    }
    int nv = lc_model_n_vocab(m);
    lc_token ids[N];
    for (int i = 0; i < N; i++) ids[i] = (lc_token)((i * 7919 + 13) % 20000 + 100);
    float *ref = malloc(sizeof(float) * N * nv), *got = malloc(sizeof(float) * N * nv);

    /* 1. batch vs one by one */
    lc_context *ctx = make_ctx(m, 1, LC_KV_F16);
    one_by_one(ctx, 0, ids, N, 0, ref, nv);
    lc_seq_truncate(ctx, 0, 0);
    int32_t pos[N], seq[N];
    int8_t want[N];
    for (int i = 0; i < N; i++) pos[i] = i, seq[i] = 0, want[i] = 1;
    lc_batch b = {N, ids, pos, seq, want};
    CHECKF(lc_decode(ctx, &b) == LC_OK, "%s", lc_last_error());
    float worst = 0;
    int top_same = 0;
    for (int i = 0; i < N; i++) {
        worst = fmaxf(worst, max_diff(lc_get_logits(ctx, i), ref + (size_t)i * nv, nv));
        top_same += argmax(lc_get_logits(ctx, i), nv) == argmax(ref + (size_t)i * nv, nv);
    }
    /* One backend, one arithmetic on the CPU (q8 activations for batches and single tokens). The
     * CUDA backend multiplies batches of more than 8 tokens in f16 on tensor cores and single
     * tokens with int8 activations: the int8 rounding alone moves this sensitive model's logits by
     * up to ~0.5 (H200: 0.50, top-1 36/40), so a GPU run gets that bound. */
    bool gpu = strcmp(ctx->exec.stage[ctx->exec.n_stages - 1].be->ops->name, "cuda") == 0;
    float tol = gpu ? 0.75f : 0.05f;
    CHECKF(worst < tol, "batched vs sequential logits differ by %g", worst);
    CHECKF(top_same >= (gpu ? N * 17 / 20 : N), "top-1 agrees at %d/%d positions", top_same, N);
    float *batch_ref = malloc(sizeof(float) * N * nv);

    /* 2. bad batches */
    lc_token bad_tok = nv;
    int32_t p0 = N, s0 = 0, s9 = 9, p_gap = N + 5;
    int8_t w1 = 1;
    lc_batch bb = {1, &bad_tok, &p0, &s0, &w1};
    CHECK(lc_decode(ctx, &bb) == LC_ERR_INVALID && strstr(lc_last_error(), "vocabulary"));
    bb = (lc_batch){1, ids, &p_gap, &s0, &w1};
    CHECK(lc_decode(ctx, &bb) == LC_ERR_INVALID && strstr(lc_last_error(), "position"));
    bb = (lc_batch){1, ids, &p0, &s9, &w1};
    CHECK(lc_decode(ctx, &bb) == LC_ERR_INVALID && strstr(lc_last_error(), "sequence"));
    lc_context_free(ctx);

    /* 3. two sequences in one batch, interleaved, vs each alone */
    ctx = make_ctx(m, 2, LC_KV_F16);
    lc_token ids2[N];
    for (int i = 0; i < N; i++) ids2[i] = ids[N - 1 - i];
    float *ref2 = malloc(sizeof(float) * N * nv);
    one_by_one(ctx, 1, ids2, N, 0, ref2, nv);
    lc_seq_truncate(ctx, 1, 0);
    lc_token bt[2 * N];
    int32_t bp[2 * N], bs[2 * N];
    int8_t bw[2 * N];
    for (int i = 0; i < N; i++) {
        bt[2 * i] = ids[i], bp[2 * i] = i, bs[2 * i] = 0, bw[2 * i] = 1;
        bt[2 * i + 1] = ids2[i], bp[2 * i + 1] = i, bs[2 * i + 1] = 1, bw[2 * i + 1] = 1;
    }
    worst = 0;
    for (int off = 0; off < 2 * N; off += 64) { /* n_batch is 64 */
        int n = 2 * N - off < 64 ? 2 * N - off : 64;
        lc_batch b2 = {n, bt + off, bp + off, bs + off, bw + off};
        CHECKF(lc_decode(ctx, &b2) == LC_OK, "%s", lc_last_error());
        for (int i = 0; i < n; i++) {
            int k = off + i, t = k / 2;
            const float *want_l = (k % 2 ? ref2 : ref) + (size_t)t * nv;
            worst = fmaxf(worst, max_diff(lc_get_logits(ctx, i), want_l, nv));
        }
    }
    CHECKF(worst < tol, "two-sequence batch differs from single by %g", worst);

    /* 4. prefix reuse: sequence 1 attaches sequence 0's cached blocks and continues identically */
    lc_seq_truncate(ctx, 1, 0);
    int got_prefix = lc_kvc_seq_attach_prefix(ctx->kvc, 1, ids, N);
    CHECKF(got_prefix == 32, "attached %d tokens", got_prefix);
    one_by_one(ctx, 1, ids + got_prefix, N - got_prefix, got_prefix, got, nv);
    worst = 0;
    for (int i = got_prefix; i < N; i++)
        worst = fmaxf(worst, max_diff(got + (size_t)(i - got_prefix) * nv, ref + (size_t)i * nv, nv));
    CHECKF(worst < tol, "continuation after prefix reuse differs by %g", worst);
    lc_context_free(ctx);
    free(ref2);

    /* 5. quantized KV caches stay close to f16 */
    lc_kv_type kvs[2] = {LC_KV_Q8_0, LC_KV_Q4_0};
    for (int k = 0; k < 2; k++) {
        ctx = make_ctx(m, 1, kvs[k]);
        one_by_one(ctx, 0, ids, N, 0, got, nv);
        /* random token ids make flat, near-tied distributions: ask that the quantized cache's
         * choice stays among the f16 cache's top 3 */
        int near = 0;
        for (int i = 0; i < N; i++) near += rank_of(ref + (size_t)i * nv, nv, argmax(got + (size_t)i * nv, nv)) < 3;
        CHECKF(near >= (k == 0 ? N - 1 : N * 4 / 5), "kv %s: top-1 within f16's top 3 at %d/%d", k ? "q4_0" : "q8_0", near, N);
        lc_context_free(ctx);
    }

    /* 6. the same batch through two stages (layers 0-10 on one CPU backend, the rest on another,
     * the residual stream crossing through the host): bit for bit what one CPU backend gives
     * (the reference is made on the CPU explicitly: on a GPU machine make_ctx uses the GPU) */
    lc_backend *be[2];
    int L = m->hp.n_layer;
    int n_layers[2] = {L, 0};
    lc_context_params sp = lc_context_params_default();
    sp.n_ctx = 512, sp.n_batch = 64, sp.n_seq_max = 1, sp.n_threads = 2;
    CHECK(lc_backend_cpu_create(2, &be[0]) == LC_OK);
    CHECKF(lc_context_create_staged(m, sp, be, n_layers, 1, &ctx) == LC_OK, "%s", lc_last_error());
    CHECKF(lc_decode(ctx, &b) == LC_OK, "%s", lc_last_error());
    for (int i = 0; i < N; i++) memcpy(batch_ref + (size_t)i * nv, lc_get_logits(ctx, i), (size_t)nv * sizeof(float));
    lc_context_free(ctx);
    CHECK(lc_backend_cpu_create(2, &be[0]) == LC_OK && lc_backend_cpu_create(2, &be[1]) == LC_OK);
    n_layers[0] = 11, n_layers[1] = L - 11;
    CHECKF(lc_context_create_staged(m, sp, be, n_layers, 2, &ctx) == LC_OK, "%s", lc_last_error());
    CHECKF(lc_decode(ctx, &b) == LC_OK, "%s", lc_last_error());
    int same = 0;
    for (int i = 0; i < N; i++) same += memcmp(lc_get_logits(ctx, i), batch_ref + (size_t)i * nv, (size_t)nv * sizeof(float)) == 0;
    CHECKF(same == N, "two-stage forward matches one stage at %d/%d positions", same, N);
    lc_context_free(ctx);
    /* a plan that does not cover the model is refused, and the backends are freed */
    CHECK(lc_backend_cpu_create(1, &be[0]) == LC_OK);
    n_layers[0] = 3;
    CHECK(lc_context_create_staged(m, sp, be, n_layers, 1, &ctx) == LC_ERR_INVALID && strstr(lc_last_error(), "layers"));

    /* 7. a decode that runs out of memory (the k-th allocation from its start fails: the output
     * buffers growing from 1 row to N, the host logits, the CPU backend's scratch) leaves the context
     * usable: the same batch again gives the one-stage logits bit for bit */
    n_layers[0] = L;
    int failed = 0, retried = 0;
    for (long k = 1; k <= 12; k++) {
        CHECK(lc_backend_cpu_create(2, &be[0]) == LC_OK);
        CHECKF(lc_context_create_staged(m, sp, be, n_layers, 1, &ctx) == LC_OK, "%s", lc_last_error());
        lc_alloc_fail_after(k);
        lc_status st = lc_decode(ctx, &b);
        lc_alloc_fail_after(0);
        if (st != LC_OK) {
            failed++;
            CHECKF(st == LC_ERR_OOM, "allocation %ld refused: %s", k, lc_last_error());
            lc_seq_truncate(ctx, 0, 0);
            CHECKF(lc_decode(ctx, &b) == LC_OK, "after allocation %ld was refused: %s", k, lc_last_error());
            int eq = 0;
            for (int i = 0; i < N; i++) eq += memcmp(lc_get_logits(ctx, i), batch_ref + (size_t)i * nv, (size_t)nv * sizeof(float)) == 0;
            retried += eq == N;
        }
        lc_context_free(ctx);
    }
    CHECKF(failed >= 3 && retried == failed, "decodes refused memory: %d, then exact: %d", failed, retried);

    free(batch_ref);
    free(ref);
    free(got);
    lc_model_free(m);
    CHECKF(lc_mem_in_use() == mem0, "engine leaked %zu bytes", lc_mem_in_use() - mem0);
    return test_done();
}
