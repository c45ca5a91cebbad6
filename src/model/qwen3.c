/* qwen3.c — the `qwen3` architecture: the llama decoder with per-head RMS norms on Q and K
 * (before RoPE) and NeoX RoPE. */
#include "model.h"

static lc_status bind(lc_model *m) {
    m->hp.rope.neox = true;
    return lc_bind_llama_layers(m, false, true, false);
}

const lc_arch lc_arch_qwen3 = {"qwen3", bind, lc_forward_decoder};
