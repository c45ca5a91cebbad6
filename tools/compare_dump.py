#!/usr/bin/env python3
"""compare_dump.py — op-by-op comparison of Locara's forward with llama.cpp's on one prompt.

Owns: capturing llama.cpp's intermediate tensors (a cb_eval callback through llama-cpp-python's
ctypes API: every contiguous f32 op output, full data), reading Locara's LOCARA_DUMP file
(src/model/dump.h format), matching the two by name and printing, op by op in graph order,
max |diff| / max |ref| and the number of elements off by more than 1e-3 of the row's range.
Not here: choosing the prompt (the random-model manifest's ids or a text), building anything.

  /work/venv/py/bin/python tools/compare_dump.py --locara build/locara -m model.gguf [--text T] [--threads 2]
  ... --greedy CASE --step K: the default model's greedy golden CASE (tests/golden/engine/greedy.json),
  compared at the forward that gives generated token K (the prompt in one batch, then the golden's
  tokens one at a time, as llama-cpp-python generated them); K = the step a greedy run diverges at.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import llama_cpp
import llama_cpp.llama_cpp as L

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MANIFEST = os.path.join(ROOT, "tests/golden/engine/random/manifest.json")

# Locara's dump name (without the layer suffix) -> (llama.cpp tensor name stem, op that made it).
# llama.cpp reuses names (Qcur-0 is the matmul, then the reshape, then the rope output).
NAMES = [
    ("embd", "embd", "GET_ROWS"),
    ("attn_norm", "attn_norm", "MUL"),
    ("q", "Qcur", None),  # the last MUL_MAT / ADD (bias) before any reshape
    ("k", "Kcur", None),
    ("v", "Vcur", None),
    ("q_norm", "Qcur_normed", "MUL"),
    ("k_norm", "Kcur_normed", "MUL"),
    ("q_rope", "Qcur", "ROPE"),
    ("k_rope", "Kcur", "ROPE"),
    ("kqv_out", "kqv_out", "CONT"),
    ("attn_out", "attn_out", "MUL_MAT"),
    ("ffn_inp", "ffn_inp", "ADD"),
    ("ffn_norm", "ffn_norm", "MUL"),
    ("ffn_gate", "ffn_gate", "MUL_MAT"),
    ("ffn_up", "ffn_up", "MUL_MAT"),
    ("ffn_swiglu", "ffn_swiglu", "SWIGLU"),
    ("ffn_out", "ffn_out", "MUL_MAT"),
    ("l_out", "l_out", "ADD"),
    ("result_norm", "result_norm", "MUL"),
    ("result_output", "result_output", "MUL_MAT"),
]


# ==== llama.cpp side ====

def capture_llama(model, ids, threads, steps=()):
    """Runs llama.cpp on ids in one batch (f16 KV, flash attention off, plain CPU kernels), then on
    each token of steps alone, and returns for the last of those forwards {(name, op): f32 array (rows, cols)} for every contiguous f32 op output (first
    occurrence of each (name, op) pair)."""
    lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
    lib.ggml_get_name.restype = ctypes.c_char_p
    lib.ggml_get_name.argtypes = [ctypes.c_void_p]
    lib.ggml_op_desc.restype = ctypes.c_char_p
    lib.ggml_op_desc.argtypes = [ctypes.c_void_p]
    lib.ggml_is_contiguous.restype = ctypes.c_bool
    lib.ggml_is_contiguous.argtypes = [ctypes.c_void_p]
    lib.ggml_nbytes.restype = ctypes.c_size_t
    lib.ggml_nbytes.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    out = {}

    def cb(t, ask, _ud):
        if ask:
            return True
        ttype = ctypes.c_int32.from_address(t).value
        if ttype != 0 or not lib.ggml_is_contiguous(t):  # f32 only
            return True
        ne = (ctypes.c_int64 * 4).from_address(t + 16)
        key = (lib.ggml_get_name(t).decode(), lib.ggml_op_desc(t).decode())
        if key in out:
            return True
        n = lib.ggml_nbytes(t)
        buf = np.empty(n // 4, np.float32)
        lib.ggml_backend_tensor_get(t, buf.ctypes.data, 0, n)
        out[key] = buf.reshape(int(ne[3]) * int(ne[2]) * int(ne[1]), int(ne[0]))
        return True

    cb_c = L.ggml_backend_sched_eval_callback(cb)
    default_ctx = L.llama_context_default_params

    def ctx_params():
        p = default_ctx()
        p.cb_eval = cb_c
        return p

    default_model = L.llama_model_default_params

    def model_params():
        p = default_model()
        p.use_extra_bufts = False  # llama.cpp's AMX path segfaults here; plain CPU kernels
        return p

    L.llama_context_default_params = ctx_params
    L.llama_model_default_params = model_params
    try:
        llm = llama_cpp.Llama(model, n_ctx=256, n_batch=256, seed=0, verbose=False, n_threads=threads,
                              n_threads_batch=threads, logits_all=True, flash_attn=False)
        out.clear()  # anything from loading / warm-up
        llm.eval(ids)
        for t in steps:  # one-token decodes; only the last one's tensors are kept
            out.clear()
            llm.eval([t])
    finally:
        L.llama_context_default_params = default_ctx
        L.llama_model_default_params = default_model
    return out


# ==== Locara side ====

def read_locara_dump(path, last=False):
    """{name: array (rows, cols)}, first record of each name (last: the last one)."""
    data = open(path, "rb").read()
    out, off = {}, 0
    while off < len(data):
        n = int.from_bytes(data[off:off + 4], "little")
        name = data[off + 4:off + 4 + n].decode()
        off += 4 + n
        rows, cols = np.frombuffer(data, np.int32, 2, off)
        off += 8
        a = np.frombuffer(data, np.float32, int(rows) * int(cols), off).reshape(rows, cols)
        off += 4 * int(rows) * int(cols)
        if last:
            out[name] = a
        else:
            out.setdefault(name, a)
    return out


def run_locara(binary, model, text, threads, n_predict=1):
    """Locara's intermediates for `locara run` on text: of the prompt's forward (n_predict 1) or of
    the last one-token forward of a greedy run of n_predict tokens."""
    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "dump.bin")
        env = dict(os.environ, LOCARA_DUMP=path)
        subprocess.run([binary, "run", "-m", model, "-p", text, "-n", str(n_predict), "--temp", "0", "-t",
                        str(threads), "-q", "-c", "1024"], env=env, check=True, stdout=subprocess.DEVNULL)
        return read_locara_dump(path, last=n_predict > 1)


# ==== Comparison ====

def llama_tensor(ref, stem, op, il):
    name = stem if il < 0 else f"{stem}-{il}"
    if op:
        return ref.get((name, op))
    if (name, "ADD") in ref:  # the projection's bias add when there is one
        return ref[(name, "ADD")]
    return ref.get((name, "MUL_MAT"))


def compare(ref, ours, n_layer):
    print(f"{'op':<18} {'rows':>4} {'max|d|/max|ref|':>15} {'mean|d|/mean|ref|':>17} {'n off 1e-3':>10}")
    order = [(n, s, o, -1) for n, s, o in NAMES[:1]]
    for il in range(n_layer):
        order += [(n, s, o, il) for n, s, o in NAMES[1:-2]]
    order += [(n, s, o, -1) for n, s, o in NAMES[-2:]]
    for name, stem, op, il in order:
        key = name if il < 0 else f"{name}-{il}"
        a = ours.get(key)
        b = llama_tensor(ref, stem, op, il)
        if a is None or b is None:
            continue
        b = b.reshape(-1, a.shape[1]) if b.size % a.shape[1] == 0 else b
        if b.shape != a.shape:
            b = b[-a.shape[0]:] if b.shape[1] == a.shape[1] else None  # only the output rows
        if b is None:
            print(f"{key:<18} shape mismatch {a.shape}")
            continue
        d = np.abs(a.astype(np.float64) - b)
        rng = (b.max(axis=1) - b.min(axis=1))[:, None] + 1e-30
        rel = d.max() / (np.abs(b).max() + 1e-30)
        mrel = d.mean() / (np.abs(b).mean() + 1e-30)
        noff = int((d / rng > 1e-3).sum())
        print(f"{key:<18} {a.shape[0]:>4} {rel:>15.2e} {mrel:>17.2e} {noff:>10}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--locara", default=os.path.join(ROOT, "build/locara"))
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--text", help="prompt text (default: the random-model manifest's prompt)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", help="save both sides' tensors to this .npz")
    ap.add_argument("--greedy", type=int, help="case of tests/golden/engine/greedy.json (its prompt)")
    ap.add_argument("--step", type=int, default=0, help="with --greedy: compare the forward giving token K")
    a = ap.parse_args()
    steps = []
    if a.greedy is not None:
        case = json.load(open(os.path.join(ROOT, "tests/golden/engine/greedy.json")))["cases"][a.greedy]
        a.text = case["prompt"]
        steps = case["generated_ids"][:a.step]
    text = a.text or json.load(open(MANIFEST))["prompt_text"]
    ours = run_locara(a.locara, a.model, text, a.threads, len(steps) + 1)
    n_tok = ours["embd"].shape[0] if not steps else None
    # tokenise with llama.cpp the way `locara run` does (BOS as the metadata says, special parsing)
    tmp = llama_cpp.Llama(a.model, vocab_only=True, verbose=False)
    llm_ids = tmp.tokenize(text.encode(), add_bos=True, special=True)
    del tmp
    if n_tok is not None and len(llm_ids) != n_tok:
        sys.exit(f"token counts differ: llama.cpp {len(llm_ids)}, locara {n_tok}")
    ref = capture_llama(a.model, llm_ids, a.threads, steps)
    n_layer = 1 + max(int(k.rsplit("-", 1)[1]) for k in ours if k.startswith("l_out-"))
    compare(ref, ours, n_layer)
    if a.save:
        np.savez(a.save, **{"ours/" + k: v for k, v in ours.items()},
                 **{f"ref/{k[0]}|{k[1]}": v for k, v in ref.items()})


if __name__ == "__main__":
    main()
