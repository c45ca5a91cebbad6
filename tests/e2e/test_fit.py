"""test_fit.py — `locara fit` against reality: its predicted total must be within 5% of the peak
RSS (anonymous plus touched file-backed pages, VmHWM) of a `locara run` whose prompt fills about
80% of the context and then decodes 128 tokens. Default model and two random-weight models (a
llama in Q8_0 and a qwen3moe in Q4_K_M made by tools/make_random_model.py + locara quantize),
f16 and q8_0 KV, two context sizes each. Also checks the JSON fields and clean flag errors."""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LOCARA, REPO, default_model

WORDS = ("the of and to in is that for it as with was on be by at this from or have an they which one you were "
         "her all she there would their we him been has when who will more no if out so said what up its about "
         "into than them can only other new some could time these two may then do first any my now").split()


def run(*args, **kw):
    return subprocess.run([LOCARA, *args], capture_output=True, text=True, errors="replace", timeout=600, **kw)


def n_tokens(model, text):
    r = run("tokenize", "-m", model, input=text)
    assert r.returncode == 0, r.stderr
    return len(r.stdout.split())


def prompt_of(model, target, tmp_path):
    rng = random.Random(7)
    words = [rng.choice(WORDS) for _ in range(target)]
    text = " ".join(words)
    # trim until the prompt is at most `target` tokens
    while n_tokens(model, text) > target:
        words = words[: int(len(words) * 0.97)]
        text = " ".join(words)
    p = tmp_path / f"prompt-{target}.txt"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = []
    m = default_model()
    if m:
        out.append(("smollm2-q4_1", m))
    tmp = tmp_path_factory.mktemp("fitmodels")
    try:
        import numpy  # noqa: F401
        import gguf  # noqa: F401
    except ImportError:
        return out
    if not m:
        return out
    for arch, qtype in (("llama", "q8_0"), ("qwen3moe", "q4_K_M")):
        f32 = tmp / f"{arch}-f32.gguf"
        r = subprocess.run([sys.executable, str(REPO / "tools" / "make_random_model.py"), "--arch", arch, str(f32)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        q = tmp / f"{arch}-{qtype}.gguf"
        r = run("quantize", str(f32), str(q), qtype, "--threads", "1")
        assert r.returncode == 0, r.stderr
        out.append((f"{arch}-{qtype}", str(q)))
    return out


def test_fit_matches_peak_rss(models, tmp_path):
    if not models:
        pytest.skip("default model not provisioned")
    assert len(models) == 3, "numpy/gguf needed to build the two random models"
    rows = []
    for name, model in models:
        for ctx in (1024, 2048):
            prompt = prompt_of(model, int(ctx * 0.8), tmp_path)
            for kv in ("f16", "q8_0"):
                f = run("fit", model, "--ctx", str(ctx), "--kv-type", kv, "--json", "-t", "2")
                assert f.returncode == 0, f.stderr
                fit = json.loads(f.stdout)
                for key in ("weights_bytes", "kv_bytes", "compute_bytes", "total_bytes", "fits"):
                    assert key in fit
                r = run("run", "-m", model, "-f", str(prompt), "-n", "128", "--temp", "0", "--ctx", str(ctx),
                        "--kv-type", kv, "--mem-report", "-t", "2")
                assert r.returncode == 0, r.stderr
                peak = int(re.search(r"peak_rss (\d+)", r.stderr).group(1))
                ratio = fit["total_bytes"] / peak
                rows.append((name, ctx, kv, fit["total_bytes"], peak, ratio))
    for row in rows:
        print("%-18s ctx %5d kv %-5s fit %11d peak %11d ratio %.3f" % row)
    bad = [r for r in rows if abs(r[5] - 1) > 0.05]
    assert not bad, bad
    # q8_0 KV takes about half of f16's bytes
    m = models[0][1]
    f16 = json.loads(run("fit", m, "--ctx", "4096", "--json").stdout)["kv_bytes"]
    q8 = json.loads(run("fit", m, "--ctx", "4096", "--kv-type", "q8_0", "--json").stdout)["kv_bytes"]
    assert 0.5 <= q8 / f16 <= 0.55


def test_fit_errors():
    assert run("fit", "/nonexistent.gguf").returncode == 1
    r = run("fit", "--ctx", "abc")
    assert r.returncode == 2 and "--ctx" in r.stderr
    r = run("fit", "--kv-type", "q5")
    assert r.returncode == 2 and "kv-type" in r.stderr
