#!/bin/sh
# fetch_vocabs.sh — fills the tokenizer vocab cache ($LOCARA_VOCAB_DIR or ~/.cache/locara/vocab)
# with llama.cpp's ggml-vocab-*.gguf test vocabularies (and their .inp/.out vectors), taken from
# the llama-cpp-python source package on PyPI (vendor/llama.cpp/models/). test_tokenizer runs
# every vocabulary it finds there; nothing is committed.
set -eu
dest=${LOCARA_VOCAB_DIR:-$HOME/.cache/locara/vocab}
py=${PYTHON:-/work/venv/py/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --no-deps --no-binary :all: llama-cpp-python -d "$tmp" >/dev/null
tarball=$(ls "$tmp"/llama_cpp_python-*.tar.gz)
mkdir -p "$dest"
tar xzf "$tarball" -C "$tmp" --wildcards '*/vendor/llama.cpp/models/ggml-vocab-*'
cp "$tmp"/llama_cpp_python-*/vendor/llama.cpp/models/ggml-vocab-* "$dest"/
echo "vocabularies in $dest:"
ls "$dest" | grep '\.gguf$'
