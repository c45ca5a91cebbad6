#!/usr/bin/env bash
# compare.sh — Locara's engine against llama.cpp's llama-bench on the same GGUF files, on CPU.
#
# Owns: making the benchmark models (tools/make_random_model.py --shape, then `locara quantize`),
# running `locara bench` and `llama-bench` alternately (interleaved rounds, so drift in machine
# load hits both), the memory-bandwidth probe (membw.c), and the report (summarize.py).
# Not here: building llama.cpp. Point LLAMA_BENCH at a llama-bench binary you built yourself.
#
#   LLAMA_BENCH=/path/to/llama-bench bench/engine/compare.sh [OUT.md]
# Env: LOCARA (default build/locara), MODELS (model cache dir), ROUNDS (3), THREADS (2),
#      LLAMA_ARGS (extra llama-bench flags, e.g. "--repack 0" where its AMX repack path crashes),
#      PP (512), TG (128), REPS (3), PY (python with numpy+gguf), ONLY (space-separated model names)
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLAMA_BENCH:?set LLAMA_BENCH to a llama-bench binary}"
LOCARA=${LOCARA:-build/locara}
MODELS=${MODELS:-${TMPDIR:-/tmp}/locara-bench-models}
LLAMA_ARGS=${LLAMA_ARGS:-}
ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}; PP=${PP:-512}; TG=${TG:-128}; REPS=${REPS:-3}
PY=${PY:-.venv/bin/python}
OUT=${1:-bench/results/engine-cpu.md}
RAW=$MODELS/raw-$(date +%Y%m%d-%H%M%S)
mkdir -p "$MODELS" "$RAW"

# name = shape:type
ALL="llama-1b:Q4_0 llama-1b:Q8_0 llama-1b:Q4_K_M qwen3moe-small:Q4_K_M"
SET=${ONLY:-$ALL}

for spec in $SET; do
  shape=${spec%%:*}; type=${spec##*:}
  f16=$MODELS/$shape-F16.gguf
  [ -s "$f16" ] || { echo "making $f16"; "$PY" tools/make_random_model.py --shape "$shape" "$f16.tmp" && mv "$f16.tmp" "$f16"; }
  q=$MODELS/$shape-$type.gguf
  [ -s "$q" ] || { echo "quantizing $q"; "$LOCARA" quantize --threads 1 "$f16" "$q.tmp" "$type" >/dev/null 2>&1 && mv "$q.tmp" "$q"; }
done

# Memory bandwidth first (quiet machine), 1 and $THREADS threads.
cc -O2 -march=native -pthread bench/engine/membw.c -o "$RAW/membw"
"$RAW/membw" 1024 1 7 > "$RAW/membw.txt"
"$RAW/membw" 1024 "$THREADS" 7 >> "$RAW/membw.txt"
cat "$RAW/membw.txt"

for r in $(seq 1 "$ROUNDS"); do
  for spec in $SET; do
    shape=${spec%%:*}; type=${spec##*:}; q=$MODELS/$shape-$type.gguf; tag=$shape-$type
    echo "round $r: $tag locara"
    "$LOCARA" bench -m "$q" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" --json > "$RAW/locara-$tag-r$r.json"
    echo "round $r: $tag llama-bench"
    # shellcheck disable=SC2086
    "$LLAMA_BENCH" -m "$q" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" $LLAMA_ARGS -o json > "$RAW/llama-$tag-r$r.json" 2>/dev/null
  done
done

cmd_locara="$LOCARA bench -m MODEL -p $PP -n $TG -r $REPS -t $THREADS --json"
cmd_llama="llama-bench -m MODEL -p $PP -n $TG -r $REPS -t $THREADS $LLAMA_ARGS -o json"
"$PY" bench/engine/summarize.py --raw "$RAW" --models "$MODELS" --set "$SET" --rounds "$ROUNDS" \
  --cmd-locara "$cmd_locara" --cmd-llama "$cmd_llama" --llama-bench "$LLAMA_BENCH" --out "$OUT"
echo "wrote $OUT (raw results in $RAW)"
