/* test_attn.c — the CPU backend's attention op over the paged KV cache (backend/cpu/attn.c)
 * against a naive double-precision softmax(q k^T * scale) v, for f16, q8_0 and q4_0 caches,
 * GQA group sizes 1/3/4/5, head sizes 40/64/128, scattered block tables, prompt chunks that start
 * mid-block, two sequences in one batch, decode, and decode tokens deep enough to be split over
 * their key range; and that a token's output does not depend
 * on the batch it came in (prefill vs decode give the same bits). With an f16 cache the op
 * follows llama.cpp's rounding (q and P in f16, ggml's summation orders); the kernels doing so
 * are checked bit for bit against their scalar reference (check_ggml_kernels).
 */
#include "backend/cpu/vec.h"
#include "backend/backend.h"
#include "base/base.h"
#include "quant/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { BT = 32, MAXB = 40, NSEQ = 2 };

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct cfg {
    int n_head, n_kv, D;
    lc_type type;
} cfg;

typedef struct fixture {
    lc_backend *be;
    lc_kv kv;
    cfg c;
    int32_t table[NSEQ][MAXB];
    float *q;     /* per sequence: positions 0..MAXB*BT-1, n_head * D each */
    float *kref;  /* cache contents read back (dequantized): [seq][pos][n_kv * D] */
    float *vref;
} fixture;

static size_t qrow(const fixture *f) { return (size_t)f->c.n_head * f->c.D; }
static size_t kvrow(const fixture *f) { return (size_t)f->c.n_kv * f->c.D; }

/* Fills both sequences' K/V (MAXB*BT positions each) through kv_store, in one batch, with the
 * blocks of the two sequences interleaved in reverse order; reads back what the cache holds. */
static int fixture_init(fixture *f, lc_backend *be, cfg c, unsigned seed) {
    memset(f, 0, sizeof *f);
    f->be = be;
    f->c = c;
    f->kv = (lc_kv){.n_layer = 1, .n_kv_head = c.n_kv, .head_dim = c.D, .block_tokens = BT,
                    .n_blocks = NSEQ * MAXB, .type = c.type, .row_bytes = lc_type_row_size(c.type, (int64_t)c.n_kv * c.D)};
    if (be->ops->kv_alloc(be, &f->kv) != LC_OK) return 0;
    for (int s = 0; s < NSEQ; s++)
        for (int b = 0; b < MAXB; b++) f->table[s][b] = NSEQ * MAXB - 1 - (b * NSEQ + s);
    int n = NSEQ * MAXB * BT;
    f->q = lc_malloc((size_t)n * qrow(f) * sizeof(float));
    f->kref = lc_malloc((size_t)n * kvrow(f) * sizeof(float));
    f->vref = lc_malloc((size_t)n * kvrow(f) * sizeof(float));
    float *k = lc_malloc((size_t)n * kvrow(f) * sizeof(float)), *v = lc_malloc((size_t)n * kvrow(f) * sizeof(float));
    int32_t *pos = lc_malloc((size_t)n * 4), *seq = lc_malloc((size_t)n * 4), *slot = lc_malloc((size_t)n * 4);
    const int32_t **bt = lc_malloc((size_t)n * sizeof *bt);
    if (!f->q || !f->kref || !f->vref || !k || !v || !pos || !seq || !slot || !bt) return 0;
    for (size_t i = 0; i < (size_t)n * qrow(f); i++) f->q[i] = frand(&seed) * 2.0f;
    for (size_t i = 0; i < (size_t)n * kvrow(f); i++) k[i] = frand(&seed) * 2.0f, v[i] = frand(&seed);
    for (int t = 0; t < n; t++) {
        int s = t / (MAXB * BT), p = t % (MAXB * BT);
        pos[t] = p, seq[t] = s, bt[t] = f->table[s];
        slot[t] = f->table[s][p / BT] * BT + p % BT;
    }
    lc_attn_batch b = {n, pos, seq, slot, bt};
    be->ops->kv_store(be, &f->kv, 0, k, v, &b);
    const lc_type_info *ti = lc_type_get(c.type);
    for (int t = 0; t < n; t++) {
        ti->to_float(f->kv.k[0] + (size_t)slot[t] * f->kv.row_bytes, f->kref + (size_t)t * kvrow(f), (int64_t)kvrow(f));
        ti->to_float(f->kv.v[0] + (size_t)slot[t] * f->kv.row_bytes, f->vref + (size_t)t * kvrow(f), (int64_t)kvrow(f));
    }
    lc_free(k), lc_free(v), lc_free(pos), lc_free(seq), lc_free(slot), lc_free(bt);
    return 1;
}

static void fixture_free(fixture *f) {
    f->be->ops->kv_free(f->be, &f->kv);
    lc_free(f->q), lc_free(f->kref), lc_free(f->vref);
}

static double round16(double x) { return lc_f16_to_f32(lc_f32_to_f16((float)x)); }

/* Naive attention of sequence s, position p, head h, in double: out (D). With an f16 cache the
 * op rounds as llama.cpp does: q to f16 always, and the normalised probabilities to f16 when
 * p16 (every token but a decode token split over its key range). */
static void reference(const fixture *f, int s, int p, int h, float scale, int p16, double *out) {
    int f16 = f->c.type == LC_TYPE_F16;
    int D = f->c.D, g = h / (f->c.n_head / f->c.n_kv);
    const float *q = f->q + ((size_t)s * MAXB * BT + (size_t)p) * qrow(f) + (size_t)h * D;
    double *w = malloc((size_t)(p + 1) * sizeof(double)), m = -INFINITY, tot = 0;
    for (int k = 0; k <= p; k++) {
        const float *kr = f->kref + ((size_t)s * MAXB * BT + (size_t)k) * kvrow(f) + (size_t)g * D;
        double d = 0;
        for (int i = 0; i < D; i++) d += (f16 ? round16(q[i]) : (double)q[i]) * kr[i];
        w[k] = d * scale;
        m = w[k] > m ? w[k] : m;
    }
    for (int k = 0; k <= p; k++) tot += w[k] = exp(w[k] - m);
    for (int i = 0; i < D; i++) out[i] = 0;
    for (int k = 0; k <= p; k++) {
        const float *vr = f->vref + ((size_t)s * MAXB * BT + (size_t)k) * kvrow(f) + (size_t)g * D;
        double pk = f16 && p16 ? round16(w[k] / tot) : w[k] / tot;
        for (int i = 0; i < D; i++) out[i] += pk * vr[i];
    }
    free(w);
}

typedef struct run {
    int s, p0, n; /* n consecutive positions of sequence s from p0 */
} run;

/* Runs the attention op on a batch made of the given runs; checks every output against the
 * reference and stores the outputs in got (tokens in batch order). Returns the max error. */
static double check_batch(fixture *f, const run *runs, int n_runs, float *got) {
    int n = 0;
    for (int i = 0; i < n_runs; i++) n += runs[i].n;
    int32_t *pos = malloc((size_t)n * 4), *seq = malloc((size_t)n * 4), *slot = malloc((size_t)n * 4);
    const int32_t **bt = malloc((size_t)n * sizeof *bt);
    float *q = malloc((size_t)n * qrow(f) * sizeof(float));
    int t = 0;
    for (int i = 0; i < n_runs; i++)
        for (int k = 0; k < runs[i].n; k++, t++) {
            int s = runs[i].s, p = runs[i].p0 + k;
            pos[t] = p, seq[t] = s, bt[t] = f->table[s], slot[t] = f->table[s][p / BT] * BT + p % BT;
            memcpy(q + (size_t)t * qrow(f), f->q + ((size_t)s * MAXB * BT + (size_t)p) * qrow(f), qrow(f) * sizeof(float));
        }
    lc_attn_batch b = {n, pos, seq, slot, bt};
    float scale = 1.0f / sqrtf((float)f->c.D);
    f->be->ops->attention(f->be, got, q, &f->kv, 0, &b, f->c.n_head, scale);
    double worst = 0, ref[128];
    int *alone = calloc((size_t)n, sizeof(int)); /* token t is a run of one (a decode token) */
    for (int i = 0, t0 = 0; i < n_runs; t0 += runs[i].n, i++) alone[t0] = runs[i].n == 1;
    for (t = 0; t < n; t++)
        for (int h = 0; h < f->c.n_head; h++) {
            /* decode tokens deeper than 32 blocks are split: the online softmax, no f16 P */
            reference(f, seq[t], pos[t], h, scale, !(alone[t] && pos[t] / BT + 1 > 32), ref);
            for (int i = 0; i < f->c.D; i++) {
                double e = fabs(got[((size_t)t * f->c.n_head + h) * f->c.D + i] - ref[i]);
                worst = e > worst || e != e ? e : worst;
            }
        }
    free(pos), free(seq), free(slot), free(bt), free(q), free(alone);
    return worst;
}

/* The llama.cpp-order kernels of the best table against the scalar ones, bit for bit, on
 * random blocks: both orders, D = 40/64/128 (40 and 128: ggml's tails and two 64-steps),
 * scores spanning the exp's range (and -inf), koff 0 and 32. Also gexp against expf. */
static void check_ggml_kernels(void) {
    const lc_vec_ops *ref = lc_vec_named("scalar"), *best = lc_vec_best();
    unsigned seed = 7;
    double gworst = 0;
    for (int i = -1700; i <= 200; i++) { /* down to exp(-85), still a normal float */
        float x = (float)i * 0.05f, e = lc_vec_gexp(x);
        double rel = fabs(e - exp((double)x)) / exp((double)x);
        gworst = rel > gworst ? rel : gworst;
    }
    CHECKF(gworst < 1e-6, "gexp vs exp: relative error %g", gworst);
    CHECK(lc_vec_gexp(-INFINITY) == 0.0f && lc_vec_gexp(-200.0f) == 0.0f && lc_vec_gexp(0.0f) == 1.0f);
    if (!best->ggml_native) {
        printf("ggml-order kernels: no SIMD variant on this CPU (%s)\n", best->isa);
        return;
    }
    const int Ds[] = {40, 64, 128};
    for (size_t di = 0; di < LC_ARRAY_LEN(Ds); di++)
        for (int lanes = 16; lanes <= 64; lanes += 48) {
            int D = Ds[di], Mp = 48, M = 37;
            if (lanes == 16 && D % 16) continue;
            size_t nA = (size_t)lanes * M * D;
            float *Qt = malloc((size_t)D * Mp * 4), *K = malloc((size_t)BT * D * 4), *V = malloc((size_t)BT * D * 4);
            float *S[2], *A[2], mx[2][48], inv[48];
            double dsum[2][48];
            int32_t qpos[48];
            for (int i = 0; i < D * Mp; i++) Qt[i] = (float)round16(frand(&seed) * 3.0f);
            for (int i = 0; i < BT * D; i++) K[i] = (float)round16(frand(&seed) * 3.0f), V[i] = frand(&seed);
            for (int i = 0; i < Mp; i++) qpos[i] = 40 + i % 20, inv[i] = 0.01f + 0.1f * (float)i;
            for (int v = 0; v < 2; v++) {
                const lc_vec_ops *o = v ? best : ref;
                S[v] = malloc((size_t)BT * Mp * 4), A[v] = malloc(nA * 4);
                for (size_t i = 0; i < nA; i++) A[v][i] = 0.25f;
                for (int i = 0; i < Mp; i++) mx[v][i] = -INFINITY, dsum[v][i] = 1.0;
                o->attn_qk_g(Mp, D, Qt, K, S[v], lanes);
                o->attn_max_g(Mp, S[v], qpos, 32, 1, 0.9f, mx[v]);
                o->attn_exp_g(Mp, S[v], mx[v], dsum[v]);
                o->attn_pv_g(M, Mp, D, S[v], inv, V, A[v], lanes, lanes == 64 ? 32 : 0, 1);
            }
            const char *what = lanes == 16 ? "lanes 16" : "lanes 64";
            CHECKF(!memcmp(mx[0], mx[1], sizeof mx[0]), "%s D=%d: row maxima differ", what, D);
            CHECKF(!memcmp(dsum[0], dsum[1], sizeof dsum[0]), "%s D=%d: exp sums differ", what, D);
            CHECKF(!memcmp(S[0], S[1], (size_t)BT * Mp * 4), "%s D=%d: probabilities differ", what, D);
            CHECKF(!memcmp(A[0], A[1], nA * 4), "%s D=%d: P.V lane sums differ", what, D);
            free(Qt), free(K), free(V);
            for (int v = 0; v < 2; v++) free(S[v]), free(A[v]);
        }
    /* Q.K from Q rows (decode, lanes 64) against the column kernel: same bits for the M rows,
     * padding columns copies of the last row's; D 64 and 128, both tables */
    for (int D = 64; D <= 128; D += 64) {
        int Mp = 16, M = 3;
        float *Qt = malloc((size_t)D * Mp * 4), *Q = malloc((size_t)M * D * 4), *K = malloc((size_t)BT * D * 4);
        float *Sc = malloc((size_t)BT * Mp * 4), *Sr[2] = {malloc((size_t)BT * Mp * 4), malloc((size_t)BT * Mp * 4)};
        for (int i = 0; i < Mp; i++)
            for (int d = 0; d < D; d++) {
                float x = (float)round16(frand(&seed) * 3.0f);
                Qt[(size_t)d * Mp + i] = i < M ? x : Qt[(size_t)d * Mp + M - 1];
                if (i < M) Q[(size_t)i * D + d] = x;
            }
        for (int i = 0; i < BT * D; i++) K[i] = (float)round16(frand(&seed) * 3.0f);
        ref->attn_qk_g(Mp, D, Qt, K, Sc, 64);
        ref->attn_qk_rows_g(M, Mp, D, Q, K, Sr[0]);
        best->attn_qk_rows_g(M, Mp, D, Q, K, Sr[1]);
        CHECKF(!memcmp(Sc, Sr[0], (size_t)BT * Mp * 4), "D=%d: Q.K from rows differs from the column kernel", D);
        CHECKF(!memcmp(Sr[0], Sr[1], (size_t)BT * Mp * 4), "D=%d: Q.K from rows differs from scalar", D);
        free(Qt), free(Q), free(K), free(Sc), free(Sr[0]), free(Sr[1]);
    }
    /* RoPE with ggml's contraction: both pair layouts, half 32 and 20 (a SIMD tail) */
    for (int neox = 0; neox <= 1; neox++)
        for (int half = 20; half <= 32; half += 12) {
            float cs[32], sn[32], v[2][64];
            for (int i = 0; i < half; i++) cs[i] = cosf(0.37f * (float)i + 0.1f), sn[i] = sinf(0.37f * (float)i + 0.1f);
            for (int i = 0; i < 2 * half; i++) v[0][i] = v[1][i] = frand(&seed) * 8.0f;
            ref->rope(half, neox, cs, sn, v[0]);
            best->rope(half, neox, cs, sn, v[1]);
            CHECKF(!memcmp(v[0], v[1], (size_t)half * 8), "rope neox=%d half=%d differs from scalar", neox, half);
        }
    /* P.V over 3 blocks in one call (the cached path), both orders, koff 0 and 32, D 40 and 64 */
    for (int lanes = 16; lanes <= 64; lanes += 48)
        for (int D = 40; D <= 64; D += 24) {
            int Mp = 32, M = 29, nblk = 3, koff = lanes == 64 ? 32 : 0;
            size_t nA = (size_t)lanes * M * D, nP = (size_t)nblk * BT * Mp;
            float *V = malloc((size_t)nblk * BT * D * 4), *P0 = malloc(nP * 4), inv[32], *P[2], *A[2];
            for (int i = 0; i < nblk * BT * D; i++) V[i] = frand(&seed);
            for (size_t i = 0; i < nP; i++) P0[i] = frand(&seed) * 0.5f + 0.5f;
            for (int i = 0; i < Mp; i++) inv[i] = 0.02f + 0.01f * (float)i;
            for (int v = 0; v < 2; v++) {
                P[v] = malloc(nP * 4), A[v] = malloc(nA * 4);
                memcpy(P[v], P0, nP * 4);
                for (size_t i = 0; i < nA; i++) A[v][i] = 0.125f;
                (v ? best : ref)->attn_pv_g(M, Mp, D, P[v], inv, V, A[v], lanes, koff, nblk);
            }
            CHECKF(!memcmp(A[0], A[1], nA * 4), "lanes %d D=%d: P.V over %d blocks differs from scalar", lanes, D, nblk);
            for (int v = 0; v < 2; v++) free(P[v]), free(A[v]);
            free(V), free(P0);
        }
    /* Q's f16 rounding (ties, subnormals, overflow) and the lane sums, n not a multiple of 16 */
    {
        enum { N = 16 * 64 + 7 };
        float *x = malloc(N * 4), *y[2], *L[2];
        for (int i = 0; i < N; i++) x[i] = frand(&seed) * (i % 7 == 0 ? 7e4f : i % 5 == 0 ? 1e-6f : 4.0f);
        x[3] = 1.0f + 1.0f / 2048; /* a tie: rounds to even */
        for (int lanes = 16; lanes <= 64; lanes += 48) {
            int n = N / lanes;
            for (int v = 0; v < 2; v++) {
                const lc_vec_ops *o = v ? best : ref;
                y[v] = malloc(N * 4), L[v] = malloc(N * 4);
                o->round16(N, x, y[v]);
                memcpy(L[v], x, (size_t)n * lanes * 4);
                o->attn_lanes_g(n, L[v], lanes);
            }
            CHECKF(!memcmp(y[0], y[1], N * 4), "round16 differs from scalar");
            CHECKF(!memcmp(L[0], L[1], (size_t)n * 4), "lanes %d: lane sums differ from scalar", lanes);
            CHECK(y[0][3] == 1.0f);
            for (int v = 0; v < 2; v++) free(y[v]), free(L[v]);
        }
        free(x);
    }
    printf("ggml-order kernels: %s matches scalar bit for bit; gexp relative error %.2g\n", best->isa, gworst);
}

/* The attention op against double precision on every cache type and shape, with the online
 * softmax (mode 0: LOCARA_CPU_ATTN=online), llama.cpp's arithmetic everywhere (1: =ggml) and the
 * default (2: auto, llama.cpp's arithmetic where a tile's scores fit the cache). */
static void check_backend(int mode) {
    static const char *const names[] = {"online", "ggml", "auto"};
    setenv("LOCARA_CPU_ATTN", names[mode], 1);
    lc_backend *be;
    lc_status st = lc_backend_cpu_create(2, &be);
    unsetenv("LOCARA_CPU_ATTN");
    CHECK(st == LC_OK);
    if (st) return;
    const char *mname = names[mode];
    const bool ggml_native = lc_vec_best()->ggml_native;
    const cfg cfgs[] = {
        {9, 3, 64, LC_TYPE_F16},  {9, 3, 64, LC_TYPE_Q8_0}, {9, 3, 64, LC_TYPE_Q4_0},
        {2, 2, 128, LC_TYPE_F16}, {5, 1, 40, LC_TYPE_F16},  {4, 1, 128, LC_TYPE_Q8_0},
    };
    for (size_t ci = 0; ci < LC_ARRAY_LEN(cfgs); ci++) {
        cfg c = cfgs[ci];
        fixture f;
        if (!fixture_init(&f, be, c, 11u + (unsigned)ci)) {
            CHECKF(0, "fixture %zu: %s", ci, lc_last_error());
            continue;
        }
        const char *tn = lc_type_get(c.type)->name;
        size_t row = qrow(&f);
        float *a = malloc(300 * row * sizeof(float)), *d = malloc(row * sizeof(float));
        /* a whole prompt of one sequence (causal tiles, balance from the last tile back) */
        /* f16 cache: a probability within a few f32 ulps of an f16 rounding boundary may round
         * to the other neighbour than the double reference's (one f16 step, <= 2^-11, times
         * |v| <= 1); everything else must agree as before */
        double tol = c.type == LC_TYPE_F16 ? 2e-5 + 1.0 / 2048 : 2e-5;
        run prompt = {0, 0, 200};
        double e = check_batch(&f, &prompt, 1, a), worst = e;
        CHECKF(e < tol, "%s %s G=%d D=%d prompt of 200: max error %g", mname, tn, c.n_head / c.n_kv, c.D, e);
        /* decode of the prompt's last token: the same bits as inside the prompt, except in
         * llama.cpp's arithmetic on an f16 cache, where a one-token batch sums in
         * ggml_vec_dot_f16's order (64 lanes) as llama.cpp's does, not its GEMM's */
        run dec = {0, 199, 1};
        e = check_batch(&f, &dec, 1, d);
        worst = e > worst ? e : worst;
        CHECKF(e < tol, "%s %s decode at 199: max error %g", mname, tn, e);
        bool same = !memcmp(d, a + 199 * row, row * sizeof(float));
        if (mode && c.type == LC_TYPE_F16 && ggml_native)
            CHECKF(!same, "%s %s decode has the prompt's bits, not the one-token order's", mname, tn);
        else
            CHECKF(same, "%s %s decode differs from the prompt's row", mname, tn);
        /* a chunk starting mid-block after a cached prefix, beside the other sequence's chunk
         * and decode tokens */
        run mixed[] = {{1, 37, 50}, {0, 250, 1}, {1, 5, 3}, {0, 100, 40}};
        e = check_batch(&f, mixed, 4, a);
        worst = e > worst ? e : worst;
        CHECKF(e < tol, "%s %s mixed batch: max error %g", mname, tn, e);
        /* decode tokens deep enough to be split over their key range (flash-decoding shares,
         * merged), beside a deep prompt chunk and a shallow decode token */
        run deep[] = {{0, 1279, 1}, {1, 1200, 33}, {1, 1100, 1}, {0, 3, 1}, {1, 1025, 1}};
        e = check_batch(&f, deep, 5, a);
        worst = e > worst ? e : worst;
        CHECKF(e < tol, "%s %s deep batch with split decode tokens: max error %g", mname, tn, e);
        printf("%s %s G=%d D=%d: max error vs double %.2g\n", mname, tn, c.n_head / c.n_kv, c.D, worst);
        free(a), free(d);
        fixture_free(&f);
    }
    lc_backend_cpu_free(be);
}

int main(void) {
    check_ggml_kernels();
    check_backend(0);
    check_backend(1);
    check_backend(2);
    return test_done();
}
