"""conftest.py — shared fixtures for the end-to-end tests of `locara serve` (test_server*.py).

Finds the binary ($LOCARA_BIN, default build/locara under the repository) and the default model
($LOCARA_MODEL, else the XDG cache path tests/unit/testutil.c uses), starts servers on free ports
and stops them with SIGTERM (checking the exit code). Additive: other e2e files may ignore it.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCARA = os.environ.get("LOCARA_BIN", str(REPO / "build" / "locara"))
QWEN_TEMPLATE = REPO.parent / "shared" / "refdata" / "templates" / "Qwen-Qwen2.5-7B-Instruct.jinja"


def default_model():
    m = os.environ.get("LOCARA_MODEL")
    if m and os.access(m, os.R_OK):
        return m
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME", "."), ".cache")
    p = os.path.join(xdg, "locara", "models", "SmolLM2-135M-Instruct-Q4_1.gguf")
    return p if os.access(p, os.R_OK) else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(srv, args, tag, timeout):
    """Starts `locara serve --port P *args` on a free port into srv (port, url, log, proc) and
    waits for /health; raises with the server's output if it exits or never gets healthy."""
    if not os.access(LOCARA, os.X_OK):
        pytest.skip(f"no locara binary at {LOCARA} (set LOCARA_BIN)")
    srv.port = free_port()
    srv.url = f"http://127.0.0.1:{srv.port}"
    srv.log = open(f"/tmp/locara-{tag}-{srv.port}.log", "w+")
    srv.proc = subprocess.Popen([LOCARA, "serve", "--port", str(srv.port), *args],
                                stdout=srv.log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"locara serve exited with {srv.proc.returncode}: {srv.output()}")
        try:
            with urllib.request.urlopen(srv.url + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("locara serve did not become healthy: " + srv.output())


class Server:
    """One `locara serve` process on a free port."""

    def __init__(self, model, *args, threads=2):
        start_server(self, ["-m", model, "-t", str(threads), *args], "serve", 120)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return r.read().decode()

    def post(self, path, body, raw=False, headers=None):
        """POSTs body (a dict, or bytes when raw); returns (status, parsed JSON or text)."""
        data = body if raw else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=900) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def metrics(self):
        out = {}
        for line in self.get("/metrics").splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def model_path():
    m = default_model()
    if not m:
        pytest.skip("default model not provisioned (scripts/fetch-model.sh)")
    return m


@pytest.fixture(scope="session")
def server(model_path):
    s = Server(model_path, "--parallel", "8", "--ctx", "8192", "--max-body", "1000000")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="session")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=900)


@pytest.fixture(scope="session")
def tool_model(tmp_path_factory, model_path):
    """A tiny random-weight qwen2 model with the real Qwen2.5 chat template (tools support)."""
    import sys
    d = tmp_path_factory.mktemp("toolmodel")
    raw, out = d / "raw.gguf", d / "qwen-tools.gguf"
    py = sys.executable
    gen = REPO / "tools" / "make_random_model.py"
    if not gen.exists() or not QWEN_TEMPLATE.exists():
        pytest.skip("tools/make_random_model.py or the Qwen template is missing")
    subprocess.run([py, str(gen), "--arch", "qwen2", "--seed", "3", str(raw)], check=True, capture_output=True)
    subprocess.run([py, "-m", "gguf.scripts.gguf_new_metadata", "--chat-template-file", str(QWEN_TEMPLATE), "--force",
                    str(raw), str(out)], check=True, capture_output=True)
    return str(out)


@pytest.fixture(scope="session")
def tool_server(tool_model):
    s = Server(tool_model, "--parallel", "2", "--ctx", "2048", "--alias", "qwen-tiny")
    yield s
    assert s.stop() == 0, s.output()
