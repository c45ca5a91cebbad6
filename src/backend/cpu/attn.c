/* attn.c — attention over the paged KV cache on the CPU, and writing K/V into it.
 *
 * A batch is cut into runs of consecutive positions of one sequence (a decode token is a run of
 * one); each run and KV head walks the sequence one cache block at a time: the block's scores,
 * one rescale of the running outputs (online softmax, flash-attention style), then the weighted
 * V rows. The full score matrix is never built; per thread, memory is one tile of queries,
 * scores and outputs plus one converted block of K and V.
 * Causality is positional: a token sees its sequence's positions <= its own.
 * With an f16 cache (and AVX-512 kernels) an unsplit tile instead does llama.cpp's arithmetic
 * bit for bit, in three passes over its blocks that recompute the scores instead of storing
 * them (attend_tile_g); decode tokens split over their key range keep the online softmax.
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

/* One work item: query tokens [t0, t0+nq) of one sequence and KV head g, against the cache
 * blocks [b0, b1) of that sequence. A decode token deep in its sequence is split into several
 * items over the key range (flash-decoding), each leaving an unnormalised partial result at
 * part (floats into the job's partial buffer: O M x D, then mx M, sum M) for the merge; else
 * part is -1 and the item writes the output itself. */
typedef struct attn_item {
    int32_t t0, nq, g, b0, b1, n_split;
    int64_t part;
} attn_item;

typedef struct attn_job {
    lc_cpu *c;
    float *out;
    const float *q;
    int lanes_qk, lanes_pv; /* llama.cpp's summation orders for this batch (vec.h); 0: not exact */
    bool g_cached_only;     /* LC_CPU_ATTN_AUTO: those orders only for tiles whose scores fit the cache */
    lc_kv *kv;
    int il;
    const lc_attn_batch *b;
    int n_head;
    float scale;
    const attn_item *items;
    int n_items;
    float *partial;
    atomic_int next;
} attn_job;

/* Tiles (LC_ATTN_QT query tokens, split decode tokens of LC_ATTN_SPLIT blocks) as backend.h says;
 * attend_tile_g keeps a tile's scores (then its exps) when they fit LC_ATTN_SCORE_CACHE floats per
 * thread, so Q.K runs once instead of in each of the three passes; longer tiles recompute them. */
#define ATTN_PV_GROUP 4 /* cached blocks whose P.V one attn_pv_g call does (8 FMAs per lane load) */

/* x rounded to f16 and back: llama.cpp's f16 matmuls convert their f32 operand (Q, P). */
static inline float round16(float x) { return lc_f16_to_f32(lc_f32_to_f16(x)); }

/* Query rows of a tile rounded up to the kernels' 16-column strips. */
static size_t attn_mp(size_t M) { return (M + 15) / 16 * 16; }

/* A run of nq consecutive tokens of one sequence (positions p0, p0+1, ...) and one KV head:
 * the M = nq * G query rows (G query heads share the KV head) are processed together against
 * each cache block, so every K/V row is converted once per tile and reused by all M rows.
 * Per block: S = K Qt (Qt pre-scaled), causal mask and online-softmax step down the columns,
 * O = O * alpha + P^T V (vec.h kernels; M x 32 x D products, register-blocked).
 * Scratch (floats): Qt D x Mp, O Mp x D, S BT x Mp, K and V BT x D, mx/sum/alpha/qpos Mp. */
static void attend_tile(attn_job *j, const attn_item *it, float *scratch) {
    lc_kv *kv = j->kv;
    const lc_vec_ops *vec = j->c->vec;
    const int t0 = it->t0, nq = it->nq, g = it->g;
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
    int f16 = kv->type == LC_TYPE_F16;
    for (int r = 0; r < Mp; r++) {
        if (r < M) {
            const float *q = j->q + ((size_t)(t0 + r / G) * j->n_head + (size_t)g * G + r % G) * D;
            for (int d = 0; d < D; d++) Qt[(size_t)d * Mp + r] = (f16 ? round16(q[d]) : q[d]) * j->scale;
        } else {
            for (int d = 0; d < D; d++) Qt[(size_t)d * Mp + r] = 0; /* padding: finite, never output */
        }
        qpos[r] = r < M ? p0 + r / G : p_last;
        mx[r] = -INFINITY;
        sum[r] = 0;
    }
    memset(O, 0, (size_t)Mp * D * sizeof(float));

    const uint8_t *kl = kv->k[j->il], *vl = kv->v[j->il];
    int last = p_last / BT;
    for (int bi = it->b0; bi < it->b1; bi++) {
        int n = bi == last ? p_last % BT + 1 : BT, kpos0 = bi * BT;
        size_t base = (size_t)table[bi] * (size_t)kv->block_tokens;
        size_t off = base * kv->row_bytes + (size_t)g * head_bytes;
        if (kv->type == LC_TYPE_F16) { /* one call per block: decode converts as much as it computes */
            vec->f16_rows(n, D, (const uint16_t *)(kl + off), kv->row_bytes / 2, K);
            vec->f16_rows(n, D, (const uint16_t *)(vl + off), kv->row_bytes / 2, V);
        } else {
            for (int r = 0; r < n; r++) {
                deq(kl + off + (size_t)r * kv->row_bytes, K + (size_t)r * D, D);
                deq(vl + off + (size_t)r * kv->row_bytes, V + (size_t)r * D, D);
            }
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
    if (it->part >= 0) { /* a share of a split token: the merge normalises */
        float *pt = j->partial + it->part;
        memcpy(pt, O, (size_t)M * D * sizeof(float));
        memcpy(pt + (size_t)M * D, mx, (size_t)M * sizeof(float));
        memcpy(pt + (size_t)M * D + M, sum, (size_t)M * sizeof(float));
        return;
    }
    for (int r = 0; r < M; r++) {
        float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
        float *o = j->out + ((size_t)(t0 + r / G) * j->n_head + (size_t)g * G + r % G) * D;
        for (int d = 0; d < D; d++) o[d] = O[(size_t)r * D + d] * inv;
    }
}

/* An unsplit tile with llama.cpp's arithmetic (flash attention off, f16 cache): Q rounded to
 * f16, S = K.Q in ggml's summation order, scaled and masked, softmax as ggml_vec_soft_max_f32
 * (its exp, 16-key chunk sums added in double, probabilities times (float)(1/sum)), P rounded
 * to f16, O = P.V in ggml's order: each output is a sum over keys in lanes (vec.h), kept in A
 * until the last block. Pass 1 finds each row's max, pass 2 the sum of exps, pass 3 P and P.V.
 * When the tile's scores fit LC_ATTN_SCORE_CACHE they are kept from pass 1 (then their exps from
 * pass 2), else passes 2 and 3 recompute them: the same bits either way.
 * Scratch (floats): dsum 2 Mp (doubles), Qt D x Mp, S BT x Mp, K and V BT x D,
 * A lanes x M x D, mx/inv/qpos Mp, the score cache: a constant (lc_backend_cpu_attn_scratch),
 * whatever the context. */
/* Whether a tile's scores fit the score cache, so that llama.cpp's arithmetic costs one Q.K pass
 * (longer tiles recompute them in each of three passes). */
static bool tile_cached(const attn_job *j, const attn_item *it) {
    return lc_attn_scores_fit(it->b1 - it->b0, it->nq * (j->n_head / j->kv->n_kv_head));
}

/* Cache block bi (n rows used) of KV head g from one f16 cache layer (K or V) as floats in dst
 * (BT x D); the rows past the sequence's end become zeros (masked, but kept finite). */
static void f16_block(const attn_job *j, const uint8_t *layer, const int32_t *table, int bi, int g, int n, float *dst) {
    const lc_kv *kv = j->kv;
    const int D = kv->head_dim, BT = LC_ATTN_BT;
    const size_t off = (size_t)table[bi] * (size_t)kv->block_tokens * kv->row_bytes + (size_t)g * D * 2;
    j->c->vec->f16_rows(n, D, (const uint16_t *)(layer + off), kv->row_bytes / 2, dst);
    if (n < BT) memset(dst + (size_t)n * D, 0, (size_t)(BT - n) * D * sizeof(float));
}

static void attend_tile_g(attn_job *j, const attn_item *it, float *scratch) {
    lc_kv *kv = j->kv;
    const lc_vec_ops *vec = j->c->vec;
    const int t0 = it->t0, nq = it->nq, g = it->g, lq = j->lanes_qk, lv = j->lanes_pv;
    const int D = kv->head_dim, BT = LC_ATTN_BT, G = j->n_head / kv->n_kv_head, M = nq * G;
    const int Mp = (int)attn_mp((size_t)M);
    const int p0 = j->b->pos[t0], p_last = p0 + nq - 1, last = p_last / BT;
    const int32_t *table = j->b->block_table[t0];

    double *dsum = (double *)scratch;
    float *Qt = scratch + 2 * (size_t)Mp; /* D x Mp */
    float *S = Qt + (size_t)D * Mp;       /* BT x Mp */
    float *K = S + (size_t)BT * Mp;       /* BT x D */
    float *V = K + (size_t)BT * D;        /* ATTN_PV_GROUP BT x D */
    float *A = V + (size_t)ATTN_PV_GROUP * BT * D; /* lanes x M x D */
    float *mx = A + (size_t)lv * M * D, *inv = mx + Mp;
    int32_t *qpos = (int32_t *)(inv + Mp);
    float *cache = (float *)(qpos + Mp);
    const bool cached = tile_cached(j, it);
    /* lanes 64 over whole 64-steps: Q.K one output per (key, row) from Q rows (in Qt's space),
     * M columns of work instead of Mp (a decode token's G rows padded to 16) */
    const bool qrows = lq == 64 && D % 64 == 0;
    for (int r = 0; r < Mp; r++) {
        const float *q = j->q + ((size_t)(t0 + (r < M ? r : M - 1) / G) * j->n_head + (size_t)g * G + (r < M ? r : M - 1) % G) * D;
        if (qrows) {
            if (r < M) vec->round16(D, q, Qt + (size_t)r * D);
        } else {
            vec->round16(D, q, K); /* K is free until the first block */
            for (int d = 0; d < D; d++) Qt[(size_t)d * Mp + r] = K[d]; /* padding: a copy of the last row */
        }
        qpos[r] = r < M ? p0 + r / G : p_last;
        mx[r] = -INFINITY;
        dsum[r] = 0;
    }
    memset(A, 0, (size_t)lv * M * D * sizeof(float));

    const uint8_t *kl = kv->k[j->il], *vl = kv->v[j->il];
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 2)
            for (int r = 0; r < Mp; r++) inv[r] = (float)(1.0 / dsum[r]);
        if (pass == 2 && cached) { /* P.V over groups of blocks, from the cached exps */
            for (int b0 = it->b0; b0 < it->b1; b0 += ATTN_PV_GROUP) {
                int nblk = it->b1 - b0 < ATTN_PV_GROUP ? it->b1 - b0 : ATTN_PV_GROUP;
                for (int k = 0; k < nblk; k++)
                    f16_block(j, vl, table, b0 + k, g, b0 + k == last ? p_last % BT + 1 : BT, V + (size_t)k * BT * D);
                vec->attn_pv_g(M, Mp, D, cache + (size_t)(b0 - it->b0) * BT * Mp, inv, V, A, lv, b0 * BT % lv, nblk);
            }
            break;
        }
        for (int bi = it->b0; bi < it->b1; bi++) {
            int n = bi == last ? p_last % BT + 1 : BT, kpos0 = bi * BT;
            float *Sb = cached ? cache + (size_t)(bi - it->b0) * BT * Mp : S;
            if (pass == 0 || !cached) {
                f16_block(j, kl, table, bi, g, n, K);
                if (qrows) vec->attn_qk_rows_g(M, Mp, D, Qt, K, Sb);
                else vec->attn_qk_g(Mp, D, Qt, K, Sb, lq);
                vec->attn_max_g(Mp, Sb, qpos, kpos0, kpos0 + BT - 1 > p0, j->scale, mx); /* mx final after pass 0 */
            }
            if (pass == 0) continue;
            if (pass == 1 || !cached) vec->attn_exp_g(Mp, Sb, mx, pass == 1 ? dsum : NULL);
            if (pass == 1) continue;
            f16_block(j, vl, table, bi, g, n, V);
            vec->attn_pv_g(M, Mp, D, Sb, inv, V, A, lv, kpos0 % lv, 1);
        }
    }
    /* the lanes' sums, added as ggml adds them (vec.h), into lane 0; with 64 lanes the key count
     * ggml sums over (its n_kv, padded to 256) is a multiple of 64, so its double tail is empty */
    vec->attn_lanes_g(M * D, A, lv);
    for (int r = 0; r < M; r++)
        memcpy(j->out + ((size_t)(t0 + r / G) * j->n_head + (size_t)g * G + r % G) * D, A + (size_t)r * D,
               (size_t)D * sizeof(float));
}

/* Items are taken from a shared counter in the order lc_cpu_attention laid them out: the
 * deepest tiles first, the small ones filling in at the end (balance by work, not count). */
static void attn_worker(void *arg, int ith, int nth) {
    (void)nth;
    attn_job *j = arg;
    float *scratch = j->c->tscratch + (size_t)ith * j->c->tscratch_per_thread;
    for (;;) {
        int i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= j->n_items) return;
        if (j->lanes_qk && j->items[i].part < 0 && (!j->g_cached_only || tile_cached(j, &j->items[i])))
            attend_tile_g(j, &j->items[i], scratch);
        else
            attend_tile(j, &j->items[i], scratch);
    }
}

/* Combines the n_split partial results of one split token and head (rows of G query heads):
 * O = sum_k O_k * exp(mx_k - m), sum = sum_k sum_k * exp(mx_k - m), out = O / sum. */
static void merge_split(attn_job *j, const attn_item *it) {
    int D = j->kv->head_dim, G = j->n_head / j->kv->n_kv_head, M = it->nq * G;
    size_t stride = (size_t)M * D + 2 * (size_t)M;
    for (int r = 0; r < M; r++) {
        float m = -INFINITY, tot = 0;
        for (int k = 0; k < it->n_split; k++) {
            float mk = j->partial[it->part + (int64_t)(k * stride) + (int64_t)M * D + r];
            m = mk > m ? mk : m;
        }
        float *o = j->out + ((size_t)(it->t0 + r / G) * j->n_head + (size_t)it->g * G + r % G) * D;
        memset(o, 0, (size_t)D * sizeof(float));
        for (int k = 0; k < it->n_split; k++) {
            const float *pt = j->partial + it->part + (int64_t)(k * stride);
            float mk = pt[(size_t)M * D + r], w = mk == -INFINITY ? 0.0f : expf(mk - m);
            tot += pt[(size_t)M * D + M + r] * w;
            for (int d = 0; d < D; d++) o[d] += pt[(size_t)r * D + d] * w;
        }
        float inv = tot > 0 ? 1.0f / tot : 0.0f;
        for (int d = 0; d < D; d++) o[d] *= inv;
    }
}

size_t lc_backend_cpu_attn_scratch(int n_head, int n_kv_head, int head_dim, lc_type kv_type) {
    /* the kernels walk LC_ATTN_BT keys at a time, the only cache block size kv_alloc takes */
    size_t G = (size_t)(n_head / n_kv_head), D = (size_t)head_dim, BT = LC_ATTN_BT, Mp = attn_mp(LC_ATTN_QT * G);
    size_t online = 2 * Mp * D + BT * Mp + 2 * BT * D + 4 * Mp;
    if (kv_type != LC_TYPE_F16) return online; /* llama.cpp's arithmetic (below) reads f16 caches only */
    /* attend_tile_g: P.V in 16 lanes over a whole tile (LC_ATTN_QT * G rows of D each), or in 64
     * lanes for a one-token batch (G rows: less) */
    size_t lane_rows = 16 * LC_ATTN_QT * G;
    size_t exact = 2 * Mp + Mp * D + BT * Mp + (1 + ATTN_PV_GROUP) * BT * D + lane_rows * D + 3 * Mp + LC_ATTN_SCORE_CACHE;
    return online > exact ? online : exact;
}

/* Lays the batch out as work items: runs of consecutive positions of one sequence (up to
 * LC_ATTN_QT tokens) times KV heads, deepest first; a single decode token deeper than LC_ATTN_SPLIT
 * blocks is split over its key range into LC_ATTN_SPLIT-block shares (so that a few decoding
 * sequences still keep every thread busy), merged after the parallel pass. The item list and
 * the partial results are transient (freed before returning). */
void lc_cpu_attention(lc_backend *be, float *out, const float *q, lc_kv *kv, int il,
                      const lc_attn_batch *b, int n_head, float scale) {
    lc_cpu *c = cpu_of(be);
    int D = kv->head_dim, H = kv->n_kv_head, G = n_head / H;
    if (!lc_cpu_tscratch(c, lc_backend_cpu_attn_scratch(n_head, H, D, kv->type))) return;
    /* runs of consecutive positions of one sequence, up to LC_ATTN_QT tokens (prompt chunks) */
    int32_t *runs = lc_malloc((size_t)b->n_tokens * 2 * sizeof(int32_t));
    int n_tiles = 0, n_items = 0, max_items = 0;
    int64_t n_part = 0;
    if (!runs) return;
    for (int t = 0; t < b->n_tokens;) {
        int n = lc_attn_run(b, t);
        runs[2 * n_tiles] = t, runs[2 * n_tiles + 1] = n;
        n_tiles++;
        t += n;
    }
    for (int t = 0; t < b->n_tokens; t++) max_items += (b->pos[t] / LC_ATTN_BT) / LC_ATTN_SPLIT + 1; /* >= shares */
    attn_item *items = lc_malloc((size_t)max_items * (size_t)H * sizeof *items);
    if (!items) {
        lc_free(runs);
        return;
    }
    /* unsplit tiles, last run of the batch first (a prompt's deepest tile) */
    for (int ti = n_tiles - 1; ti >= 0; ti--) {
        int t0 = runs[2 * ti], nq = runs[2 * ti + 1], nb = (b->pos[t0] + nq - 1) / LC_ATTN_BT + 1;
        if (lc_attn_split(nq, nb)) continue;
        for (int g = 0; g < H; g++) items[n_items++] = (attn_item){t0, nq, g, 0, nb, 1, -1};
    }
    for (int ti = 0; ti < n_tiles; ti++) {
        int t0 = runs[2 * ti], nq = runs[2 * ti + 1], nb = (b->pos[t0] + nq - 1) / LC_ATTN_BT + 1;
        if (!lc_attn_split(nq, nb)) continue;
        int ns = (nb + LC_ATTN_SPLIT - 1) / LC_ATTN_SPLIT;
        for (int g = 0; g < H; g++)
            for (int k = 0; k < ns; k++) {
                items[n_items++] = (attn_item){t0, 1, g, k * nb / ns, (k + 1) * nb / ns, ns, n_part};
                n_part += (int64_t)G * D + 2 * G;
            }
    }
    lc_free(runs);
    float *partial = n_part ? lc_malloc((size_t)n_part * sizeof(float)) : NULL;
    if (n_part && !partial) {
        lc_free(items);
        return;
    }
    attn_job j = {.c = c, .out = out, .q = q, .kv = kv, .il = il, .b = b, .n_head = n_head, .scale = scale,
                  .items = items, .n_items = n_items, .partial = partial};
    /* llama.cpp's orders, chosen as its mul_mat chooses them: its f16 GEMM (tinyBLAS, 16 lanes)
     * for batches of >= 2 tokens, ggml_vec_dot_f16 (64 lanes) for a dot length that is not a
     * multiple of 16 and for one-token batches (llamafile_sgemm declines n < 2). So in this mode
     * a decode token's output depends on its batch, as llama.cpp's does; the greedy goldens
     * (one-token decode steps) agree bit for bit so (engine-golden.md). */
    if (c->attn_mode != LC_CPU_ATTN_ONLINE && kv->type == LC_TYPE_F16 && c->vec->ggml_native) {
        bool one = b->n_tokens == 1;
        j.g_cached_only = c->attn_mode == LC_CPU_ATTN_AUTO;
        j.lanes_pv = one ? 64 : 16;
        j.lanes_qk = one || D % 16 != 0 ? 64 : 16;
    }
    atomic_store(&j.next, 0);
    size_t work = 0;
    for (int t = 0; t < b->n_tokens; t++) work += (size_t)(b->pos[t] + 1) * (size_t)n_head * (size_t)D;
    lc_cpu_run(c, attn_worker, &j, work);
    for (int i = 0; i < n_items; i++)
        if (items[i].part >= 0 && items[i].b0 == 0) merge_split(&j, &items[i]);
    lc_free(partial);
    lc_free(items);
}
