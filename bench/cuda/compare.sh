#!/bin/bash
# compare.sh — one self-contained GPU-machine run: builds llama.cpp (CUDA, sm_90, llama-bench
# only) from the carried source, uses the Locara binaries carried by pack.sh, writes the random
# Llama-3.1-8B and Qwen3-30B-A3B shaped Q4_K_M models (make_template.py / make_model.c), measures
# the copy bandwidth, checks the CUDA ops, then runs llama-bench beside locara bench, interleaved.
# Raw outputs go to $OUT. Carry: .peer (llama.cpp source) and .cudacarry (pack.sh).
# Usage (on the device): bash bench/cuda/compare.sh [REPS] [TESTS]
#   TESTS: space-separated: ops (test_cuda_ops), 8b, 30b, q5k (the 8B in Q5_K_M), float (Locara's old float decode path,
#   one rep), fit (locara fit vs peak GPU memory), depth (8B tg128 at depth 32k, one rep each; Locara's
#   runs during the llama.cpp build, whose prefill of 32k takes minutes), pp4096 (8B prompt of 4096,
#   both), fa (Locara's 8B pp512 / pp4096 / tg128 with the tensor-core attention and with
#   LOCARA_CUDA_FA=0, interleaved), server (also builds llama-server into /tmp/lbuild/bin, where
#   bench/http/gpu.sh, called next while the machine is warm, finds it; statically linked, 80 MB
#   each, too large to carry), fa2 (8B with LOCARA_CUDA_FA=1 and 2, interleaved, also tg64 at depth
#   16k), suite (verify.sh's unit suite with the CUDA backend, then test_cuda_ops with
#   LOCARA_CUDA_FA=2; carry shared.tgz in the bundle), prof (Nsight Compute: every kernel's time in
#   about three 8B decode steps with graphs off, summed per kernel name -> $OUT/prof-8b.txt; prof30:
#   the same for the 30B-A3B), dec
#   (decode variants LOCARA_CUDA_NORM_THREADS=1024 and LOCARA_CUDA_FUSE_Q8=1: the GPU tests with them
#   on, then 8B and 30B-A3B tg128 with each, interleaved; builds no peer), ab (tg128 of 8B and 30B-A3B
#   with .cudacarry/bin/locara and with each .cudacarry/ab-*/locara, a second build packed beside it,
#   interleaved, 3 reps, then test_cuda_ops --bench of each; $AB_ENVS: VAR=value settings run with
#   .cudacarry/bin as further variants). Tests that need no peer
#   leave llama.cpp unbuilt.
REPS=${1:-3}; TESTS=" ${2:-ops 8b 30b} " # padded: a test matches as a whole word
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
# 1. llama.cpp in the background (the longest step)
case "$TESTS" in *server*) LTARGETS="llama-bench llama-server"; LSERVER=ON ;; *) LTARGETS=llama-bench; LSERVER=OFF ;; esac
case "$TESTS" in *8b*|*30b*|*pp4096*|*depth*|*server*|*q5k*) PEER=1 ;; *) PEER= ;; esac # tests without the peer build nothing
[ -n "$PEER" ] && ( cmake -S .peer/llama.cpp -B /tmp/lbuild -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=$LSERVER -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  && cmake --build /tmp/lbuild --target $LTARGETS -j16 ) > /tmp/lbuild.log 2>&1 &
LPID=$!
# 2. Locara: carried binaries (bench/cuda/pack.sh; the image lacks libmicrohttpd, so it is not built here)
[ -d .cudacarry/lib ] || tar -C .cudacarry -xJf .cudacarry/lib.tar.xz # pack.sh ships the libraries compressed
B=.cudacarry/bin; export LD_LIBRARY_PATH=$PWD/.cudacarry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
el "locara built"
mkdir -p /tmp/m
for f in .cudacarry/*.tmpl.gguf.gz; do gunzip -c $f > /tmp/m/$(basename $f .gz); done
case "$TESTS" in *8b*|*depth*|*fa*|*prof*|*dec*|*ab*) $B/make_model /tmp/m/llama8b.tmpl.gguf Q4_K_M /tmp/m/llama8b-Q4_K_M.gguf ;; esac
case "$TESTS" in *q5k*) $B/make_model /tmp/m/llama8b.tmpl.gguf Q5_K_M /tmp/m/llama8b-Q5_K_M.gguf ;; esac
case "$TESTS" in *30b*|*dec*|*prof30*|*ab*) $B/make_model /tmp/m/qwen3moe30b.tmpl.gguf Q4_K_M /tmp/m/qwen3moe30b-Q4_K_M.gguf ;; esac
el "models written"; ls -la /tmp/m
# 3. copy bandwidth (bytes read + written), 4 GiB buffers, median of 20
python3 - <<'PY' 2>&1 | tee $OUT/membw.txt
import torch
n = 1 << 31; a = torch.empty(n, dtype=torch.uint8, device="cuda"); a.random_(0, 255); b = torch.empty_like(a)
for _ in range(3): b.copy_(a)
ts = []
for _ in range(20):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); b.copy_(a); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
ts.sort(); print(f"copy bandwidth (read+write): median {2 * n / ts[10] / 1e6:.0f} GB/s, best {2 * n / ts[0] / 1e6:.0f} GB/s")
PY
case "$TESTS" in *ops*) el "test_cuda_ops"; timeout 200 $B/test_cuda_ops --bench > $OUT/test_cuda_ops.txt 2>&1; echo "rc=$?";
  grep -c "CHECK failed" $OUT/test_cuda_ops.txt; grep "CHECK failed" $OUT/test_cuda_ops.txt | head -5; grep -i "GB/s\|passed\|TFLOP" $OUT/test_cuda_ops.txt | tail -22 ;; esac
case "$TESTS" in *" fa "*) for r in 1 2; do el "A/B rep $r: attention on the tensor cores, then LOCARA_CUDA_FA=0 (8B)"
  timeout 120 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 512,4096 -n 128 2>>/tmp/locara.err | tee -a $OUT/locara-fa.txt | grep -E "pp|tg"
  LOCARA_CUDA_FA=0 timeout 120 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 512,4096 -n 128 2>>/tmp/locara.err | tee -a $OUT/locara-fa0.txt | grep -E "pp|tg"
  done ;; esac
case "$TESTS" in *" fa2 "*) for r in 1 2; do for f in 1 2; do el "A/B rep $r: LOCARA_CUDA_FA=$f (8B)"
  LOCARA_CUDA_FA=$f timeout 120 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 512,4096 -n 128 2>>/tmp/locara.err | sed "s/^/FA=$f /" | tee -a $OUT/locara-fa2.txt | grep -E "pp|tg"
  LOCARA_CUDA_FA=$f timeout 120 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 0 -n 64 -d 16384 2>>/tmp/locara.err | sed "s/^/FA=$f /" | tee -a $OUT/locara-fa2.txt | grep -E "tg"
  done; done ;; esac
case "$TESTS" in *" dec "*) el "decode variants: tests with them on, then tg128 A/B"
  timeout 200 $B/test_cuda_ops > $OUT/test_cuda_ops-dec.txt 2>&1; echo "test_cuda_ops: rc=$? $(tail -1 $OUT/test_cuda_ops-dec.txt)"; grep "CHECK failed" $OUT/test_cuda_ops-dec.txt | head -5
  for t in test_cuda_ops test_cuda_moe test_cuda_graph; do LOCARA_CUDA_FUSE_Q8=1 LOCARA_CUDA_NORM_THREADS=1024 timeout 200 $B/$t > $OUT/$t-dec.txt 2>&1
    echo "$t (variants on): rc=$? $(tail -1 $OUT/$t-dec.txt)"; grep "CHECK failed" $OUT/$t-dec.txt | head -5; done
  for r in 1 2 3; do for v in "" "LOCARA_CUDA_NORM_THREADS=1024" "LOCARA_CUDA_FUSE_Q8=1" "LOCARA_CUDA_NORM_THREADS=1024 LOCARA_CUDA_FUSE_Q8=1"; do
    env $v timeout 60 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 0 -n 128 2>>/tmp/locara.err | grep tg | sed "s/^/8B rep $r [${v:-default}] /" | tee -a $OUT/locara-dec.txt
  done; done
  for r in 1 2; do for v in "" "LOCARA_CUDA_NORM_THREADS=1024" "LOCARA_CUDA_NORM_THREADS=1024 LOCARA_CUDA_FUSE_Q8=1"; do
    env $v timeout 90 $B/locara bench -m /tmp/m/qwen3moe30b-Q4_K_M.gguf -r 1 -p 0 -n 128 2>>/tmp/locara.err | grep tg | sed "s/^/30B rep $r [${v:-default}] /" | tee -a $OUT/locara-dec.txt
  done; done ;; esac
case "$TESTS" in *" ab "*) el "A/B of builds: .cudacarry/bin against each .cudacarry/ab-*/ (locara + its CUDA module), interleaved"
  for r in 1 2 3; do for d in $B .cudacarry/ab-* $AB_ENVS; do
    case $d in *=*) v=$d; d=$B ;; *) v= ;; esac; [ -x $d/locara ] || continue
    for m in llama8b qwen3moe30b; do env $v timeout 90 $d/locara bench -m /tmp/m/$m-Q4_K_M.gguf -r 1 -p 0 -n 128 2>>/tmp/locara.err | grep tg | sed "s|^|$m rep $r [$d $v] |" | tee -a $OUT/locara-ab.txt; done
  done; done
  for d in $B .cudacarry/ab-*; do [ -x $d/test_cuda_ops ] && { timeout 200 $d/test_cuda_ops --bench > $OUT/test_cuda_ops-$(basename $d).txt 2>&1; echo "$d test_cuda_ops rc=$? $(tail -1 $OUT/test_cuda_ops-$(basename $d).txt)"; grep "GB/s" $OUT/test_cuda_ops-$(basename $d).txt | head -12; }; done ;; esac
case "$TESTS" in *" suite "*) el "unit suite with the CUDA backend"; STEPS=3 bash bench/cuda/verify.sh 2>&1 | grep -v "^default model"
  LOCARA_CUDA_FA=2 timeout 200 $B/test_cuda_ops > $OUT/test_cuda_ops-fa2.txt 2>&1; echo "test_cuda_ops with LOCARA_CUDA_FA=2: rc=$? $(tail -1 $OUT/test_cuda_ops-fa2.txt)"
  grep "CHECK failed" $OUT/test_cuda_ops-fa2.txt | head -5 ;; esac
prof() { # name, model, kernels of about three decode steps: ncu kernel times, graphs off -> $OUT/prof-NAME.txt
  # ($PROF_ENV: VAR=value settings for the profiled run)
  el "ncu: kernel times of $1 decode steps (graphs off)"
  env $PROF_ENV LOCARA_CUDA_GRAPH=0 timeout 240 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
    $B/locara run -m $2 -p "Hello" -n 4 --temp 0 -q > /tmp/ncu.csv 2>/tmp/ncu.err; echo "ncu rc=$?"; tail -3 /tmp/ncu.err
  set -- $1 $3
  python3 - /tmp/ncu.csv $2 <<'PY' | tee $OUT/prof-$1.txt
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1], errors="replace")) if len(r) > 10]
h, rows = rows[0], rows[1:]
ki, vi, ui = h.index("Kernel Name"), h.index("Metric Value"), h.index("Metric Unit")
tail = rows[-int(sys.argv[2]):]  # about the last three decode steps
per = collections.defaultdict(lambda: [0, 0.0])
for r in tail:
    v = float(r[vi].replace(",", ""))
    u = r[ui].strip().lower()
    v = v / 1000 if u in ("ns", "nsecond") else v * 1000 if u in ("ms", "msecond") else v  # -> microseconds
    k = r[ki].split("(")[0][:60]
    per[k][0] += 1
    per[k][1] += v
tot = sum(x[1] for x in per.values())
print(f"{len(rows)} kernels profiled; the last {len(tail)} by kernel name, total {tot:.0f} us")
for k, (c, t) in sorted(per.items(), key=lambda kv: -kv[1][1]):
    print(f"{t:9.0f} us {100 * t / tot:5.1f}%  {c:5d} launches  {t / c:7.2f} us each  {k}")
PY

}
case "$TESTS" in *" prof "*) prof 8b /tmp/m/llama8b-Q4_K_M.gguf 1200 ;; esac
case "$TESTS" in *" prof30 "*) prof 30b /tmp/m/qwen3moe30b-Q4_K_M.gguf 2400 ;; esac
case "$TESTS" in *depth*) el "locara tg128 at depth 32k, 1 rep (runs while llama.cpp builds: GPU-bound, one host core)"
  timeout 300 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 0 -n 128 -d 32768 2>>/tmp/locara.err | tee -a $OUT/locara.txt | grep tg ;; esac
[ -z "$PEER" ] || wait $LPID || { el "llama.cpp build FAILED"; tail -40 /tmp/lbuild.log; cp /tmp/lbuild.log $OUT/; }
el "llama.cpp built"
LB=/tmp/lbuild/bin/llama-bench
run_pair() { # model, extra args for both
  local m=$1; shift
  for r in $(seq $REPS); do
    el "rep $r $(basename $m) $*"
    timeout 240 $LB -m $m -ngl 99 -r 1 "$@" -o md 2>>/tmp/llama-bench.err | tee -a $OUT/llama.txt | grep -E "pp|tg"
    timeout 240 $B/locara bench -m $m -r 1 "$@" 2>>/tmp/locara.err | tee -a $OUT/locara.txt | grep -E "pp|tg"
  done
}
case "$TESTS" in *fit*) el "GPU memory: locara fit vs nvidia-smi peak during locara bench (idle first)"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | sed 's/^/idle MiB: /'
  for m in /tmp/m/llama8b-Q4_K_M.gguf /tmp/m/qwen3moe30b-Q4_K_M.gguf; do
    [ -f $m ] || continue
    $B/locara fit -m $m --ctx 640 -b 512 2>&1 | tee -a $OUT/fit.txt | grep -i -E "gpu|vram|total" | head -6
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > /tmp/mem.txt & SPID=$!
    timeout 120 $B/locara bench -m $m -r 1 -p 512 -n 128 > /dev/null 2>&1; kill $SPID
    echo "$(basename $m): peak nvidia-smi memory.used $(sort -n /tmp/mem.txt | tail -1) MiB" | tee -a $OUT/fit.txt
  done ;; esac
case "$TESTS" in *8b*) run_pair /tmp/m/llama8b-Q4_K_M.gguf -p 512 -n 128 ;; esac
case "$TESTS" in *pp4096*) run_pair /tmp/m/llama8b-Q4_K_M.gguf -p 4096 -n 0 ;; esac
case "$TESTS" in *30b*) run_pair /tmp/m/qwen3moe30b-Q4_K_M.gguf -p 512 -n 128 ;; esac
case "$TESTS" in *q5k*) run_pair /tmp/m/llama8b-Q5_K_M.gguf -p 512 -n 128 ;; esac
case "$TESTS" in *float*) el "A/B: locara decode on the float matvec path"; LOCARA_CUDA_MMV=float timeout 120 $B/locara bench -m /tmp/m/llama8b-Q4_K_M.gguf -r 1 -p 0 -n 128 2>&1 | tee -a $OUT/locara-float.txt | grep tg
  LOCARA_CUDA_MMV=float timeout 120 $B/locara bench -m /tmp/m/qwen3moe30b-Q4_K_M.gguf -r 1 -p 0 -n 128 2>&1 | tee -a $OUT/locara-float.txt | grep tg ;; esac
case "$TESTS" in *depth*) el "llama-bench tg128 at depth 32k, 1 rep"
  timeout 240 $LB -m /tmp/m/llama8b-Q4_K_M.gguf -ngl 99 -r 1 -p 0 -n 128 -d 32768 -o md 2>>/tmp/llama-bench.err | tee -a $OUT/llama.txt | grep tg ;; esac
tail -5 /tmp/llama-bench.err; tail -5 /tmp/locara.err
el "done"
