/* attn.c — attention over the paged KV cache on the CPU, and writing K/V into it.
 *
 * A batch is cut into runs of consecutive positions of one sequence (a decode token is a run of
 * one); each run and KV head walks the sequence one cache block at a time: the block's scores,
 * one rescale of the running outputs (online softmax, flash-attention style), then the weighted
 * V rows. The full score matrix is never built; per thread, memory is one tile of queries,
 * scores and outputs plus one converted block of K and V.
 * Causality is positional: a token sees its sequence's positions <= its own.
 */
#include "cpu_impl.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ==== Store ==== */

typedef struct store_job {
    lc_cpu *c;
    lc_kv *kv;
    int il;
    const float *k, *v;
    const lc_attn_batch *b;
} store_job;

static void store_worker(void *arg, int ith, int nth) {
    store_job *j = arg;
    lc_kv *kv = j->kv;
    int width = kv->n_kv_head * kv->head_dim;
    lc_from_float_fn q = j->c->kern->quantize[kv->type] ? j->c->kern->quantize[kv->type] : lc_type_get(kv->type)->from_float;
    int64_t lo, hi;
    lc_split(j->b->n_tokens, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        size_t off = (size_t)j->b->slot[t] * kv->row_bytes;
        q(j->k + (size_t)t * width, kv->k[j->il] + off, width);
        q(j->v + (size_t)t * width, kv->v[j->il] + off, width);
    }
}

void lc_cpu_kv_store(lc_backend *be, lc_kv *kv, int il, const float *k, const float *v, const lc_attn_batch *b) {
    store_job j = {cpu_of(be), kv, il, k, v, b};
    lc_cpu_run(j.c, store_worker, &j, (size_t)b->n_tokens * (size_t)kv->n_kv_head * (size_t)kv->head_dim * 8);
}

/* ==== Attention ==== */

typedef struct attn_job {
    lc_cpu *c;
    float *out;
    const float *q;
    lc_kv *kv;
    int il;
    const lc_attn_batch *b;
    int n_head;
    float scale;
    const int32_t *tiles; /* (first token, count) runs of consecutive positions of one sequence */
    int n_tiles;
    atomic_int next;
} attn_job;

#define ATTN_QT 32 /* query tokens per tile */

/* Query rows of a tile rounded up to the kernels' 16-column strips. */
static size_t attn_mp(size_t M) { return (M + 15) / 16 * 16; }

/* A run of nq consecutive tokens of one sequence (positions p0, p0+1, ...) and one KV head:
 * the M = nq * G query rows (G query heads share the KV head) are processed together against
 * each cache block, so every K/V row is converted once per tile and reused by all M rows.
 * Per block: S = K Qt (Qt pre-scaled), causal mask and online-softmax step down the columns,
 * O = O * alpha + P^T V (vec.h kernels; M x 32 x D products, register-blocked).
 * Scratch (floats): Qt D x Mp, O Mp x D, S BT x Mp, K and V BT x D, mx/sum/alpha/qpos Mp. */
static void attend_tile(attn_job *j, int t0, int nq, int g, float *scratch) {
    lc_kv *kv = j->kv;
    const lc_vec_ops *vec = j->c->vec;
    const int D = kv->head_dim, BT = LC_ATTN_BT, G = j->n_head / kv->n_kv_head, M = nq * G;
    const int Mp = (int)attn_mp((size_t)M);
    const int p0 = j->b->pos[t0], p_last = p0 + nq - 1;
    const int32_t *table = j->b->block_table[t0];
    size_t head_bytes = lc_type_row_size(kv->type, D);
    lc_to_float_fn deq = j->c->kern->to_float[kv->type] ? j->c->kern->to_float[kv->type] : lc_type_get(kv->type)->to_float;

    float *Qt = scratch;                /* D x Mp */
    float *O = Qt + (size_t)D * Mp;     /* Mp x D */
    float *S = O + (size_t)Mp * D;      /* BT x Mp */
    float *K = S + (size_t)BT * Mp;     /* BT x D */
    float *V = K + (size_t)BT * D;      /* BT x D */
    float *mx = V + (size_t)BT * D, *sum = mx + Mp, *alpha = sum + Mp;
    int32_t *qpos = (int32_t *)(alpha + Mp);
    for (int r = 0; r < Mp; r++) {
        if (r < M) {
            const float *q = j->q + ((size_t)(t0 + r / G) * j->n_head + (size_t)g * G + r % G) * D;
            for (int d = 0; d < D; d++) Qt[(size_t)d * Mp + r] = q[d] * j->scale;
        } else {
            for (int d = 0; d < D; d++) Qt[(size_t)d * Mp + r] = 0; /* padding: finite, never output */
        }
        qpos[r] = r < M ? p0 + r / G : p_last;
        mx[r] = -INFINITY;
        sum[r] = 0;
    }
    memset(O, 0, (size_t)Mp * D * sizeof(float));

    const uint8_t *kl = kv->k[j->il], *vl = kv->v[j->il];
    int n_blocks = p_last / BT + 1;
    for (int bi = 0; bi < n_blocks; bi++) {
        int n = bi == n_blocks - 1 ? p_last % BT + 1 : BT, kpos0 = bi * BT;
        size_t base = (size_t)table[bi] * (size_t)kv->block_tokens;
        for (int r = 0; r < n; r++) {
            size_t off = (base + (size_t)r) * kv->row_bytes + (size_t)g * head_bytes;
            deq(kl + off, K + (size_t)r * D, D);
            deq(vl + off, V + (size_t)r * D, D);
        }
        /* rows past the sequence's end: masked below, but kept finite (0 * NaN is NaN) */
        if (n < BT) {
            memset(K + (size_t)n * D, 0, (size_t)(BT - n) * D * sizeof(float));
            memset(V + (size_t)n * D, 0, (size_t)(BT - n) * D * sizeof(float));
        }
        vec->attn_qk(Mp, D, Qt, K, S);
        vec->attn_softmax(Mp, S, qpos, kpos0, kpos0 + BT - 1 > p0, mx, sum, alpha);
        vec->attn_pv(M, Mp, D, S, V, alpha, O);
    }
    for (int r = 0; r < M; r++) {
        float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
        float *o = j->out + ((size_t)(t0 + r / G) * j->n_head + (size_t)g * G + r % G) * D;
        for (int d = 0; d < D; d++) o[d] = O[(size_t)r * D + d] * inv;
    }
}

/* Work items are (tile, KV head) pairs, taken from a shared counter from the last tile back:
 * in a causal prompt the last tiles see the most keys, so the big items go first and the small
 * ones fill in at the end (balance by work, not by count). */
static void attn_worker(void *arg, int ith, int nth) {
    (void)nth;
    attn_job *j = arg;
    float *scratch = j->c->tscratch + (size_t)ith * j->c->tscratch_per_thread;
    int H = j->kv->n_kv_head;
    int n_items = j->n_tiles * H;
    for (;;) {
        int i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= n_items) return;
        i = n_items - 1 - i;
        const int32_t *tile = j->tiles + 2 * (i / H);
        /* one algorithm for every batch shape: a token's result never depends on its batch */
        attend_tile(j, tile[0], tile[1], i % H, scratch);
    }
}

size_t lc_backend_cpu_attn_scratch(int n_head, int n_kv_head, int head_dim, int block_tokens) {
    (void)block_tokens; /* kernels walk LC_ATTN_BT keys at a time (the cache's block size) */
    size_t G = (size_t)(n_head / n_kv_head), D = (size_t)head_dim, BT = LC_ATTN_BT, Mp = attn_mp(ATTN_QT * G);
    return 2 * Mp * D + BT * Mp + 2 * BT * D + 4 * Mp;
}

void lc_cpu_attention(lc_backend *be, float *out, const float *q, lc_kv *kv, int il,
                      const lc_attn_batch *b, int n_head, float scale) {
    lc_cpu *c = cpu_of(be);
    int D = kv->head_dim, BT = kv->block_tokens;
    if (!lc_cpu_tscratch(c, lc_backend_cpu_attn_scratch(n_head, kv->n_kv_head, D, BT))) return;
    /* group the batch into runs of consecutive positions of one sequence (prompt chunks) */
    int32_t stack_tiles[2 * 64];
    int32_t *tiles = b->n_tokens <= 64 ? stack_tiles : lc_malloc((size_t)b->n_tokens * 2 * sizeof(int32_t));
    if (!tiles) return;
    int n_tiles = 0;
    for (int t = 0; t < b->n_tokens;) {
        int n = 1;
        while (n < ATTN_QT && t + n < b->n_tokens && b->seq[t + n] == b->seq[t] && b->pos[t + n] == b->pos[t] + n) n++;
        tiles[2 * n_tiles] = t;
        tiles[2 * n_tiles + 1] = n;
        n_tiles++;
        t += n;
    }
    attn_job j = {.c = c, .out = out, .q = q, .kv = kv, .il = il, .b = b, .n_head = n_head, .scale = scale,
                  .tiles = tiles, .n_tiles = n_tiles};
    atomic_store(&j.next, 0);
    size_t work = 0;
    for (int t = 0; t < b->n_tokens; t++) work += (size_t)(b->pos[t] + 1) * (size_t)n_head * (size_t)D;
    lc_cpu_run(c, attn_worker, &j, work);
    if (tiles != stack_tiles) lc_free(tiles);
}
