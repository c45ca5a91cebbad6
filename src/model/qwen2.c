/* qwen2.c — the `qwen2` architecture: the llama decoder with Q/K/V biases and NeoX RoPE. */
#include "model.h"

static lc_status bind(lc_model *m) {
    m->hp.rope.neox = true;
    return lc_bind_llama_layers(m, true, false, false);
}

const lc_arch lc_arch_qwen2 = {"qwen2", bind, lc_forward_decoder};
