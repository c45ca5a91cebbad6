#!/bin/sh
# compare.sh — `locara serve` against llama.cpp's llama-server on the same model file and machine:
# TTFT, prefill and decode speed at depths 20 .. 16k, cold and warm (bench/http/compare.json).
# Needs LLAMA_SERVER=/path/to/llama-server (a llama.cpp build of your own; nothing is fetched).
# Optional: MODEL (default: the default model with its context raised to 32k, made by
# make-long-model.sh when missing), LOCARA (default build/locara), THREADS (default: all cores),
# LOCARA_SERVE_ARGS / LLAMA_SERVER_ARGS (extra server flags), OUT (default
# bench/results/http-<host>-<date>), REPS / DEPTHS (override the config's), PARTS (depth groups run
# as separate invocations, e.g. "20,512,4k,8k 16k"; both servers in each), LOCK (a file: each part
# runs under `flock LOCK`, so a shared machine runs one timed part at a time), CONFIG (default
# bench/http/compare.json). The parts' rows are merged into one results.jsonl and one report.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The command line that reproduces this run, from the variables the caller set (README.md).
CMD=
for v in LLAMA_SERVER LOCARA MODEL THREADS REPS DEPTHS PARTS LOCK CONFIG OUT LOCARA_SERVE_ARGS LLAMA_SERVER_ARGS; do
  eval "val=\${$v:-}"
  [ -n "$val" ] && CMD="$CMD$v='$val' "
done
: "${LLAMA_SERVER:?set LLAMA_SERVER=/path/to/llama.cpp/build/bin/llama-server}"
LOCARA=${LOCARA:-$ROOT/build/locara}
MODELS=${XDG_CACHE_HOME:-$HOME/.cache}/locara/models
if [ -z "${MODEL:-}" ]; then
  MODEL=$MODELS/SmolLM2-135M-Instruct-Q4_1-ctx32k.gguf
  [ -r "$MODEL" ] || "$ROOT/bench/http/make-long-model.sh" "$MODELS/SmolLM2-135M-Instruct-Q4_1.gguf" "$MODEL" >/dev/null
fi
THREADS=${THREADS:-$(nproc)}
LOCARA_SERVE_ARGS=${LOCARA_SERVE_ARGS:-}
LLAMA_SERVER_ARGS=${LLAMA_SERVER_ARGS:-}
export LOCARA MODEL LLAMA_SERVER THREADS LOCARA_SERVE_ARGS LLAMA_SERVER_ARGS
[ -x "$LOCARA" ] || { echo "compare.sh: no locara binary at $LOCARA (make build)" >&2; exit 1; }
[ -x "$LLAMA_SERVER" ] || { echo "compare.sh: LLAMA_SERVER=$LLAMA_SERVER is not executable" >&2; exit 1; }
[ -r "$MODEL" ] || { echo "compare.sh: no model at $MODEL (make model)" >&2; exit 1; }

OUT=${OUT:-$ROOT/bench/results/http-$(hostname -s)-$(date +%Y%m%d)}
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
TITLE=${TITLE:-"locara serve vs llama-server — $(basename "$MODEL"), ${CPU:-CPU}, $THREADS threads"}
PARTS=${PARTS:-${DEPTHS:--}} # "-": one part with the config's depths
CONFIG=${CONFIG:-$ROOT/bench/http/compare.json}
STARTED=$(date -u +%Y-%m-%dT%H:%MZ)
# The source state the binary was presumably built from: taken now, before a long run lets others commit.
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' (with uncommitted changes under src/ or include/)')"
mkdir -p "$OUT"
# One invocation per depth group, each in OUT/part-N (under the lock, noting the time and the load
# average once it holds the lock: a busy machine shows in the figures), then one merged
# results.jsonl, server logs and report in OUT.
LOADS=
n=0
for depths in $PARTS; do
  n=$((n + 1))
  rm -rf "$OUT/part-$n"
  mkdir -p "$OUT/part-$n"
  set -- --config "$CONFIG" --out "$OUT/part-$n" --title "$TITLE"
  [ "$depths" != - ] && set -- "$@" --depths "$depths"
  [ -n "${REPS:-}" ] && set -- "$@" --reps "$REPS"
  echo "compare.sh: part $n: depths $depths" >&2
  ${LOCK:+flock "$LOCK"} sh -c 'echo "$(date -u +%H:%M:%SZ), load average $(cut -d" " -f1-3 /proc/loadavg)" > "$0"; exec "$@"' \
    "$OUT/part-$n/.start" "$LOCARA" bench http "$@"
  LOADS="$LOADS
- part $n (depths $depths): started $(cat "$OUT/part-$n/.start"), ended $(date -u +%H:%M:%SZ)"
done
: > "$OUT/results.jsonl"
rm -f "$OUT"/*.server.log
i=1
while [ "$i" -le "$n" ]; do
  cat "$OUT/part-$i/results.jsonl" >> "$OUT/results.jsonl"
  for log in "$OUT/part-$i"/*.server.log; do
    [ -e "$log" ] || continue
    { echo "==== part $i ===="; cat "$log"; } >> "$OUT/$(basename "$log")"
  done
  rm -rf "$OUT/part-$i"
  i=$((i + 1))
done
"$LOCARA" bench http --report "$OUT" --title "$TITLE"
{
  echo "# How this was produced"
  echo
  echo "    ${CMD}bench/http/compare.sh"
  echo
  echo "- date: $STARTED to $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -srm); CPU: ${CPU:-?}; threads: $THREADS"
  echo "- locara: $("$LOCARA" --version 2>&1 | head -n 1), checkout at commit $COMMIT when the run started; binary built $(date -u -r "$LOCARA" +%Y-%m-%dT%H:%MZ 2>/dev/null || echo ?)"
  echo "- llama-server: $("$LLAMA_SERVER" --version 2>&1 | grep -m1 -i version || echo ?)"
  echo "- model: $MODEL (sha256 $(sha256sum "$MODEL" | cut -d' ' -f1))"
  echo "- config: $CONFIG$LOADS"
} > "$OUT/README.md"
echo "report: $OUT/report.html"
