#!/bin/bash
# gpu.sh — the HTTP comparison on the GPU machine: bench/http/compare.sh with compare-gpu.json
# (depths 20 .. 32k, concurrency 1 and 4, all layers on the GPU), Locara from the carried bundle
# (bench/cuda/pack.sh -> .cudacarry), llama-server from the llama.cpp CUDA build that
# `bench/cuda/compare.sh N "server ..."` leaves in /tmp/lbuild in the call just before (the machine
# keeps /tmp only while warm), on the random Llama-3.1-8B-shaped Q4_K_M model of make_model.
# Usage (device, carry .cudacarry): bash bench/http/gpu.sh   -> $OUT/http/{results.jsonl,report.html,README.md}
#   CONFIG=bench/http/compare-gpu-deep.json NAME=deep bash bench/http/gpu.sh   (64k and 124k, one stream)
set -eu
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz # pack.sh ships the libraries compressed
B=$PWD/.cudacarry; export LD_LIBRARY_PATH=$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
LS=/tmp/lbuild/bin/llama-server
[ -x $LS ] || { echo "gpu.sh: no $LS (run bench/cuda/compare.sh with the server test in the call before)" >&2; exit 1; }
M=/tmp/m/llama8b-Q4_K_M.gguf
if [ ! -f $M ]; then
  mkdir -p /tmp/m; gunzip -c $B/llama8b.tmpl.gguf.gz > /tmp/m/llama8b.tmpl.gguf
  $B/bin/make_model /tmp/m/llama8b.tmpl.gguf Q4_K_M $M
fi
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
LLAMA_SERVER=$LS LOCARA=$B/bin/locara MODEL=$M THREADS=8 CONFIG=${CONFIG:-bench/http/compare-gpu.json} OUT=${OUT:-/tmp/out}/${NAME:-http} \
  TITLE="locara serve vs llama-server — random Llama-3.1-8B-shaped Q4_K_M, $GPU, all layers on the GPU" \
  sh bench/http/compare.sh
