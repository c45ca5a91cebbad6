/* cpu.c — the CPU backend: its op table, scratch management and the element-wise ops (norms,
 * RoPE, SwiGLU, adds, embedding rows, MoE routing). Matrix products are in matmul.c and
 * attention over the paged KV cache in attn.c. Ops split rows across the thread pool when the
 * work is large enough to pay for the wake-up.
 */
#include "cpu_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PARALLEL_MIN_WORK 32768 /* elements below which an op runs on the calling thread */

void lc_cpu_run(lc_cpu *c, lc_pool_fn fn, void *arg, size_t work) {
    if (c->n_threads == 1 || work < PARALLEL_MIN_WORK) fn(arg, 0, 1);
    else lc_pool_run(c->pool, fn, arg);
}

bool lc_cpu_qbuf(lc_cpu *c, size_t n) {
    if (n <= c->qbuf_size) return true;
    uint8_t *p = lc_malloc_aligned(n);
    if (!p) return false;
    lc_free_aligned(c->qbuf);
    c->qbuf = p;
    c->qbuf_size = n;
    return true;
}

bool lc_cpu_tscratch(lc_cpu *c, size_t n) {
    if (n <= c->tscratch_per_thread) return true;
    n = (n + 15) / 16 * 16;
    float *p = lc_malloc_aligned(n * sizeof(float) * (size_t)c->n_threads);
    if (!p) return false;
    lc_free_aligned(c->tscratch);
    c->tscratch = p;
    c->tscratch_per_thread = n;
    return true;
}

static float *cpu_alloc(lc_backend *be, size_t n) {
    (void)be;
    float *p = lc_malloc_aligned((n ? n : 1) * sizeof(float));
    if (p) memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

static void cpu_free(lc_backend *be, float *p) {
    (void)be;
    lc_free_aligned(p);
}

static void cpu_to_host(lc_backend *be, float *dst, const float *src, size_t n) {
    (void)be;
    memcpy(dst, src, n * sizeof(float));
}

static lc_status cpu_kv_alloc(lc_backend *be, lc_kv *kv) {
    (void)be;
    if (kv->block_tokens != LC_ATTN_BT) /* the attention kernels walk whole blocks of LC_ATTN_BT keys */
        return lc_fail(LC_ERR_UNSUPPORTED, "the CPU backend's KV cache blocks hold %d tokens (asked for %d)", LC_ATTN_BT,
                       kv->block_tokens);
    size_t per_layer = kv->row_bytes * (size_t)kv->block_tokens * (size_t)kv->n_blocks;
    kv->k = lc_calloc((size_t)kv->n_layer, sizeof *kv->k);
    kv->v = lc_calloc((size_t)kv->n_layer, sizeof *kv->v);
    if (!kv->k || !kv->v) return LC_ERR_OOM;
    for (int il = 0; il < kv->n_layer; il++) {
        kv->k[il] = lc_malloc_aligned(per_layer);
        kv->v[il] = lc_malloc_aligned(per_layer);
        if (!kv->k[il] || !kv->v[il]) return lc_fail(LC_ERR_OOM, "cannot allocate the KV cache (%zu bytes per layer)", 2 * per_layer);
        /* touch every page now: the cache is reserved memory, so it shows in RSS from the start
         * (what fit predicts) and an overcommitted system fails here, not mid-generation */
        memset(kv->k[il], 0, per_layer);
        memset(kv->v[il], 0, per_layer);
    }
    return LC_OK;
}

static void cpu_kv_free(lc_backend *be, lc_kv *kv) {
    (void)be;
    for (int il = 0; kv->k && il < kv->n_layer; il++) {
        lc_free_aligned(kv->k[il]);
        lc_free_aligned(kv->v[il]);
    }
    lc_free(kv->k);
    lc_free(kv->v);
    kv->k = kv->v = NULL;
}

static void cpu_kv_copy_block(lc_backend *be, lc_kv *kv, int dst, int src, int n_rows) {
    (void)be;
    size_t bb = kv->row_bytes * (size_t)kv->block_tokens, n = kv->row_bytes * (size_t)n_rows;
    for (int il = 0; il < kv->n_layer; il++) {
        memcpy(kv->k[il] + (size_t)dst * bb, kv->k[il] + (size_t)src * bb, n);
        memcpy(kv->v[il] + (size_t)dst * bb, kv->v[il] + (size_t)src * bb, n);
    }
}

/* Returns the whole pages inside block b of every layer to the kernel (they read back as zero). */
static void cpu_kv_discard_block(lc_backend *be, lc_kv *kv, int b) {
    (void)be;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), bb = kv->row_bytes * (size_t)kv->block_tokens;
    for (int il = 0; il < kv->n_layer; il++) {
        uint8_t *pools[2] = {kv->k[il], kv->v[il]};
        for (int p = 0; p < 2; p++) {
            uintptr_t lo = (uintptr_t)(pools[p] + (size_t)b * bb), hi = lo + bb;
            lo = (lo + page - 1) / page * page;
            hi = hi / page * page;
            if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
    }
}

/* ==== RMS norm ==== */

typedef struct norm_job {
    lc_cpu *c;
    float *out;
    const float *x, *g;
    int n_rows, n;
    float eps;
} norm_job;

static void norm_worker(void *arg, int ith, int nth) {
    norm_job *j = arg;
    int64_t lo, hi;
    lc_split(j->n_rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * j->n;
        float *o = j->out + r * j->n;
        /* ggml's rms_norm arithmetic: the mean rounded to float, 1/sqrt in float, then
         * (x * scale) * g rounded twice (a norm and a separate multiply there). Its outputs
         * feed int8 activation quantizers, where a last-bit difference can move a rounding. */
        float mean = (float)(j->c->vec->sumsq(j->n, x) / j->n);
        float scale = 1.0f / sqrtf(mean + j->eps);
        if (j->g) {
            for (int i = 0; i < j->n; i++) o[i] = x[i] * scale * j->g[i];
        } else {
            for (int i = 0; i < j->n; i++) o[i] = x[i] * scale;
        }
    }
}

static void cpu_rms_norm(lc_backend *be, float *out, const float *x, const float *g, int n_rows, int n, float eps) {
    norm_job j = {cpu_of(be), out, x, g, n_rows, n, eps};
    lc_cpu_run(j.c, norm_worker, &j, (size_t)n_rows * (size_t)n);
}

/* ==== RoPE ==== */

typedef struct rope_job {
    float *x;
    const int32_t *pos;
    int n_tok, n_head, head_dim;
    const lc_rope *r;
    const lc_vec_ops *vec;
} rope_job;

static void rope_worker(void *arg, int ith, int nth) {
    rope_job *j = arg;
    const lc_rope *r = j->r;
    int half = r->n_dims / 2;
    float cs[512], sn[512]; /* head_dim <= 1024 is checked at load */
    int64_t lo, hi;
    lc_split(j->n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        lc_rope_angles(r, j->pos[t], cs, sn);
        for (int h = 0; h < j->n_head; h++) {
            j->vec->rope(half, r->neox, cs, sn, j->x + ((size_t)t * j->n_head + h) * j->head_dim);
        }
    }
}

static void cpu_rope(lc_backend *be, float *x, const int32_t *pos, int n_tok, int n_head, int head_dim, const lc_rope *r) {
    rope_job j = {x, pos, n_tok, n_head, head_dim, r, cpu_of(be)->vec};
    lc_cpu_run(cpu_of(be), rope_worker, &j, (size_t)n_tok * (size_t)n_head * (size_t)head_dim * 4);
}

/* ==== Element-wise ==== */

typedef struct ew_job {
    lc_cpu *c;
    float *out;
    const float *a, *b;
    size_t n;
    int op; /* 0 swiglu, 1 add */
} ew_job;

static void ew_worker(void *arg, int ith, int nth) {
    ew_job *j = arg;
    int64_t lo, hi;
    lc_split((int64_t)j->n, ith, nth, &lo, &hi);
    if (j->op == 0) {
        j->c->vec->swiglu((int)(hi - lo), j->a + lo, j->b + lo, j->out + lo);
    } else {
        for (int64_t i = lo; i < hi; i++) j->out[i] += j->b[i];
    }
}

static void cpu_swiglu(lc_backend *be, float *out, const float *gate, const float *up, size_t n) {
    ew_job j = {cpu_of(be), out, gate, up, n, 0};
    lc_cpu_run(j.c, ew_worker, &j, n * 8);
}

static void cpu_add(lc_backend *be, float *x, const float *y, size_t n) {
    ew_job j = {cpu_of(be), x, x, y, n, 1};
    lc_cpu_run(j.c, ew_worker, &j, n);
}

static void cpu_add_bias(lc_backend *be, float *x, const float *b, int n_rows, int n) {
    (void)be;
    for (int r = 0; r < n_rows; r++)
        for (int i = 0; i < n; i++) x[(size_t)r * n + i] += b[i];
}

static void cpu_get_rows(lc_backend *be, float *out, const lc_weight *w, const int32_t *ids, int n) {
    const lc_type_info *ti = lc_type_get(w->type);
    lc_to_float_fn tf = cpu_of(be)->kern->to_float[w->type] ? cpu_of(be)->kern->to_float[w->type] : ti->to_float;
    for (int i = 0; i < n; i++)
        tf((const uint8_t *)w->data + (size_t)ids[i] * w->row_bytes, out + (size_t)i * w->cols, w->cols);
}

static void cpu_gather(lc_backend *be, float *out, const float *x, const int32_t *idx, int n_rows, int n) {
    (void)be;
    for (int i = 0; i < n_rows; i++) memmove(out + (size_t)i * n, x + (size_t)idx[i] * n, (size_t)n * sizeof(float));
}

/* ==== MoE routing ==== */

static void cpu_moe_route(lc_backend *be, const float *logits, int n_tok, int n_expert, int k, bool norm,
                          int32_t *ids, float *weights) {
    (void)be;
    for (int t = 0; t < n_tok; t++) {
        const float *l = logits + (size_t)t * n_expert;
        float mx = -INFINITY;
        for (int e = 0; e < n_expert; e++) mx = l[e] > mx ? l[e] : mx;
        double sum = 0;
        for (int e = 0; e < n_expert; e++) sum += exp((double)(l[e] - mx));
        int32_t *id = ids + (size_t)t * k;
        float *w = weights + (size_t)t * k;
        /* top-k by selection (k is small): ties go to the lower expert id */
        for (int s = 0; s < k; s++) {
            int best = -1;
            for (int e = 0; e < n_expert; e++) {
                bool taken = false;
                for (int q = 0; q < s; q++) taken |= id[q] == e;
                if (!taken && (best < 0 || l[e] > l[best])) best = e;
            }
            id[s] = best;
            w[s] = (float)(exp((double)(l[best] - mx)) / sum);
        }
        if (norm) {
            float tot = 0;
            for (int s = 0; s < k; s++) tot += w[s];
            for (int s = 0; s < k; s++) w[s] /= tot;
        }
    }
}

static void cpu_moe_combine(lc_backend *be, float *out, const float *y, const float *weights, int n_tok, int k, int n) {
    (void)be;
    for (int t = 0; t < n_tok; t++) {
        float *o = out + (size_t)t * n;
        for (int i = 0; i < n; i++) o[i] = 0;
        for (int s = 0; s < k; s++) {
            const float *yy = y + ((size_t)t * k + s) * n;
            float w = weights[(size_t)t * k + s];
            for (int i = 0; i < n; i++) o[i] += w * yy[i];
        }
    }
}

static const lc_backend_ops cpu_ops = {
    .version = LC_BACKEND_VERSION,
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .kv_alloc = cpu_kv_alloc,
    .kv_free = cpu_kv_free,
    .kv_copy_block = cpu_kv_copy_block,
    .kv_discard_block = cpu_kv_discard_block,
    .to_host = cpu_to_host,
    .matmul = lc_cpu_matmul,
    .matmul_experts = lc_cpu_matmul_experts,
    .rms_norm = cpu_rms_norm,
    .rope = cpu_rope,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .add_bias = cpu_add_bias,
    .get_rows = cpu_get_rows,
    .kv_store = lc_cpu_kv_store,
    .attention = lc_cpu_attention,
    .moe_route = cpu_moe_route,
    .moe_combine = cpu_moe_combine,
    .gather = cpu_gather,
    .from_host = cpu_to_host, /* host memory either way */
};

lc_status lc_backend_cpu_create(int n_threads, lc_backend **out) {
    *out = NULL;
    if (n_threads <= 0) n_threads = lc_cpu_physical_cores();
    lc_backend *be = lc_calloc(1, sizeof *be);
    lc_cpu *c = lc_calloc(1, sizeof *c);
    if (!be || !c) {
        lc_free(be);
        lc_free(c);
        return LC_ERR_OOM;
    }
    c->n_threads = n_threads;
    c->kern = lc_kernels_best();
    c->vec = lc_vec_best();
    const char *attn = getenv("LOCARA_CPU_ATTN");
    c->attn_mode = !attn || !*attn || !strcmp(attn, "auto") ? LC_CPU_ATTN_AUTO
                   : !strcmp(attn, "ggml")                 ? LC_CPU_ATTN_GGML
                   : !strcmp(attn, "online")               ? LC_CPU_ATTN_ONLINE
                                                           : LC_CPU_ATTN_AUTO;
    const char *gemm = getenv("LOCARA_CPU_GEMM");
    bool exact = gemm && !strcmp(gemm, "exact");
    for (int t = 0; t < LC_TYPE_COUNT; t++)
        c->gemm[t] = exact && c->kern->gemm_exact[t] ? c->kern->gemm_exact[t] : c->kern->gemm[t];
    lc_status st = lc_pool_create(n_threads, &c->pool);
    if (st) {
        lc_free(be);
        lc_free(c);
        return st;
    }
    be->ops = &cpu_ops;
    be->impl = c;
    *out = be;
    return LC_OK;
}

void lc_backend_cpu_free(lc_backend *be) {
    if (!be) return;
    lc_cpu *c = cpu_of(be);
    lc_pool_free(c->pool);
    lc_free_aligned(c->qbuf);
    lc_free_aligned(c->tscratch);
    lc_free(c);
    lc_free(be);
}

