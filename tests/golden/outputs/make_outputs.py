#!/usr/bin/env python3
"""make_outputs.py — writes the recorded model outputs that tests/unit/test_outparse.c replays.

Each case is one JSON file: the family's chat template (under ../shared/refdata/templates, used to
check format detection), the parser options, the raw text the model generated after the prompt
(written in each family's real output format), and the expected OpenAI fields. Expected tool-call
arguments are the compact JSON text of the model's arguments (OpenAI style); where the model wrote
numbers Python would respell (2.50), the expected text is given literally.
Run: /work/venv/py/bin/python tests/golden/outputs/make_outputs.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def call(name, args):
    return {"name": name, "arguments": args if isinstance(args, str) else compact(args)}


CASES = {
    "qwen3_think_tool": dict(
        template="Qwen-Qwen3-0.6B.jinja", format="hermes", think=["<think>", "</think>"], tools=True,
        output='<think>\nThe user wants the current weather in Paris. I have a get_weather tool, so I '
               'should call it with city "Paris" and celsius.\n</think>\n\n<tool_call>\n'
               '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
        content="",
        reasoning='The user wants the current weather in Paris. I have a get_weather tool, so I should '
                  'call it with city "Paris" and celsius.',
        tool_calls=[call("get_weather", {"city": "Paris", "unit": "celsius"})]),
    "qwen3_think_answer": dict(
        template="Qwen-Qwen3-0.6B.jinja", format="hermes", think=["<think>", "</think>"], tools=True,
        output="<think>\nA greeting. Reply briefly and offer help.\n</think>\n\nHello! How can I help you today?",
        content="Hello! How can I help you today?",
        reasoning="A greeting. Reply briefly and offer help.", tool_calls=[]),
    "qwen3_unicode": dict(
        template="Qwen-Qwen3-0.6B.jinja", format="hermes", think=["<think>", "</think>"], tools=False,
        output="<think>\n用户在打招呼。\n</think>\n\n你好！😀 Ça va? <3",
        content="你好！😀 Ça va? <3", reasoning="用户在打招呼。", tool_calls=[]),
    "qwen25_parallel": dict(
        template="Qwen-Qwen2.5-7B-Instruct.jinja", format="hermes", think=None, tools=True,
        output="I'll check both cities.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
               "{\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", "
               "\"arguments\": {\"city\": \"Berlin\"}}\n</tool_call>",
        content="I'll check both cities.", reasoning="",
        tool_calls=[call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Berlin"})]),
    "qwen25_args_spelling": dict(
        template="Qwen-Qwen2.5-7B-Instruct.jinja", format="hermes", think=None, tools=True,
        output='<tool_call>\n{"name": "run_python", "arguments": {"code": "print(\\"hi\\")\\nx = {1: 2}", '
               '"timeout": 2.50, "opts": [1, 1e-7, {"a": null, "b": "x  y"}]}}\n</tool_call>',
        content="", reasoning="",
        tool_calls=[call("run_python", '{"code":"print(\\"hi\\")\\nx = {1: 2}","timeout":2.50,'
                                       '"opts":[1,1e-7,{"a":null,"b":"x  y"}]}')]),
    "hermes2pro_call": dict(
        template="NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", format="hermes", think=None,
        tools=True,
        output='<tool_call>\n{"arguments": {"symbol": "TSLA"}, "name": "get_stock_fundamentals"}\n</tool_call>',
        content="", reasoning="", tool_calls=[call("get_stock_fundamentals", {"symbol": "TSLA"})]),
    "hermes_plain_stray": dict(
        template="Qwen-Qwen2.5-7B-Instruct.jinja", format="hermes", think=None, tools=True,
        output="Use a < b to compare; the <tool tag and <tool_call are just text here, as is x<y and "
               "a trailing <tool_cal",
        content="Use a < b to compare; the <tool tag and <tool_call are just text here, as is x<y and "
                "a trailing <tool_cal",
        reasoning="", tool_calls=[]),
    "hermes_malformed": dict(
        template="Qwen-Qwen2.5-7B-Instruct.jinja", format="hermes", think=None, tools=True,
        output='<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}\n</tool_call>',
        content='<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}\n</tool_call>',
        reasoning="", tool_calls=[]),
    "hermes_truncated": dict(
        template="Qwen-Qwen2.5-7B-Instruct.jinja", format="hermes", think=None, tools=True,
        output='Let me check.\n<tool_call>\n{"name": "get_weather", "argum',
        content='Let me check.\n<tool_call>\n{"name": "get_weather", "argum',
        reasoning="", tool_calls=[]),
    "hermes_tools_off": dict(
        template="Qwen-Qwen2.5-7B-Instruct.jinja", format="hermes", think=None, tools=False,
        output='<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>',
        content='<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>', reasoning="", tool_calls=[]),
    "llama31_json": dict(
        template="meta-llama-Llama-3.1-8B-Instruct.jinja", format="llama3", think=None, tools=True,
        output='{"name": "get_current_conditions", "parameters": {"location": "San Francisco, CA", '
               '"unit": "Fahrenheit"}}',
        content="", reasoning="",
        tool_calls=[call("get_current_conditions", {"location": "San Francisco, CA", "unit": "Fahrenheit"})]),
    "llama31_python_tag": dict(
        template="meta-llama-Llama-3.1-8B-Instruct.jinja", format="llama3", think=None, tools=True,
        output='<|python_tag|>{"name": "web_search", "parameters": {"query": "latest news", "limit": 5}}',
        content="", reasoning="", tool_calls=[call("web_search", {"query": "latest news", "limit": 5})]),
    "llama32_two_calls": dict(
        template="meta-llama-Llama-3.2-3B-Instruct.jinja", format="llama3", think=None, tools=True,
        output='{"name": "get_weather", "parameters": {"city": "Rome"}}; '
               '{"name": "get_time", "parameters": {"tz": "Europe/Rome"}}',
        content="", reasoning="",
        tool_calls=[call("get_weather", {"city": "Rome"}), call("get_time", {"tz": "Europe/Rome"})]),
    "llama_plain_json": dict(
        template="meta-llama-Llama-3.1-8B-Instruct.jinja", format="llama3", think=None, tools=True,
        output='{"answer": 42, "unit": "none"}',
        content='{"answer": 42, "unit": "none"}', reasoning="", tool_calls=[]),
    "llama_text": dict(
        template="meta-llama-Llama-3.3-70B-Instruct.jinja", format="llama3", think=None, tools=True,
        output="The capital of France is Paris. In JSON that is {\"capital\": \"Paris\"}.",
        content="The capital of France is Paris. In JSON that is {\"capital\": \"Paris\"}.",
        reasoning="", tool_calls=[]),
    "mistral_nemo_array": dict(
        template="mistralai-Mistral-Nemo-Instruct-2407.jinja", format="mistral", think=None, tools=True,
        output='[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}, '
               '{"name": "get_time", "arguments": {"tz": "Europe/Paris"}, "id": "f5g6h7i8j"}]',
        content="", reasoning="",
        tool_calls=[call("get_weather", {"city": "Paris"}), call("get_time", {"tz": "Europe/Paris"})]),
    "mistral_small32_args": dict(
        template="Mistral-Small-3.2-24B-Instruct-2506.jinja", format="mistral", think=None, tools=True,
        output='I will look that up.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris", "days": 3}'
               '[TOOL_CALLS]get_time[ARGS]{"tz": "CET"}',
        content="I will look that up.", reasoning="",
        tool_calls=[call("get_weather", {"city": "Paris", "days": 3}), call("get_time", {"tz": "CET"})]),
    "mistral_bad_json": dict(
        template="mistralai-Mistral-Small-3.1-24B-Instruct-2503.jinja", format="mistral", think=None,
        tools=True,
        output='[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": Paris}}]',
        content='[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": Paris}}]',
        reasoning="", tool_calls=[]),
    "gptoss_tool": dict(
        template="openai-gpt-oss-120b.jinja", format="harmony", think=None, tools=True,
        output="<|channel|>analysis<|message|>User asks for the weather in Tokyo. Need to call "
               "get_weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather "
               "<|constrain|>json<|message|>{\"location\": \"Tokyo\", \"unit\": \"c\"}<|call|>",
        content="", reasoning="User asks for the weather in Tokyo. Need to call get_weather.",
        tool_calls=[call("get_weather", {"location": "Tokyo", "unit": "c"})]),
    "gptoss_final": dict(
        template="openai-gpt-oss-120b.jinja", format="harmony", think=None, tools=False,
        output="<|channel|>analysis<|message|>Simple arithmetic: 2+2=4.<|end|><|start|>assistant"
               "<|channel|>final<|message|>2 + 2 = 4.<|return|>",
        content="2 + 2 = 4.", reasoning="Simple arithmetic: 2+2=4.", tool_calls=[]),
    "gptoss_preamble": dict(
        template="openai-gpt-oss-120b.jinja", format="harmony", think=None, tools=True,
        output="<|channel|>analysis<|message|>Need the forecast.<|end|><|start|>assistant<|channel|>"
               "commentary<|message|>Checking the forecast now.<|end|><|start|>assistant to=functions."
               "get_forecast<|channel|>commentary json<|message|>{\"city\":\"Oslo\",\"days\":2}<|call|>",
        content="Checking the forecast now.", reasoning="Need the forecast.",
        tool_calls=[call("get_forecast", {"city": "Oslo", "days": 2})]),
    "deepseek_r1": dict(
        template="deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", format="plain",
        think=["<think>", "</think>"], tools=False, starts_in_reasoning=True,
        output="Okay, the user wants 17 times 23. 17*20 = 340 and 17*3 = 51, so 391.\n</think>\n\n"
               "17 × 23 = **391**.",
        content="17 × 23 = **391**.",
        reasoning="Okay, the user wants 17 times 23. 17*20 = 340 and 17*3 = 51, so 391.", tool_calls=[]),
    "deepseek_r1_truncated": dict(
        template="deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", format="plain",
        think=["<think>", "</think>"], tools=False, starts_in_reasoning=True,
        output="Hmm, let me think about this carefully. First </thi",
        content="", reasoning="Hmm, let me think about this carefully. First </thi", tool_calls=[]),
    "command_r7b_think": dict(
        template="CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", format="plain",
        think=["<|START_THINKING|>", "<|END_THINKING|>"], tools=False,
        output="<|START_THINKING|>The user greets me; answer politely.<|END_THINKING|>Hello there!",
        content="Hello there!", reasoning="The user greets me; answer politely.", tool_calls=[]),
    "seed_oss_think": dict(
        template="ByteDance-Seed-OSS.jinja", format="plain", think=["<seed:think>", "</seed:think>"],
        tools=False,
        output="<seed:think>Count the letters: s-t-r-a-w-b-e-r-r-y has three r.</seed:think>There are 3 r's.",
        content="There are 3 r's.", reasoning="Count the letters: s-t-r-a-w-b-e-r-r-y has three r.",
        tool_calls=[]),
    "plain_smollm": dict(
        template=None, format="plain", think=None, tools=False,
        output="  Memory bandwidth, slow\nweights stream through the narrow bus\ntokens trickle out  \n",
        content="Memory bandwidth, slow\nweights stream through the narrow bus\ntokens trickle out",
        reasoning="", tool_calls=[]),
}


def main():
    for name, c in CASES.items():
        doc = {
            "template": c["template"],
            "format": c["format"],
            "think": c["think"],
            "starts_in_reasoning": c.get("starts_in_reasoning", False),
            "tools": c["tools"],
            "output": c["output"],
            "expected": {"content": c["content"], "reasoning": c["reasoning"],
                         "tool_calls": c["tool_calls"]},
        }
        with open(os.path.join(HERE, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
    print(f"wrote {len(CASES)} cases to {HERE}")


if __name__ == "__main__":
    main()
