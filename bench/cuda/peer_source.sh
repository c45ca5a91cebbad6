#!/bin/sh
# peer_source.sh — copies llama.cpp's source (from llama-cpp-python's vendor tree) into .peer/llama.cpp,
# trimmed to what `llama-bench` and `llama-server` need so it fits the 64 MiB that travels to the GPU
# machine: no docs, models, tests, examples or web UI sources (the server is built with
# -DLLAMA_USE_PREBUILT_UI=OFF: no UI), only the CPU and CUDA ggml backends. Adds /.peer/ to .git/info/exclude.
# Usage: sh bench/cuda/peer_source.sh [LLAMA_CPP_SOURCE]
S=${1:-/work/peer/llama_cpp_python-0.3.36/vendor/llama.cpp}; D=.peer/llama.cpp
grep -q '^/.peer/' .git/info/exclude || echo /.peer/ >> .git/info/exclude
rm -rf $D; mkdir -p $D
(cd $S && tar cf - --exclude=./docs --exclude=./models --exclude=./media --exclude=./.github --exclude=./benches \
   --exclude=./gguf-py --exclude=./tools/server/tests --exclude=./tools/ui/src --exclude=./tools/ui/tests \
   --exclude=./tools/ui/static --exclude=./tools/ui/package-lock.json --exclude=./tests --exclude=./examples \
   --exclude=./conversion --exclude=./scripts --exclude=./.git .) | tar xf - -C $D
mkdir -p $D/scripts && cp $S/scripts/ui-assets.cmake $D/scripts/ # the UI's (empty) embedding step
for b in sycl vulkan opencl hexagon metal et cann musa kompute rpc webgpu zdnn openvino virtgpu blas hip; do
  rm -rf $D/ggml/src/ggml-$b
done
du -sh $D
