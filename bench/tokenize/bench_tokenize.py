#!/usr/bin/env python3
"""bench_tokenize.py — times Locara's tokenizer against llama.cpp's on the same text and vocab.

The text is ~100k tokens of English and C: the repository's own sources and design notes,
concatenated in a fixed order (so every run sees the same bytes). For each vocab, the two
tokenizers run interleaved, --runs times each: llama.cpp through llama-cpp-python
(Llama(vocab_only=True).tokenize, add_bos=False, special=False) and Locara through
`locara tokenize --bench 1 --no-bos --no-special` (which times the encode call alone, excluding
process start and file mapping). Reports medians and checks the ids are identical.

usage: bench_tokenize.py [--locara build/locara] [--runs 5] [--out bench/results/tokenize.md]
                         [vocab.gguf ...]   (default: the default model, SmolLM2-135M)
"""
import argparse, os, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_text(target_bytes=420_000):
    parts = []
    for sub in ("../shared/DESIGN.md", "../shared/STYLE.md"):
        p = os.path.join(ROOT, sub)
        if os.path.exists(p):
            parts.append(open(p, encoding="utf-8").read())
    for dirpath, _, files in sorted(os.walk(os.path.join(ROOT, "src"))):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                parts.append(open(os.path.join(dirpath, f), encoding="utf-8", errors="replace").read())
    text = "\n".join(parts)
    while len(text.encode()) < target_bytes:
        text += "\n" + text
    return text.encode()[:target_bytes].decode("utf-8", errors="ignore")


def run_locara(exe, vocab, path):
    with open(path, "rb") as f:
        r = subprocess.run([exe, "tokenize", "-m", vocab, "--no-bos", "--no-special", "--bench", "1"],
                           stdin=f, capture_output=True, text=True, check=True)
    ms = float(re.search(r"median ([0-9.]+) ms", r.stderr).group(1))
    return ms, [int(x) for x in r.stdout.split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab", nargs="*")
    ap.add_argument("--locara", default=os.path.join(ROOT, "build", "locara"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    vocabs = a.vocab or [os.path.expanduser("~/.cache/locara/models/SmolLM2-135M-Instruct-Q4_1.gguf")]
    from llama_cpp import Llama
    text = build_text()
    path = "/tmp/locara_bench_tokenize.txt"
    open(path, "w", encoding="utf-8").write(text)
    rows = []
    for v in vocabs:
        llm = Llama(model_path=v, vocab_only=True, verbose=False)
        lt, ct = [], []
        ids_ref = ids_lc = None
        for _ in range(a.runs):  # interleaved
            t0 = time.perf_counter()
            ids_ref = llm.tokenize(text.encode(), add_bos=False, special=False)
            lt.append((time.perf_counter() - t0) * 1e3)
            ms, ids_lc = run_locara(a.locara, v, path)
            ct.append(ms)
        same = ids_ref == ids_lc
        rows.append((os.path.basename(v), len(text.encode()), len(ids_ref), statistics.median(lt),
                     statistics.median(ct), same))
        del llm
    lines = ["| vocab | bytes | tokens | llama.cpp ms | locara ms | speed-up | ids identical |",
             "|---|---|---|---|---|---|---|"]
    for name, nb, nt, l, c, same in rows:
        lines.append(f"| {name} | {nb} | {nt} | {l:.1f} | {c:.1f} | {l / c:.2f}x | {'yes' if same else 'NO'} |")
    report = "\n".join(lines)
    print(report)
    if a.out:
        import llama_cpp
        with open(a.out, "w") as f:
            f.write("# Tokenizer speed: Locara vs llama.cpp\n\n")
            f.write(f"Command: `{' '.join(sys.argv)}`\n\n")
            f.write(f"llama-cpp-python {llama_cpp.__version__}; median of {a.runs} interleaved runs; "
                    "single thread each; encode call only (no process start or file load); "
                    "add_special=false, parse_special=false.\n\n")
            f.write(report + "\n")
    return 0 if all(r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
