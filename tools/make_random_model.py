#!/usr/bin/env python3
"""make_random_model.py — writes small (or benchmark-size) random-weight GGUF models.

Owns: the architectures Locara's golden tests check against llama.cpp (llama, llama with Llama-3
rope_freqs, llama with a separate output.weight, qwen2 with QKV biases, qwen3 with Q/K norms,
qwen3moe with 3-D expert tensors) and two benchmark shapes (--shape llama-1b, qwen3moe-small).
Weights come from a counter-based hash (splitmix64 of seed, tensor name and element index), so a
model is a pure function of (arch, shape, seed) on every numpy version. Tokenizer: SmolLM2's GPT-2
BPE reduced to its first 512 tokens (merges kept when both sides and the result survive), or for
benchmark shapes its full 49152 tokens padded with unused tokens to the shape's vocab size.
Not here: quantization (use `locara quantize`), real weights.

  make_random_model.py --arch llama --seed 1 OUT.gguf
  make_random_model.py --shape llama-1b --dtype f16 OUT.gguf
"""
import argparse
import hashlib
import os
import sys

import numpy as np
import gguf

SMOLLM2 = os.path.expanduser(
    os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "locara/models/SmolLM2-135M-Instruct-Q4_1.gguf"))

# name: (gguf arch, variant flags)
ARCHES = {
    "llama": ("llama", {}),
    "llama-ropefreqs": ("llama", {"rope_freqs": True}),
    "llama-output": ("llama", {"output": True}),
    "qwen2": ("qwen2", {"qkv_bias": True}),
    "qwen3": ("qwen3", {"qk_norm": True}),
    "qwen3moe": ("qwen3moe", {"qk_norm": True, "moe": True}),
}

TINY = dict(n_embd=256, n_layer=3, n_head=4, n_head_kv=2, head_dim=64, n_ff=512, n_vocab=512,
            n_expert=8, n_expert_used=2, n_ff_exp=256, n_ctx=2048)
SHAPES = {
    "llama-1b": ("llama", {"rope_freqs": True},
                 dict(n_embd=2048, n_layer=16, n_head=32, n_head_kv=8, head_dim=64, n_ff=8192,
                      n_vocab=128256, n_ctx=8192)),
    "qwen3moe-small": ("qwen3moe", {"qk_norm": True, "moe": True},
                       dict(n_embd=1024, n_layer=8, n_head=16, n_head_kv=4, head_dim=64, n_ff=2048,
                            n_vocab=151936, n_expert=32, n_expert_used=4, n_ff_exp=512, n_ctx=8192)),
}

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix(x):
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def uniform(seed, name, shape, std, mean=0.0):
    """float32 array of `shape`, uniform with the given mean and standard deviation. Element i
    is a function of (seed, name, i) only: 24 high bits of splitmix64(key + i)."""
    key = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float32)
    half = np.float32(std * np.sqrt(3.0))
    step = 1 << 24
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        with np.errstate(over="ignore"):
            idx = np.arange(lo, hi, dtype=np.uint64) + np.uint64(key)
        u = (splitmix(idx) >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24))
        out[lo:hi] = (u * np.float32(2.0) - np.float32(1.0)) * half + np.float32(mean)
    return out.reshape(shape)


def llama3_rope_freqs(head_dim, base, factor=8.0, low=1.0, high=4.0, orig_ctx=8192):
    """Llama-3.1 style frequency divisors, one per rotated pair (what rope_freqs.weight holds)."""
    out = []
    low_wl, high_wl = orig_ctx / low, orig_ctx / high
    for i in range(0, head_dim, 2):
        freq = 1.0 / (base ** (i / head_dim))
        wl = 2 * np.pi / freq
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (orig_ctx / wl - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def load_tokenizer(n_vocab):
    """Tokens, types and merges from SmolLM2's GGUF, cut to n_vocab (< 49152) or padded to it."""
    if not os.path.exists(SMOLLM2):
        sys.exit(f"make_random_model: need the default model for its tokenizer: {SMOLLM2} "
                 "(run scripts/fetch-model.sh)")
    r = gguf.GGUFReader(SMOLLM2)
    toks = list(r.fields["tokenizer.ggml.tokens"].contents())
    types = list(r.fields["tokenizer.ggml.token_type"].contents())
    merges = list(r.fields["tokenizer.ggml.merges"].contents())
    if n_vocab <= len(toks):
        toks, types = toks[:n_vocab], types[:n_vocab]
        have = set(toks)
        kept = []
        for m in merges:
            a, b = m.split(" ", 1)
            if a in have and b in have and a + b in have:
                kept.append(m)
        merges = kept
    else:
        pad = n_vocab - len(toks)
        toks += [f"<|unused_{i}|>" for i in range(pad)]
        types += [int(gguf.TokenType.UNUSED)] * pad
    return toks, types, merges



def add_tokenizer(w, n_vocab):
    """Writes SmolLM2's tokenizer, padded to n_vocab, and its special ids into GGUF writer w."""
    toks, types, merges = load_tokenizer(n_vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)

def build(arch_name, flags, hp, seed, dtype, out):
    """Writes one model. dtype: f32, f16 or bf16 for the 2-D/3-D weights (norms stay F32)."""
    arch = arch_name
    E, L, H, KV, D = hp["n_embd"], hp["n_layer"], hp["n_head"], hp["n_head_kv"], hp["head_dim"]
    F, V = hp["n_ff"], hp["n_vocab"]
    moe = flags.get("moe", False)
    base = 500000.0 if arch == "llama" else 1000000.0
    w = gguf.GGUFWriter(out, arch)
    w.add_name(f"random-{arch_name}-seed{seed}")
    w.add_block_count(L)
    w.add_context_length(hp["n_ctx"])
    w.add_embedding_length(E)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(D)
    w.add_value_length(D)
    w.add_rope_dimension_count(D)
    w.add_rope_freq_base(base)
    w.add_layer_norm_rms_eps(1e-6 if arch != "llama" else 1e-5)
    w.add_vocab_size(V)
    if moe:
        w.add_expert_count(hp["n_expert"])
        w.add_expert_used_count(hp["n_expert_used"])
        w.add_expert_feed_forward_length(hp["n_ff_exp"])
    w.add_file_type({"f32": 0, "f16": 1, "bf16": 32}[dtype])
    add_tokenizer(w, V)

    def weight(name, shape, std):
        a = uniform(seed, name, shape, std)
        if dtype == "f16":
            w.add_tensor(name, a.astype(np.float16))
        elif dtype == "bf16":
            bits = a.view(np.uint32)
            # round to nearest even, as ggml's fp32->bf16 does for finite values
            with np.errstate(over="ignore"):
                r = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
                     >> np.uint32(16)).astype(np.uint16)
            w.add_tensor(name, r, raw_shape=shape, raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            w.add_tensor(name, a)

    def norm(name, n):
        w.add_tensor(name, uniform(seed, name, (n,), 0.1, mean=1.0))

    def bias(name, n):
        w.add_tensor(name, uniform(seed, name, (n,), 0.2))

    # numpy shape (rows, cols) is GGUF ne (cols, rows): cols = input length.
    weight("token_embd.weight", (V, E), 0.125)
    if flags.get("rope_freqs"):
        w.add_tensor("rope_freqs.weight", llama3_rope_freqs(D, base))
    qk = 1.3 / np.sqrt(E)  # q, k elements ~1.3: attention scores with std ~1.7 (peaked, not one-hot)
    for i in range(L):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight", E)
        weight(p + "attn_q.weight", (H * D, E), qk)
        weight(p + "attn_k.weight", (KV * D, E), qk)
        weight(p + "attn_v.weight", (KV * D, E), 1.0 / np.sqrt(E))
        weight(p + "attn_output.weight", (E, H * D), 1.0 / np.sqrt(H * D))
        if flags.get("qkv_bias"):
            bias(p + "attn_q.bias", H * D)
            bias(p + "attn_k.bias", KV * D)
            bias(p + "attn_v.bias", KV * D)
        if flags.get("qk_norm"):
            norm(p + "attn_q_norm.weight", D)
            norm(p + "attn_k_norm.weight", D)
        norm(p + "ffn_norm.weight", E)
        if moe:
            X, FE = hp["n_expert"], hp["n_ff_exp"]
            # router logits with std ~4: the chosen experts win by clear margins, so tiny numeric
            # differences between engines do not flip the routing (which would swamp the comparison)
            w.add_tensor(p + "ffn_gate_inp.weight", uniform(seed, p + "ffn_gate_inp.weight", (X, E), 4.0 / np.sqrt(E)))
            weight(p + "ffn_gate_exps.weight", (X, FE, E), 1.0 / np.sqrt(E))
            weight(p + "ffn_up_exps.weight", (X, FE, E), 1.0 / np.sqrt(E))
            weight(p + "ffn_down_exps.weight", (X, E, FE), 1.0 / np.sqrt(FE))
        else:
            weight(p + "ffn_gate.weight", (F, E), 1.0 / np.sqrt(E))
            weight(p + "ffn_up.weight", (F, E), 1.0 / np.sqrt(E))
            weight(p + "ffn_down.weight", (E, F), 1.0 / np.sqrt(F))
    norm("output_norm.weight", E)
    if flags.get("output"):
        weight("output.weight", (V, E), 0.125)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--arch", choices=sorted(ARCHES), default="llama")
    ap.add_argument("--shape", choices=sorted(SHAPES), help="benchmark-size model (overrides --arch)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default=None,
                    help="weight type (default f32 for tiny models, f16 for --shape)")
    a = ap.parse_args()
    if a.shape:
        arch, flags, hp = SHAPES[a.shape]
        dtype = a.dtype or "f16"
    else:
        arch, flags = ARCHES[a.arch]
        hp = TINY
        dtype = a.dtype or "f32"
    build(arch, flags, hp, a.seed, dtype, a.out)


if __name__ == "__main__":
    main()
