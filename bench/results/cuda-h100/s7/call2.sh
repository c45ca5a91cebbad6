#!/bin/bash
# session 7, call 2: GPU tests of the new routing / expert dot layout / router split / preload, then A/B
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
bash bench/cuda/compare.sh 1 "prof30" > $OUT/compare.txt 2>&1 # models + the profile
for t in test_cuda_moe test_cuda_ops test_cuda_graph; do
  timeout 300 $B/$t > $OUT/$t.txt 2>&1; echo "$t rc=$? $(tail -1 $OUT/$t.txt)"; grep -m8 "CHECK failed" $OUT/$t.txt
done
ab() { # model reps variants...
  local m=$1 reps=$2; shift 2
  for r in $(seq $reps); do for v in "$@"; do
    echo "$(basename $m) [$v] $(env $v timeout 90 $B/locara bench -m $m -r 1 -p 0 -n 512 2>/dev/null | grep tg | awk -F'|' '{print $(NF-1)}')"
  done; done
}
ab /tmp/m/qwen3moe30b-Q4_K_M.gguf 3 "X=1" "LOCARA_CUDA_ROUTE=old" "LOCARA_CUDA_MOE_DOT=0" "LOCARA_CUDA_PRELOAD=0" "LOCARA_CUDA_PRELOAD=2" \
  "LOCARA_CUDA_ROUTE=old LOCARA_CUDA_MOE_DOT=0 LOCARA_CUDA_PRELOAD=0" | tee $OUT/ab30.txt
ab /tmp/m/llama8b-Q4_K_M.gguf 4 "X=1" "LOCARA_CUDA_PRELOAD=0" "LOCARA_CUDA_PRELOAD=2" | tee $OUT/ab8.txt
