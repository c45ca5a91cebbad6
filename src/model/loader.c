/* loader.c — lc_model_load: GGUF -> hparams -> architecture binding -> tokenizer, and the
 * public model accessors of locara.h.
 *
 * Common hyperparameters are read here for every architecture from "<arch>.*" keys, with the
 * same defaults llama.cpp uses when a key is absent; tensors are bound as views into the file
 * mapping and their shapes checked against the hyperparameters, so a mismatched file fails at
 * load with the tensor's name instead of computing garbage.
 */
#include "model.h"

#include "text/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

lc_model_params lc_model_params_default(void) {
    lc_model_params p = {.n_gpu_layers = -1};
    return p;
}

static bool get_int(const lc_gguf *g, const char *arch, const char *suffix, int *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    if (!lc_gguf_get_i64(g, key, &v)) {
        /* some converters write per-layer arrays (e.g. head_count_kv); take the first */
        const lc_gguf_value *a = lc_gguf_get(g, key);
        if (!a || a->type != LC_GGUF_ARRAY || a->arr.n == 0 || a->arr.elem == LC_GGUF_STRING ||
            a->arr.elem == LC_GGUF_ARRAY)
            return false;
        v = lc_gguf_arr_i64(a, 0);
    }
    if (v < 0 || v > (1 << 30)) return false;
    *out = (int)v;
    return true;
}

static bool get_float(const lc_gguf *g, const char *arch, const char *suffix, float *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double v;
    if (!lc_gguf_get_f64(g, key, &v)) return false;
    *out = (float)v;
    return true;
}

static lc_status need_int(const lc_gguf *g, const char *arch, const char *suffix, int *out) {
    if (!get_int(g, arch, suffix, out))
        return lc_fail(LC_ERR_FORMAT, "missing or invalid metadata %s.%s", arch, suffix);
    return LC_OK;
}

static lc_status read_hparams(lc_model *m) {
    lc_hparams *hp = &m->hp;
    const lc_gguf *g = m->gguf;
    const char *a = hp->arch;
    lc_status st;
    if ((st = need_int(g, a, "embedding_length", &hp->n_embd)) || (st = need_int(g, a, "block_count", &hp->n_layer)) ||
        (st = need_int(g, a, "attention.head_count", &hp->n_head)))
        return st;
    if (hp->n_layer < 1 || hp->n_layer > LC_MAX_LAYERS)
        return lc_fail(LC_ERR_FORMAT, "%s.block_count %d is out of range", a, hp->n_layer);
    if (hp->n_head < 1 || hp->n_embd < 1) return lc_fail(LC_ERR_FORMAT, "head count and embedding length must be positive");
    hp->n_head_kv = hp->n_head;
    get_int(g, a, "attention.head_count_kv", &hp->n_head_kv);
    if (hp->n_head_kv < 1 || hp->n_head % hp->n_head_kv)
        return lc_fail(LC_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    get_int(g, a, "attention.key_length", &hp->head_dim);
    int vlen = hp->head_dim;
    get_int(g, a, "attention.value_length", &vlen);
    if (vlen != hp->head_dim) return lc_fail(LC_ERR_UNSUPPORTED, "key length %d != value length %d", hp->head_dim, vlen);
    if (hp->head_dim < 2 || hp->head_dim > 1024 || hp->head_dim % 2)
        return lc_fail(LC_ERR_FORMAT, "head dimension %d is out of range", hp->head_dim);
    hp->n_ctx_train = 4096;
    get_int(g, a, "context_length", &hp->n_ctx_train);
    hp->n_ff = 0;
    get_int(g, a, "feed_forward_length", &hp->n_ff);
    get_int(g, a, "expert_count", &hp->n_expert);
    get_int(g, a, "expert_used_count", &hp->n_expert_used);
    hp->n_ff_exp = hp->n_ff;
    get_int(g, a, "expert_feed_forward_length", &hp->n_ff_exp);
    if (hp->n_expert && (hp->n_expert_used < 1 || hp->n_expert_used > hp->n_expert))
        return lc_fail(LC_ERR_FORMAT, "expert_used_count %d is out of range (1..%d)", hp->n_expert_used, hp->n_expert);
    hp->norm_eps = 1e-5f;
    get_float(g, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps);
    hp->rope.n_dims = hp->head_dim;
    get_int(g, a, "rope.dimension_count", &hp->rope.n_dims);
    if (hp->rope.n_dims > hp->head_dim || hp->rope.n_dims % 2)
        return lc_fail(LC_ERR_FORMAT, "rope dimension %d does not fit head dimension %d", hp->rope.n_dims, hp->head_dim);
    hp->rope.freq_base = 10000.0f;
    get_float(g, a, "rope.freq_base", &hp->rope.freq_base);
    hp->rope.freq_scale = 1.0f;
    char key[160], stype[32] = "";
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    lc_gguf_get_str(g, key, stype, sizeof stype);
    float factor = 0;
    if (get_float(g, a, "rope.scaling.factor", &factor) && factor > 0) {
        if (!strcmp(stype, "linear") || stype[0] == 0) hp->rope.freq_scale = 1.0f / factor;
        else if (strcmp(stype, "none") != 0)
            return lc_fail(LC_ERR_UNSUPPORTED, "rope scaling type '%s' is not supported", stype);
    } else if (get_float(g, a, "rope.scale_linear", &factor) && factor > 0) {
        hp->rope.freq_scale = 1.0f / factor;
    }
    return LC_OK;
}

lc_status lc_bind(lc_model *m, lc_weight *w, const char *name, int64_t cols, int64_t rows,
                  int64_t n_expert, bool required) {
    memset(w, 0, sizeof *w);
    const lc_gguf_tensor *t = lc_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (required) return lc_fail(LC_ERR_FORMAT, "missing tensor %s", name);
        return LC_OK;
    }
    if (t->ne[0] != cols || (rows && t->ne[1] != rows) || (n_expert && t->ne[2] != n_expert) || t->ne[3] != 1)
        return lc_fail(LC_ERR_FORMAT, "tensor %s has shape [%lld, %lld, %lld], expected [%lld, %lld, %lld]", name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)cols,
                       (long long)rows, (long long)n_expert);
    const lc_type_info *ti = lc_type_get(t->type);
    if (!ti->compute || !ti->to_float)
        return lc_fail(LC_ERR_UNSUPPORTED, "tensor %s has type %s, which this build cannot compute", name, ti->name);
    w->type = t->type;
    w->cols = t->ne[0];
    w->rows = t->ne[1];
    w->n_expert = t->ne[2];
    w->row_bytes = lc_type_row_size(t->type, t->ne[0]);
    w->expert_bytes = w->row_bytes * (size_t)w->rows;
    w->data = t->data;
    m->weight_bytes += t->size;
    return LC_OK;
}

lc_status lc_bind_llama_layers(lc_model *m, bool biases, bool qk_norm, bool moe) {
    const lc_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, D = hp->head_dim, Hq = (int64_t)hp->n_head * D, Hkv = (int64_t)hp->n_head_kv * D;
    lc_status st;
    char name[128];
#define B(field, fmt, cols, rows, nexp, req)                                   \
    do {                                                                       \
        snprintf(name, sizeof name, fmt, il);                                  \
        if ((st = lc_bind(m, &L->field, name, cols, rows, nexp, req))) return st; \
    } while (0)
    for (int il = 0; il < hp->n_layer; il++) {
        lc_layer *L = &m->layers[il];
        B(attn_norm, "blk.%d.attn_norm.weight", E, 0, 0, true);
        B(wq, "blk.%d.attn_q.weight", E, Hq, 0, true);
        B(wk, "blk.%d.attn_k.weight", E, Hkv, 0, true);
        B(wv, "blk.%d.attn_v.weight", E, Hkv, 0, true);
        B(wo, "blk.%d.attn_output.weight", Hq, E, 0, true);
        B(bq, "blk.%d.attn_q.bias", Hq, 0, 0, biases);
        B(bk, "blk.%d.attn_k.bias", Hkv, 0, 0, biases);
        B(bv, "blk.%d.attn_v.bias", Hkv, 0, 0, biases);
        if (qk_norm) {
            B(q_norm, "blk.%d.attn_q_norm.weight", D, 0, 0, true);
            B(k_norm, "blk.%d.attn_k_norm.weight", D, 0, 0, true);
        }
        B(ffn_norm, "blk.%d.ffn_norm.weight", E, 0, 0, true);
        if (moe) {
            B(ffn_gate_inp, "blk.%d.ffn_gate_inp.weight", E, hp->n_expert, 0, true);
            B(ffn_gate_exps, "blk.%d.ffn_gate_exps.weight", E, hp->n_ff_exp, hp->n_expert, true);
            B(ffn_up_exps, "blk.%d.ffn_up_exps.weight", E, hp->n_ff_exp, hp->n_expert, true);
            B(ffn_down_exps, "blk.%d.ffn_down_exps.weight", hp->n_ff_exp, E, hp->n_expert, true);
        } else {
            B(ffn_gate, "blk.%d.ffn_gate.weight", E, hp->n_ff, 0, true);
            B(ffn_up, "blk.%d.ffn_up.weight", E, hp->n_ff, 0, true);
            B(ffn_down, "blk.%d.ffn_down.weight", hp->n_ff, E, 0, true);
        }
        /* norms and biases are read as floats by every backend */
        const lc_weight *f32s[] = {&L->attn_norm, &L->ffn_norm, &L->q_norm, &L->k_norm, &L->bq, &L->bk, &L->bv};
        for (size_t i = 0; i < LC_ARRAY_LEN(f32s); i++)
            if (f32s[i]->data && f32s[i]->type != LC_TYPE_F32)
                return lc_fail(LC_ERR_UNSUPPORTED, "layer %d: norm/bias tensors must be f32 (got %s)", il,
                               lc_type_name(f32s[i]->type));
    }
#undef B
    return LC_OK;
}

static lc_status bind_common(lc_model *m) {
    lc_hparams *hp = &m->hp;
    lc_status st;
    const lc_gguf_tensor *emb = lc_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb) return lc_fail(LC_ERR_FORMAT, "missing tensor token_embd.weight");
    hp->n_vocab = (int)emb->ne[1];
    if ((st = lc_bind(m, &m->tok_embd, "token_embd.weight", hp->n_embd, 0, 0, true))) return st;
    if ((st = lc_bind(m, &m->output_norm, "output_norm.weight", hp->n_embd, 0, 0, true))) return st;
    if ((st = lc_bind(m, &m->output, "output.weight", hp->n_embd, hp->n_vocab, 0, false))) return st;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    if ((st = lc_bind(m, &m->rope_freqs, "rope_freqs.weight", hp->rope.n_dims / 2, 0, 0, false))) return st;
    if (m->rope_freqs.data) {
        if (m->rope_freqs.type != LC_TYPE_F32) return lc_fail(LC_ERR_UNSUPPORTED, "rope_freqs.weight must be f32");
        hp->rope.freq_factors = m->rope_freqs.data;
    }
    if (m->output_norm.type != LC_TYPE_F32) return lc_fail(LC_ERR_UNSUPPORTED, "output_norm.weight must be f32");
    return LC_OK;
}

lc_status lc_model_load(const char *path, lc_model_params params, lc_model **out) {
    *out = NULL;
    lc_model *m = lc_calloc(1, sizeof *m);
    if (!m) return LC_ERR_OOM;
    m->n_gpu_layers = params.n_gpu_layers; /* used by lc_context_create */
    lc_status st = lc_gguf_open(path, &m->gguf);
    if (st) { /* its errors name the file already */
        lc_model_free(m);
        return st;
    }
    if (!lc_gguf_get_str(m->gguf, "general.architecture", m->hp.arch, sizeof m->hp.arch)) {
        st = lc_fail(LC_ERR_FORMAT, "missing general.architecture");
        goto fail;
    }
    m->arch = lc_arch_find(m->hp.arch);
    if (!m->arch) {
        st = lc_fail(LC_ERR_UNSUPPORTED, "architecture '%s' is not supported (llama, qwen2, qwen3, qwen3moe are)", m->hp.arch);
        goto fail;
    }
    if ((st = read_hparams(m))) goto fail;
    m->layers = lc_calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) {
        st = LC_ERR_OOM;
        goto fail;
    }
    if ((st = bind_common(m)) || (st = m->arch->bind(m))) goto fail;
    if ((st = lc_tok_load(m->gguf, &m->tok))) goto fail;
    if (lc_tok_n_vocab(m->tok) > m->hp.n_vocab) {
        st = lc_fail(LC_ERR_FORMAT, "tokenizer has %d tokens but the embedding only %d rows", lc_tok_n_vocab(m->tok), m->hp.n_vocab);
        goto fail;
    }
    *out = m;
    return LC_OK;
fail:
    lc_fail_wrap(st, "%s: ", path);
    lc_model_free(m);
    return st;
}

void lc_model_free(lc_model *m) {
    if (!m) return;
    lc_tok_free(m->tok);
    lc_free(m->layers);
    lc_gguf_close(m->gguf);
    lc_free(m);
}

int lc_model_stage_weights(const lc_model *m, int il0, int il1, const lc_weight **out) {
    int n = 0;
#define ADD(w)                                                                 \
    do {                                                                       \
        const lc_weight *w_ = (w);                                             \
        bool seen = !w_->data;                                                 \
        for (int k = 0; k < n && !seen; k++) seen = out[k]->data == w_->data;  \
        if (!seen) out[n++] = w_;                                              \
    } while (0)
    if (il0 == 0) ADD(&m->tok_embd);
    if (il1 == m->hp.n_layer) {
        ADD(&m->output_norm);
        ADD(&m->output);
    }
    ADD(&m->rope_freqs);
    for (int il = il0; il < il1; il++) {
        const lc_layer *L = &m->layers[il];
        const lc_weight *all[LC_LAYER_WEIGHTS] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->bq,
                                                  &L->bk, &L->bv, &L->q_norm, &L->k_norm, &L->ffn_norm,
                                                  &L->ffn_gate, &L->ffn_up, &L->ffn_down, &L->ffn_gate_inp,
                                                  &L->ffn_gate_exps, &L->ffn_up_exps, &L->ffn_down_exps};
        for (int i = 0; i < LC_LAYER_WEIGHTS; i++) ADD(all[i]);
    }
#undef ADD
    return n;
}

int lc_model_n_vocab(const lc_model *m) { return m->hp.n_vocab; }
int lc_model_n_ctx_train(const lc_model *m) { return m->hp.n_ctx_train; }
const char *lc_model_arch(const lc_model *m) { return m->hp.arch; }
