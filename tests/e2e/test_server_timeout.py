"""test_server_timeout.py — a generation outlives the idle-connection timeout: with `--timeout 2`,
a prompt whose prefill takes several seconds still gets its answer, streamed (the server sends
SSE keep-alive comments while the model works; the official client skips them) and whole (the
timeout is lifted while the reply is computed); an idle connection is still closed."""

import socket
import time
import urllib.request

import openai

from conftest import Server

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def long_prompt(n_words):
    return " ".join(WORDS[(i * 7) % len(WORDS)] + str(i % 97) for i in range(n_words))


def test_generation_outlives_the_idle_timeout(model_path):
    srv = Server(model_path, "--timeout", "2", "--ctx", "8192")
    try:
        prompt = long_prompt(900)  # ~3k tokens: several seconds of prefill on 2 cores
        req = urllib.request.Request(
            srv.url + "/v1/completions",
            data=(b'{"prompt": "%s", "max_tokens": 4, "temperature": 0, "stream": true}' % prompt.encode()),
            headers={"Content-Type": "application/json"})
        t0 = time.time()
        with urllib.request.urlopen(req, timeout=600) as r:
            raw = r.read().decode()
        elapsed = time.time() - t0
        assert raw.rstrip().endswith("data: [DONE]"), raw[-300:]
        if elapsed > 3:  # the wait was longer than the timeout: comments kept it open
            assert ": keep-alive" in raw
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", timeout=600)
        out = client.completions.create(model="default", prompt=prompt + " again", max_tokens=4, temperature=0)
        assert out.choices[0].finish_reason in ("length", "stop")
        stream = client.completions.create(model="default", prompt=prompt + " once more", max_tokens=4,
                                           temperature=0, stream=True)
        assert any(c.choices and c.choices[0].text is not None for c in stream)
        # an idle keep-alive connection is still closed after the timeout
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.settimeout(20)
        t0 = time.time()
        assert s.recv(1) == b""
        assert time.time() - t0 < 15
        s.close()
    finally:
        assert srv.stop() == 0
