#!/usr/bin/env python3
"""summarize.py — turns compare.sh's raw JSON into bench/results/engine-cpu.md.

Owns: per model and test (pp, tg) the median over rounds of each round's mean tokens/s for Locara
and llama-bench, the spread (min..max of the round means), the Locara/llama.cpp ratio, and decode
as a fraction of measured memory bandwidth: bytes of weights one generated token reads (every
matrix; token_embd only when it doubles as the output matrix; for MoE only expert_used_count of
expert_count experts) x tokens/s / triad bandwidth. Not here: running anything.
"""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess

import gguf


def weight_bytes_per_token(path):
    """Bytes of weights read to generate one token (see the module comment)."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    n_exp = r.fields.get(f"{arch}.expert_count")
    n_used = r.fields.get(f"{arch}.expert_used_count")
    frac = (n_used.contents() / n_exp.contents()) if n_exp and n_used else 1.0
    names = {t.name for t in r.tensors}
    total = 0
    for t in r.tensors:
        b = int(t.n_bytes)
        if t.name == "token_embd.weight" and "output.weight" in names:
            continue  # only one row is read
        if "_exps." in t.name:
            b = int(b * frac)
        total += b
    return total, os.path.getsize(path)


def load_round(path, engine):
    """{test: tokens/s} of one run's JSON ('pp' / 'tg')."""
    with open(path) as f:
        txt = f.read()
    data = json.loads(txt[txt.index("["):]) if "[" in txt else []
    out = {}
    for d in data:
        if engine == "locara":
            out[d["test"]] = d["tps_mean"]
        else:
            out["pp" if d.get("n_prompt", 0) > 0 else "tg"] = d["avg_ts"]
    return out


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--set", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--cmd-locara", required=True)
    ap.add_argument("--cmd-llama", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    bw = {}
    for line in open(os.path.join(a.raw, "membw.txt")):
        m = re.match(r"(\w+) threads=(\d+) .* median=([\d.]+) GB/s min=([\d.]+) max=([\d.]+)", line)
        if m:
            bw[(m.group(1), int(m.group(2)))] = (float(m.group(3)), float(m.group(4)), float(m.group(5)))
    threads = max(t for _, t in bw)
    triad = bw[("triad", threads)][0]

    rows = []
    for spec in a.set.split():
        shape, typ = spec.split(":")
        tag = f"{shape}-{typ}"
        model = os.path.join(a.models, f"{tag}.gguf")
        wb, fsize = weight_bytes_per_token(model)
        res = {}
        for engine in ("locara", "llama"):
            per = {"pp": [], "tg": []}
            for path in sorted(glob.glob(os.path.join(a.raw, f"{engine}-{tag}-r*.json"))):
                try:
                    for k, v in load_round(path, engine).items():
                        per[k].append(v)
                except (ValueError, KeyError) as e:
                    print(f"skipping {path}: {e}")
            res[engine] = per
        rows.append((tag, fsize, wb, res))

    try:
        peer_ver = subprocess.run([a.llama_bench, "--version"], capture_output=True, text=True, timeout=30)
        peer_ver = (peer_ver.stdout + peer_ver.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        peer_ver = "unknown"

    def fmt(vals):
        if not vals:
            return "n/a", None
        med = statistics.median(vals)
        return f"{med:.2f} ({min(vals):.2f}..{max(vals):.2f})", med

    L = ["# Engine throughput on CPU: Locara vs llama.cpp", "",
         f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
         f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM, "
         f"kernel {platform.release()}. Shared with other jobs while measured: treat spreads as real.",
         f"Peer: llama-bench `{peer_ver}`.", "",
         "Commands (interleaved: each round runs every model with Locara then llama-bench; "
         f"{a.rounds} rounds):", "",
         f"    {a.cmd_locara}", f"    {a.cmd_llama}", "",
         "Models: random weights from `tools/make_random_model.py --shape llama-1b|qwen3moe-small` (F16), "
         "quantized with `locara quantize F16 OUT TYPE` (llama.cpp's mixes); both engines read the same files.",
         "", "Memory bandwidth (bench/engine/membw.c, 1 GiB arrays, median of 7 runs, GB/s):", ""]
    for (k, t), (med, lo, hi) in sorted(bw.items()):
        L.append(f"- {k}, {t} thread(s): {med:.2f} (min {lo:.2f}, max {hi:.2f})")
    L += ["", "Tokens/s: median of the per-round means (min..max over rounds). Ratio = Locara / llama.cpp. "
          f"Decode BW% = weight bytes read per token x tg t/s / triad bandwidth at {threads} threads "
          f"({triad:.2f} GB/s).", "",
          "| model | file MiB | weights read/token MiB | test | Locara t/s | llama.cpp t/s | ratio | decode BW% Locara | llama.cpp |",
          "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for tag, fsize, wb, res in rows:
        for test in ("pp", "tg"):
            ls, lm = fmt(res["locara"][test])
            ps, pm = fmt(res["llama"][test])
            ratio = f"{lm / pm:.2f}" if lm and pm else "n/a"
            if test == "tg":
                bl = f"{100 * wb * lm / (triad * 1e9):.0f}%" if lm else "n/a"
                bp = f"{100 * wb * pm / (triad * 1e9):.0f}%" if pm else "n/a"
            else:
                bl = bp = ""
            name = f"{test}{'512' if test == 'pp' else '128'}"
            L.append(f"| {tag} | {fsize / 2**20:.0f} | {wb / 2**20:.0f} | {name} | {ls} | {ps} | {ratio} | {bl} | {bp} |")
    L.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(L))
    print("\n".join(L))


if __name__ == "__main__":
    main()
