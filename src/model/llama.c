/* llama.c — the `llama` architecture (Llama 2/3.x, SmolLM2, Mistral 7B, TinyLlama): the
 * standard pre-norm decoder with GQA, normal (interleaved-pair) RoPE, optional Llama-3 rope
 * factors and optional tied output. */
#include "model.h"

static lc_status bind(lc_model *m) {
    m->hp.rope.neox = false;
    return lc_bind_llama_layers(m, false, false, m->hp.n_expert > 0);
}

const lc_arch lc_arch_llama = {"llama", bind, lc_forward_decoder};
