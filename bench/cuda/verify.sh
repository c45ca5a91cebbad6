#!/bin/bash
# verify.sh — the CUDA backend's acceptance checks that need no peer, on the GPU machine, from the
# carried bundle (bench/cuda/pack.sh) and the default model (carried in parts: see below):
#   1. greedy 128 tokens of the default model from 5 prompts: CPU backend vs whole-model CUDA vs
#      a split (-ngl 18: the first 12 layers on the CPU): identical text?
#   2. fit's GPU prediction vs the device memory a run takes beyond the CUDA context
#      (`locara run --mem-report`), for the default model and the random 8B Q4_K_M model.
#   3. every unit test binary of the bundle (pack.sh), test_cuda_ops included, with the CUDA
#      backend (contexts use it when a device is present), shared/ unpacked from shared.tgz.
#   4. decode and prefill of the random 8B (and with WITH_30B=1 the 30B-A3B) with CUDA graphs off
#      and on, interleaved.
# The default model (94 MiB) is over the carry limit with the bundle: split it with
# `split -b 40M MODEL .mp/part.` and send the parts in earlier calls that copy them to /tmp/mp;
# this script joins /tmp/mp/part.* and .mp/part.* and checks the sha256 (without them it runs steps
# 3 and 4 only).
# Usage (on the device): bash bench/cuda/verify.sh   (raw outputs under $OUT)
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz # pack.sh ships the libraries compressed
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
M=/tmp/default.gguf
# one file per suffix (a part carried by an earlier call may still lie in .mp/ as well as /tmp/mp)
STEPS=${STEPS:-1234}
if ls /tmp/mp/part.* .mp/part.* 2>/dev/null | grep -q .; then
  cat $(ls /tmp/mp/part.* .mp/part.* 2>/dev/null | awk -F. '{print $NF" "$0}' | sort -u -k1,1 | cut -d' ' -f2) > $M
  echo "$SHA  $M" | sha256sum -c - > $OUT/verify.txt || { cat $OUT/verify.txt; echo "default model incomplete"; exit 1; }
else # no parts carried: the steps that need the default model are left out, the suite skips its tests
  echo "default model not carried: steps 1 and 2 left out" | tee $OUT/verify.txt
  STEPS=$(echo $STEPS | tr -d 12); M=
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a $OUT/verify.txt
{
case $STEPS in *1*)
echo "== 1. greedy 128 tokens: CPU vs CUDA vs split (-ngl 18); CUDA without graphs"
i=0; same_gpu=0; same_split=0
for p in "The capital of France is" "Once upon a time, in a small village," "def fibonacci(n):" \
         "Write a haiku about the sea." "List three prime numbers:"; do
  i=$((i+1))
  LOCARA_DEVICE=cpu $B/locara run -m $M -p "$p" -n 128 --temp 0 -q -t 16 > /tmp/cpu$i.txt 2>/tmp/cpu$i.err
  $B/locara run -m $M -p "$p" -n 128 --temp 0 -q > /tmp/gpu$i.txt 2>/tmp/gpu$i.err
  $B/locara run -m $M -p "$p" -n 128 --temp 0 -q -ngl 18 -t 16 > /tmp/split$i.txt 2>/tmp/split$i.err
  LOCARA_CUDA_GRAPH=0 $B/locara run -m $M -p "$p" -n 128 --temp 0 -q > /tmp/nograph$i.txt 2>/dev/null
  cmp -s /tmp/gpu$i.txt /tmp/nograph$i.txt || echo "  graphs on and off differ"
  g=differs; s=differs
  cmp -s /tmp/cpu$i.txt /tmp/gpu$i.txt && [ -s /tmp/cpu$i.txt ] && { g=identical; same_gpu=$((same_gpu+1)); }
  cmp -s /tmp/cpu$i.txt /tmp/split$i.txt && [ -s /tmp/cpu$i.txt ] && { s=identical; same_split=$((same_split+1)); }
  echo "prompt $i: gpu $g, split $s ($(wc -c < /tmp/cpu$i.txt) bytes of text)"
  [ $g = identical ] || { echo "  cpu: $(head -c 300 /tmp/cpu$i.txt | tr '\n' ' ')"; echo "  gpu: $(head -c 300 /tmp/gpu$i.txt | tr '\n' ' ')"; tail -2 /tmp/gpu$i.err; }
done
echo "identical to the CPU backend: whole-model CUDA $same_gpu/5, split $same_split/5"
;; esac
case $STEPS in *2*)
echo "== 2. fit's GPU prediction vs device memory taken (ctx 4096)"
models=$M
if [ -f .cudacarry/llama8b.tmpl.gguf.gz ]; then
  gunzip -c .cudacarry/llama8b.tmpl.gguf.gz > /tmp/llama8b.tmpl.gguf
  $B/make_model /tmp/llama8b.tmpl.gguf Q4_K_M /tmp/llama8b-Q4_K_M.gguf > /dev/null && models="$models /tmp/llama8b-Q4_K_M.gguf"
fi
for m in $models; do
  for ngl in -1 16; do
    pred=$($B/locara fit $m --ctx 4096 -ngl $ngl --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["gpu_total_bytes"])')
    used=$($B/locara run -m $m --ctx 4096 -ngl $ngl -p "Hello" -n 16 --temp 0 -q --mem-report 2>&1 >/dev/null | sed -n 's/.*gpu_used_by_model \([0-9]*\).*/\1/p')
    python3 -c "p,u=$pred,${used:-0}; print(f'$(basename $m) -ngl $ngl: fit {p/2**20:.1f} MiB, used {u/2**20:.1f} MiB, used/fit {u/p:.3f}')"
  done
done
;; esac
case $STEPS in *3*)
echo "== 3. the unit test suite with the CUDA backend (every test binary in the bundle; shared/ from shared.tgz)"
[ -f .cudacarry/shared.tgz ] && tar xzf .cudacarry/shared.tgz -C /tmp
export LC_SHARED_DIR=/tmp/shared LC_SOURCE_DIR=$PWD LC_BINARY_DIR=$PWD/$B LOCARA_MODEL=$M
for t in $B/test_*; do
  (cd $B && timeout 300 ./$(basename $t) > $OUT/$(basename $t).txt 2>&1); rc=$?
  case $rc in 0) r=passed ;; 77) r=skipped ;; *) r="FAILED (rc $rc)" ;; esac
  echo "$(basename $t): $r — $(grep -E 'passed|SKIP' $OUT/$(basename $t).txt | tail -1)"
  [ $rc = 0 ] || [ $rc = 77 ] || grep "CHECK failed" $OUT/$(basename $t).txt | head -5
done
;; esac
case $STEPS in *4*)
echo "== 4. decode with and without CUDA graphs (LOCARA_CUDA_GRAPH=0), interleaved, 3 reps"
if [ -f .cudacarry/qwen3moe30b.tmpl.gguf.gz ] && [ -n "$WITH_30B" ]; then
  gunzip -c .cudacarry/qwen3moe30b.tmpl.gguf.gz > /tmp/qwen3moe30b.tmpl.gguf
  $B/make_model /tmp/qwen3moe30b.tmpl.gguf Q4_K_M /tmp/qwen3moe30b-Q4_K_M.gguf > /dev/null
fi
for m in /tmp/llama8b-Q4_K_M.gguf /tmp/qwen3moe30b-Q4_K_M.gguf; do
  [ -f $m ] || continue
  for r in 1 2 3; do
    for g in 0 1; do
      LOCARA_CUDA_GRAPH=$g timeout 120 $B/locara bench -m $m -r 1 -p 512 -n 128 2>/tmp/bench.err | grep -E "pp|tg" | sed "s/^/graph=$g /"
    done
  done
  tail -3 /tmp/bench.err
done
;; esac
} 2>&1 | tee -a $OUT/verify.txt
cd $OUT && tar czf unit-logs.tgz test_*.txt && rm -f test_*.txt
