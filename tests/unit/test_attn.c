/* test_attn.c — the CPU backend's attention op over the paged KV cache (backend/cpu/attn.c)
 * against a naive double-precision softmax(q k^T * scale) v, for f16, q8_0 and q4_0 caches,
 * GQA group sizes 1/3/4/5, head sizes 40/64/128, scattered block tables, prompt chunks that start
 * mid-block, two sequences in one batch, decode, and decode tokens deep enough to be split over
 * their key range; and that a token's output does not depend
 * on the batch it came in (prefill vs decode give the same bits).
 */
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

/* Naive attention of sequence s, position p, head h, in double: out (D). */
static void reference(const fixture *f, int s, int p, int h, float scale, double *out) {
    int D = f->c.D, g = h / (f->c.n_head / f->c.n_kv);
    const float *q = f->q + ((size_t)s * MAXB * BT + (size_t)p) * qrow(f) + (size_t)h * D;
    double *w = malloc((size_t)(p + 1) * sizeof(double)), m = -INFINITY, tot = 0;
    for (int k = 0; k <= p; k++) {
        const float *kr = f->kref + ((size_t)s * MAXB * BT + (size_t)k) * kvrow(f) + (size_t)g * D;
        double d = 0;
        for (int i = 0; i < D; i++) d += (double)q[i] * kr[i];
        w[k] = d * scale;
        m = w[k] > m ? w[k] : m;
    }
    for (int k = 0; k <= p; k++) tot += w[k] = exp(w[k] - m);
    for (int i = 0; i < D; i++) out[i] = 0;
    for (int k = 0; k <= p; k++) {
        const float *vr = f->vref + ((size_t)s * MAXB * BT + (size_t)k) * kvrow(f) + (size_t)g * D;
        for (int i = 0; i < D; i++) out[i] += w[k] / tot * vr[i];
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
    for (t = 0; t < n; t++)
        for (int h = 0; h < f->c.n_head; h++) {
            reference(f, seq[t], pos[t], h, scale, ref);
            for (int i = 0; i < f->c.D; i++) {
                double e = fabs(got[((size_t)t * f->c.n_head + h) * f->c.D + i] - ref[i]);
                worst = e > worst || e != e ? e : worst;
            }
        }
    free(pos), free(seq), free(slot), free(bt), free(q);
    return worst;
}

int main(void) {
    lc_backend *be;
    CHECK(lc_backend_cpu_create(2, &be) == LC_OK);
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
        run prompt = {0, 0, 200};
        double e = check_batch(&f, &prompt, 1, a), worst = e;
        CHECKF(e < 2e-5, "%s G=%d D=%d prompt of 200: max error %g", tn, c.n_head / c.n_kv, c.D, e);
        /* decode of the prompt's last token: the same bits as inside the prompt */
        run dec = {0, 199, 1};
        e = check_batch(&f, &dec, 1, d);
        worst = e > worst ? e : worst;
        CHECKF(e < 2e-5, "%s decode at 199: max error %g", tn, e);
        CHECKF(!memcmp(d, a + 199 * row, row * sizeof(float)), "%s decode differs from the prompt's row", tn);
        /* a chunk starting mid-block after a cached prefix, beside the other sequence's chunk
         * and decode tokens */
        run mixed[] = {{1, 37, 50}, {0, 250, 1}, {1, 5, 3}, {0, 100, 40}};
        e = check_batch(&f, mixed, 4, a);
        worst = e > worst ? e : worst;
        CHECKF(e < 2e-5, "%s mixed batch: max error %g", tn, e);
        /* decode tokens deep enough to be split over their key range (flash-decoding shares,
         * merged), beside a deep prompt chunk and a shallow decode token */
        run deep[] = {{0, 1279, 1}, {1, 1200, 33}, {1, 1100, 1}, {0, 3, 1}, {1, 1025, 1}};
        e = check_batch(&f, deep, 5, a);
        worst = e > worst ? e : worst;
        CHECKF(e < 2e-5, "%s deep batch with split decode tokens: max error %g", tn, e);
        printf("%s G=%d D=%d: max error vs double %.2g\n", tn, c.n_head / c.n_kv, c.D, worst);
        free(a), free(d);
        fixture_free(&f);
    }
    lc_backend_cpu_free(be);
    return test_done();
}
