/* qwen3moe.c — the `qwen3moe` architecture (Qwen3-30B-A3B): qwen3 attention (Q/K norms, NeoX
 * RoPE) with a top-k routed expert FFN (softmax gating, weights renormalised over the chosen k). */
#include "model.h"

static lc_status bind(lc_model *m) {
    m->hp.rope.neox = true;
    m->hp.expert_norm = true;
    if (m->hp.n_expert < 1) return lc_fail(LC_ERR_FORMAT, "qwen3moe.expert_count is missing");
    return lc_bind_llama_layers(m, false, true, true);
}

const lc_arch lc_arch_qwen3moe = {"qwen3moe", bind, lc_forward_decoder};
