#!/bin/bash
# session 7, call 9: GPU tests with the 3-buffer decode attention, A/B at depth 32k and 8k (8B tg128),
# and a compute-sanitizer racecheck of the decode attention cases
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/m
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz
gunzip -c .cudacarry/llama8b.tmpl.gguf.gz > /tmp/m/llama8b.tmpl.gguf; $B/make_model /tmp/m/llama8b.tmpl.gguf Q4_K_M /tmp/m/llama8b-Q4_K_M.gguf > /dev/null
for t in test_cuda_ops test_attn test_cuda_graph; do
  timeout 300 $B/$t > $OUT/$t.txt 2>&1; echo "$t rc=$? $(tail -1 $OUT/$t.txt)"; grep -m8 "CHECK failed" $OUT/$t.txt
done
M=/tmp/m/llama8b-Q4_K_M.gguf
for r in 1 2 3; do for v in "LOCARA_CUDA_FA_DEC_STAGES=2" "X=1"; do
  echo "locara [$v] $(env $v timeout 120 $B/locara bench -m $M -r 1 -p 0 -n 128 -d 32768 2>/dev/null | grep tg | awk -F'|' '{print $(NF-2), $(NF-1)}')"
done; done | tee $OUT/depth-stages-ab.txt
for v in "LOCARA_CUDA_FA_DEC_STAGES=2" "X=1" "LOCARA_CUDA_FA_DEC_STAGES=2" "X=1"; do
  echo "locara [$v] $(env $v timeout 120 $B/locara bench -m $M -r 1 -p 0 -n 128 -d 4096 2>/dev/null | grep tg | awk -F'|' '{print $(NF-2), $(NF-1)}')"
done | tee -a $OUT/depth-stages-ab.txt
