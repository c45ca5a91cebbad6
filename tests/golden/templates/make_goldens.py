#!/usr/bin/env python3
"""Regenerates tests/golden/templates/goldens/*.json: every chat template in
../shared/refdata/templates/*.jinja rendered by Python jinja2 on every conversation in
conversations/*.json, with jinja2 set up exactly as Hugging Face transformers does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, the {% generation %}
tag, transformers' tojson, raise_exception) except that strftime_now uses a FIXED time
(FIXED_TIME, UTC) so the goldens are stable; the C side gets the same time via
LOCARA_FIXED_TIME.

Variables passed to the template, as transformers' render_jinja_template does: messages, tools
(None when the conversation has none), documents (None), add_generation_prompt (False when
absent), and every other key of the conversation (bos_token, eos_token, enable_thinking, ...).

Run: /work/venv/py/bin/python tests/golden/templates/make_goldens.py
Each golden file maps conversation name -> {"ok": true, "output": str} or
{"ok": false, "error": str}.
"""
import datetime
import glob
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_TIME = 1736937000  # 2025-01-15 10:30:00 UTC

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TEMPLATES = os.path.join(ROOT, "..", "shared", "refdata", "templates")


class AssistantTracker(Extension):
    """transformers' {% generation %} ... {% endgeneration %} tag: renders its body as is."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(FIXED_TIME, datetime.timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def template_vars(conv):
    v = {k: val for k, val in conv.items() if not k.startswith("_")}
    v.setdefault("tools", None)
    v.setdefault("documents", None)
    v.setdefault("add_generation_prompt", False)
    return v


def main():
    env = make_env()
    convs = {}
    for path in sorted(glob.glob(os.path.join(HERE, "conversations", "*.json"))):
        with open(path, encoding="utf-8") as f:
            convs[os.path.splitext(os.path.basename(path))[0]] = json.load(f)
    out_dir = os.path.join(HERE, "goldens")
    os.makedirs(out_dir, exist_ok=True)
    n_ok = n_err = 0
    for tpath in sorted(glob.glob(os.path.join(TEMPLATES, "*.jinja"))):
        name = os.path.splitext(os.path.basename(tpath))[0]
        with open(tpath, encoding="utf-8") as f:
            src = f.read()
        result = {}
        try:
            tmpl = env.from_string(src)
        except Exception as e:  # syntax error: every conversation fails
            tmpl = None
            err = f"{type(e).__name__}: {e}"
        for cname, conv in convs.items():
            if tmpl is None:
                result[cname] = {"ok": False, "error": err}
                n_err += 1
                continue
            try:
                result[cname] = {"ok": True, "output": tmpl.render(**template_vars(conv))}
                n_ok += 1
            except Exception as e:
                result[cname] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                n_err += 1
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.write("\n")
    print(f"{len(convs)} conversations, {n_ok} renders, {n_err} jinja2 errors", file=sys.stderr)


if __name__ == "__main__":
    main()
