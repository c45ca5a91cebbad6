#!/bin/bash
# ab.sh — Locara-only A/B run on the GPU machine (no peer build): unpacks the bundle of pack.sh, writes
# the random models named in $AB_MODELS, runs the GPU unit tests named in $AB_TESTS, then `locara bench`
# of every model with every VAR=value variant given as an argument ("X=1" for the defaults), the
# variants interleaved within each of $AB_REPS reps. Decode of $AB_N tokens, at depth $AB_DEPTH when
# set. Outputs: $OUT/ab-MODEL.txt (one line a run: model, variant, test, t/s), $OUT/TEST.txt.
# Carry: .cudacarry. Example (session 7's norm/RoPE A/B, bench/results/cuda-h100/s7/call11-*.txt):
#   AB_MODELS="qwen3moe30b llama8b" AB_REPS=4 AB_TESTS="test_cuda_ops test_cuda_graph test_cuda_moe" \
#     bash bench/cuda/ab.sh "X=1" "LOCARA_CUDA_PRELOAD=1"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/m
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz
for s in ${AB_MODELS-llama8b qwen3moe30b}; do
  [ -f /tmp/m/$s-Q4_K_M.gguf ] && continue
  gunzip -c .cudacarry/$s.tmpl.gguf.gz > /tmp/m/$s.tmpl.gguf && $B/make_model /tmp/m/$s.tmpl.gguf Q4_K_M /tmp/m/$s-Q4_K_M.gguf > /dev/null
done
for t in $AB_TESTS; do
  timeout 300 $B/$t > $OUT/$t.txt 2>&1; echo "$t rc=$? $(tail -1 $OUT/$t.txt)"; grep -m8 "CHECK failed" $OUT/$t.txt
done
for s in ${AB_MODELS-llama8b qwen3moe30b}; do
  for r in $(seq ${AB_REPS:-3}); do for v in "$@"; do
    echo "$s [$v] $(env $v timeout 120 $B/locara bench -m /tmp/m/$s-Q4_K_M.gguf -r 1 -p 0 -n ${AB_N:-512} ${AB_DEPTH:+-d $AB_DEPTH} 2>/dev/null |
      grep tg | awk -F'|' '{print $(NF-2), $(NF-1)}')"
  done; done | tee $OUT/ab-$s.txt
done
