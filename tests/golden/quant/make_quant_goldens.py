#!/usr/bin/env python3
"""make_quant_goldens.py — writes tests/golden/quant/quant_goldens.bin for tests/unit/test_quant.c.

Reference implementations:
  * gguf-py (PyPI `gguf`, gguf.quants): numpy (de)quantization written to match ggml bit for bit.
    It quantizes Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and dequantizes every type up to Q6_K.
  * optionally ggml itself: set LOCARA_GGML_LIB to a libggml-base.so (built by llama.cpp or
    llama-cpp-python); then its exported quantize_row_<t>_ref / dequantize_row_<t> give the
    K-quant, Q8_1 and Q8_K quantize goldens that gguf-py cannot, and take precedence for dequant.
    Where both exist the script cross-checks them and reports any difference.

Run:  LOCARA_GGML_LIB=/path/libggml-base.so /work/venv/py/bin/python make_quant_goldens.py

File format (little-endian):
  "LCQG" u32 version=1, u32 nrows, u32 n_per_row, f32 rows[nrows*n_per_row]
  u32 nentries, then entries: u32 type (ggml id), u32 kind (0: quantize rows -> bytes;
  1: random valid blocks -> dequantized floats), u32 source (0 gguf-py, 1 ggml),
  u32 nbytes, u32 nfloats, u8 bytes[nbytes], f32 floats[nfloats]
  (kind 0: bytes = quantized rows, nfloats = 0; kind 1: bytes = blocks, floats = dequantized).
"""
import ctypes
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quant_goldens.bin")
NROWS, NPR = 8, 512

# ggml ids and names of the types we check; Q8_1 and Q8_K are activation formats.
TYPES = {
    "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "q8_1": 9,
    "q2_K": 10, "q3_K": 11, "q4_K": 12, "q5_K": 13, "q6_K": 14, "q8_K": 15,
}
# gguf-py still lists Q8_1 with two f32 scales (40 bytes); ggml's block is d, s as f16 (36).
SIZE_FIX = {"q8_1": (32, 36)}
GGUFPY_QUANT = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0"}
# Byte offsets of the f16 scale fields in each block (made finite and moderate in random blocks).
F16_FIELDS = {
    "q4_0": [0], "q4_1": [0, 2], "q5_0": [0], "q5_1": [0, 2], "q8_0": [0], "q8_1": [0, 2],
    "q2_K": [80, 82], "q3_K": [108], "q4_K": [0, 2], "q5_K": [0, 2], "q6_K": [208],
}


def sizes(name):
    return SIZE_FIX.get(name) or GGML_QUANT_SIZES[T[name.upper()]]


def make_rows(rng):
    rows = np.empty((NROWS, NPR), dtype=np.float32)
    rows[0] = rng.standard_normal(NPR)
    rows[1] = rng.uniform(-1, 1, NPR)
    rows[2] = rng.standard_normal(NPR) * 1e-3
    rows[3] = rng.standard_cauchy(NPR).clip(-50, 50)
    rows[4] = rng.standard_normal(NPR) + 3.0          # all positive mostly: min handling
    rows[5] = rng.integers(-8, 8, NPR) * 0.25         # exact ties in rounding
    rows[6] = rng.standard_normal(NPR) * 0.02
    rows[6][:256] = 0.0                                # an all-zero super-block
    rows[6][300:332] = 1.5                             # a constant block
    rows[7] = rng.standard_normal(NPR) * np.repeat(rng.uniform(0.01, 4, NPR // 16), 16)
    return rows


def random_blocks(rng, name, nblocks):
    bs, ts = sizes(name)
    raw = rng.integers(0, 256, (nblocks, ts), dtype=np.uint8)
    if name == "q8_K":
        raw = raw.copy()
        d = rng.uniform(1e-4, 1e-2, nblocks).astype(np.float32)
        raw[:, 0:4] = d.view(np.uint8).reshape(nblocks, 4)
        return raw
    for off in F16_FIELDS[name]:
        v = (rng.uniform(-0.05, 0.05, nblocks)).astype(np.float16)
        raw[:, off:off + 2] = v.view(np.uint8).reshape(nblocks, 2)
    return raw


class Ggml:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)

    def has(self, sym):
        return hasattr(self.lib, sym)

    def quantize(self, name, rows):
        bs, ts = sizes(name)
        x = np.ascontiguousarray(rows, dtype=np.float32).ravel()
        out = np.zeros(x.size // bs * ts, dtype=np.uint8)
        fn = getattr(self.lib, f"quantize_row_{name}_ref")
        fn.restype = None
        fn(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(x.size))
        return out

    def dequantize(self, name, blocks):
        bs, ts = sizes(name)
        n = blocks.shape[0] * bs
        b = np.ascontiguousarray(blocks)
        out = np.zeros(n, dtype=np.float32)
        fn = getattr(self.lib, f"dequantize_row_{name}")
        fn.restype = None
        fn(b.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n))
        return out


def main():
    rng = np.random.default_rng(20240607)
    rows = make_rows(rng)
    libpath = os.environ.get("LOCARA_GGML_LIB")
    ggml = Ggml(libpath) if libpath else None
    if not ggml:
        print("note: LOCARA_GGML_LIB not set; K-quant quantize goldens come only from ggml, skipped")
    entries = []
    for name, tid in TYPES.items():
        qt = T[name.upper()]
        # kind 0: quantize the rows
        ref_py = quants.quantize(rows, qt).ravel() if name in GGUFPY_QUANT else None
        ref_gg = ggml.quantize(name, rows) if ggml and ggml.has(f"quantize_row_{name}_ref") else None
        if ref_py is not None and ref_gg is not None and not np.array_equal(ref_py, ref_gg):
            print(f"warning: {name} quantize: gguf-py and ggml differ in {np.sum(ref_py != ref_gg)} bytes")
        ref, src = (ref_gg, 1) if ref_gg is not None else (ref_py, 0)
        if ref is not None:
            entries.append((tid, 0, src, ref.astype(np.uint8).tobytes(), b""))
        # kind 1: dequantize random blocks
        nblocks = 8 if sizes(name)[0] == 256 else 64
        blocks = random_blocks(rng, name, nblocks)
        deq_gg = ggml.dequantize(name, blocks) if ggml and ggml.has(f"dequantize_row_{name}") else None
        deq_py = None
        try:
            deq_py = quants.dequantize(blocks.ravel(), qt).ravel().astype(np.float32)
        except (NotImplementedError, KeyError):
            pass
        if deq_py is not None and deq_gg is not None and not np.array_equal(deq_py, deq_gg):
            print(f"warning: {name} dequantize: gguf-py and ggml differ in {np.sum(deq_py != deq_gg)} values")
        deq, src = (deq_gg, 1) if deq_gg is not None else (deq_py, 0)
        if deq is not None:
            entries.append((tid, 1, src, blocks.tobytes(), deq.astype(np.float32).tobytes()))
    with open(OUT, "wb") as f:
        f.write(b"LCQG" + struct.pack("<III", 1, NROWS, NPR))
        f.write(rows.astype("<f4").tobytes())
        f.write(struct.pack("<I", len(entries)))
        for tid, kind, src, b, fl in entries:
            f.write(struct.pack("<IIIII", tid, kind, src, len(b), len(fl) // 4))
            f.write(b)
            f.write(fl)
    print(f"wrote {OUT}: {len(entries)} entries, {os.path.getsize(OUT)} bytes")
    for tid, kind, src, b, fl in entries:
        nm = [k for k, v in TYPES.items() if v == tid][0]
        print(f"  {nm:5s} {'quantize' if kind == 0 else 'dequant '} from {'ggml' if src else 'gguf-py'}")


if __name__ == "__main__":
    sys.exit(main())
