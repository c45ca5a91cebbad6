#!/bin/bash
# session 7, call 11: GPU tests with the norm/RoPE constants read before the wait, A/B tg512 (8B, 30B-A3B)
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/m
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz
for s in qwen3moe30b llama8b; do gunzip -c .cudacarry/$s.tmpl.gguf.gz > /tmp/m/$s.tmpl.gguf; $B/make_model /tmp/m/$s.tmpl.gguf Q4_K_M /tmp/m/$s-Q4_K_M.gguf > /dev/null; done
for t in test_cuda_ops test_cuda_graph test_cuda_moe; do
  timeout 300 $B/$t > $OUT/$t.txt 2>&1; echo "$t rc=$? $(tail -1 $OUT/$t.txt)"; grep -m8 "CHECK failed" $OUT/$t.txt
done
ab() { # model reps variants...
  local m=$1 reps=$2; shift 2
  for r in $(seq $reps); do for v in "$@"; do
    echo "$(basename $m) [$v] $(env $v timeout 90 $B/locara bench -m $m -r 1 -p 0 -n 512 2>/dev/null | grep tg | awk -F'|' '{print $(NF-1)}')"
  done; done
}
ab /tmp/m/qwen3moe30b-Q4_K_M.gguf 4 "X=1" "LOCARA_CUDA_PRELOAD=1" | tee $OUT/ab30.txt
ab /tmp/m/llama8b-Q4_K_M.gguf 4 "X=1" "LOCARA_CUDA_PRELOAD=1" | tee $OUT/ab8.txt
