#!/bin/sh
# pack.sh — gathers what compare.sh needs into .cudacarry/ (git-ignored, carried to the GPU
# machine, whose image lacks libmicrohttpd and friends, so Locara cannot be configured there):
# locara, its CUDA module, every unit test and make_model built from BUILD (a -DLOCARA_CUDA=ON
# build), the non-system, non-CUDA shared libraries they load, shared/ (test data), and the two
# model templates.
# Usage: [CARRY=DIR] sh bench/cuda/pack.sh BUILD_DIR
BUILD=${1:-build-cuda2}; D=${CARRY:-.cudacarry} # CARRY: another folder, for a second bundle beside the first
rm -rf $D/bin $D/lib; mkdir -p $D/bin $D/lib
cc -O2 -std=c17 -Iinclude -Isrc bench/cuda/make_model.c $BUILD/liblocara_core.a -L/usr/local/cuda/lib64 \
  -lcublas -lcudart -lstdc++ -lm -lpthread -ldl -o $D/bin/make_model || exit 1
cp $BUILD/locara $BUILD/liblocara_cuda.so $BUILD/test_* $D/bin/ # the CUDA backend is a module beside them
(cd .. && tar czf - shared) > $D/shared.tgz # ../shared: test data for verify.sh's unit tests
for f in $(ldd $D/bin/* | awk '/=> \//{print $3}' | sort -u); do
  case $f in */libc.so*|*/libm.so*|*/libstdc++*|*/libgcc_s*|*/libresolv*|*/libpthread*|*/libdl*|*/librt*|*/ld-linux*|*cuda*|*cublas*) ;; *) cp -L $f $D/lib/ ;; esac
done
tar -C $D -cJf $D/lib.tar.xz lib && rm -rf $D/lib # xz: 17 MB -> ~5; the scripts unpack it there
for s in llama8b qwen3moe30b; do # gzipped: the carried tree is limited to 64 MiB
  [ -f $D/$s.tmpl.gguf.gz ] || { /work/venv/py/bin/python bench/cuda/make_template.py $s /tmp/$s.tmpl.gguf && gzip -c /tmp/$s.tmpl.gguf > $D/$s.tmpl.gguf.gz; }
done
du -sh $D
