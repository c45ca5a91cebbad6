#!/bin/sh
# compare.sh — `locara serve` against llama.cpp's llama-server on the same model file and machine:
# TTFT, prefill and decode speed at depths 20 .. 16k, cold and warm (bench/http/compare.json).
# Needs LLAMA_SERVER=/path/to/llama-server (a llama.cpp build of your own; nothing is fetched).
# Optional: MODEL (default: the project's default model), LOCARA (default build/locara),
# THREADS (default: all cores), LOCARA_SERVE_ARGS / LLAMA_SERVER_ARGS (extra server flags),
# OUT (default bench/results/http-<host>-<date>), REPS / DEPTHS (override the config's).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${LLAMA_SERVER:?set LLAMA_SERVER=/path/to/llama.cpp/build/bin/llama-server}"
LOCARA=${LOCARA:-$ROOT/build/locara}
MODEL=${MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/locara/models/SmolLM2-135M-Instruct-Q4_1.gguf}
THREADS=${THREADS:-$(nproc)}
LOCARA_SERVE_ARGS=${LOCARA_SERVE_ARGS:-}
LLAMA_SERVER_ARGS=${LLAMA_SERVER_ARGS:-}
export LOCARA MODEL LLAMA_SERVER THREADS LOCARA_SERVE_ARGS LLAMA_SERVER_ARGS
[ -x "$LOCARA" ] || { echo "compare.sh: no locara binary at $LOCARA (make build)" >&2; exit 1; }
[ -x "$LLAMA_SERVER" ] || { echo "compare.sh: LLAMA_SERVER=$LLAMA_SERVER is not executable" >&2; exit 1; }
[ -r "$MODEL" ] || { echo "compare.sh: no model at $MODEL (make model)" >&2; exit 1; }

OUT=${OUT:-$ROOT/bench/results/http-$(hostname -s)-$(date +%Y%m%d)}
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
TITLE="locara serve vs llama-server — $(basename "$MODEL"), ${CPU:-CPU}, $THREADS threads"
set -- --config "$ROOT/bench/http/compare.json" --out "$OUT" --title "$TITLE"
[ -n "${REPS:-}" ] && set -- "$@" --reps "$REPS"
[ -n "${DEPTHS:-}" ] && set -- "$@" --depths "$DEPTHS"
"$LOCARA" bench http "$@"
{
  echo "# How this was produced"
  echo
  echo "    LLAMA_SERVER=$LLAMA_SERVER bench/http/compare.sh"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -srm); CPU: ${CPU:-?}; threads: $THREADS"
  echo "- locara: $("$LOCARA" --version 2>&1 | head -n 1), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)"
  echo "- llama-server: $("$LLAMA_SERVER" --version 2>&1 | grep -m1 -i version || echo ?)"
  echo "- model: $MODEL ($(sha256sum "$MODEL" | cut -c1-16))"
} > "$OUT/README.md"
echo "report: $OUT/report.html"
