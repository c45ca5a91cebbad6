#!/usr/bin/env python3
"""bench_serve.py — scheduler-level figures of an OpenAI-compatible server (locara serve or
llama-server): aggregate decode throughput at 1..N concurrent streams (continuous batching),
cold vs warm TTFT of a long conversation's second turn (prefix cache), and how a long prompt
arriving mid-stream stalls running streams (chunked prefill: the worst gap between tokens).

Works against any endpoint given by --url; with --locara BIN it starts `BIN serve` itself.
    bench/server/bench_serve.py --locara build/locara --threads 2 --parallel 8
    bench/server/bench_serve.py --url http://127.0.0.1:8080      # e.g. llama-server -np 8
With --llama-server BIN as well (and --reps N), it runs a side-by-side comparison: both servers
started once with the same model, context, --parallel and threads (llama-server with --no-repack
and a unified KV cache, as locara shares its KV pool), every measurement taken on locara and on
llama-server back to back (the order alternating per repetition), N repetitions; it prints medians
with min-max spread and the locara/llama-server ratios:
    flock /tmp/locara-bench.lock bench/server/bench_serve.py --locara build/locara \
        --llama-server /work/peer/build/bin/llama-server --threads 2 --parallel 8 --ctx 16384 \
        --conc 1,4,8 --depth 4096 --reps 3
Prints one markdown table; --json writes the raw numbers too. Standard library only.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def post_stream(url, body, on_token=None):
    """Streams a chat completion; returns (ttft_s, total_s, n_chunks, usage)."""
    body = dict(body, stream=True, stream_options={"include_usage": True})
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    ttft, n, usage = None, 0, None
    with urllib.request.urlopen(req, timeout=3600) as r:
        for line in r:
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            j = json.loads(line[6:])
            if j.get("usage"):
                usage = j["usage"]
            if j.get("choices") and j["choices"][0].get("delta", {}).get("content"):
                n += 1
                if ttft is None:
                    ttft = time.time() - t0
                if on_token:
                    on_token(time.time())
    return ttft or 0.0, time.time() - t0, n, usage


def msgs(text):
    return [{"role": "user", "content": text}]


def throughput(url, conc, max_tokens):
    """Aggregate generated tokens/s with conc streams started together (ignore_eos)."""
    res = [None] * conc

    def one(i):
        res[i] = post_stream(url, {"messages": msgs(f"Write a long story about ship number {i}."), "max_tokens": max_tokens,
                                   "temperature": 0, "ignore_eos": True})

    t0 = time.time()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    toks = sum((r[3] or {}).get("completion_tokens", r[2]) for r in res)
    return toks / wall, sum(r[0] for r in res) / conc


def prefix(url, n_facts):
    """Cold TTFT of a long first turn (a fresh nonce up front, so no cache can help), then warm
    TTFT of its second turn (the whole first turn is a cached prefix)."""
    text = " ".join(f"Fact {i}: the item numbered {i} is stored on shelf {i % 17}." for i in range(n_facts))
    nonce = str(time.time())
    m = [{"role": "system", "content": "Session " + nonce}, {"role": "user", "content": text}]
    cold = post_stream(url, {"messages": m, "max_tokens": 4, "temperature": 0})
    m += [{"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Which shelf holds item 3?"}]
    warm = post_stream(url, {"messages": m, "max_tokens": 4, "temperature": 0})
    return cold, warm


def stall(url, n_facts, max_tokens):
    """Worst inter-token gap of a running stream while a long prompt is prefilled beside it."""
    stamps = []
    t = threading.Thread(target=post_stream, args=(url, {"messages": msgs("Count slowly."), "max_tokens": max_tokens,
                                                         "temperature": 0, "ignore_eos": True}, stamps.append))
    t.start()
    while len(stamps) < 5:
        time.sleep(0.01)
    long = " ".join(f"Line {i}: nothing to see {time.time()}." for i in range(n_facts))
    post_stream(url, {"messages": msgs(long), "max_tokens": 1})
    t.join()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return max(gaps), sorted(gaps)[len(gaps) // 2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, url, log):
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{cmd[0]} never became healthy")


def med(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def compare(a):
    """Side by side: locara serve and llama-server, interleaved measurements, a.reps repetitions."""
    model = a.model or os.path.expanduser("~/.cache/locara/models/SmolLM2-135M-Instruct-Q4_1.gguf")
    conc = [int(x) for x in a.conc.split(",")]
    n_facts = max(1, round(a.depth / 19.3))  # one fact is about 19 tokens; the report gives the real count
    servers = []
    lp, sp = free_port(), free_port()
    cmds = {
        "locara": [a.locara, "serve", "-m", model, "--port", str(lp), "-t", str(a.threads), "--parallel",
                   str(a.parallel), "--ctx", str(a.ctx)],
        "llama-server": [a.llama_server, "-m", model, "--port", str(sp), "-t", str(a.threads), "-tb", str(a.threads),
                         "-np", str(a.parallel), "-c", str(a.ctx), "-kvu", "--no-repack", "--no-webui"],
    }
    urls = {"locara": f"http://127.0.0.1:{lp}", "llama-server": f"http://127.0.0.1:{sp}"}
    res = {name: {"tps": {c: [] for c in conc}, "cold": [], "warm": [], "cold_tokens": [], "cached": []} for name in cmds}
    try:
        for name, cmd in cmds.items():
            servers.append(start(cmd, urls[name], open(f"/tmp/bench-serve-{name}.log", "w")))
            post_stream(urls[name], {"messages": msgs("warm up"), "max_tokens": 2})
        for rep in range(a.reps):
            order = list(cmds) if rep % 2 == 0 else list(reversed(list(cmds)))
            for c in conc:
                for name in order:
                    tps, _ = throughput(urls[name], c, a.max_tokens)
                    res[name]["tps"][c].append(tps)
                    print(f"rep {rep} {name} conc {c}: {tps:.1f} tok/s", file=sys.stderr)
            for name in order:
                cold, warm = prefix(urls[name], n_facts)
                r = res[name]
                r["cold"].append(cold[0])
                r["warm"].append(warm[0])
                r["cold_tokens"].append((cold[3] or {}).get("prompt_tokens", 0))
                r["cached"].append(((warm[3] or {}).get("prompt_tokens_details") or {}).get("cached_tokens"))
                print(f"rep {rep} {name} depth {r['cold_tokens'][-1]}: cold {cold[0]:.2f} s warm {warm[0]:.3f} s",
                      file=sys.stderr)
    finally:
        for p in servers:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()

    def cell(xs, fmt):
        return f"{fmt(med(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"

    L, P = res["locara"], res["llama-server"]
    rows = [f"| measurement | locara | llama-server | ratio (median; min-max over reps) |", "| --- | ---: | ---: | ---: |"]
    for c in conc:
        ratio = [x / y for x, y in zip(L["tps"][c], P["tps"][c])]
        rows.append(f"| aggregate decode, {c} streams x {a.max_tokens} tokens (tok/s, higher is better) | "
                    f"{cell(L['tps'][c], lambda v: f'{v:.1f}')} | {cell(P['tps'][c], lambda v: f'{v:.1f}')} | "
                    f"{cell(ratio, lambda v: f'{v:.2f}x')} |")
    for k, what in (("cold", "cold"), ("warm", "warm")):
        ratio = [x / y for x, y in zip(L[k], P[k])]
        rows.append(f"| TTFT {what}, {med(L['cold_tokens']):.0f}-token first turn / its second turn (ms, lower is better) | "
                    f"{cell([v * 1000 for v in L[k]], lambda v: f'{v:.0f}')} | "
                    f"{cell([v * 1000 for v in P[k]], lambda v: f'{v:.0f}')} | {cell(ratio, lambda v: f'{v:.2f}x')} |")
    print("\n".join(rows))
    print(f"\nlocara cached_tokens on the second turn: {L['cached']}; llama-server: {P['cached']}")
    print("Servers: `" + " ".join(cmds["locara"]) + "` and `" + " ".join(cmds["llama-server"]) + "`")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--locara", help="start BIN serve on a free port")
    ap.add_argument("--llama-server", help="with --locara: compare with this llama-server binary")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--depth", type=int, default=4096, help="compare mode: tokens of the long first turn")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=16384)
    ap.add_argument("--conc", default="1,2,4,8")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--facts", type=int, default=100, help="size of the long prompts (about 20 tokens each)")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.locara and a.llama_server:
        return compare(a)
    proc = None
    url = a.url
    if a.locara:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [a.locara, "serve", "--port", str(port), "-t", str(a.threads), "--parallel", str(a.parallel), "--ctx", str(a.ctx)]
        if a.model:
            cmd += ["-m", a.model]
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
    out = {"url": url, "throughput": {}}
    try:
        post_stream(url, {"messages": msgs("warm up"), "max_tokens": 2})
        rows = ["| test | value |", "| --- | ---: |"]
        for c in [int(x) for x in a.conc.split(",")]:
            tps, ttft = throughput(url, c, a.max_tokens)
            out["throughput"][c] = {"tok_s": tps, "mean_ttft_s": ttft}
            rows.append(f"| aggregate decode, {c} streams x {a.max_tokens} tokens | {tps:.1f} tok/s (mean TTFT {ttft * 1000:.0f} ms) |")
        cold, warm = prefix(url, a.facts)
        out["prefix"] = {"cold_ttft_s": cold[0], "warm_ttft_s": warm[0], "cold_usage": cold[3], "warm_usage": warm[3]}
        cached = (warm[3] or {}).get("prompt_tokens_details", {}).get("cached_tokens")
        rows.append(f"| second turn of a {(cold[3] or {}).get('prompt_tokens', '?')}-token chat: cold TTFT | {cold[0] * 1000:.0f} ms |")
        rows.append(f"| ... warm TTFT (cached_tokens {cached}) | {warm[0] * 1000:.0f} ms |")
        worst, median = stall(url, a.facts, 48)
        out["stall"] = {"worst_gap_s": worst, "median_gap_s": median}
        rows.append(f"| running stream while a {a.facts * 20}-ish token prompt arrives: worst / median gap | {worst * 1000:.0f} / {median * 1000:.0f} ms |")
        print("\n".join(rows))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    sys.exit(main())
