/* quant_mix.h — llama.cpp's quantization mixes: which type each tensor of a model gets for a
 * file type such as Q4_K_M (the rules of llama.cpp's llama_tensor_get_type without an importance
 * matrix), so `locara quantize` picks the same types as `llama-quantize`.
 * Pure functions of tensor names and shapes; file reading and writing is the caller's (cli).
 */
#ifndef LC_QUANT_MIX_H
#define LC_QUANT_MIX_H

#include "quant.h"

/* A target file type: its name ("Q4_K_M"), llama.cpp's LLAMA_FTYPE number, base tensor type. */
typedef struct lc_ftype {
    const char *name;
    int ftype;
    lc_type base;
} lc_ftype;

/* The file type by name (case-insensitive), or NULL. */
const lc_ftype *lc_ftype_from_name(const char *name);
/* All supported file types (for usage messages); *n gets the count. */
const lc_ftype *lc_ftype_list(int *n);

/* What the mix needs to know about the model, plus the per-kind counters the rules walk. */
typedef struct lc_quant_mix {
    const lc_ftype *ft;
    bool has_output;   /* the model has output.weight (else token_embd doubles as output) */
    bool falcon;       /* general.architecture == "falcon" */
    int n_gqa;         /* head_count / head_count_kv (1 when unknown) */
    int n_expert;      /* expert_count (0 or 1: dense) */
    int n_layer;       /* block_count */
    int n_attn_v;      /* tensors named *attn_v.weight */
    int i_attn_v, i_ffn_down, i_ffn_gate, i_ffn_up; /* counters, start at 0 */
} lc_quant_mix;

/* Whether llama.cpp would quantize this tensor at all (2-D+ weights, not norms or routers). */
bool lc_quant_mix_wants(const char *name, int n_dims);
/* The type for the next tensor in file order (call once per quantized tensor, in order: the
 * counters advance). Applies llama.cpp's fallback when ne0 is not a multiple of the block. */
lc_type lc_quant_mix_pick(lc_quant_mix *m, const char *name, int64_t ne0);

#endif
