#!/bin/sh
# run_device.sh — the CUDA backend's checks on a GPU machine, from a carried bundle (bench/cuda/
# pack.sh builds it: binaries and their shared libraries; copy random models into BUNDLE/models).
#   1. test_cuda_ops --bench: every op vs the CPU backend, then decode/prefill-shaped matmul timings
#   2. greedy 128 tokens, CPU backend vs CUDA backend, 5 prompts x each carried model: identical?
# Usage: sh bench/cuda/run_device.sh BUNDLE_DIR OUT_DIR
B=${1:-.cudacarry}; OUT=${2:-/tmp/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
echo "== test_cuda_ops --bench"
timeout 240 "$B/bin/test_cuda_ops" --bench > "$OUT/test_cuda_ops.txt" 2>&1; echo "rc=$?"
grep "CHECK failed" "$OUT/test_cuda_ops.txt" | head -40; grep -v "CHECK failed" "$OUT/test_cuda_ops.txt" | head -60
echo "== greedy CPU vs CUDA (128 tokens)"
same=0; diff=0
for m in "$B"/models/*.gguf; do
  for p in "Once upon a time" "The capital of France is" "def fibonacci(n):" "1, 2, 3, 4," "Hello! How are you"; do
    LOCARA_DEVICE=cpu timeout 20 "$B/bin/locara" run -m "$m" -p "$p" -n 128 --temp 0 -q -t 8 > "$OUT/cpu.txt" 2>"$OUT/cpu.err"
    timeout 20 "$B/bin/locara" run -m "$m" -p "$p" -n 128 --temp 0 -q > "$OUT/gpu.txt" 2>"$OUT/gpu.err"
    if cmp -s "$OUT/cpu.txt" "$OUT/gpu.txt" && [ -s "$OUT/cpu.txt" ]; then same=$((same+1)); r=same
    else diff=$((diff+1)); r=DIFF; fi
    echo "$r $(basename $m) '$p' cpu=$(wc -c <"$OUT/cpu.txt")B gpu=$(wc -c <"$OUT/gpu.txt")B $(head -c 200 "$OUT/gpu.err")"
  done
done 2>&1 | tee "$OUT/greedy.txt"
grep -c '^same' "$OUT/greedy.txt" | sed 's/^/identical runs: /'
grep -c '^DIFF' "$OUT/greedy.txt" | sed 's/^/differing runs: /'
