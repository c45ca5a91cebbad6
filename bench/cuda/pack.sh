#!/bin/sh
# pack.sh — gathers what run_device.sh needs into .cudacarry/ (git-ignored, carried to the GPU
# machine): locara and test_cuda_ops from BUILD, the non-system shared libraries they load, and
# a subset of the engine-golden random models (every llama type, one per other architecture).
# Usage: sh bench/cuda/pack.sh BUILD_DIR MODELS_DIR
BUILD=${1:-build-cuda}; M=${2:-build/engine-golden-models}; D=.cudacarry
rm -rf $D; mkdir -p $D/lib $D/models
cp $BUILD/locara $BUILD/test_cuda_ops $D/
for f in $(ldd $BUILD/locara $BUILD/test_cuda_ops | awk '/=> \//{print $3}' | sort -u); do
  case $f in */libc.so*|*/libm.so*|*/libstdc++*|*/libgcc_s*|*/libresolv*|*/libpthread*|*/libdl*|*/librt*|*/ld-linux*|*cuda*|*cublas*) ;; *) cp -L $f $D/lib/ ;; esac
done
for t in Q2_K Q3_K_M Q4_0 Q4_1 Q4_K_M Q5_0 Q5_1 Q5_K_M Q6_K Q8_0; do cp $M/llama-s1-$t.gguf $D/models/; done
for a in llama-output-s3 llama-ropefreqs-s2 qwen2-s4 qwen3-s5 qwen3moe-s6; do cp $M/$a-Q4_K_M.gguf $D/models/; done
cp $M/qwen3moe-s6-Q8_0.gguf $D/models/
du -sh $D
