#!/usr/bin/env python3
"""analyze.py — where Locara's logits sit between llama.cpp's, from a test_engine_golden dump.

Owns: for each dumped (arch, type) the worst |diff| / range of ours vs llama.cpp on the same file,
of llama.cpp's own file vs its F32 file (the quantization error itself), and of ours vs llama.cpp
F32; and the positions whose diff exceeds 1%. Tells "engine computes differently (e.g. unquantized
activations)" from "engine is wrong". Not here: running anything.

  LC_GOLDEN_DUMP=/tmp/d build/test_engine_golden; python tests/golden/engine/analyze.py /tmp/d
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def rel(a, b, rng):
    return np.abs(a - b).max(axis=1) / rng


def main():
    dump = sys.argv[1]
    man = json.load(open(os.path.join(HERE, "random/manifest.json")))
    n = man["n_pos"]
    print(f"{'arch':16s} {'type':7s} {'ours~ref':>8s} {'ref~f32':>8s} {'ours~f32':>8s}  positions > 1% (rel diff)")
    for m in man["models"]:
        nv = m["n_vocab"]
        f32 = np.fromfile(os.path.join(HERE, "random", f"{m['arch']}-F32.f16"), "<f2").astype(np.float32).reshape(n, nv)
        for t in m["types"]:
            p = os.path.join(dump, f"{m['arch']}-{t['type']}.f32")
            if not os.path.exists(p):
                continue
            ours = np.fromfile(p, np.float32).reshape(n, nv)
            ref = np.fromfile(os.path.join(HERE, "random", t["file"]), "<f2").astype(np.float32).reshape(n, nv)
            rng = ref.max(1) - ref.min(1)
            a, b, c = rel(ours, ref, rng), rel(ref, f32, rng), rel(ours, f32, rng)
            bad = ", ".join(f"{i}:{a[i]:.3f}" for i in np.nonzero(a > 0.01)[0])
            print(f"{m['arch']:16s} {t['type']:7s} {a.max():8.4f} {b.max():8.4f} {c.max():8.4f}  {bad}")


if __name__ == "__main__":
    main()
