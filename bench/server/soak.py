#!/usr/bin/env python3
"""soak.py — a loopback soak of `locara serve`: N client threads (default 4) send a mix of valid
requests (chat and completions, streaming and not), invalid ones (malformed JSON, wrong types,
missing fields, unknown model, unsupported values, bodies over --max-body, invalid UTF-8) and
streams they abandon mid-way, for --duration seconds. Standard library only.

Checks: every valid request gets a 200 with a well-formed answer (greedy answers to the same
request identical every time, usage consistent, SSE ends with [DONE]); every invalid one a 4xx
with an OpenAI error body {"error":{"message","type","param","code"}}; the server never dies;
after the run no KV block is still held by a sequence; its VmRSS at the end is within --rss-tol
(5%) of VmRSS after --warmup seconds. Prints a markdown report; exit status 1 on any failure.
    bench/server/soak.py --locara build/locara --duration 600 --warmup 60 > bench/results/server-soak.md
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

PROMPTS = ["Name three colors.", "What is 2+2?", "Say hello in French.", "List two fruits.",
           "Describe the sea in one sentence.", "Count from one to five."]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Soak:
    def __init__(self, host, port, a):
        self.host, self.port, self.a = host, port, a
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []
        self.greedy = {}  # request key -> first answer
        self.stop_at = 0.0

    def count(self, kind, ok, why=""):
        with self.lock:
            c = self.counts.setdefault(kind, [0, 0])
            c[0 if ok else 1] += 1
            if not ok and len(self.failures) < 50:
                self.failures.append(f"{kind}: {why}")

    def conn(self, timeout=120):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post(self, path, body, headers=None):
        """POSTs raw bytes; returns (status, bytes)."""
        c = self.conn()
        try:
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            c.request("POST", path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    # ==== valid requests ====

    def greedy_check(self, key, text):
        with self.lock:
            first = self.greedy.setdefault(key, text)
        return first == text

    def valid(self, rng):
        chat = rng.random() < 0.6
        stream = rng.random() < 0.5
        greedy = rng.random() < 0.5
        p = rng.choice(PROMPTS)
        mt = rng.choice([4, 8, 16])
        body = {"max_tokens": mt, "temperature": 0 if greedy else 0.8}
        if not greedy:
            body["seed"] = rng.randrange(1 << 30)
        if chat:
            body["messages"] = [{"role": "user", "content": p}]
        else:
            body["prompt"] = p
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        path = "/v1/chat/completions" if chat else "/v1/completions"
        kind = f"valid {'chat' if chat else 'completion'} {'stream' if stream else 'json'}"
        try:
            st, raw = self.post(path, json.dumps(body).encode())
        except OSError as e:
            return self.count(kind, False, f"transport error {e!r}")
        if st != 200:
            return self.count(kind, False, f"status {st}: {raw[:200]!r}")
        try:
            if stream:
                text, finish, usage = "", None, None
                events = [l[6:] for l in raw.decode().split("\n") if l.startswith("data: ")]
                if not events or events[-1] != "[DONE]":
                    return self.count(kind, False, "stream does not end with [DONE]")
                for e in events[:-1]:
                    j = json.loads(e)
                    if "error" in j:
                        return self.count(kind, False, f"error event {e[:200]}")
                    if j.get("usage"):
                        usage = j["usage"]
                    for ch in j.get("choices", []):
                        text += (ch.get("delta", {}).get("content") or "") if chat else ch.get("text", "")
                        finish = ch.get("finish_reason") or finish
            else:
                j = json.loads(raw)
                ch = j["choices"][0]
                text = ch["message"]["content"] if chat else ch["text"]
                finish, usage = ch["finish_reason"], j["usage"]
            if finish not in ("stop", "length") or not isinstance(text, str):
                return self.count(kind, False, f"finish_reason {finish!r}")
            if not usage or not 0 < usage["completion_tokens"] <= mt or usage["prompt_tokens"] <= 0 \
                    or usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
                return self.count(kind, False, f"usage {usage}")
            if finish == "length" and usage["completion_tokens"] != mt:
                return self.count(kind, False, f"length with {usage['completion_tokens']} of {mt} tokens")
            if greedy and not self.greedy_check((chat, p, mt), text):
                return self.count(kind, False, f"greedy answer changed: {text!r}")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return self.count(kind, False, f"malformed answer {e!r}: {raw[:200]!r}")
        self.count(kind, True)

    # ==== invalid requests ====

    def invalid(self, rng):
        big = b'{"messages":[{"role":"user","content":"' + b"x" * (self.a.max_body + 1000) + b'"}]}'
        cases = [
            ("malformed JSON", "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}', (400,)),
            ("not an object", "/v1/chat/completions", b'[1, 2, 3]', (400,)),
            ("wrong type messages", "/v1/chat/completions", b'{"messages": "hello"}', (400,)),
            ("wrong type max_tokens", "/v1/chat/completions",
             b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}', (400,)),
            ("wrong type temperature", "/v1/completions", b'{"prompt": "hi", "temperature": "hot"}', (400,)),
            ("missing messages", "/v1/chat/completions", b'{"max_tokens": 4}', (400,)),
            ("missing prompt", "/v1/completions", b'{"max_tokens": 4}', (400,)),
            ("unknown model", "/v1/chat/completions",
             b'{"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}', (404,)),
            ("max_tokens 0", "/v1/completions", b'{"prompt": "hi", "max_tokens": 0}', (400,)),
            ("n > 1", "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}], "n": 3}', (400,)),
            ("bad UTF-8", "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "\xff\xfe\xc3("}]}', (400,)),
            ("bad UTF-8 prompt", "/v1/completions", b'{"prompt": "ok \xed\xa0\x80 no"}', (400,)),
            ("oversized body", "/v1/chat/completions", big, (413,)),
        ]
        name, path, body, want = rng.choice(cases)
        kind = "invalid: " + name
        try:
            st, raw = self.post(path, body)
        except (BrokenPipeError, ConnectionResetError) as e:
            # the server may answer 413 and close before reading the whole body: acceptable only
            # for the oversized case, and only if the server is still alive
            return self.count(kind, name == "oversized body", f"transport error {e!r}")
        except OSError as e:
            return self.count(kind, False, f"transport error {e!r}")
        if st not in want:
            return self.count(kind, False, f"status {st} (want {want}): {raw[:200]!r}")
        try:
            err = json.loads(raw)["error"]
            ok = isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str) \
                and "param" in err and "code" in err
        except (ValueError, KeyError, TypeError):
            ok = False
        self.count(kind, ok, f"not an OpenAI error body: {raw[:200]!r}")

    # ==== abandoned streams ====

    def disconnect(self, rng):
        chat = rng.random() < 0.5
        body = {"max_tokens": 200, "ignore_eos": True, "stream": True, "temperature": 0.5}
        if chat:
            body["messages"] = [{"role": "user", "content": rng.choice(PROMPTS)}]
        else:
            body["prompt"] = rng.choice(PROMPTS)
        kind = "disconnect mid-stream"
        s = socket.create_connection((self.host, self.port), timeout=60)
        try:
            data = json.dumps(body).encode()
            path = "/v1/chat/completions" if chat else "/v1/completions"
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
            got, want = b"", rng.randrange(1, 6)
            while got.count(b"data: ") < want:
                chunk = s.recv(4096)
                if not chunk:
                    return self.count(kind, False, "server closed the stream early")
                got += chunk
            ok = got.startswith(b"HTTP/1.1 200")
            self.count(kind, ok, f"bad stream start {got[:100]!r}")
        except OSError as e:
            self.count(kind, False, f"transport error {e!r}")
        finally:
            s.close()  # abandon: the server must cancel the sequence

    def client(self, seed):
        rng = random.Random(seed)
        while time.time() < self.stop_at:
            r = rng.random()
            if r < 0.55:
                self.valid(rng)
            elif r < 0.85:
                self.invalid(rng)
            else:
                self.disconnect(rng)


def metrics(host, port):
    out = {}
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locara", help="start BIN serve on a free port")
    ap.add_argument("--model")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, help="with --pid: soak a server already running")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--max-body", type=int, default=65536)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--rss-tol", type=float, default=0.05)
    a = ap.parse_args()
    proc, port, pid = None, a.port, a.pid
    if a.locara:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [a.locara, "serve", "--port", str(port), "-t", str(a.threads), "--parallel", str(a.parallel),
               "--ctx", str(a.ctx), "--max-body", str(a.max_body)]
        if a.model:
            cmd += ["-m", a.model]
        log = open(f"/tmp/locara-soak-{port}.log", "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        pid = proc.pid
        for _ in range(1200):
            if proc.poll() is not None:
                print(f"server exited with {proc.returncode} at start-up", file=sys.stderr)
                return 1
            try:
                urllib.request.urlopen(f"http://{a.host}:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
    sk = Soak(a.host, port, a)
    t0 = time.time()
    sk.stop_at = t0 + a.duration
    rss = {"start": rss_kb(pid)}
    samples = []
    ts = [threading.Thread(target=sk.client, args=(1000 + i,)) for i in range(a.clients)]
    for t in ts:
        t.start()
    alive = True
    while any(t.is_alive() for t in ts):
        time.sleep(1)
        if proc and proc.poll() is not None:
            alive = False
            sk.stop_at = 0
            break
        el = time.time() - t0
        if "warm" not in rss and el >= a.warmup:
            rss["warm"] = rss_kb(pid)
        if not samples or el - samples[-1][0] >= 30:
            samples.append((el, rss_kb(pid)))
    for t in ts:
        t.join()
    ok = alive
    if alive:
        time.sleep(2)  # let cancelled sequences finish their last step
        rss["end"] = rss_kb(pid)
        m = metrics(a.host, port)
        kv_used = m.get("locara_kv_blocks_used", -1)
        running = m.get("locara_requests_running", -1)
    wall = time.time() - t0
    lines = [f"# locara serve soak: {a.clients} clients, {wall:.0f} s on loopback", ""]
    lines.append(f"Command: `{' '.join(sys.argv)}`" + (f" (server: `{' '.join(proc.args)}`)" if proc else ""))
    lines += ["", "| requests | answered as expected | failed |", "| --- | ---: | ---: |"]
    tot_ok = tot_bad = 0
    for k in sorted(sk.counts):
        g, b = sk.counts[k]
        tot_ok, tot_bad = tot_ok + g, tot_bad + b
        lines.append(f"| {k} | {g} | {b} |")
    lines.append(f"| **all** | **{tot_ok}** | **{tot_bad}** |")
    lines += ["", f"Server alive at the end: {'yes' if alive else 'NO (exit %s)' % proc.returncode}."]
    if alive:
        warm = rss.get("warm", rss["start"])
        drift = (rss["end"] - warm) / warm
        lines.append(f"VmRSS: start {rss['start'] / 1024:.1f} MiB, after {a.warmup:.0f} s warm-up {warm / 1024:.1f} MiB, "
                     f"end {rss['end'] / 1024:.1f} MiB: {drift * 100:+.2f}% (limit ±{a.rss_tol * 100:.0f}%).")
        lines.append("VmRSS samples (s: MiB): " + ", ".join(f"{t:.0f}: {v / 1024:.1f}" for t, v in samples) + ".")
        lines.append(f"KV blocks still held by sequences after the run: {kv_used:.0f} (running: {running:.0f}).")
        ok = ok and abs(drift) <= a.rss_tol and kv_used == 0
    ok = ok and tot_bad == 0 and tot_ok > 0
    if sk.failures:
        lines += ["", "Failures (first 50):", ""] + [f"- {f}" for f in sk.failures]
    if proc and alive:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        lines.append(f"Server exit status after SIGTERM: {rc}.")
        ok = ok and rc == 0
    lines += ["", f"Result: {'PASS' if ok else 'FAIL'}"]
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
