"""test_server_tools.py — forced tool calls and json_schema on `locara serve`, with the openai client.

tool_choice "required" and {"type":"function","function":{"name":...}} on a tiny random-weight
qwen2 model with the real Qwen2.5 template (Hermes <tool_call> syntax): the reply must be exactly
one tool call (finish_reason "tool_calls", a listed name, arguments a JSON object), streaming and
not, across seeds and temperatures; a name not in tools and a template without tool syntax get
400s. response_format json_schema is served as json_object: the content is one valid JSON object.
"""

import json

import openai
import pytest

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Time in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_weather_alerts", "parameters": {"type": "object"}}},
]
MSGS = [{"role": "user", "content": "What is the weather in Paris?"}]
NAMES = {t["function"]["name"] for t in TOOLS}


@pytest.fixture(scope="module")
def tc(tool_server):
    return openai.OpenAI(base_url=tool_server.url + "/v1", api_key="none", max_retries=0, timeout=300)


def check_call(msg, finish, names):
    assert finish == "tool_calls", (finish, msg)
    assert msg.tool_calls and len(msg.tool_calls) == 1, msg
    call = msg.tool_calls[0]
    assert call.type == "function" and call.function.name in names
    assert call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments), dict)
    assert not msg.content
    return call


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_named_function_forced(tc, seed):
    r = tc.chat.completions.create(model="qwen-tiny", messages=MSGS, tools=TOOLS, max_tokens=40, temperature=1.0,
                                   seed=seed, tool_choice={"type": "function", "function": {"name": "get_time"}})
    check_call(r.choices[0].message, r.choices[0].finish_reason, {"get_time"})


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_required_forced(tc, seed):
    r = tc.chat.completions.create(model="qwen-tiny", messages=MSGS, tools=TOOLS, max_tokens=48, temperature=1.0,
                                   seed=seed, tool_choice="required")
    check_call(r.choices[0].message, r.choices[0].finish_reason, NAMES)


@pytest.mark.parametrize("seed", [9, 10])
def test_required_tight_budget_still_a_call(tc, seed):
    # the shortest call, '"get_time", "arguments": {}}\n</tool_call>' after the prefill, is 42 bytes:
    # with one token per byte at worst plus the end token, 43 tokens always suffice, and the grammar's
    # budget makes a random model close the call in time
    r = tc.chat.completions.create(model="qwen-tiny", messages=MSGS, tools=TOOLS, max_tokens=43, temperature=1.5,
                                   seed=seed, tool_choice="required")
    check_call(r.choices[0].message, r.choices[0].finish_reason, NAMES)


def test_required_budget_too_small(tc):
    # documented fallback: a max_tokens too small for any call ends with "length" and the partial
    # call text as content (never a 500)
    r = tc.chat.completions.create(model="qwen-tiny", messages=MSGS, tools=TOOLS, max_tokens=6, temperature=0,
                                   tool_choice="required")
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content.startswith("<tool_call>") and not r.choices[0].message.tool_calls


def test_required_streaming(tc):
    chunks = list(tc.chat.completions.create(model="qwen-tiny", messages=MSGS, tools=TOOLS, max_tokens=48,
                                             temperature=0.8, seed=5, tool_choice="required", stream=True))
    calls = [c for ch in chunks if ch.choices for c in (ch.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].function.name in NAMES and calls[0].index == 0
    assert isinstance(json.loads(calls[0].function.arguments), dict)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


def test_forced_call_round_trip(tc):
    r = tc.chat.completions.create(model="qwen-tiny", messages=MSGS, tools=TOOLS, max_tokens=40, temperature=0,
                                   tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = check_call(r.choices[0].message, r.choices[0].finish_reason, {"get_weather"})
    msgs = MSGS + [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                   {"role": "tool", "tool_call_id": call.id, "content": "{\"temp_c\": 21}"}]
    r2 = tc.chat.completions.create(model="qwen-tiny", messages=msgs, tools=TOOLS, max_tokens=8, temperature=0)
    assert r2.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_tool_choice_errors(tc, tool_server):
    with pytest.raises(openai.BadRequestError) as e:
        tc.chat.completions.create(model="qwen-tiny", messages=MSGS, tools=TOOLS, max_tokens=4,
                                   tool_choice={"type": "function", "function": {"name": "nope"}})
    assert e.value.body["param"] == "tool_choice"
    st, r = tool_server.post("/v1/chat/completions", {"messages": MSGS, "tools": TOOLS, "tool_choice": {"type": "function"}})
    assert st == 400 and r["error"]["param"] == "tool_choice"
    st, r = tool_server.post("/v1/chat/completions", {"messages": MSGS, "tool_choice": "required"})
    assert st == 400 and r["error"]["param"] == "tool_choice"


def test_required_without_tool_syntax(client):
    # SmolLM2's ChatML template has no tool-call syntax: "required" cannot be honoured -> 400
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=MSGS, tools=TOOLS, max_tokens=4,
                                       tool_choice="required")
    assert e.value.body["code"] == "unsupported_value"


@pytest.mark.parametrize("seed", [1, 2])
def test_json_schema_is_valid_json(client, seed):
    fmt = {"type": "json_schema", "json_schema": {"name": "color", "schema": {
        "type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}}}
    r = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q4_1", messages=[
        {"role": "user", "content": "Give a color as JSON."}], max_tokens=30, temperature=0.7, seed=seed,
        response_format=fmt)
    assert isinstance(json.loads(r.choices[0].message.content), dict)
