"""test_bench_compare.py — the scripts around `locara bench http` that make the committed
locara-vs-llama-server report: bench/http/compare.sh (depth groups run as separate invocations
under a lock, merged into one results.jsonl, server logs, report and a README that names the
command) and bench/http/make-long-model.sh (the default model with a longer context_length, every
other byte unchanged), and that compare.json gives both servers the same settings and a context
deep enough for its deepest depth; the report's side-by-side ratios and cache columns; and that a
killed benchmark also takes down a server that ignores SIGTERM. Servers are scripted fakes
(fake_openai.py), so no model runs; about 35 seconds. The binary comes from $LOCARA_BIN (default build/locara).
"""

import fcntl
import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import LOCARA, REPO, free_port

HERE = Path(__file__).resolve().parent

COMPARE = REPO / "bench" / "http" / "compare.sh"
MAKE_LONG = REPO / "bench" / "http" / "make-long-model.sh"


@pytest.fixture(scope="module")
def locara():
    if not os.access(LOCARA, os.X_OK):
        pytest.skip(f"no locara binary at {LOCARA} (set LOCARA_BIN)")
    return LOCARA


def fake_run(name, port):
    cmd = f"exec {shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'fake_openai.py'))} --port {port} " \
          f"--ttft 0.05 --n-tokens 6 --tps 200"
    return {"name": name, "server_cmd": cmd, "url": f"http://127.0.0.1:{port}", "model": "m"}


def test_compare_parts_merge_under_lock(locara, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"runs": [fake_run("ours", free_port()), fake_run("peer", free_port())],
                               "depths": [20, 40, 80], "reps": 3, "max_tokens": 6, "timeout": 30,
                               "startup_timeout": 30}))
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF not really a model")
    out, lock = tmp_path / "out", tmp_path / "bench.lock"
    env = dict(os.environ, LLAMA_SERVER="/bin/true", LOCARA=locara, MODEL=str(model), CONFIG=str(cfg),
               OUT=str(out), PARTS="20,40 80", REPS="1", LOCK=str(lock), THREADS="2")
    with open(lock, "w") as held:  # while someone else holds the lock, nothing is measured
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen(["sh", str(COMPARE)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        time.sleep(1.5)
        assert proc.poll() is None
        assert not (out / "part-1" / "results.jsonl").exists(), "part 1 ran while the lock was held"
        fcntl.flock(held, fcntl.LOCK_UN)
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log

    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    seen = sorted((r["config"], r["depth"], r["cache"]) for r in rows)
    want = sorted((c, d, k) for c in ("ours", "peer") for d in (20, 40, 80) for k in ("cold", "warm"))
    assert seen == want, "every config x depth x cache of both parts, once (REPS=1 overrides reps 3)"
    assert all(r["ok"] for r in rows), [r["error"] for r in rows if not r["ok"]]
    assert all(abs(r["ttft_ms"] - 50) < 25 for r in rows)
    assert not list(out.glob("part-*")), "the parts' folders are merged away"
    for name in ("ours", "peer"):
        text = (out / f"{name}.server.log").read_text()
        assert "==== part 1 ====" in text and "==== part 2 ====" in text
    summary = (out / "summary.md").read_text()
    for d in (20, 40, 80):
        assert re.search(rf"\| ours \| 1 \| {d} \| cold \| 1/1 \|", summary), summary
        assert re.search(rf"\| peer \| 1 \| {d} \| warm \| 1/1 \|", summary), summary
    html = (out / "report.html").read_text()
    assert html.count('<svg id="chart-') == 4
    readme = (out / "README.md").read_text()
    assert "PARTS='20,40 80'" in readme and "REPS='1'" in readme and "bench/http/compare.sh" in readme
    assert re.search(r"part 1 \(depths 20,40\): started \d\d:\d\d:\d\dZ, load average [\d.]+ [\d.]+ [\d.]+", readme)
    assert "part 2 (depths 80)" in readme
    assert hashlib.sha256(model.read_bytes()).hexdigest() in readme


def test_compare_fails_loudly_without_peer(locara, tmp_path):
    env = dict(os.environ, LLAMA_SERVER=str(tmp_path / "missing"), LOCARA=locara, OUT=str(tmp_path / "o"))
    p = subprocess.run(["sh", str(COMPARE)], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "not executable" in p.stderr


def test_make_long_model_changes_only_context_length(tmp_path):
    py = os.environ.get("LOCARA_PYTHON", "/work/venv/py/bin/python")
    if not os.access(py, os.X_OK):
        py = sys.executable
    gguf = pytest.importorskip("gguf")
    src, dst = tmp_path / "src.gguf", tmp_path / "long.gguf"
    subprocess.run([py, str(REPO / "tools" / "make_random_model.py"), "--arch", "qwen2", "--seed", "3", str(src)],
                   check=True, capture_output=True, timeout=120)
    env = dict(os.environ, PYTHON=py, CTX="20480")
    p = subprocess.run(["sh", str(MAKE_LONG), str(src), str(dst)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(dst)
    a, b = gguf.GGUFReader(str(src)), gguf.GGUFReader(str(dst))
    assert a.get_field("qwen2.context_length").contents() != 20480
    assert b.get_field("qwen2.context_length").contents() == 20480
    sa, sb = src.read_bytes(), dst.read_bytes()
    assert len(sa) == len(sb)
    assert 1 <= sum(x != y for x, y in zip(sa, sb)) <= 4, "only the 4-byte value differs"
    # Idempotent, and a bad source is a clean error that leaves nothing behind.
    assert subprocess.run(["sh", str(MAKE_LONG), str(src), str(dst)], env=env, capture_output=True).returncode == 0
    assert dst.read_bytes() == sb
    bad = subprocess.run(["sh", str(MAKE_LONG), str(tmp_path / "nope.gguf"), str(tmp_path / "x.gguf")], env=env,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "no model" in bad.stderr and not list(tmp_path.glob("x.gguf*"))


def test_compare_json_same_settings_for_both_servers():
    cfg = json.loads((REPO / "bench" / "http" / "compare.json").read_text())
    assert [r["name"] for r in cfg["runs"]] == ["locara", "llama-server"]

    def flag(cmd, *names):
        args = shlex.split(cmd)
        for i, a in enumerate(args):
            if a in names:
                return args[i + 1]
        raise AssertionError(f"{names} missing from {cmd}")

    ours, peer = (r["server_cmd"] for r in cfg["runs"])
    for names in (("-c", "--ctx"), ("-np", "--parallel"), ("-t", "--threads")):
        assert flag(ours, *names) == flag(peer, *names), names
    assert int(flag(ours, "-c")) >= max(cfg["depths"]) + 2 * cfg["max_tokens"] + 1024, \
        "the context holds the deepest warm conversation"
    assert 16384 in cfg["depths"]


def test_report_side_by_side_and_cache_columns(locara, tmp_path):
    def row(config, depth, cache, ttft, decode, cached, rep=0):
        return {"config": config, "model": "m", "depth": depth, "cache": cache, "concurrency": 1, "stream": 0,
                "rep": rep, "ok": True, "error": "", "ttft_ms": ttft, "prefill_tps": depth / ttft * 1000,
                "decode_tps": decode, "agg_decode_tps": decode, "total_ms": ttft + 1000, "prompt_tokens": depth,
                "completion_tokens": 64, "cached_tokens": cached, "est_prompt_tokens": depth}

    rows = [row("ours", 4096, "cold", 1000, 30, 0), row("ours", 4096, "cold", 3000, 30, 0, rep=1),
            row("ours", 4096, "warm", 100, 30, 4080), row("ours", 4096, "warm", 100, 30, 4064, rep=1),
            row("peer", 4096, "cold", 4000, 10, 0), row("peer", 4096, "warm", 400, 12, None)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = subprocess.run([locara, "bench", "http", "--report", str(tmp_path), "--title", "t"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "summary.md").read_text()
    # cached tok = median over the reps; warm TTFT ÷ cold = 100 / median(1000, 3000)
    assert re.search(r"\| ours \| 1 \| 4096 \| warm \| 2/2 \|.*\| 4072 \| 0\.050 \|$", md, re.M), md
    assert re.search(r"\| peer \| 1 \| 4096 \| warm \| 1/1 \|.*\| – \| 0\.100 \|$", md, re.M), md
    assert re.search(r"\| ours \| 1 \| 4096 \| cold \| 2/2 \|.*\| 0 \| – \|$", md, re.M), md
    assert "## Side by side: ours ÷ peer" in md
    # TTFT 2000 / 4000; prefill median(4096, 1365.3) / 1024; decode 30 / 10
    assert "| 1 | 4096 | cold | 0.50 | 2.67 | 3.00 |" in md
    assert "| 1 | 4096 | warm | 0.25 | 4.00 | 2.50 |" in md
    html = (tmp_path / "report.html").read_text()
    assert "Side by side: ours ÷ peer" in html and "<td class=\"n\">0.25</td>" in html


STUBBORN = r'''
import signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # like llama-server busy in a long prefill
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    def do_POST(self):
        self.send_response(500); self.end_headers()
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def test_killed_benchmark_kills_a_server_that_ignores_sigterm(locara, tmp_path):
    port = free_port()
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    cmd = [locara, "bench", "http", "-q", "--out", str(tmp_path / "o"), "--url", f"http://127.0.0.1:{port}",
           "--server-cmd", f"exec {sys.executable} {script} {port}", "--depths", "20", "--reps", "1000",
           "--no-skip"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        deadline = time.time() + 20
        while not up() and time.time() < deadline:
            time.sleep(0.05)
        assert up(), "the managed server never came up"
    finally:
        p.kill()
        p.wait()
    time.sleep(3)
    assert up(), "SIGTERM is ignored: the server is still up a moment later"
    deadline = time.time() + 15
    while up() and time.time() < deadline:
        time.sleep(0.1)
    assert not up(), "the server outlived the killed benchmark (no SIGKILL after the grace period)"
