#!/usr/bin/env python3
"""make_template.py — metadata-only GGUF templates for the CUDA benchmark models.

Owns: the hyperparameters of the two shapes the CUDA issue measures (Llama-3.1-8B and
Qwen3-30B-A3B) and their tokenizer (SmolLM2's, padded to the vocab size, through
tools/make_random_model.py). The file holds key-values only; bench/cuda/make_model.c reads it on
the GPU machine and writes the random quantized tensors (a 30B f16 intermediate would not fit).

  make_template.py llama8b OUT.gguf      make_template.py qwen3moe30b OUT.gguf
"""
import os
import sys

import gguf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
from make_random_model import add_tokenizer  # noqa: E402

SHAPES = {
    "llama8b": ("llama", dict(n_embd=4096, n_layer=32, n_head=32, n_head_kv=8, head_dim=128, n_ff=14336,
                              n_vocab=128256, n_ctx=131072, base=500000.0, eps=1e-5)),
    "qwen3moe30b": ("qwen3moe", dict(n_embd=2048, n_layer=48, n_head=32, n_head_kv=4, head_dim=128, n_ff=6144,
                                     n_vocab=151936, n_ctx=40960, base=1000000.0, eps=1e-6,
                                     n_expert=128, n_expert_used=8, n_ff_exp=768)),
}


def main():
    shape, out = sys.argv[1], sys.argv[2]
    arch, hp = SHAPES[shape]
    w = gguf.GGUFWriter(out, arch)
    w.add_name(f"random-{shape}")
    w.add_block_count(hp["n_layer"])
    w.add_context_length(hp["n_ctx"])
    w.add_embedding_length(hp["n_embd"])
    w.add_feed_forward_length(hp["n_ff"])
    w.add_head_count(hp["n_head"])
    w.add_head_count_kv(hp["n_head_kv"])
    w.add_key_length(hp["head_dim"])
    w.add_value_length(hp["head_dim"])
    w.add_rope_dimension_count(hp["head_dim"])
    w.add_rope_freq_base(hp["base"])
    w.add_layer_norm_rms_eps(hp["eps"])
    w.add_vocab_size(hp["n_vocab"])
    if "n_expert" in hp:
        w.add_expert_count(hp["n_expert"])
        w.add_expert_used_count(hp["n_expert_used"])
        w.add_expert_feed_forward_length(hp["n_ff_exp"])
    w.add_file_type(15)  # MOSTLY_Q4_K_M
    add_tokenizer(w, hp["n_vocab"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
