#!/bin/bash
# session 7, call 1: GPU tests of 294d7ab's refactor, per-kernel profiles, MMVQ_WARPS A/B
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
bash bench/cuda/compare.sh 1 "prof prof30" > $OUT/compare.txt 2>&1
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
for t in test_cuda_ops test_cuda_moe test_cuda_graph test_attn; do
  timeout 300 $B/$t > $OUT/$t.txt 2>&1; echo "$t rc=$? $(tail -1 $OUT/$t.txt)"; grep -m5 "CHECK failed" $OUT/$t.txt
done
for r in 1 2 3 4; do for v in 64 128; do
  echo "8b warps=$v $(LOCARA_CUDA_MMVQ_WARPS=$v timeout 60 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 0 -n 512 2>/dev/null | grep tg)"
done; done | tee $OUT/warps-ab.txt
for r in 1 2 3; do for v in 64 128; do
  echo "30b warps=$v $(LOCARA_CUDA_MMVQ_WARPS=$v timeout 60 $B/locara bench -m /tmp/m/qwen3moe30b-Q4_K_M.gguf -r 1 -p 0 -n 512 2>/dev/null | grep tg)"
done; done | tee -a $OUT/warps-ab.txt
