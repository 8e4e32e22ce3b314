#!/usr/bin/env bash
# Makes the engine's test models and llama.cpp's reference outputs on them, in the model cache
# folder (the one scripts/fetch-model.sh uses; nothing here is committed):
#   SmolLM2-135M-Instruct.{Q4_0,Q4_K_M,Q5_K_M,Q6_K}.gguf   the default model (Q4_1) re-quantized by
#                                                         llama.cpp (llama_model_quantize)
#   SmolLM2-135M-Instruct.as-{qwen2,qwen3,llama3,phi3}.gguf the default model written again under
#                                                         those architectures' tensor names and
#                                                         metadata, plus their extra tensors (seeded)
#                                                         by scripts/make-arch-models.py
#   gemma-3-270m-q4_k_m.gguf                              fetched by scripts/fetch-gemma.sh
#   <file>.llamacpp.json for all of them and the Q4_1 file  llama.cpp's tokenization, logits at every
#     (e.g. SmolLM2-135M-Instruct.Q4_K_M.gguf.llamacpp.json)  position of a chat, perplexity of
#                                                         Tests/InferenceTests/Fixtures/long-text.txt
# The work is done by scripts/make-arch-models.py and scripts/llamacpp-reference.py (their headers
# say how each file and output is made) with the Python of the llama-cpp-python venv
# scripts/bench-vs-llamacpp.sh uses; on a fresh machine that venv is made here (llama-cpp-python
# builds llama.cpp from source: about 6 minutes). With the venv, making everything from an empty
# cache takes about 3 minutes on 2 cores, the downloads included.
#
# Idempotent: a model whose JSON records its sha256 is skipped (a synthetic file, whose recorded
# recipe is current), so a second run only checks (3 seconds).
# Prints the paths it made or found on stdout (each model, then its JSON), progress on stderr.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
llama_cpp_python_version=0.3.36
gguf_version=0.19.0
bench_cache=${OUTPOST_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/bench}
model_cache=${OUTPOST_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/models}
venv=$bench_cache/venv-llama-cpp-python-$llama_cpp_python_version

base=$("$repo/scripts/fetch-model.sh")
gemma=$("$repo/scripts/fetch-gemma.sh")

# One run at a time per cache (CI and agents sharing a machine may start several test runs).
mkdir -p "$model_cache" "$bench_cache"
exec 9>"$model_cache/.make-test-models.lock"
flock 9

if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
    echo "make-test-models: installing llama-cpp-python $llama_cpp_python_version into $venv (builds llama.cpp; about 6 minutes)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip >&2
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --quiet "llama-cpp-python==$llama_cpp_python_version" >&2
fi
if ! "$venv/bin/python" - "$gguf_version" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
import numpy, gguf
sys.exit(0 if version("gguf") == sys.argv[1] else 1)
PY
then
    echo "make-test-models: installing gguf $gguf_version and numpy into $venv" >&2
    "$venv/bin/pip" install --quiet "gguf==$gguf_version" numpy >&2
fi

# The synthetic files' paths, one a line (kept when their recorded recipe is current).
arch_models=$("$venv/bin/python" "$repo/scripts/make-arch-models.py" --base "$base" --out-dir "$model_cache")
further=()
while IFS= read -r path; do further+=(--model "$path"); done <<<"$arch_models"
further+=(--model "$gemma")

"$venv/bin/python" "$repo/scripts/llamacpp-reference.py" \
    --base "$base" \
    --out-dir "$model_cache" \
    --text "$repo/Tests/InferenceTests/Fixtures/long-text.txt" \
    --golden "$repo/Tests/InferenceTests/Fixtures/perplexity.json" \
    "${further[@]}"
