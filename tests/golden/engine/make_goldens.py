#!/usr/bin/env python3
"""make_goldens.py — asks llama.cpp (llama-cpp-python) for the engine goldens that
tests/unit/test_engine_golden.c compares Locara with.

Owns: (a) greedy.json: the default model (SmolLM2-135M-Instruct Q4_1) on 5 raw-text prompts, the
prompt ids and up to 128 greedy ids each (stopping at an end-of-generation token); (b) random/:
for every random architecture of tools/make_random_model.py and every file type, llama.cpp's
logits at all 16 positions of a fixed 16-token prompt, as little-endian f16 (16 x n_vocab), and
manifest.json with the seeds, types, file hashes and llama.cpp's settings.
The quantized models are made with `locara quantize` (what the C test uses too) when a locara
binary is given (--locara or $LOCARA_BIN); each is also made with llama.cpp's llama_model_quantize
and the two files' tensors are compared, so a quantizer disagreement shows up here.
Not here: building llama.cpp (pip install llama-cpp-python does that).

  /work/venv/py/bin/python tests/golden/engine/make_goldens.py --locara build/locara
"""
import argparse
import ctypes
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../.."))
GEN = os.path.join(ROOT, "tools/make_random_model.py")

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n",
    "Here are three tips for writing clear technical documentation:\n1.",
    "<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
]
N_GEN = 128

ARCHES = ["llama", "llama-ropefreqs", "llama-output", "qwen2", "qwen3", "qwen3moe"]
SEEDS = {a: 1 + i for i, a in enumerate(ARCHES)}
# file type name (as `locara quantize` takes it) -> llama.cpp's LLAMA_FTYPE number
FTYPES = [("F32", 0), ("F16", 1), ("BF16", 32), ("Q8_0", 7), ("Q4_0", 2), ("Q4_1", 3),
          ("Q5_0", 8), ("Q5_1", 9), ("Q2_K", 10), ("Q3_K_M", 12), ("Q4_K_M", 15), ("Q5_K_M", 17),
          ("Q6_K", 18)]
PROMPT_TEXT = "The quick brown fox jumps over the lazy dog, then"
N_POS = 16
N_THREADS = 2

# llama.cpp's AMX matmul (an "extra buffer type", picked on CPUs with AMX) segfaults in
# llama_decode on this machine for every quantized type; the plain ggml CPU kernels are the
# reference we want anyway, so every model is loaded with use_extra_bufts = false (this also
# turns off the REPACK layouts, whose numerics are the same as the plain kernels').
_default_model_params = llama_cpp.llama_cpp.llama_model_default_params


def _model_params():
    p = _default_model_params()
    p.use_extra_bufts = False
    return p


llama_cpp.llama_cpp.llama_model_default_params = _model_params


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def logits_row(llm, i):
    """A copy of the i-th logits row of the last llm.eval (-1: the last one)."""
    p = llama_cpp.llama_get_logits_ith(llm.ctx, i)
    return np.ctypeslib.as_array(p, shape=(llm.n_vocab(),)).astype(np.float32)


def llama_quantize(src, dst, ftype):
    """llama.cpp's quantizer with its default (non-pure) mix, no importance matrix."""
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = N_THREADS
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize {src} -> {dst} ftype {ftype} failed ({rc})")


def tensors_of(path):
    r = gguf.GGUFReader(path)
    return {t.name: (t.tensor_type.name, bytes(t.data.tobytes())) for t in r.tensors}


def compare_files(a, b):
    """'' if both GGUF files hold the same tensors (types and bytes), else what differs."""
    ta, tb = tensors_of(a), tensors_of(b)
    if set(ta) != set(tb):
        return f"tensor sets differ: {sorted(set(ta) ^ set(tb))[:4]}"
    diffs = []
    for n in sorted(ta):
        if ta[n][0] != tb[n][0]:
            diffs.append(f"{n}: type {ta[n][0]} vs {tb[n][0]}")
        elif ta[n][1] != tb[n][1]:
            x, y = np.frombuffer(ta[n][1], np.uint8), np.frombuffer(tb[n][1], np.uint8)
            diffs.append(f"{n} ({ta[n][0]}): {int((x != y).sum())} of {x.size} bytes differ")
    return "; ".join(diffs[:6]) + (f" (+{len(diffs) - 6} more)" if len(diffs) > 6 else "")


def settings():
    return {
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "flash_attn": False,  # llama-cpp-python's Llama() default
        "kv_cache": "f16 (default type_k/type_v)",
        "n_threads": N_THREADS,
        "use_extra_bufts": False,  # no AMX / REPACK buffers (AMX crashes here), plain ggml CPU kernels
    }


def greedy_goldens(model, out):
    """Part (a): raw prompts (BOS as the metadata says), greedy argmax loop with llm.eval."""
    llm = llama_cpp.Llama(model, n_ctx=1024, seed=0, verbose=False, n_threads=N_THREADS)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    cases = []
    for text in PROMPTS:
        llm.reset()
        ids = llm.tokenize(text.encode(), add_bos=True, special=True)
        llm.eval(ids)
        gen = []
        for _ in range(N_GEN):
            tok = int(np.argmax(logits_row(llm, -1)))
            gen.append(tok)
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                break
            llm.eval([tok])
        cases.append({"prompt": text, "prompt_ids": ids, "generated_ids": gen,
                      "text": llm.detokenize(gen).decode("utf-8", "replace")})
        print(f"greedy: {len(ids)} prompt ids, {len(gen)} generated: {cases[-1]['text'][:60]!r}")
    doc = {"model": os.path.basename(model), "model_sha256": sha256(model),
           "n_ctx": 1024, "seed": 0, "sampling": "greedy argmax of the last position's logits",
           "parse_special": True, "llama_cpp": settings(), "cases": cases}
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def random_goldens(locara, outdir, workdir, arches, types):
    """Part (b): logits of every (arch, file type) at 16 positions, and the manifest."""
    os.makedirs(outdir, exist_ok=True)
    manifest = {"generator": "tools/make_random_model.py", "prompt_text": PROMPT_TEXT,
                "n_pos": N_POS, "logits_format": "f16 little-endian, n_pos rows of n_vocab",
                "llama_cpp": settings(), "quantizer": "locara quantize" if locara else "llama_model_quantize",
                "models": []}
    prompt = None
    for arch in arches:
        seed = SEEDS[arch]
        f32 = os.path.join(workdir, f"{arch}-F32.gguf")
        subprocess.run([sys.executable, GEN, "--arch", arch, "--seed", str(seed), f32], check=True)
        entry = {"arch": arch, "seed": seed, "f32_sha256": sha256(f32), "types": []}
        for name, ftype in types:
            path = f32
            note = ""
            if name != "F32":
                path = os.path.join(workdir, f"{arch}-{name}.gguf")
                ref = os.path.join(workdir, f"{arch}-{name}.llama.gguf")
                llama_quantize(f32, ref, ftype)
                if locara:
                    subprocess.run([locara, "quantize", "--threads", "1", f32, path, name], check=True,
                                   stdout=subprocess.DEVNULL)
                    note = compare_files(path, ref)
                    if note:
                        print(f"QUANTIZER DIFFERS {arch} {name}: {note}")
                else:
                    os.replace(ref, path)
            llm = llama_cpp.Llama(path, n_ctx=64, n_batch=N_POS, logits_all=True, seed=0,
                                  verbose=False, n_threads=N_THREADS)
            if prompt is None:
                prompt = llm.tokenize(PROMPT_TEXT.encode(), add_bos=False, special=False)[:N_POS]
                assert len(prompt) == N_POS, prompt
            llm.eval(prompt)
            logits = np.stack([logits_row(llm, i) for i in range(N_POS)])
            n_vocab = logits.shape[1]
            fn = f"{arch}-{name}.f16"
            logits.astype("<f2").tofile(os.path.join(outdir, fn))
            rng = logits.max(1) - logits.min(1)
            srt = np.sort(logits, axis=1)
            entry["types"].append({"type": name, "file": fn, "model_sha256": sha256(path),
                                   "quantizer_diff_vs_llama_cpp": note,
                                   "logit_std": round(float(logits.std(axis=1).mean()), 3),
                                   "min_range": round(float(rng.min()), 3),
                                   "min_top_gap": round(float((srt[:, -1] - srt[:, -2]).min()), 4)})
            print(f"{arch:16s} {name:7s} std {entry['types'][-1]['logit_std']:.2f} "
                  f"top1 {logits.argmax(1)[:6].tolist()} gap {entry['types'][-1]['min_top_gap']}")
            del llm
        entry["n_vocab"] = n_vocab
        manifest["models"].append(entry)
    manifest["prompt_ids"] = prompt
    old = os.path.join(outdir, "manifest.json")
    if set(arches) != set(ARCHES) and os.path.exists(old):  # a partial run keeps the other archs
        prev = json.load(open(old))
        done = {m["arch"] for m in manifest["models"]}
        manifest["models"] = [m for m in prev["models"] if m["arch"] not in done] + manifest["models"]
        manifest["models"].sort(key=lambda m: ARCHES.index(m["arch"]))
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locara", default=os.environ.get("LOCARA_BIN"), help="locara binary (for quantize)")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/locara/models/SmolLM2-135M-Instruct-Q4_1.gguf"))
    ap.add_argument("--only", choices=["greedy", "random"], help="make only one part")
    ap.add_argument("--arch", action="append", help="random archs (default: all)")
    ap.add_argument("--workdir", help="where the random models go (default: a temp dir)")
    a = ap.parse_args()
    if a.only != "random":
        greedy_goldens(a.model, os.path.join(HERE, "greedy.json"))
    if a.only != "greedy":
        work = a.workdir or tempfile.mkdtemp(prefix="lc-golden-")
        os.makedirs(work, exist_ok=True)
        random_goldens(a.locara, os.path.join(HERE, "random"), work, a.arch or ARCHES, FTYPES)


if __name__ == "__main__":
    main()
