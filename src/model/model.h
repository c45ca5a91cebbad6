/* model.h — a loaded model: hyperparameters, bound weights, tokenizer, and the architecture
 * registry.
 *
 * Every hyperparameter comes from GGUF metadata ("<arch>.block_count", ...); tensors are bound
 * by name ("blk.%d.attn_q.weight", ...) to lc_weight views into the file mapping. One file per
 * architecture (llama.c, qwen3.c, ...) exports a `const lc_arch` listed in registry.c; the shared
 * blocks (attention, FFN, MoE) live in blocks.c. Entry points: lc_model_load (locara.h),
 * lc_arch_find, lc_model_forward.
 */
#ifndef LC_MODEL_H
#define LC_MODEL_H

#include "backend/backend.h"
#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_tok lc_tok; /* text/tokenizer.h */

#define LC_MAX_LAYERS 512

typedef struct lc_hparams {
    char arch[32];
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;        /* key/value length per head */
    int n_ff;            /* dense FFN width */
    int n_expert;        /* 0 for dense models */
    int n_expert_used;
    int n_ff_exp;        /* expert FFN width */
    bool expert_norm;    /* renormalise the top-k routing weights */
    float norm_eps;
    lc_rope rope;
} lc_hparams;

typedef struct lc_layer {
    lc_weight attn_norm, wq, wk, wv, wo;
    lc_weight bq, bk, bv;          /* biases (qwen2); data NULL when absent */
    lc_weight q_norm, k_norm;      /* per-head RMS norms (qwen3); data NULL when absent */
    lc_weight ffn_norm, ffn_gate, ffn_up, ffn_down;
    lc_weight ffn_gate_inp;        /* MoE router */
    lc_weight ffn_gate_exps, ffn_up_exps, ffn_down_exps;
} lc_layer;

struct lc_arch;

struct lc_model {
    lc_gguf *gguf;
    const struct lc_arch *arch;
    lc_hparams hp;
    lc_weight tok_embd, output_norm, output, rope_freqs;
    lc_layer *layers;
    lc_tok *tok;
    size_t weight_bytes;
    int n_gpu_layers;    /* lc_model_params: layers a GPU backend runs (-1 all, 0 none) */
};

/* Scratch activations of one forward call, sized for n_batch tokens (backend buffers). */
typedef struct lc_fwd_bufs {
    float *x, *h, *q, *k, *v, *attn, *gate, *up;
    float *router, *route_w, *moe_x, *moe_gate, *moe_up, *moe_out; /* MoE only */
    int32_t *route_ids;
    float *out_rows, *logits;
} lc_fwd_bufs;

/* What one forward needs to know about its batch. */
typedef struct lc_fwd_batch {
    int n_tokens;
    const int32_t *tokens;
    lc_attn_batch attn;
    int n_out;                 /* tokens whose logits are wanted */
    const int32_t *out_idx;    /* their indexes in the batch */
} lc_fwd_batch;

/* Where the forward runs: stages of consecutive layers, each on one backend with its own scratch
 * and KV storage (a model split across CPU and GPU has two; usually there is one). The first
 * stage also does the embeddings, the last the output; between stages the residual stream
 * crosses through host_x. */
#define LC_MAX_STAGES 2
typedef struct lc_stage {
    lc_backend *be;
    lc_kv *kv;            /* K/V of this stage's layers: its layer 0 is model layer il0 */
    lc_fwd_bufs *bufs;
    int il0, il1;         /* model layers [il0, il1) */
} lc_stage;

typedef struct lc_dump lc_dump; /* dump.h */

typedef struct lc_exec {
    int n_stages;
    lc_stage stage[LC_MAX_STAGES];
    float *host_x;        /* n_batch * n_embd floats (only with several stages) */
    lc_dump *dump;        /* LOCARA_DUMP's writer (dump.h); NULL unless the variable is set */
} lc_exec;

typedef struct lc_arch {
    const char *name;
    /* Reads architecture-specific hparams (beyond the common ones) and binds tensors. */
    lc_status (*bind)(lc_model *m);
    /* Runs the forward: embeddings -> layers -> logits of the n_out selected tokens. */
    lc_status (*forward)(const lc_model *m, const lc_exec *ex, const lc_fwd_batch *b);
} lc_arch;

const lc_arch *lc_arch_find(const char *name);

/* The model's tokenizer (owned by the model). */
const lc_tok *lc_model_tokenizer(const lc_model *model);

/* ==== Binding helpers (loader.c) ==== */

/* Binds tensor `name` into *w, checking its shape against (cols, rows, n_expert); rows or
 * n_expert of 0 skip that check. required=false leaves w zeroed when absent. */
lc_status lc_bind(lc_model *m, lc_weight *w, const char *name, int64_t cols, int64_t rows,
                  int64_t n_expert, bool required);
/* Binds the common llama-family layer tensors (attention, dense or MoE FFN). */
lc_status lc_bind_llama_layers(lc_model *m, bool biases, bool qk_norm, bool moe);

/* The weights a backend running layers [il0, il1) reads: the embeddings when il0 is 0, the final
 * norm and output when il1 is the last layer, the rope factors, and each layer's tensors; absent
 * ones are skipped and a tensor shared by two (tied embeddings) is listed once. out holds at
 * least LC_STAGE_WEIGHTS_MAX(il1 - il0). Returns how many were listed. (The CUDA backend uploads
 * this list; fit counts it.) */
#define LC_LAYER_WEIGHTS 18
#define LC_STAGE_WEIGHTS_MAX(n_layers) (4 + LC_LAYER_WEIGHTS * (n_layers))
int lc_model_stage_weights(const lc_model *m, int il0, int il1, const lc_weight **out);

/* ==== Shared blocks (blocks.c) ==== */

/* The standard pre-norm decoder: per layer attention (GQA, optional biases and q/k norms, RoPE)
 * and a SwiGLU FFN (dense or top-k MoE); final norm and output projection. */
lc_status lc_forward_decoder(const lc_model *m, const lc_exec *ex, const lc_fwd_batch *b);

#ifdef __cplusplus
}
#endif

#endif /* LC_MODEL_H */
