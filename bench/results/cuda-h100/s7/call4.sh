#!/bin/bash
# session 7, call 4: nsys timelines of graph-replayed decode steps (per-kernel share of the critical path),
# then Locara beside llama.cpp (compare.sh 3 "8b 30b") at this commit
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/m
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz
( cmake -S .peer/llama.cpp -B /tmp/lbuild -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF && cmake --build /tmp/lbuild --target llama-bench -j14 ) > /tmp/lbuild0.log 2>&1 &
for s in llama8b qwen3moe30b; do gunzip -c .cudacarry/$s.tmpl.gguf.gz > /tmp/m/$s.tmpl.gguf; $B/make_model /tmp/m/$s.tmpl.gguf Q4_K_M /tmp/m/$s-Q4_K_M.gguf > /dev/null; done
which nsys || ls /usr/local/cuda/bin | grep -i nsys
for m in qwen3moe30b:1300 llama8b:700; do
  f=/tmp/m/${m%:*}-Q4_K_M.gguf
  nsys profile -o /tmp/n-${m%:*} --cuda-graph-trace=node -t cuda --force-overwrite true $B/locara bench -m $f -r 1 -p 0 -n 32 > /tmp/nsys.log 2>&1; echo "nsys rc=$?"; tail -3 /tmp/nsys.log
  nsys stats --report cuda_gpu_trace --format csv -o /tmp/n-${m%:*} /tmp/n-${m%:*}.nsys-rep > /dev/null 2>&1; ls /tmp/n-${m%:*}*
  python3 s7/timeline.py /tmp/n-${m%:*}_cuda_gpu_trace.csv ${m#*:} | tee $OUT/timeline-${m%:*}.txt | head -30
done
wait
bash bench/cuda/compare.sh 3 "8b 30b" > $OUT/compare.txt 2>&1; grep -E "tg|pp" $OUT/compare.txt | tail -30
