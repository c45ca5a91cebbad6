#!/bin/bash
# session 7, call 6: GPU tests, A/B of the mixed-type product group, then Locara beside llama.cpp
# (compare.sh 5 "8b 30b fit") at this commit
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/m
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz
( cmake -S .peer/llama.cpp -B /tmp/lbuild -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF && cmake --build /tmp/lbuild --target llama-bench -j12 ) > /tmp/lbuild0.log 2>&1 &
for s in qwen3moe30b llama8b; do gunzip -c .cudacarry/$s.tmpl.gguf.gz > /tmp/m/$s.tmpl.gguf; $B/make_model /tmp/m/$s.tmpl.gguf Q4_K_M /tmp/m/$s-Q4_K_M.gguf > /dev/null; done
for t in test_cuda_moe test_cuda_graph test_cuda_ops test_attn; do
  timeout 300 $B/$t > $OUT/$t.txt 2>&1; echo "$t rc=$? $(tail -1 $OUT/$t.txt)"; grep -m8 "CHECK failed" $OUT/$t.txt
done
ab() { # model reps variants...
  local m=$1 reps=$2; shift 2
  for r in $(seq $reps); do for v in "$@"; do
    echo "$(basename $m) [$v] $(env $v timeout 90 $B/locara bench -m $m -r 1 -p 0 -n 512 2>/dev/null | grep tg | awk -F'|' '{print $(NF-1)}')"
  done; done
}
ab /tmp/m/llama8b-Q4_K_M.gguf 3 "X=1" "LOCARA_CUDA_MMVQ_MIX=0" | tee $OUT/ab8.txt
ab /tmp/m/qwen3moe30b-Q4_K_M.gguf 3 "X=1" "LOCARA_CUDA_MMVQ_MIX=0" | tee $OUT/ab30.txt
wait
bash bench/cuda/compare.sh 5 "8b 30b fit" > $OUT/compare.txt 2>&1; grep -E "tg|pp|fit|peak|MiB" $OUT/compare.txt | tail -40
