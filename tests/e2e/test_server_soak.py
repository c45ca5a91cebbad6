"""test_server_soak.py — a 20-second version of bench/server/soak.py against the real binary.

4 clients send valid chat/completions requests (streaming and not), invalid ones (malformed JSON,
wrong types, missing fields, unknown model, n > 1, oversized and non-UTF-8 bodies) and streams
they abandon; soak.py checks every answer (200 and well formed, or 4xx with an OpenAI error body),
that the server stays up, holds no KV block afterwards, exits 0 on SIGTERM, and that its RSS stays
within 15% of the post-warm-up figure (the full 10-minute run holds it to 5%).
"""

import subprocess
import sys

from conftest import LOCARA, REPO


def test_short_soak(model_path):
    r = subprocess.run([sys.executable, str(REPO / "bench" / "server" / "soak.py"), "--locara", LOCARA, "--model", model_path,
                        "--duration", "20", "--warmup", "8", "--rss-tol", "0.15"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Result: PASS" in r.stdout
