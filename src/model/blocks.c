/* blocks.c — the shared decoder forward every llama-family architecture runs through backend
 * ops: embeddings, then per layer attention (GQA, optional Q/K/V biases and per-head Q/K norms,
 * RoPE, paged-KV attention) and a SwiGLU FFN (dense, or top-k routed experts), then the final
 * norm and the output projection for the tokens whose logits are wanted.
 *
 * Only ops are called here: no loops over activations, no intrinsics (STYLE: three layers).
 */
#include "model.h"

#include "model/dump.h"

#include <math.h>

#define OPS (be->ops)
/* LOCARA_DUMP hook (dump.h): dp is NULL unless the variable is set. */
#define DUMP(name, il, x, rows, cols) \
    do { \
        if (dp) lc_dump_tensor(dp, be, name, il, x, rows, cols); \
    } while (0)
#define F32(w) ((const float *)((w).dev ? (w).dev : (w).data))

/* Attention block of layer il: x (T, E) -> bufs->h (T, E) = Wo @ attention(rope(q), rope(k), v).
 * The layer's K/V are layer kl of kv (the stage's own numbering). */
static lc_status attention_block(const lc_model *m, lc_backend *be, lc_kv *kv, lc_fwd_bufs *B,
                                 const lc_fwd_batch *b, int il, int kl, lc_dump *dp) {
    const lc_hparams *hp = &m->hp;
    const lc_layer *L = &m->layers[il];
    int T = b->n_tokens, D = hp->head_dim;
    lc_status st;
    int NQ = hp->n_head * D, NK = hp->n_head_kv * D;
    OPS->rms_norm(be, B->h, B->x, F32(L->attn_norm), T, hp->n_embd, hp->norm_eps);
    DUMP("attn_norm", il, B->h, T, hp->n_embd);
    const lc_weight *w[3] = {&L->wq, &L->wk, &L->wv};
    float *o[3] = {B->q, B->k, B->v};
    if ((st = OPS->matmul(be, 3, w, o, B->h, T))) return st;
    if (L->bq.data) {
        OPS->add_bias(be, B->q, F32(L->bq), T, hp->n_head * D);
        OPS->add_bias(be, B->k, F32(L->bk), T, hp->n_head_kv * D);
        OPS->add_bias(be, B->v, F32(L->bv), T, hp->n_head_kv * D);
    }
    DUMP("q", il, B->q, T, NQ);
    DUMP("k", il, B->k, T, NK);
    DUMP("v", il, B->v, T, NK);
    if (L->q_norm.data) { /* per-head RMS norm: rows of head_dim */
        OPS->rms_norm(be, B->q, B->q, F32(L->q_norm), T * hp->n_head, D, hp->norm_eps);
        OPS->rms_norm(be, B->k, B->k, F32(L->k_norm), T * hp->n_head_kv, D, hp->norm_eps);
        DUMP("q_norm", il, B->q, T, NQ);
        DUMP("k_norm", il, B->k, T, NK);
    }
    OPS->rope(be, B->q, b->attn.pos, T, hp->n_head, D, &hp->rope);
    OPS->rope(be, B->k, b->attn.pos, T, hp->n_head_kv, D, &hp->rope);
    DUMP("q_rope", il, B->q, T, NQ);
    DUMP("k_rope", il, B->k, T, NK);
    OPS->kv_store(be, kv, kl, B->k, B->v, &b->attn);
    OPS->attention(be, B->attn, B->q, kv, kl, &b->attn, hp->n_head, 1.0f / sqrtf((float)D));
    DUMP("kqv_out", il, B->attn, T, NQ);
    const lc_weight *wo[1] = {&L->wo};
    float *oo[1] = {B->h};
    if ((st = OPS->matmul(be, 1, wo, oo, B->attn, T))) return st;
    DUMP("attn_out", il, B->h, T, hp->n_embd);
    return LC_OK;
}

/* Dense SwiGLU FFN: h (T, E) (already normed) -> h = Wdown @ (silu(Wgate h) * Wup h). */
static lc_status dense_ffn(const lc_model *m, lc_backend *be, lc_fwd_bufs *B, int T, const lc_layer *L, int il,
                           lc_dump *dp) {
    lc_status st;
    int F = m->hp.n_ff;
    const lc_weight *w[2] = {&L->ffn_gate, &L->ffn_up};
    float *o[2] = {B->gate, B->up};
    if ((st = OPS->matmul(be, 2, w, o, B->h, T))) return st;
    DUMP("ffn_gate", il, B->gate, T, F);
    DUMP("ffn_up", il, B->up, T, F);
    OPS->swiglu(be, B->gate, B->gate, B->up, (size_t)T * (size_t)F);
    DUMP("ffn_swiglu", il, B->gate, T, F);
    const lc_weight *wd[1] = {&L->ffn_down};
    float *od[1] = {B->h};
    return OPS->matmul(be, 1, wd, od, B->gate, T);
}

/* Routed-expert FFN: each token's top-k experts run their SwiGLU on it; the outputs are
 * combined with the routing weights. */
static lc_status moe_ffn(const lc_model *m, lc_backend *be, lc_fwd_bufs *B, int T, const lc_layer *L) {
    const lc_hparams *hp = &m->hp;
    int k = hp->n_expert_used;
    lc_status st;
    const lc_weight *wr[1] = {&L->ffn_gate_inp};
    float *orr[1] = {B->router};
    if ((st = OPS->matmul(be, 1, wr, orr, B->h, T))) return st;
    OPS->moe_route(be, B->router, T, hp->n_expert, k, hp->expert_norm, B->route_ids, B->route_w);
    if ((st = OPS->matmul_experts(be, &L->ffn_gate_exps, B->moe_gate, B->h, false, B->route_ids, T, k)) ||
        (st = OPS->matmul_experts(be, &L->ffn_up_exps, B->moe_up, B->h, false, B->route_ids, T, k)))
        return st;
    OPS->swiglu(be, B->moe_gate, B->moe_gate, B->moe_up, (size_t)T * (size_t)k * (size_t)hp->n_ff_exp);
    if ((st = OPS->matmul_experts(be, &L->ffn_down_exps, B->moe_out, B->moe_gate, true, B->route_ids, T, k)))
        return st;
    OPS->moe_combine(be, B->h, B->moe_out, B->route_w, T, k, hp->n_embd);
    return LC_OK;
}

lc_status lc_forward_decoder(const lc_model *m, const lc_exec *ex, const lc_fwd_batch *b) {
    const lc_hparams *hp = &m->hp;
    int T = b->n_tokens, E = hp->n_embd;
    lc_status st;
    lc_backend *be = ex->stage[0].be;
    lc_fwd_bufs *B = ex->stage[0].bufs;
    lc_dump *dp = ex->dump;
    OPS->get_rows(be, B->x, &m->tok_embd, b->tokens, T);
    DUMP("embd", -1, B->x, T, E);
    for (int s = 0; s < ex->n_stages; s++) {
        const lc_stage *S = &ex->stage[s];
        if (s > 0) { /* the residual stream moves to the next stage's backend */
            OPS->to_host(be, ex->host_x, B->x, (size_t)T * E);
            S->be->ops->from_host(S->be, S->bufs->x, ex->host_x, (size_t)T * E);
        }
        be = S->be;
        B = S->bufs;
        for (int il = S->il0; il < S->il1; il++) {
            const lc_layer *L = &m->layers[il];
            if ((st = attention_block(m, be, S->kv, B, b, il, il - S->il0, dp))) return st;
            OPS->add(be, B->x, B->h, (size_t)T * E);
            DUMP("ffn_inp", il, B->x, T, E);
            OPS->rms_norm(be, B->h, B->x, F32(L->ffn_norm), T, E, hp->norm_eps);
            DUMP("ffn_norm", il, B->h, T, E);
            st = hp->n_expert ? moe_ffn(m, be, B, T, L) : dense_ffn(m, be, B, T, L, il, dp);
            if (st) return st;
            DUMP("ffn_out", il, B->h, T, E);
            OPS->add(be, B->x, B->h, (size_t)T * E);
            DUMP("l_out", il, B->x, T, E);
        }
    }
    if (b->n_out == 0) return LC_OK;
    OPS->gather(be, B->out_rows, B->x, b->out_idx, b->n_out, E);
    OPS->rms_norm(be, B->out_rows, B->out_rows, F32(m->output_norm), b->n_out, E, hp->norm_eps);
    DUMP("result_norm", -1, B->out_rows, b->n_out, E);
    const lc_weight *wo[1] = {&m->output};
    float *oo[1] = {B->logits};
    st = OPS->matmul(be, 1, wo, oo, B->out_rows, b->n_out);
    if (!st) DUMP("result_output", -1, B->logits, b->n_out, (int)m->output.rows);
    return st;
}
