/* context.c — lc_context and lc_decode: a model bound to a backend, a paged KV cache and the
 * scratch activations of one batch.
 *
 * lc_decode validates a batch (ids in the vocabulary, sequences in range, positions continuing
 * each sequence's cache), reserves cache blocks, runs the architecture's forward, and commits
 * the tokens to the cache (which indexes full blocks for prefix reuse). The logits of the
 * tokens that asked for them are copied to a host buffer that grows on demand.
 */
#include "engine/context.h"
#include "model/dump.h"

#include "backend/cuda/cuda_backend.h"

#include <stdlib.h>
#include <string.h>

lc_context_params lc_context_params_default(void) {
    lc_context_params p = {.n_ctx = 4096, .n_batch = 512, .n_seq_max = 1, .n_threads = 0, .kv_type = LC_KV_F16};
    return p;
}

static void free_bufs(lc_backend *be, lc_fwd_bufs *B) {
    float **all[] = {&B->x, &B->h, &B->q, &B->k, &B->v, &B->attn, &B->gate, &B->up, &B->router, &B->route_w,
                     &B->moe_x, &B->moe_gate, &B->moe_up, &B->moe_out, &B->out_rows, &B->logits};
    for (size_t i = 0; i < LC_ARRAY_LEN(all); i++) {
        if (*all[i]) be->ops->free(be, *all[i]);
        *all[i] = NULL;
    }
    lc_free(B->route_ids);
    B->route_ids = NULL;
}

static void free_backend(lc_backend *be) {
    if (!be) return;
    if (strcmp(be->ops->name, "cuda") == 0) lc_backend_cuda_free(be);
    else lc_backend_cpu_free(be);
}

/* The stage that computes the logits (and owns the output buffers). */
static lc_stage *last_stage(lc_context *ctx) { return &ctx->exec.stage[ctx->exec.n_stages - 1]; }

/* Scratch sizes for a batch of T tokens (floats), shared with fit's memory math. */
size_t lc_context_scratch_floats(const lc_hparams *hp, int T, int n_out) {
    size_t E = (size_t)hp->n_embd, Hq = (size_t)hp->n_head * hp->head_dim, Hkv = (size_t)hp->n_head_kv * hp->head_dim;
    size_t n = (size_t)T * (2 * E + 2 * Hq + 2 * Hkv + 2 * (size_t)hp->n_ff);
    if (hp->n_expert) {
        size_t k = (size_t)hp->n_expert_used;
        n += (size_t)T * ((size_t)hp->n_expert + k + 2 * k * (size_t)hp->n_ff_exp + k * E);
    }
    n += (size_t)n_out * (E + (size_t)hp->n_vocab);
    return n;
}

/* One stage's scratch on its backend; the output rows and logits only on the last stage. */
static lc_status alloc_bufs(lc_context *ctx, lc_backend *be, lc_fwd_bufs *B, bool last) {
    const lc_hparams *hp = &ctx->model->hp;
    size_t T = (size_t)ctx->params.n_batch, E = (size_t)hp->n_embd;
    size_t Hq = (size_t)hp->n_head * hp->head_dim, Hkv = (size_t)hp->n_head_kv * hp->head_dim;
#define A(field, n)                                   \
    do {                                              \
        if (!(B->field = be->ops->alloc(be, (n)))) return LC_ERR_OOM; \
    } while (0)
    A(x, T * E);
    A(h, T * E);
    A(q, T * Hq);
    A(k, T * Hkv);
    A(v, T * Hkv);
    A(attn, T * Hq);
    if (hp->n_ff) {
        A(gate, T * (size_t)hp->n_ff);
        A(up, T * (size_t)hp->n_ff);
    }
    if (hp->n_expert) {
        size_t k = (size_t)hp->n_expert_used;
        A(router, T * (size_t)hp->n_expert);
        A(route_w, T * k);
        A(moe_gate, T * k * (size_t)hp->n_ff_exp);
        A(moe_up, T * k * (size_t)hp->n_ff_exp);
        A(moe_out, T * k * E);
        B->route_ids = lc_malloc(T * k * sizeof(int32_t));
        if (!B->route_ids) return LC_ERR_OOM;
    }
    if (last) {
        ctx->out_cap = ctx->params.n_seq_max;
        A(out_rows, (size_t)ctx->out_cap * E);
        A(logits, (size_t)ctx->out_cap * (size_t)hp->n_vocab);
    }
#undef A
    return LC_OK;
}

/* Host memory the last stage's to_host copies into (backend.h's host_alloc). */
static float *host_alloc(lc_backend *be, size_t n) {
    return be->ops->host_alloc ? be->ops->host_alloc(be, n) : lc_malloc(n * sizeof(float));
}

static void host_free(lc_backend *be, float *p, size_t n) {
    if (be->ops->host_free) be->ops->host_free(be, p, n);
    else lc_free(p);
}

/* Grows the output buffers (backend and host) to hold n rows of logits. */
static lc_status grow_outputs(lc_context *ctx, int n) {
    if (n <= ctx->out_cap && n <= ctx->host_cap) return LC_OK;
    const lc_hparams *hp = &ctx->model->hp;
    lc_backend *be = last_stage(ctx)->be;
    lc_fwd_bufs *B = last_stage(ctx)->bufs;
    int cap = LC_MAX(n, ctx->out_cap);
    if (cap > ctx->out_cap) {
        float *o = be->ops->alloc(be, (size_t)cap * hp->n_embd);
        float *l = be->ops->alloc(be, (size_t)cap * hp->n_vocab);
        if (!o || !l) {
            if (o) be->ops->free(be, o);
            if (l) be->ops->free(be, l);
            return LC_ERR_OOM;
        }
        be->ops->free(be, B->out_rows);
        be->ops->free(be, B->logits);
        B->out_rows = o;
        B->logits = l;
        ctx->out_cap = cap;
    }
    if (cap > ctx->host_cap) {
        float *hl = host_alloc(be, (size_t)cap * hp->n_vocab);
        if (!hl) return LC_ERR_OOM;
        if (ctx->host_logits) host_free(be, ctx->host_logits, (size_t)ctx->host_cap * hp->n_vocab);
        ctx->host_logits = hl;
        ctx->host_cap = cap;
    }
    return LC_OK;
}

/* Normalises params and checks what every backend needs. */
static lc_status check_params(const lc_model *model, lc_context_params *params) {
    const lc_hparams *hp = &model->hp;
    if (params->n_ctx <= 0) params->n_ctx = hp->n_ctx_train;
    if (params->n_batch <= 0) params->n_batch = 512;
    if (params->n_seq_max <= 0) params->n_seq_max = 1;
    if (params->n_batch > params->n_ctx) params->n_batch = params->n_ctx;
    if (hp->head_dim % 8)
        return lc_fail(LC_ERR_UNSUPPORTED, "head dimension %d is not a multiple of 8 (the attention tiles need it)", hp->head_dim);
    return LC_OK;
}

lc_status lc_context_create_staged(lc_model *model, lc_context_params params, lc_backend *const *be,
                                   const int *n_layers, int n_stages, lc_context **out) {
    *out = NULL;
    const lc_hparams *hp = &model->hp;
    lc_status st = check_params(model, &params);
    int total = 0;
    for (int s = 0; s < n_stages && n_stages <= LC_MAX_STAGES; s++) total += n_layers[s];
    if (!st && (n_stages < 1 || n_stages > LC_MAX_STAGES || total != hp->n_layer))
        st = lc_fail(LC_ERR_INVALID, "a forward plan of %d stages covering %d of %d layers", n_stages, total, hp->n_layer);
    lc_context *ctx = st ? NULL : lc_calloc(1, sizeof *ctx);
    if (!ctx) {
        for (int s = 0; s < n_stages && s < LC_MAX_STAGES; s++) free_backend(be[s]);
        return st ? st : LC_ERR_OOM;
    }
    ctx->model = model;
    ctx->params = params;
    lc_kvc_part parts[LC_MAX_STAGES];
    ctx->exec.n_stages = n_stages;
    for (int s = 0, il = 0; s < n_stages; il += n_layers[s], s++) {
        ctx->exec.stage[s] = (lc_stage){.be = be[s], .bufs = &ctx->bufs[s], .il0 = il, .il1 = il + n_layers[s]};
        parts[s] = (lc_kvc_part){be[s], n_layers[s]};
    }
    if ((st = lc_kvc_create_parts(parts, n_stages, hp->n_head_kv, hp->head_dim, (lc_type)params.kv_type,
                                  params.n_ctx, params.n_seq_max, &ctx->kvc)))
        goto fail;
    for (int s = 0; s < n_stages; s++) {
        ctx->exec.stage[s].kv = lc_kvc_store(ctx->kvc, s);
        if ((st = alloc_bufs(ctx, be[s], &ctx->bufs[s], s == n_stages - 1))) goto fail;
    }
    if ((st = grow_outputs(ctx, params.n_seq_max))) goto fail;
    /* batch bookkeeping arrays, one allocation; and the residual stream's crossing between stages */
    size_t T = (size_t)params.n_batch;
    ctx->slots = lc_malloc(T * (2 * sizeof(int32_t) + sizeof(int32_t *)));
    if (n_stages > 1) ctx->exec.host_x = lc_malloc(T * (size_t)hp->n_embd * sizeof(float));
    if (!ctx->slots || (n_stages > 1 && !ctx->exec.host_x)) {
        st = LC_ERR_OOM;
        goto fail;
    }
    ctx->exec.dump = lc_dump_begin(); /* NULL unless LOCARA_DUMP is set */
    ctx->out_idx = ctx->slots + T;
    ctx->tables = (const int32_t **)(ctx->out_idx + T);
    *out = ctx;
    return LC_OK;
fail:
    lc_context_free(ctx);
    return st;
}

int lc_context_gpu_layers(const lc_model *m, int n_gpu_layers) {
    int L = m->hp.n_layer;
    const char *dev = getenv("LOCARA_DEVICE");
    if (n_gpu_layers == 0 || (dev && strcmp(dev, "cpu") == 0) || lc_cuda_device_count() <= 0) return 0;
    return n_gpu_layers < 0 || n_gpu_layers > L ? L : n_gpu_layers;
}

/* The forward plan: the last n_gpu_layers layers (all when negative or beyond the model, which
 * also puts the embeddings and output there) on the CUDA backend when a device is present and
 * LOCARA_DEVICE is not "cpu", the rest on the CPU backend. */
lc_status lc_context_create(lc_model *model, lc_context_params params, lc_context **out) {
    *out = NULL;
    lc_status st = check_params(model, &params);
    if (st) return st;
    int L = model->hp.n_layer, ngl = lc_context_gpu_layers(model, model->n_gpu_layers);
    lc_backend *be[LC_MAX_STAGES] = {NULL, NULL};
    int n_layers[LC_MAX_STAGES], n = 0;
    if (ngl < L) {
        if ((st = lc_backend_cpu_create(params.n_threads, &be[n]))) return st;
        n_layers[n++] = L - ngl;
    }
    if (ngl > 0) {
        if ((st = lc_backend_cuda_create(model, L - ngl, L, &be[n]))) {
            free_backend(be[0]);
            return st;
        }
        n_layers[n++] = ngl;
    }
    return lc_context_create_staged(model, params, be, n_layers, n, out);
}

void lc_context_free(lc_context *ctx) {
    if (!ctx) return;
    for (int s = 0; s < ctx->exec.n_stages; s++) free_bufs(ctx->exec.stage[s].be, &ctx->bufs[s]);
    if (ctx->host_logits) host_free(last_stage(ctx)->be, ctx->host_logits, (size_t)ctx->host_cap * ctx->model->hp.n_vocab);
    lc_kvc_free(ctx->kvc);
    for (int s = 0; s < ctx->exec.n_stages; s++) free_backend(ctx->exec.stage[s].be);
    lc_free(ctx->exec.host_x);
    lc_dump_end(ctx->exec.dump);
    lc_free(ctx->slots);
    lc_free(ctx);
}

/* Runs the architecture's forward inside each stage backend's step brackets (a CUDA backend
 * replays the step from a graph, or records one). A backend that could not run the step from a
 * graph asks for it again (it then records it, or runs its ops directly): the forward only
 * rewrites what it wrote, activations and this batch's cache rows. */
static lc_status run_forward(lc_context *ctx, const lc_fwd_batch *fb) {
    const lc_model *m = ctx->model;
    const lc_exec *ex = &ctx->exec;
    lc_status st = LC_OK;
    for (int pass = 0; pass < 3; pass++) {
        for (int s = 0; s < ex->n_stages; s++)
            if (ex->stage[s].be->ops->step_begin) ex->stage[s].be->ops->step_begin(ex->stage[s].be, fb->n_tokens);
        st = m->arch->forward(m, ex, fb);
        bool redo = false;
        for (int s = 0; s < ex->n_stages; s++) {
            lc_backend *be = ex->stage[s].be;
            bool r = false;
            if (!be->ops->step_end) continue;
            lc_status e = be->ops->step_end(be, st == LC_OK, &r);
            redo |= r;
            if (!st && !r) st = e;
        }
        if (!redo) return st;
    }
    return m->arch->forward(m, ex, fb); /* unbracketed: direct launches */
}

lc_status lc_decode(lc_context *ctx, const lc_batch *b) {
    const lc_model *m = ctx->model;
    int T = b->n_tokens;
    ctx->n_outputs = 0;
    if (T <= 0) return lc_fail(LC_ERR_INVALID, "empty batch");
    if (T > ctx->params.n_batch)
        return lc_fail(LC_ERR_INVALID, "batch of %d tokens exceeds n_batch %d", T, ctx->params.n_batch);
    int n_seq = ctx->params.n_seq_max;
    /* validate, and count each sequence's new tokens */
    int32_t *seq_new = lc_calloc((size_t)n_seq, sizeof *seq_new);
    if (!seq_new) return LC_ERR_OOM;
    lc_status st = LC_OK;
    int n_out = 0;
    for (int i = 0; i < T && st == LC_OK; i++) {
        int s = b->seq_id[i];
        if (b->tokens[i] < 0 || b->tokens[i] >= m->hp.n_vocab)
            st = lc_fail(LC_ERR_INVALID, "token %d at batch index %d is outside the vocabulary (%d)", b->tokens[i], i, m->hp.n_vocab);
        else if (s < 0 || s >= n_seq)
            st = lc_fail(LC_ERR_INVALID, "sequence id %d is out of range (n_seq_max %d)", s, n_seq);
        else if (b->pos[i] != lc_kvc_seq_len(ctx->kvc, s) + seq_new[s])
            st = lc_fail(LC_ERR_INVALID, "token %d of sequence %d has position %d, expected %d", i, s, b->pos[i],
                         lc_kvc_seq_len(ctx->kvc, s) + seq_new[s]);
        else if (b->pos[i] >= ctx->params.n_ctx)
            st = lc_fail(LC_ERR_RANGE, "position %d is beyond the context size %d", b->pos[i], ctx->params.n_ctx);
        else
            seq_new[s]++;
        if (!b->want_logits || b->want_logits[i]) ctx->out_idx[n_out++] = i;
    }
    for (int s = 0; s < n_seq && st == LC_OK; s++)
        if (seq_new[s]) st = lc_kvc_seq_reserve(ctx->kvc, s, seq_new[s]);
    lc_free(seq_new);
    if (st) return st;
    if ((st = grow_outputs(ctx, n_out))) return st;
    for (int i = 0; i < T; i++) {
        ctx->slots[i] = lc_kvc_slot(ctx->kvc, b->seq_id[i], b->pos[i]);
        ctx->tables[i] = lc_kvc_table(ctx->kvc, b->seq_id[i]);
    }
    lc_fwd_batch fb = {
        .n_tokens = T,
        .tokens = b->tokens,
        .attn = {.n_tokens = T, .pos = b->pos, .seq = b->seq_id, .slot = ctx->slots, .block_table = ctx->tables},
        .n_out = n_out,
        .out_idx = ctx->out_idx,
    };
    st = run_forward(ctx, &fb);
    /* commit what was written even on failure? No: a failed forward leaves garbage rows, so
     * positions are not advanced and the caller may retry or truncate. */
    if (st) return st;
    for (int i = 0; i < T; i++) lc_kvc_seq_commit(ctx->kvc, b->seq_id[i], &b->tokens[i], 1);
    lc_backend *be = last_stage(ctx)->be;
    be->ops->to_host(be, ctx->host_logits, last_stage(ctx)->bufs->logits, (size_t)n_out * m->hp.n_vocab);
    ctx->n_outputs = n_out;
    return LC_OK;
}

const float *lc_get_logits(lc_context *ctx, int i) {
    if (i < 0 || i >= ctx->n_outputs) return NULL;
    return ctx->host_logits + (size_t)i * ctx->model->hp.n_vocab;
}

lc_status lc_seq_truncate(lc_context *ctx, int32_t seq, int32_t p0) {
    if (seq < 0 || seq >= ctx->params.n_seq_max) return lc_fail(LC_ERR_INVALID, "sequence id %d is out of range", seq);
    return lc_kvc_seq_truncate(ctx->kvc, seq, p0);
}
