#!/bin/sh
# make-long-model.sh — the long-context variant of the default model used by compare.sh for depths
# past 8k: a byte-for-byte copy of SmolLM2-135M-Instruct-Q4_1.gguf whose llama.context_length
# (8192, its training context) is raised to 32768 (CTX), patched in place by gguf-py's
# gguf_set_metadata (any architecture: the key is <general.architecture>.context_length).
# Same weights, same tokenizer, same compute per token; text generated past ~8k positions is not
# meaningful (RoPE positions the model never saw), but what the benchmark measures is speed.
# Usage: bench/http/make-long-model.sh [SRC [DST]]; prints DST. Idempotent. PYTHON (default: the
# project venv's, else python3) must have gguf-py (pip install gguf).
set -eu
MODELS=${XDG_CACHE_HOME:-$HOME/.cache}/locara/models
SRC=${1:-$MODELS/SmolLM2-135M-Instruct-Q4_1.gguf}
DST=${2:-$MODELS/SmolLM2-135M-Instruct-Q4_1-ctx32k.gguf}
CTX=${CTX:-32768}
PYTHON=${PYTHON:-}
[ -n "$PYTHON" ] || { [ -x /work/venv/py/bin/python ] && PYTHON=/work/venv/py/bin/python; } || PYTHON=python3
"$PYTHON" -c "import gguf" 2>/dev/null || { echo "make-long-model.sh: $PYTHON lacks gguf-py (pip install gguf)" >&2; exit 1; }
[ -r "$SRC" ] || { echo "make-long-model.sh: no model at $SRC (make model)" >&2; exit 1; }
mkdir -p "$(dirname "$DST")"
TMP=$DST.tmp.$$
trap 'rm -f "$TMP"' EXIT
cp "$SRC" "$TMP"
ARCH=$("$PYTHON" -c 'import sys, gguf
f = gguf.GGUFReader(sys.argv[1]).get_field("general.architecture")
print(f.contents() if f else "")' "$SRC")
[ -n "$ARCH" ] || { echo "make-long-model.sh: $SRC has no general.architecture" >&2; exit 1; }
"$PYTHON" -m gguf.scripts.gguf_set_metadata --force "$TMP" "$ARCH.context_length" "$CTX" >/dev/null 2>&1 ||
  { echo "make-long-model.sh: could not set $ARCH.context_length in $TMP" >&2; exit 1; }
# Check the result: the key reads back as CTX, and nothing but that 4-byte value changed.
GOT=$("$PYTHON" -c 'import sys, gguf
f = gguf.GGUFReader(sys.argv[1]).get_field(sys.argv[2])
print(f.contents() if f else "")' "$TMP" "$ARCH.context_length")
DIFF=$(cmp -l "$SRC" "$TMP" | wc -l)
[ "$GOT" = "$CTX" ] && [ "$DIFF" -le 4 ] ||
  { echo "make-long-model.sh: unexpected result ($ARCH.context_length=$GOT, $DIFF bytes differ)" >&2; exit 1; }
mv "$TMP" "$DST"
trap - EXIT
echo "$DST"
