/* test_cuda_graph.c — decode steps run from CUDA graphs (backend/cuda/graph.cu) give the same
 * logits, bit for bit, as direct launches: the default model on the GPU in three contexts
 * (LOCARA_CUDA_GRAPH=0 direct, 1 replay, 2 capture every step) fed the same script of batches
 * (prefill, single-token steps whose positions, slots and block tables change every step and
 * cross attention's split boundary at 256, steps of 2 and 5 tokens, back to 1 on another
 * sequence), and the graph counters say the steps were replayed, captured again when their
 * launches changed, updated in place, and instantiated anew on a shape change. Skips without a
 * GPU or the model.
 */
#include "testutil.h"

#include "backend/cuda/cuda_backend.h"
#include "engine/context.h"
#include "locara.h"

#include <stdlib.h>
#include <string.h>

typedef struct pair {
    lc_context *ctx[3]; /* LOCARA_CUDA_GRAPH=0, 1, 2 */
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
    for (int k = 0; k < 3; k++) {
        lc_status st = lc_decode(P->ctx[k], &b);
        CHECKF(st == LC_OK, "decode of %d tokens (LOCARA_CUDA_GRAPH=%d): %s", n, k, lc_last_error());
        if (st) return;
    }
    for (int k = 1; k < 3; k++)
        for (int i = 0; i < n; i++) {
            const float *a = lc_get_logits(P->ctx[0], i), *g = lc_get_logits(P->ctx[k], i);
            if (!a || !g || memcmp(a, g, (size_t)P->nv * sizeof(float)) != 0) {
                if (same && a && g) {
                    int j = 0;
                    while (j < P->nv && a[j] == g[j]) j++;
                    fprintf(stderr, "step %d (%d tokens, LOCARA_CUDA_GRAPH=%d): row %d differs at %d: %.9g vs %.9g\n",
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
    lc_backend *be = ctx->be[ctx->exec.n_stages - 1];
    CHECK(lc_backend_cuda_graph_stats(be, &s) == LC_OK);
    return s;
}

int main(void) {
    if (lc_cuda_device_count() <= 0) return test_skip("no CUDA device");
    const char *path = test_default_model();
    if (!path) return test_skip("default model not provisioned");
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
    for (int k = 0; k < 3; k++) {
        setenv("LOCARA_CUDA_GRAPH", k == 0 ? "0" : k == 1 ? "1" : "2", 1);
        lc_status st = lc_context_create(m, cp, &P.ctx[k]);
        CHECKF(st == LC_OK, "%s", lc_last_error());
        if (st) return test_done();
        CHECKF(strcmp(P.ctx[k]->be[P.ctx[k]->exec.n_stages - 1]->ops->name, "cuda") == 0, "context %d not on CUDA", k);
    }
    unsetenv("LOCARA_CUDA_GRAPH");

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
    for (int k = 1; k < 3; k++) {
        lc_cuda_graph_stats x = stats_of(P.ctx[k]);
        printf("LOCARA_CUDA_GRAPH=%d: %lld launched (%lld replayed, %lld captured again), %lld instantiated, "
               "%lld updated, %lld redone, %lld direct; %d small steps of %d\n",
               k, (long long)x.launched, (long long)x.replayed, (long long)x.missed, (long long)x.instantiated,
               (long long)x.updated, (long long)x.redone, (long long)x.direct, P.n_small, P.steps);
    }
    CHECKF(P.same == P.steps, "%d of %d steps gave bit-identical logits", P.same, P.steps);
    CHECKF(c.launched >= P.n_small - 12, "%lld of %d small steps ran as graphs", (long long)c.launched, P.n_small);
    CHECKF(c.replayed >= P.n_small - 30, "%lld of %d small steps replayed", (long long)c.replayed, P.n_small);
    CHECKF(c.missed >= 1, "crossing 256 positions changed the attention launch: %lld captured again", (long long)c.missed);
    CHECKF(c.redone <= 12, "%lld steps redone", (long long)c.redone);
    CHECKF(off.launched == 0 && off.instantiated == 0, "graphs off still launched %lld", (long long)off.launched);
    CHECKF(off.direct == P.steps, "graphs off: %lld direct steps of %d", (long long)off.direct, P.steps);
    for (int k = 0; k < 3; k++) lc_context_free(P.ctx[k]);
    lc_model_free(m);
    return test_done();
}
