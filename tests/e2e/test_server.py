"""test_server.py — `locara serve` end to end with the official openai client and raw HTTP.

Checks: models/health/metrics/tokenize, chat and completions (streaming and not, usage with
cached_tokens, include_usage), stop strings, seed reproducibility, logprobs, json_object output,
a 400/404/405/413 with an OpenAI error body for each kind of bad input (and that the server keeps
serving), 8 concurrent greedy requests equal to the same requests one at a time, the prefix cache
on the second turn of a ~4k-token conversation, cancellation on disconnect, a tools round trip on
a tiny Qwen-template model, context shift, and a graceful SIGTERM. max_tokens stay small.
"""

import concurrent.futures as cf
import http.client
import json
import os
import signal
import threading
import time

import openai
import pytest

from conftest import Server

MSG = [{"role": "user", "content": "Name three colors."}]


def test_models_health(server, client):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["SmolLM2-135M-Instruct-Q4_1"]
    assert json.loads(server.get("/health"))["status"] == "ok"


def test_tokenize_roundtrip(server):
    st, r = server.post("/tokenize", {"content": "Hello world, héllo!"})
    assert st == 200 and all(isinstance(t, int) for t in r["tokens"]) and len(r["tokens"]) >= 4
    st, d = server.post("/detokenize", {"tokens": r["tokens"]})
    assert st == 200 and d["content"] == "Hello world, héllo!"
    assert server.post("/tokenize", {"content": 5})[0] == 400
    assert server.post("/detokenize", {"tokens": [-1]})[0] == 400


def test_chat_nonstream(client):
    r = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=MSG, max_tokens=8, temperature=0)
    c = r.choices[0]
    assert r.object == "chat.completion" and c.message.role == "assistant"
    assert isinstance(c.message.content, str) and c.message.content
    assert c.finish_reason in ("stop", "length")
    u = r.usage
    assert u.prompt_tokens > 5 and 0 < u.completion_tokens <= 8 and u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert u.prompt_tokens_details.cached_tokens >= 0


def test_chat_stream_matches_nonstream(client):
    full = client.chat.completions.create(model="x" if False else "SmolLM2-135M-Instruct-Q4_1", messages=MSG,
                                          max_tokens=8, temperature=0)
    chunks = list(client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=MSG, max_tokens=8,
                                                 temperature=0, stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == full.choices[0].message.content
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    # the same prompt again: its full blocks come from the prefix cache (or none if shorter than a block)
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens >= 0


def test_completions(client):
    r = client.completions.create(model="SmolLM2-135M-Instruct-Q4_1", prompt="The capital of France is", max_tokens=6,
                                  temperature=0)
    assert r.object == "text_completion" and "Paris" in r.choices[0].text
    s = list(client.completions.create(model="SmolLM2-135M-Instruct-Q4_1", prompt="The capital of France is",
                                       max_tokens=6, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in s if c.choices) == r.choices[0].text


def test_stop(client):
    base = client.completions.create(model="m" if False else "SmolLM2-135M-Instruct-Q4_1",
                                     prompt="The capital of France is", max_tokens=6, temperature=0).choices[0].text
    word = base.strip().split()[0][:3]  # e.g. "Par"
    r = client.completions.create(model="SmolLM2-135M-Instruct-Q4_1", prompt="The capital of France is", max_tokens=6,
                                  temperature=0, stop=[word])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == base[:base.index(word)]


def test_seed_reproducible(client):
    kw = dict(model="SmolLM2-135M-Instruct-Q4_1", messages=[{"role": "user", "content": "Tell me a story."}],
              max_tokens=10, temperature=1.0, top_p=1.0)
    a = client.chat.completions.create(seed=1234, **kw).choices[0].message.content
    b = client.chat.completions.create(seed=1234, **kw).choices[0].message.content
    assert a == b


def test_logprobs(client):
    r = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=MSG, max_tokens=5, temperature=0,
                                       logprobs=True, top_logprobs=3)
    lp = r.choices[0].logprobs.content
    assert len(lp) == r.usage.completion_tokens - (1 if r.choices[0].finish_reason == "stop" else 0)
    for e in lp:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob
        assert abs(e.top_logprobs[0].logprob - e.logprob) < 1e-4  # greedy picks the most likely
    assert "".join(e.token for e in lp) == r.choices[0].message.content


@pytest.mark.parametrize("max_tokens", [6, 40])
def test_json_object(client, max_tokens):
    r = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", max_tokens=max_tokens, temperature=0.7,
                                       seed=7, response_format={"type": "json_object"},
                                       messages=[{"role": "user", "content": "Describe a cat as JSON."}])
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_bad_inputs(server, client):
    def err(status, body, raw=False, path="/v1/chat/completions"):
        st, r = server.post(path, body, raw=raw)
        assert st == status, (st, r)
        e = r["error"]
        assert set(e) == {"message", "type", "param", "code"} and e["message"]
        return e

    err(400, b'{"messages": [', raw=True)
    err(400, b'[1, 2]', raw=True)
    assert err(400, b'{"messages":[{"role":"user","content":"\xff\xfe"}]}', raw=True)["code"] == "invalid_utf8"
    err(400, {"messages": "hi"})
    err(400, {"messages": [{"role": "user", "content": 5}]})
    err(400, {"messages": [{"role": "wizard", "content": "x"}]})
    err(400, {})
    err(400, {"messages": MSG, "temperature": "hot"})
    err(400, {"messages": MSG, "max_tokens": -3})
    assert err(400, {"messages": MSG, "n": 2})["param"] == "n"
    err(400, {"messages": MSG, "logit_bias": {"abc": 1}})
    err(400, {"prompt": 5}, path="/v1/completions")
    assert err(404, {"messages": MSG, "model": "gpt-17"})["code"] == "model_not_found"
    long = "hello " * 9000  # > --ctx 8192 tokens
    assert err(400, {"prompt": long, "max_tokens": 1}, path="/v1/completions")["code"] == "context_length_exceeded"
    assert err(413, b'{"prompt": "' + b"a" * 1100000 + b'"}', raw=True, path="/v1/completions")["code"] == "request_too_large"
    st, _ = server.post("/nope", {})
    assert st == 404
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=[], max_tokens=1)
    # still serving
    r = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=MSG, max_tokens=2)
    assert r.choices[0].message.content is not None


def test_unknown_fields_ignored(server):
    st, r = server.post("/v1/chat/completions", {"messages": MSG, "max_tokens": 2, "frobnicate": {"x": 1}, "user": "u"})
    assert st == 200 and r["choices"][0]["message"]["role"] == "assistant"


def test_concurrent_equals_sequential(client):
    prompts = [f"Write one sentence about the number {i}." for i in range(8)]

    def run(p):
        return client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", max_tokens=12, temperature=0,
                                              messages=[{"role": "user", "content": p}]).choices[0].message.content

    seq = [run(p) for p in prompts]
    with cf.ThreadPoolExecutor(8) as ex:
        par = list(ex.map(run, prompts))
    assert par == seq


def test_prefix_cache_second_turn(server, client):
    # ~4.1k tokens with LOCARA_E2E_LONG=1 (the acceptance figure); ~1k by default to keep the suite short
    n_facts, want = (210, 4000) if os.environ.get("LOCARA_E2E_LONG") else (50, 900)
    block = int(server.metrics()["locara_kv_block_tokens"])
    text = " ".join(f"Fact {i}: the item numbered {i} is stored on shelf {i % 17}." for i in range(n_facts))
    msgs = [{"role": "system", "content": "You are a librarian."}, {"role": "user", "content": text + " Summarise."}]
    r1 = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=msgs, max_tokens=4, temperature=0)
    assert r1.usage.prompt_tokens >= want
    msgs += [{"role": "assistant", "content": r1.choices[0].message.content},
             {"role": "user", "content": "And shelf 3?"}]
    before = server.metrics()["locara_prefix_tokens_reused_total"]
    r2 = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=msgs, max_tokens=4, temperature=0)
    cached = r2.usage.prompt_tokens_details.cached_tokens
    assert cached >= r1.usage.prompt_tokens - block, (cached, r1.usage.prompt_tokens, block)
    assert server.metrics()["locara_prefix_tokens_reused_total"] - before == cached


def test_disconnect_cancels(server):
    m0 = server.metrics()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": True, "stream": True})
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    resp.fp.readline()  # first chunk arrived: the sequence is running
    conn.sock.shutdown(2)
    conn.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        m = server.metrics()
        if m["locara_requests_cancelled_total"] > m0["locara_requests_cancelled_total"] and m["locara_requests_running"] == 0:
            break
        time.sleep(0.05)
    assert m["locara_requests_cancelled_total"] == m0["locara_requests_cancelled_total"] + 1
    assert m["locara_requests_running"] == 0 and m["locara_kv_blocks_used"] == 0
    assert m["locara_generated_tokens_total"] - m0["locara_generated_tokens_total"] < 4000


def test_metrics(server):
    text = server.get("/metrics")
    for name in ["locara_requests_total", "locara_prompt_tokens_total", "locara_generated_tokens_total",
                 "locara_time_to_first_token_seconds_bucket", "locara_decode_tokens_per_second_bucket",
                 "locara_kv_blocks_used", "locara_kv_blocks_cached", "locara_prefix_tokens_reused_total"]:
        assert name in text


def test_tools_round_trip(tool_server):
    import openai as oa
    c = oa.OpenAI(base_url=tool_server.url + "/v1", api_key="none", max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                              "required": ["city"]}}}]
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = c.chat.completions.create(model="qwen-tiny", messages=msgs, tools=tools, max_tokens=8, temperature=0)
    ch = r.choices[0]
    assert ch.finish_reason in ("stop", "length", "tool_calls")
    assert ch.message.content is not None or ch.message.tool_calls
    # second turn: the assistant called the tool, the tool answered
    msgs += [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
             {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"}]
    r2 = c.chat.completions.create(model="qwen-tiny", messages=msgs, tools=tools, max_tokens=8, temperature=0)
    assert r2.choices[0].finish_reason in ("stop", "length", "tool_calls")
    s = list(c.chat.completions.create(model="qwen-tiny", messages=msgs, tools=tools, max_tokens=8, temperature=0,
                                       stream=True))
    assert s[-1].choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_context_shift_and_limit(model_path):
    body = {"prompt": "Count: one two three four five", "max_tokens": 150, "ignore_eos": True, "temperature": 0}
    s = Server(model_path, "--parallel", "1", "--ctx", "128", "--keep", "8")
    try:
        st, r = s.post("/v1/completions", body)
        assert st == 200 and r["usage"]["completion_tokens"] == 150 and r["choices"][0]["finish_reason"] == "length"
    finally:
        assert s.stop() == 0
    s = Server(model_path, "--parallel", "1", "--ctx", "128")
    try:
        st, r = s.post("/v1/completions", body)
        assert st == 200 and r["choices"][0]["finish_reason"] == "length"
        assert r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] <= 129
    finally:
        assert s.stop() == 0


def test_sigterm_finishes_inflight(model_path):
    s = Server(model_path, "--parallel", "2", "--ctx", "1024")
    out = {}

    def req():
        out["r"] = s.post("/v1/completions", {"prompt": "Hello", "max_tokens": 24, "ignore_eos": True})

    t = threading.Thread(target=req)
    t.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert s.proc.wait(60) == 0
    st, r = out["r"]
    assert st == 200 and r["usage"]["completion_tokens"] == 24
    s.log.close()
