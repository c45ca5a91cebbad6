"""fake_openai.py — a scripted OpenAI-compatible endpoint for testing `locara bench http`.

It streams chat completions with known timing: the first token after `ttft` seconds, then
`n_tokens - 1` more at `tps` tokens per second, usage in the last chunk (prompt tokens = words in
all messages, the same count its /tokenize gives). Modes make it fail on purpose: "error500"
answers HTTP 500, "hang" never answers, "drop" closes the connection mid-stream, "crash" kills
the whole process mid-stream; `max_prompt` rejects deeper prompts with HTTP 400. `/health` is 503
until `startup_delay` has passed. Every chat request's JSON body is kept in `requests`.

Use it in-process (FakeOpenAI(...).start()) or as a program (python fake_openai.py --port N ...),
which is how the tests drive `--server-cmd`.
"""

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def count_words(text):
    return len(text.split())


def prompt_words(body):
    return sum(count_words(m.get("content") or "") for m in body.get("messages", []))


class FakeOpenAI:
    def __init__(self, port=0, ttft=0.1, n_tokens=10, tps=50.0, mode="ok", tokenize=True,
                 max_prompt=None, startup_delay=0.0, usage=True):
        self.script = dict(ttft=ttft, n_tokens=n_tokens, tps=tps, mode=mode, tokenize=tokenize,
                           max_prompt=max_prompt, usage=usage)
        self.started = time.monotonic()
        self.startup_delay = startup_delay
        self.requests = []
        self.achieved = []  # per streamed request: the TTFT (s) and decode rate (tok/s) it really had
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def do_GET(self):
                if time.monotonic() - fake.started < fake.startup_delay:
                    return self._json(503, {"error": {"message": "loading model"}})
                if self.path == "/health":
                    return self._json(200, {"status": "ok"})
                if self.path == "/v1/models":
                    return self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                t0 = time.monotonic()  # the scripted delays count from the request's arrival
                body = self._body()
                s = fake.script
                if self.path == "/tokenize":
                    if not s["tokenize"]:
                        return self._json(404, {"error": {"message": "not found"}})
                    return self._json(200, {"tokens": list(range(count_words(body.get("content", ""))))})
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": "not found"}})
                with fake.lock:
                    fake.requests.append(body)
                n_prompt = prompt_words(body)
                if s["mode"] == "error500":
                    return self._json(500, {"error": {"message": "scripted internal error"}})
                if s["max_prompt"] is not None and n_prompt > s["max_prompt"]:
                    return self._json(400, {"error": {"message": f"prompt of {n_prompt} tokens exceeds the context"}})
                if s["mode"] == "hang":
                    time.sleep(3600)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                n = min(int(body.get("max_tokens") or s["n_tokens"]), s["n_tokens"])

                def send(obj):
                    data = f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()

                def chunk(delta, finish=None):
                    return {"object": "chat.completion.chunk", "model": body.get("model"),
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

                send(chunk({"role": "assistant", "content": ""}))  # carries no token: not the first
                sent = []
                for i in range(n):
                    due = t0 + s["ttft"] + i / s["tps"]
                    time.sleep(max(0.0, due - time.monotonic()))
                    if i == n // 2 and s["mode"] == "drop":
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        self.close_connection = True
                        return
                    if i == n // 2 and s["mode"] == "crash":
                        os._exit(3)
                    send(chunk({"content": f" tok{i}"}))
                    sent.append(time.monotonic())
                if n >= 2:  # what the scripted sleeps really gave on a loaded machine
                    with fake.lock:
                        fake.achieved.append({"ttft": sent[0] - t0, "tps": (n - 1) / (sent[-1] - sent[0])})
                send(chunk({}, "length"))
                if s["usage"]:
                    send({"object": "chat.completion.chunk", "choices": [],
                          "usage": {"prompt_tokens": n_prompt, "completion_tokens": n,
                                    "total_tokens": n_prompt + n}})
                send("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ttft", type=float, default=0.1)
    ap.add_argument("--n-tokens", type=int, default=10)
    ap.add_argument("--tps", type=float, default=50.0)
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--max-prompt", type=int, default=None)
    ap.add_argument("--startup-delay", type=float, default=0.0)
    a = ap.parse_args()
    fake = FakeOpenAI(port=a.port, ttft=a.ttft, n_tokens=a.n_tokens, tps=a.tps, mode=a.mode,
                      max_prompt=a.max_prompt, startup_delay=a.startup_delay)
    fake.httpd.serve_forever()


if __name__ == "__main__":
    main()
