#!/usr/bin/env bash
# setup-deps.sh — installs what building and testing Locara needs, once: Debian -dev packages
# (apt-get, as root or through sudo) and a Python venv (.venv) with the test-side packages.
# Idempotent: does nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libmicrohttpd-dev libjansson-dev libpcre2-dev libcurl4-openssl-dev
      python3-venv chromium)
missing=()
for p in "${DEBS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import openai, jinja2, pytest, numpy, gguf' 2>/dev/null; then
  echo "setup: creating .venv with the Python test packages"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
fi
