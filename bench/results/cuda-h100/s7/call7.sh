#!/bin/bash
# session 7, call 7: 8B tg128 at depth 32k, Locara beside llama.cpp, 2 reps interleaved, then Locara's
# one-token products with and without the early weight loads at that depth
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/m
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz
( cmake -S .peer/llama.cpp -B /tmp/lbuild -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF && cmake --build /tmp/lbuild --target llama-bench -j14 ) > /tmp/lbuild0.log 2>&1 &
gunzip -c .cudacarry/llama8b.tmpl.gguf.gz > /tmp/m/llama8b.tmpl.gguf; $B/make_model /tmp/m/llama8b.tmpl.gguf Q4_K_M /tmp/m/llama8b-Q4_K_M.gguf > /dev/null
M=/tmp/m/llama8b-Q4_K_M.gguf
for v in "LOCARA_CUDA_PRELOAD=0" "X=1" "LOCARA_CUDA_PRELOAD=0" "X=1"; do
  echo "locara [$v] $(env $v timeout 120 $B/locara bench -m $M -r 1 -p 0 -n 128 -d 32768 2>/dev/null | grep tg | awk -F'|' '{print $(NF-2), $(NF-1)}')"
done | tee $OUT/depth-preload-ab.txt
wait; tail -2 /tmp/lbuild0.log
for r in 1 2; do
  timeout 240 /tmp/lbuild/bin/llama-bench -m $M -ngl 99 -r 1 -p 0 -n 128 -d 32768 -o md 2>/dev/null | tee -a $OUT/llama-depth.txt | grep tg
  timeout 120 $B/locara bench -m $M -r 1 -p 0 -n 128 -d 32768 2>/dev/null | tee -a $OUT/locara-depth.txt | grep tg
done
