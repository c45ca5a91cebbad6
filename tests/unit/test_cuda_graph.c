/* test_cuda_graph.c — decode steps run from CUDA graphs (backend/cuda/graph.cu) give the same
 * logits, bit for bit, as direct launches: the default model on the GPU in three contexts
 * (LOCARA_CUDA_GRAPH=0 direct, 1 replay, 2 capture every step, and 1 with steps cut into graphs of
 * 4 items, LOCARA_CUDA_GRAPH_SEG=4, which stop and resume mid-step) fed the same script of batches
 * (prefill, single-token steps whose positions, slots and block tables change every step and
 * cross the tensor-core attention's split boundaries at 128 and 256, steps of 2 and 5 tokens, back to 1 on another
 * sequence), and the graph counters say the steps were replayed, captured again when their
 * launches changed, updated in place, and instantiated anew on a shape change. Before that,
 * without a model: a small MoE layer (attention over a paged f16 cache, routed experts, the
 * fused add + norm) as backend ops inside the step brackets, graphs on vs off, bit for bit, and
 * on a backend whose steps are cut into graphs of 3 items, one step ending with an op that cannot
 * be recorded (an allocation): the step runs again directly after some segments ran, leaving out
 * exactly their items (the residual add in place would show one run twice). Skips without a GPU;
 * the model part without the default model.
 */
#include "testutil.h"

#include "backend/cuda/cuda_backend.h"
#include "engine/context.h"
#include "locara.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== A MoE layer as backend ops, no model ==== */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

enum { D = 256, NH = 4, NKV = 2, HD = 64, NE = 8, KE = 2, FF = 64, BT = 32 };

typedef struct layer_w {
    lc_weight wq, wk, wv, wo, wr, gate, up, down;
} layer_w;

/* A random weight (rows x cols x n_expert) of type t (host bytes, freed by the caller). */
static lc_weight rand_weight(lc_type t, int64_t rows, int64_t cols, int64_t n_expert) {
    lc_weight w = {.type = t, .rows = rows, .cols = cols, .n_expert = n_expert};
    w.row_bytes = lc_type_row_size(t, cols);
    w.expert_bytes = w.row_bytes * (size_t)rows;
    size_t n = (size_t)rows * cols * n_expert;
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = frand() * 0.5f;
    void *q = malloc(w.expert_bytes * (size_t)n_expert);
    lc_quantize_rows(t, f, q, rows * n_expert, cols);
    free(f);
    w.data = q;
    return w;
}

/* One backend's side of the layer: its buffers and cache. */
typedef struct side {
    lc_backend *be;
    lc_kv kv;
    float *x, *h, *q, *k, *v, *att, *lg, *rw, *mg, *mu, *mo, *out, *g1, *g2, *g3;
    int32_t ids[8 * KE];
    bool late_alloc;    /* the step allocates a buffer at its end: unrecordable, after segments ran */
    float *extra[4];
    int n_extra;
} side;

static bool side_create(side *S, const char *graph_env, const layer_w *W, const float *gains) {
    memset(S, 0, sizeof *S);
    setenv("LOCARA_CUDA_GRAPH", graph_env, 1);
    lc_status st = lc_backend_cuda_create(NULL, 0, 0, &S->be);
    unsetenv("LOCARA_CUDA_GRAPH");
    CHECKF(st == LC_OK, "%s", lc_last_error());
    if (st) return false;
    const lc_weight *all[] = {&W->wq, &W->wk, &W->wv, &W->wo, &W->wr, &W->gate, &W->up, &W->down};
    for (size_t i = 0; i < LC_ARRAY_LEN(all); i++) CHECK(lc_backend_cuda_add_weight(S->be, all[i]) == LC_OK);
    const lc_backend_ops *o = S->be->ops;
    const int T = 8;
    float **bufs[] = {&S->x, &S->h, &S->q, &S->k, &S->v, &S->att, &S->lg, &S->rw, &S->mg, &S->mu, &S->mo, &S->out,
                      &S->g1, &S->g2, &S->g3};
    size_t sizes[] = {T * D, T * D, T * NH * HD, T * NKV * HD, T * NKV * HD, T * NH * HD, T * NE, T * KE,
                      T * KE * FF, T * KE * FF, T * KE * D, T * D, D, D, D};
    for (size_t i = 0; i < LC_ARRAY_LEN(bufs); i++) CHECK((*bufs[i] = o->alloc(S->be, sizes[i])) != NULL);
    for (int i = 0; i < 3; i++) lc_backend_cuda_from_host(S->be, i == 0 ? S->g1 : i == 1 ? S->g2 : S->g3, gains + i * D, D);
    S->kv = (lc_kv){.n_layer = 1, .n_kv_head = NKV, .head_dim = HD, .block_tokens = BT, .n_blocks = 8,
                    .type = LC_TYPE_F16, .row_bytes = lc_type_row_size(LC_TYPE_F16, NKV * HD)};
    st = o->kv_alloc(S->be, &S->kv);
    CHECKF(st == LC_OK, "%s", lc_last_error());
    return st == LC_OK;
}

/* One step of the layer on T tokens (x0 their input rows) as the forward would issue it. */
static lc_status layer_fwd(side *S, const layer_w *W, const float *x0, const lc_attn_batch *b, const int32_t *idx) {
    lc_backend *be = S->be;
    const lc_backend_ops *o = be->ops;
    int T = b->n_tokens;
    lc_status st;
    lc_rope r = {.n_dims = HD, .neox = true, .freq_base = 10000.0f, .freq_scale = 1.0f};
    o->from_host(be, S->x, x0, (size_t)T * D);
    o->rms_norm(be, S->h, S->x, S->g1, T, D, 1e-5f);
    const lc_weight *wqkv[3] = {&W->wq, &W->wk, &W->wv};
    float *oqkv[3] = {S->q, S->k, S->v};
    if ((st = o->matmul(be, 3, wqkv, oqkv, S->h, T))) return st;
    o->rope(be, S->q, b->pos, T, NH, HD, &r);
    o->rope(be, S->k, b->pos, T, NKV, HD, &r);
    o->kv_store(be, &S->kv, 0, S->k, S->v, b);
    o->attention(be, S->att, S->q, &S->kv, 0, b, NH, 1.0f / sqrtf((float)HD));
    const lc_weight *wo[1] = {&W->wo};
    float *oo[1] = {S->h};
    if ((st = o->matmul(be, 1, wo, oo, S->att, T))) return st;
    o->add(be, S->x, S->h, (size_t)T * D);
    o->rms_norm(be, S->h, S->x, S->g2, T, D, 1e-5f);
    const lc_weight *wr[1] = {&W->wr};
    float *orr[1] = {S->lg};
    if ((st = o->matmul(be, 1, wr, orr, S->h, T))) return st;
    o->moe_route(be, S->lg, T, NE, KE, true, S->ids, S->rw);
    if ((st = o->matmul_experts(be, &W->gate, S->mg, S->h, false, S->ids, T, KE)) ||
        (st = o->matmul_experts(be, &W->up, S->mu, S->h, false, S->ids, T, KE)))
        return st;
    o->swiglu(be, S->mg, S->mg, S->mu, (size_t)T * KE * FF);
    if ((st = o->matmul_experts(be, &W->down, S->mo, S->mg, true, S->ids, T, KE))) return st;
    o->moe_combine(be, S->h, S->mo, S->rw, T, KE, D);
    o->add(be, S->x, S->h, (size_t)T * D);
    o->gather(be, S->out, S->x, idx, T, D);
    o->rms_norm(be, S->out, S->out, S->g3, T, D, 1e-5f);
    if (S->late_alloc) { /* recording: refused (the step runs again directly, leaving out what ran) */
        float *p = o->alloc(be, 16);
        if (!p) return lc_fail(LC_ERR_DEVICE, "allocation refused while recording");
        if (S->n_extra < 4) S->extra[S->n_extra++] = p;
    }
    return LC_OK;
}

/* The step inside the brackets, asked again as lc_decode does. */
static lc_status layer_step(side *S, const layer_w *W, const float *x0, const lc_attn_batch *b, const int32_t *idx) {
    const lc_backend_ops *o = S->be->ops;
    for (int pass = 0; pass < 3; pass++) {
        o->step_begin(S->be, b->n_tokens);
        lc_status st = layer_fwd(S, W, x0, b, idx);
        bool redo = false;
        lc_status e = o->step_end(S->be, st == LC_OK, &redo);
        if (!redo) return st ? st : e;
    }
    return layer_fwd(S, W, x0, b, idx);
}

static void test_ops(void) {
    layer_w W = {
        .wq = rand_weight(LC_TYPE_Q4_K, NH * HD, D, 1), .wk = rand_weight(LC_TYPE_Q8_0, NKV * HD, D, 1),
        .wv = rand_weight(LC_TYPE_Q8_0, NKV * HD, D, 1), .wo = rand_weight(LC_TYPE_Q8_0, D, NH * HD, 1),
        .wr = rand_weight(LC_TYPE_Q8_0, NE, D, 1),       .gate = rand_weight(LC_TYPE_Q8_0, FF, D, NE),
        .up = rand_weight(LC_TYPE_Q4_0, FF, D, NE),      .down = rand_weight(LC_TYPE_Q8_0, D, FF, NE),
    };
    float gains[3 * D];
    for (int i = 0; i < 3 * D; i++) gains[i] = 1.0f + 0.25f * frand();
    side S[3]; /* graphs off, on, on with steps cut into graphs of 3 items (segments stop and resume) */
    memset(S, 0, sizeof S);
    bool ok = side_create(&S[0], "0", &W, gains) && side_create(&S[1], "1", &W, gains);
    setenv("LOCARA_CUDA_GRAPH_SEG", "3", 1);
    ok = ok && side_create(&S[2], "1", &W, gains);
    unsetenv("LOCARA_CUDA_GRAPH_SEG");
    /* sequences 0 and 1 own blocks 0-3 and 4-7 */
    int32_t tab[2][4] = {{0, 1, 2, 3}, {4, 5, 6, 7}}, len[2] = {0, 0};
    int steps = 0, same = 0, same_seg = 0;
    for (int st_i = 0; ok && st_i < 40; st_i++) {
        /* 12 steps of sequence 0 alone, 10 of both, 10 of sequence 1 alone, 8 of 3 tokens */
        int T = st_i < 12 ? 1 : st_i < 22 ? 2 : st_i < 32 ? 1 : 3;
        int32_t pos[4], seq[4], slot[4], idx[4];
        const int32_t *tables[4];
        for (int t = 0; t < T; t++) {
            seq[t] = st_i < 12 ? 0 : st_i < 22 ? t : st_i < 32 ? 1 : (t == 2);
            pos[t] = len[seq[t]]++;
            slot[t] = tab[seq[t]][pos[t] / BT] * BT + pos[t] % BT;
            tables[t] = tab[seq[t]];
            idx[t] = T - 1 - t;
        }
        lc_attn_batch b = {T, pos, seq, slot, tables};
        float x0[4 * D], out[3][4 * D];
        for (int i = 0; i < T * D; i++) x0[i] = frand();
        S[2].late_alloc = st_i == 14; /* a replayed step of 2 tokens whose last op cannot be recorded */
        for (int k = 0; k < 3; k++) {
            lc_status st = layer_step(&S[k], &W, x0, &b, idx);
            CHECKF(st == LC_OK, "step %d (side %d): %s", st_i, k, lc_last_error());
            S[k].be->ops->to_host(S[k].be, out[k], S[k].out, (size_t)T * D);
        }
        for (int i = 0; i < S[2].n_extra; i++) S[2].be->ops->free(S[2].be, S[2].extra[i]);
        S[2].n_extra = 0;
        steps++;
        same += memcmp(out[0], out[1], (size_t)T * D * sizeof(float)) == 0;
        same_seg += memcmp(out[0], out[2], (size_t)T * D * sizeof(float)) == 0;
    }
    CHECKF(same == steps, "MoE layer ops: %d of %d steps bit-identical with graphs on", same, steps);
    CHECKF(same_seg == steps, "MoE layer ops: %d of %d steps bit-identical with graphs of 3 items", same_seg, steps);
    if (ok) {
        lc_cuda_graph_stats sg;
        CHECK(lc_backend_cuda_graph_stats(S[2].be, &sg) == LC_OK);
        printf("MoE layer ops, graphs of 3 items: %lld launched, %lld redone, %lld passes resumed after segments ran\n",
               (long long)sg.launched, (long long)sg.redone, (long long)sg.resumed);
        CHECKF(sg.resumed >= 1 && sg.redone >= 4,
               "graphs of 3 items: %lld passes resumed after segments had run, %lld redone (a step's last op refused)",
               (long long)sg.resumed, (long long)sg.redone);
    }
    if (ok) {
        lc_cuda_graph_stats on, off;
        CHECK(lc_backend_cuda_graph_stats(S[1].be, &on) == LC_OK);
        CHECK(lc_backend_cuda_graph_stats(S[0].be, &off) == LC_OK);
        printf("MoE layer ops, graphs on: %lld launched (%lld replayed, %lld captured again), %lld instantiated, "
               "%lld updated, %lld redone of %d steps\n",
               (long long)on.launched, (long long)on.replayed, (long long)on.missed, (long long)on.instantiated,
               (long long)on.updated, (long long)on.redone, steps);
        CHECKF(on.launched >= steps - 8, "%lld of %d steps from graphs", (long long)on.launched, steps);
        CHECKF(on.replayed >= steps - 16, "%lld of %d steps replayed", (long long)on.replayed, steps);
        CHECKF(on.instantiated >= 3, "3 step sizes, %lld instantiations", (long long)on.instantiated);
        CHECKF(off.launched == 0 && off.direct == steps, "graphs off: %lld launched, %lld direct", (long long)off.launched,
               (long long)off.direct);
    }
    for (int k = 0; k < 3; k++) {
        if (!S[k].be) continue;
        float *bufs[] = {S[k].x, S[k].h, S[k].q, S[k].k, S[k].v, S[k].att, S[k].lg, S[k].rw, S[k].mg, S[k].mu,
                         S[k].mo, S[k].out, S[k].g1, S[k].g2, S[k].g3};
        for (size_t i = 0; i < LC_ARRAY_LEN(bufs); i++) S[k].be->ops->free(S[k].be, bufs[i]);
        if (S[k].kv.k) S[k].be->ops->kv_free(S[k].be, &S[k].kv);
        lc_backend_cuda_free(S[k].be);
    }
    const lc_weight *all[] = {&W.wq, &W.wk, &W.wv, &W.wo, &W.wr, &W.gate, &W.up, &W.down};
    for (size_t i = 0; i < LC_ARRAY_LEN(all); i++) free((void *)all[i]->data);
}

/* ==== The default model through lc_decode ==== */

enum { NCTX = 4 };

typedef struct pair {
    lc_context *ctx[NCTX]; /* LOCARA_CUDA_GRAPH=0, 1, 2, and 1 with segments of 4 items (LOCARA_CUDA_GRAPH_SEG) */
    int nv;
    int32_t len[3];     /* tokens in each sequence so far */
    float *want;
    int steps, same;
    int n_small;        /* steps of at most 8 tokens */
} pair;

/* Feeds the same batch (n tokens of sequence seq[i]) to both contexts and compares every row of
 * logits bit for bit. */
static void step(pair *P, int n, const int32_t *seq) {
    lc_token tok[64];
    int32_t pos[64];
    int8_t want[64];
    for (int i = 0; i < n; i++) {
        pos[i] = P->len[seq[i]];
        tok[i] = (lc_token)((pos[i] * 7919 + seq[i] * 131 + 17) % 20000 + 100);
        want[i] = 1;
        P->len[seq[i]]++;
    }
    lc_batch b = {n, tok, pos, seq, want};
    bool same = true;
    for (int k = 0; k < NCTX; k++) {
        lc_status st = lc_decode(P->ctx[k], &b);
        CHECKF(st == LC_OK, "decode of %d tokens (context %d): %s", n, k, lc_last_error());
        if (st) return;
    }
    for (int k = 1; k < NCTX; k++)
        for (int i = 0; i < n; i++) {
            const float *a = lc_get_logits(P->ctx[0], i), *g = lc_get_logits(P->ctx[k], i);
            if (!a || !g || memcmp(a, g, (size_t)P->nv * sizeof(float)) != 0) {
                if (same && a && g) {
                    int j = 0;
                    while (j < P->nv && a[j] == g[j]) j++;
                    fprintf(stderr, "step %d (%d tokens, context %d): row %d differs at %d: %.9g vs %.9g\n",
                            P->steps, n, k, i, j, j < P->nv ? a[j] : 0.0, j < P->nv ? g[j] : 0.0);
                }
                same = false;
            }
        }
    P->steps++;
    P->same += same;
    if (n <= 8) P->n_small++;
}

static lc_cuda_graph_stats stats_of(lc_context *ctx) {
    lc_cuda_graph_stats s;
    lc_backend *be = ctx->exec.stage[ctx->exec.n_stages - 1].be;
    CHECK(lc_backend_cuda_graph_stats(be, &s) == LC_OK);
    return s;
}

int main(void) {
    if (lc_cuda_device_count() <= 0) return test_skip("no CUDA device");
    test_ops();
    const char *path = test_default_model();
    if (!path) {
        printf("default model not provisioned: the model part is skipped\n");
        return test_done();
    }
    lc_model_params mp = lc_model_params_default();
    mp.n_gpu_layers = -1;
    lc_model *m;
    if (lc_model_load(path, mp, &m) != LC_OK) {
        CHECKF(0, "%s", lc_last_error());
        return test_done();
    }
    pair P = {.nv = lc_model_n_vocab(m)};
    lc_context_params cp = lc_context_params_default();
    cp.n_ctx = 1024;
    cp.n_batch = 64;
    cp.n_seq_max = 3;
    /* attention on the tensor cores, whose split ranges change at 128 and 256 positions (the default
     * model's short contexts otherwise take the CPU-order kernel, whose launch never changes): steps
     * whose launches differ from their graph must be captured again */
    setenv("LOCARA_CUDA_ATTN_EXACT", "0", 1);
    for (int k = 0; k < NCTX; k++) {
        setenv("LOCARA_CUDA_GRAPH", k == 0 ? "0" : k == 2 ? "2" : "1", 1);
        if (k == 3) setenv("LOCARA_CUDA_GRAPH_SEG", "4", 1); /* many segments: steps stop and resume mid-way */
        lc_status st = lc_context_create(m, cp, &P.ctx[k]);
        CHECKF(st == LC_OK, "%s", lc_last_error());
        if (st) return test_done();
        CHECKF(strcmp(P.ctx[k]->exec.stage[P.ctx[k]->exec.n_stages - 1].be->ops->name, "cuda") == 0, "context %d not on CUDA", k);
    }
    unsetenv("LOCARA_CUDA_GRAPH");
    unsetenv("LOCARA_CUDA_GRAPH_SEG");
    unsetenv("LOCARA_CUDA_ATTN_EXACT");

    int32_t s0[64] = {0}, s1[8] = {1, 1, 1, 1, 1}, s01[2] = {0, 1}, s2[1] = {2};
    step(&P, 20, s0); /* prefill: direct launches */
    for (int i = 0; i < 30; i++) step(&P, 1, s0);
    lc_cuda_graph_stats a = stats_of(P.ctx[1]);
    CHECKF(a.launched >= 25, "30 one-token steps, %lld ran as graphs", (long long)a.launched);
    CHECKF(a.replayed >= 20, "30 one-token steps, %lld replayed without capture", (long long)a.replayed);
    CHECKF(a.instantiated >= 1 && a.instantiated <= 3, "%lld instantiations", (long long)a.instantiated);
    lc_cuda_graph_stats a2 = stats_of(P.ctx[2]);
    CHECKF(a2.replayed == 0 && a2.updated >= 20, "capture every step: %lld replayed, %lld updated", (long long)a2.replayed,
           (long long)a2.updated);
    step(&P, 5, s1);                              /* a 5-token prefill: a new shape */
    for (int i = 0; i < 10; i++) step(&P, 2, s01); /* two sequences per step */
    lc_cuda_graph_stats b = stats_of(P.ctx[1]);
    CHECKF(b.instantiated > a.instantiated, "shape change: instantiations %lld -> %lld", (long long)a.instantiated,
           (long long)b.instantiated);
    for (int i = 0; i < 5; i++) step(&P, 1, s2);  /* back to one token, a third sequence */
    while (P.len[0] < 300) step(&P, 1, s0);       /* past 256 positions: more attention splits */
    lc_cuda_graph_stats c = stats_of(P.ctx[1]), off = stats_of(P.ctx[0]);
    for (int k = 1; k < NCTX; k++) {
        lc_cuda_graph_stats x = stats_of(P.ctx[k]);
        printf("context %d: %lld launched (%lld replayed, %lld captured again), %lld instantiated, "
               "%lld updated, %lld redone, %lld direct; %d small steps of %d\n",
               k, (long long)x.launched, (long long)x.replayed, (long long)x.missed, (long long)x.instantiated,
               (long long)x.updated, (long long)x.redone, (long long)x.direct, P.n_small, P.steps);
    }
    CHECKF(P.same == P.steps, "%d of %d steps gave bit-identical logits", P.same, P.steps);
    CHECKF(c.launched >= P.n_small - 12, "%lld of %d small steps ran as graphs", (long long)c.launched, P.n_small);
    CHECKF(c.replayed >= P.n_small - 30, "%lld of %d small steps replayed", (long long)c.replayed, P.n_small);
    CHECKF(c.missed >= 1, "crossing 128 and 256 positions changed the attention launch: %lld captured again",
           (long long)c.missed);
    CHECKF(c.redone <= 12, "%lld steps redone", (long long)c.redone);
    lc_cuda_graph_stats d = stats_of(P.ctx[3]);
    printf("segments of 4 items: %lld passes resumed after segments had run\n", (long long)d.resumed);
    CHECKF(d.launched >= P.n_small - 12 && d.replayed >= P.n_small - 30 && d.missed >= 1 && d.resumed >= 1,
           "segments of 4 items: %lld of %d small steps from graphs, %lld replayed, %lld captured again, %lld resumed",
           (long long)d.launched, P.n_small, (long long)d.replayed, (long long)d.missed, (long long)d.resumed);
    CHECKF(off.launched == 0 && off.instantiated == 0, "graphs off still launched %lld", (long long)off.launched);
    CHECKF(off.direct == P.steps, "graphs off: %lld direct steps of %d", (long long)off.direct, P.steps);
    for (int k = 0; k < NCTX; k++) lc_context_free(P.ctx[k]);
    lc_model_free(m);
    return test_done();
}
