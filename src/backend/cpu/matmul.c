/* matmul.c — quantized matrix products on the CPU: out (T, rows) = x (T, cols) @ W^T.
 *
 * The activations are converted once to the weights' vec_dot_type (Q8_0, Q8_1, Q8_K, F16, ...)
 * and then every (row chunk x token chunk) tile is handed to the kernel table's gemm (or
 * vec_dot) by whichever thread takes it next from an atomic counter. Several weights that share
 * one input (Q/K/V, gate/up) run in one parallel region. Expert products sort the (token, expert)
 * pairs by expert and run every expert's tiles in one parallel region too (one pool barrier per
 * call, not one per expert), through the same gemm tiles.
 * Which kernel takes a product follows llama.cpp's x86 CPU backend, so that every output is summed
 * as there (use_gemm): the K formats go to their tile from 8 tokens on (its tiled K-quant matmul)
 * and to vec_dot below; F32/F16 from 2 tokens where tinyBLAS takes the shape; the other formats
 * with a tile take it for any batch. One exception: the AVX-512 Q8_0 tile gives 2-7 tokens the
 * one-token row dot's order (kernels_avx512.c rows_q8_0_n), so that a decode step's sequences get
 * the bits each would get alone (test_matmul's batch invariance).
 */
#include "cpu_impl.h"

#include <stdatomic.h>
#include <string.h>

#define TOK_CHUNK 64

typedef struct mm_job {
    const lc_cpu *c;
    int n_w;
    const lc_weight *w[4];
    float *out[4];
    const uint8_t *xq;        /* converted activations */
    size_t xq_stride;
    int n_tok;
    int64_t row_chunk;
    int64_t chunks_per_w[4];  /* row chunks x token chunks per weight */
    int64_t n_chunks;
    atomic_long next;
} mm_job;

/* Whether a product of `batch` tokens (of the call, or of the expert) goes to the type's tile. */
static bool use_gemm(const lc_cpu *c, const lc_weight *w, int batch, bool experts) {
    if (!c->gemm[w->type]) return false;
    switch (w->type) {
    case LC_TYPE_Q2_K: case LC_TYPE_Q3_K: case LC_TYPE_Q4_K: case LC_TYPE_Q5_K: case LC_TYPE_Q6_K:
        return batch >= 8; /* llama.cpp's tiled K-quant matmul, per expert too */
    case LC_TYPE_F32: case LC_TYPE_F16: /* tinyBLAS takes 2 tokens on, rows % 4, cols % 16; not experts */
        return !experts && batch >= 2 && w->rows % 4 == 0 && w->cols % 16 == 0;
    case LC_TYPE_BF16: /* the vdpbf16ps tile (tinyBLAS<32>) likewise, cols % 32 */
        return !experts && batch >= 2 && w->rows % 4 == 0 && w->cols % 32 == 0;
    default: return true;
    }
}

/* out[t * ldo + r] = dot(weight row r at wd, activation row t at x) for r < nr, t < nt: the
 * type's GEMM tile where use_gemm says so, else one vec_dot per (token, row). */
static void mul_rows(const lc_cpu *c, const lc_weight *w, const uint8_t *wd, int nr, const uint8_t *x, size_t xs,
                     int nt, int batch, bool experts, float *out, size_t ldo) {
    int n = (int)w->cols;
    if (use_gemm(c, w, batch, experts)) {
        c->gemm[w->type](n, nr, nt, wd, w->row_bytes, x, xs, out, ldo);
        return;
    }
    lc_vec_dot_fn dot = c->kern->vec_dot[w->type];
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) dot(n, &out[(size_t)t * ldo + r], wd + (size_t)r * w->row_bytes, x + (size_t)t * xs);
}

static void tile(const mm_job *j, int wi, int64_t r0, int64_t r1, int t0, int t1) {
    const lc_weight *w = j->w[wi];
    mul_rows(j->c, w, (const uint8_t *)w->data + (size_t)r0 * w->row_bytes, (int)(r1 - r0),
             j->xq + (size_t)t0 * j->xq_stride, j->xq_stride, t1 - t0, j->n_tok, false, j->out[wi] + (size_t)t0 * w->rows + r0,
             (size_t)w->rows);
}

/* Rows per work chunk: enough chunks for balance across threads, large enough to amortise the
 * counter (at most 64 when cap), a multiple of 4. */
static int64_t row_chunk(const lc_cpu *c, int64_t rows, bool cap) {
    int64_t rc = rows / ((int64_t)c->n_threads * 8);
    rc = LC_MAX(rc, 16);
    if (cap) rc = LC_MIN(rc, 64);
    return (rc + 3) / 4 * 4;
}

static void mm_worker(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    int tchunks = (j->n_tok + TOK_CHUNK - 1) / TOK_CHUNK;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= j->n_chunks) return;
        int wi = 0;
        while (c >= j->chunks_per_w[wi]) c -= j->chunks_per_w[wi++];
        int64_t rc = c / tchunks, tc = c % tchunks;
        int64_t r0 = rc * j->row_chunk, r1 = LC_MIN(r0 + j->row_chunk, j->w[wi]->rows);
        int t0 = (int)tc * TOK_CHUNK, t1 = LC_MIN(t0 + TOK_CHUNK, j->n_tok);
        tile(j, wi, r0, r1, t0, t1);
    }
}

/* ==== Activation conversion ==== */

typedef struct conv_job {
    lc_from_float_fn q;
    const float *x;
    size_t x_stride;      /* floats */
    const int32_t *x_rows;/* source row of converted row i (NULL: i) */
    uint8_t *dst;
    size_t dst_stride;
    int n_rows, cols;
} conv_job;

static void conv_worker(void *arg, int ith, int nth) {
    conv_job *j = arg;
    int64_t lo, hi;
    lc_split(j->n_rows, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        int64_t src = j->x_rows ? j->x_rows[i] : i;
        j->q(j->x + (size_t)src * j->x_stride, j->dst + (size_t)i * j->dst_stride, j->cols);
    }
}

/* Converts n_rows rows of x (cols floats, x_stride apart; row i taken from x_rows[i]) to type t
 * in the backend's conversion buffer. */
static lc_status convert(lc_cpu *c, lc_type t, const float *x, size_t x_stride, const int32_t *x_rows,
                         int n_rows, int cols, const uint8_t **out, size_t *stride) {
    size_t rs = lc_type_row_size(t, cols);
    if (!lc_cpu_qbuf(c, rs * (size_t)n_rows + 64)) return LC_ERR_OOM;
    lc_from_float_fn q = c->kern->quantize[t] ? c->kern->quantize[t] : lc_type_get(t)->from_float;
    if (!q) return lc_fail(LC_ERR_UNSUPPORTED, "no converter for activations of type %s", lc_type_name(t));
    conv_job j = {q, x, x_stride, x_rows, c->qbuf, rs, n_rows, cols};
    lc_cpu_run(c, conv_worker, &j, (size_t)n_rows * (size_t)cols);
    *out = c->qbuf;
    *stride = rs;
    return LC_OK;
}

static void run_job(lc_cpu *c, mm_job *j) {
    int tchunks = (j->n_tok + TOK_CHUNK - 1) / TOK_CHUNK;
    int64_t max_rows = 0, total_rows = 0;
    for (int i = 0; i < j->n_w; i++) {
        max_rows = LC_MAX(max_rows, j->w[i]->rows);
        total_rows += j->w[i]->rows;
    }
    int64_t rc = row_chunk(c, total_rows, j->n_tok > 1);
    j->row_chunk = rc;
    j->n_chunks = 0;
    for (int i = 0; i < j->n_w; i++) {
        j->chunks_per_w[i] = (j->w[i]->rows + rc - 1) / rc * tchunks;
        j->n_chunks += j->chunks_per_w[i];
    }
    atomic_store(&j->next, 0);
    size_t work = (size_t)total_rows * (size_t)j->w[0]->cols * (size_t)j->n_tok;
    lc_cpu_run(c, mm_worker, j, work);
}

lc_status lc_cpu_matmul(lc_backend *be, int n_w, const lc_weight *const *w, float *const *out,
                        const float *x, int n_tok) {
    lc_cpu *c = cpu_of(be);
    int i = 0;
    while (i < n_w) {
        /* group consecutive weights with the same activation format */
        lc_type vdt = lc_type_get(w[i]->type)->vec_dot_type;
        mm_job j;
        memset(&j, 0, sizeof j);
        j.c = c;
        j.n_tok = n_tok;
        while (i < n_w && j.n_w < 4 && lc_type_get(w[i]->type)->vec_dot_type == vdt) {
            if (w[i]->cols != w[0]->cols) return lc_fail(LC_ERR_INVALID, "matmul inputs of different widths");
            j.w[j.n_w] = w[i];
            j.out[j.n_w] = out[i];
            j.n_w++;
            i++;
        }
        int cols = (int)j.w[0]->cols;
        lc_status st = convert(c, vdt, x, (size_t)cols, NULL, n_tok, cols, &j.xq, &j.xq_stride);
        if (st) return st;
        run_job(c, &j);
    }
    return LC_OK;
}

/* ==== Routed experts ==== */

/* All experts of one call run as ONE parallel job: the (token, expert) pairs are sorted by
 * expert, their inputs converted once in that order (so each expert's tokens are contiguous
 * activation rows), and the work items are (expert token chunk, row chunk) pairs taken from one
 * counter. A tile's outputs go to the thread's scratch and are then copied to their pair rows. */
typedef struct moe_item {
    int32_t e;      /* expert */
    int32_t i0, i1; /* range in the expert-sorted pair order */
    int32_t n_e;    /* the expert's pairs in this call (its batch) */
} moe_item;

typedef struct moe_job {
    lc_cpu *c;
    const lc_weight *w;
    float *out;
    const int32_t *order;  /* sorted index -> pair (output row) */
    const uint8_t *xq;     /* converted inputs in sorted order */
    size_t xq_stride;
    const moe_item *items;
    int64_t row_chunk, rchunks, n_chunks;
    atomic_long next;
} moe_job;

static void moe_worker(void *arg, int ith, int nth) {
    (void)nth;
    moe_job *j = arg;
    const lc_weight *w = j->w;
    float *tmp = j->c->tscratch + (size_t)ith * j->c->tscratch_per_thread;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= j->n_chunks) return;
        const moe_item *it = &j->items[c / j->rchunks];
        int64_t r0 = (c % j->rchunks) * j->row_chunk, r1 = LC_MIN(r0 + j->row_chunk, w->rows);
        int nr = (int)(r1 - r0), nt = it->i1 - it->i0;
        const uint8_t *wd = (const uint8_t *)w->data + (size_t)it->e * w->expert_bytes + (size_t)r0 * w->row_bytes;
        const uint8_t *xr = j->xq + (size_t)it->i0 * j->xq_stride;
        mul_rows(j->c, w, wd, nr, xr, j->xq_stride, nt, it->n_e, true, tmp, (size_t)nr); /* tmp (nt, nr) = x rows @ W rows^T */
        for (int t = 0; t < nt; t++)
            memcpy(j->out + (size_t)j->order[it->i0 + t] * w->rows + r0, tmp + (size_t)t * nr, sizeof(float) * (size_t)nr);
    }
}

lc_status lc_cpu_matmul_experts(lc_backend *be, const lc_weight *w, float *out, const float *x,
                                bool x_per_pair, const int32_t *ids, int n_tok, int k_per_tok) {
    lc_cpu *c = cpu_of(be);
    int n_pairs = n_tok * k_per_tok, n_exp = (int)w->n_expert;
    size_t n_items_max = (size_t)n_exp + (size_t)n_pairs / TOK_CHUNK + 1;
    /* one allocation: counts (n_exp + 1), order, src (n_pairs each), items */
    size_t bytes = sizeof(int32_t) * ((size_t)n_exp + 1 + 2 * (size_t)n_pairs) + sizeof(moe_item) * n_items_max;
    int32_t *cnt = lc_malloc(bytes);
    if (!cnt) return LC_ERR_OOM;
    int32_t *order = cnt + n_exp + 1, *src = order + n_pairs;
    moe_item *items = (moe_item *)(src + n_pairs);
    lc_status st = LC_OK;
    memset(cnt, 0, sizeof(int32_t) * ((size_t)n_exp + 1));
    for (int p = 0; p < n_pairs; p++) {
        if (ids[p] < 0 || ids[p] >= n_exp) {
            st = lc_fail(LC_ERR_INVALID, "expert id %d out of range (0..%d)", ids[p], n_exp - 1);
            goto done;
        }
        cnt[ids[p] + 1]++;
    }
    for (int e = 0; e < n_exp; e++) cnt[e + 1] += cnt[e]; /* cnt[e] = first sorted index of e */
    int n_items = 0;
    for (int e = 0; e < n_exp; e++)
        for (int i0 = cnt[e]; i0 < cnt[e + 1]; i0 += TOK_CHUNK)
            items[n_items++] = (moe_item){e, i0, LC_MIN(i0 + TOK_CHUNK, cnt[e + 1]), cnt[e + 1] - cnt[e]};
    for (int p = 0; p < n_pairs; p++) { /* stable counting sort (cnt[e] advances to cnt[e + 1]) */
        int i = cnt[ids[p]]++;
        order[i] = p;
        src[i] = x_per_pair ? p : p / k_per_tok;
    }
    int64_t rc = row_chunk(c, w->rows * (n_tok == 1 ? k_per_tok : 1), true);
    if (!lc_cpu_tscratch(c, (size_t)TOK_CHUNK * (size_t)rc)) {
        st = LC_ERR_OOM;
        goto done;
    }
    moe_job j;
    memset(&j, 0, sizeof j);
    j.c = c;
    j.w = w;
    j.out = out;
    j.order = order;
    j.items = items;
    j.row_chunk = rc;
    j.rchunks = (w->rows + rc - 1) / rc;
    j.n_chunks = (int64_t)n_items * j.rchunks;
    int cols = (int)w->cols;
    st = convert(c, lc_type_get(w->type)->vec_dot_type, x, (size_t)cols, src, n_pairs, cols, &j.xq, &j.xq_stride);
    if (st) goto done;
    atomic_store(&j.next, 0);
    lc_cpu_run(c, moe_worker, &j, (size_t)n_pairs * (size_t)w->rows * (size_t)cols);
done:
    lc_free(cnt);
    return st;
}
