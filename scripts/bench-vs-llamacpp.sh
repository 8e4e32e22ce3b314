#!/usr/bin/env bash
# Compares outpost's engine with llama.cpp (through the PyPI package llama-cpp-python) on the same
# model, in the same run, alternating the two engines: prefill of --prompt-tokens tokens in one
# batch and decode of --gen-tokens tokens one at a time, at each thread count. Prints the median
# tokens/s of each engine and the median of the paired ratios outpost / llama.cpp, and for decode
# the fraction of the machine's read bandwidth each engine reaches (weight bytes per token, as
# `outpost bench` counts them, times tokens/s, over the bandwidth it measured in the same run).
#
# Dev and bench only: llama-cpp-python is installed (built from source, a few minutes the first
# time) into a venv under the cache directory; nothing here is used at run time or in tests.
#
# Usage: scripts/bench-vs-llamacpp.sh [--model PATH] [--threads "1 2"] [--reps 5]
#                                     [--prompt-tokens 128] [--gen-tokens 128]
# OUTPOST_BIN=path uses that outpost binary instead of building one.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${OUTPOST_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/bench}
model=${OUTPOST_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads="1 2"
reps=5
prompt_tokens=128
gen_tokens=128
llama_cpp_python_version=0.3.36

while [ $# -gt 0 ]; do
    case "$1" in
        --model) model=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --prompt-tokens) prompt_tokens=$2; shift 2 ;;
        --gen-tokens) gen_tokens=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "bench-vs-llamacpp: unknown argument $1" >&2; exit 2 ;;
    esac
done

[ -f "$model" ] || { echo "bench-vs-llamacpp: no model at $model (run scripts/fetch-model.sh or pass --model)" >&2; exit 1; }

venv=$cache/venv-llama-cpp-python-$llama_cpp_python_version
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
    echo "bench-vs-llamacpp: installing llama-cpp-python $llama_cpp_python_version into $venv (builds llama.cpp; a few minutes)" >&2
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip >&2
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --quiet "llama-cpp-python==$llama_cpp_python_version" >&2
fi

if [ -n "${OUTPOST_BIN:-}" ]; then
    outpost=$OUTPOST_BIN   # an already built binary (e.g. the test build's .build/release/outpost)
else
    echo "bench-vs-llamacpp: building outpost (release)" >&2
    (cd "$repo" && swift build -c release --product outpost >&2)
    outpost=$repo/.build/release/outpost
fi

llama_bench=$(mktemp)
results=$(mktemp)
trap 'rm -f "$llama_bench" "$results"' EXIT
cat > "$llama_bench" <<'PY'
import json, sys, time
from llama_cpp import Llama

model, threads, n_prompt, n_gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=model, n_ctx=n_prompt + n_gen + 16, n_threads=threads, n_threads_batch=threads,
            n_batch=512, n_ubatch=512, verbose=False)
# The same prompt text as `outpost bench` uses.
text = ("The maintenance log of the compressor station records the oil level, the filter state and the "
        "temperature of each unit every morning. When a reading leaves its band, the gateway raises an "
        "alert, the technician on call checks the unit, and the answer is written back to the log so "
        "that the next shift knows what was done and why.")
piece = llm.tokenize(text.encode(), add_bos=False, special=False)
prompt = []
while len(prompt) < n_prompt:
    prompt += piece
prompt = prompt[:n_prompt]
llm.eval(prompt[:8])  # warm-up, pages the weights in
llm.reset()
t0 = time.perf_counter()
llm.eval(prompt)
t1 = time.perf_counter()
for _ in range(n_gen):
    nxt = int(llm.scores[llm.n_tokens - 1].argmax())
    llm.eval([nxt])
t2 = time.perf_counter()
print(json.dumps({"prompt": n_prompt / (t1 - t0), "gen": n_gen / (t2 - t1)}))
PY

for rep in $(seq 1 "$reps"); do
    for t in $threads; do
        o=$("$outpost" bench --model "$model" --threads "$t" --prompt-tokens "$prompt_tokens" \
              --gen-tokens "$gen_tokens" --reps 1 --json 2>/dev/null)
        l=$("$venv/bin/python" "$llama_bench" "$model" "$t" "$prompt_tokens" "$gen_tokens" 2>/dev/null)
        python3 - "$t" "$o" "$l" >> "$results" <<'PY'
import json, sys
t, o, l = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(json.dumps({"threads": int(t),
                  "outpost_prompt": o["prompt_tokens_per_s"]["median"], "outpost_gen": o["gen_tokens_per_s"]["median"],
                  "llama_prompt": l["prompt"], "llama_gen": l["gen"],
                  "bytes_per_token": o.get("bytes_per_token"), "read_bandwidth_gb_s": o.get("read_bandwidth_gb_s")}))
PY
        echo "bench-vs-llamacpp: rep $rep, $t thread(s): $(tail -n 1 "$results")" >&2
    done
done

python3 - "$results" "$prompt_tokens" "$gen_tokens" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n_prompt, n_gen = sys.argv[2], sys.argv[3]
print(f"tokens/s, median of paired runs (prefill {n_prompt} tokens, decode {n_gen} tokens)")
print(f"{'threads':>7}  {'phase':<8} {'outpost':>9} {'llama.cpp':>10} {'ratio':>7}  bandwidth fraction (outpost / llama.cpp)")
for t in sorted({r["threads"] for r in rows}):
    rs = [r for r in rows if r["threads"] == t]
    for phase, key in (("prefill", "prompt"), ("decode", "gen")):
        o = statistics.median(r["outpost_" + key] for r in rs)
        l = statistics.median(r["llama_" + key] for r in rs)
        ratio = statistics.median(r["outpost_" + key] / r["llama_" + key] for r in rs)
        extra = ""
        if phase == "decode" and all(r.get("bytes_per_token") and r.get("read_bandwidth_gb_s") for r in rs):
            # weight bytes read per decoded token x tokens/s over the machine's measured read bandwidth
            bw = statistics.median(r["read_bandwidth_gb_s"] for r in rs) * 1e9
            bpt = rs[0]["bytes_per_token"]
            extra = f"  {o * bpt / bw:.2f} / {l * bpt / bw:.2f} of {bw / 1e9:.1f} GB/s"
        print(f"{t:>7}  {phase:<8} {o:>9.1f} {l:>10.1f} {ratio:>7.2f}{extra}")
PY
