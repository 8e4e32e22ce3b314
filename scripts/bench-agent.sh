#!/usr/bin/env bash
# Benchmarks the agent as installed: starts `outpost run` (release build) on a temp state dir and
# socket, and measures
#   - ready_s: process start to the first 200 from /health (model loaded, socket serving);
#   - a cached replay over the socket: p50/p99 of POST /v1/chat/completions that hit the cache,
#     on one keep-alive connection, N requests (the path a local client sees);
#   - peak RSS (VmHWM) against model file + KV cache + 40 MiB (overhead_mib: what is not model or KV).
# Usage: scripts/bench-agent.sh [N=2000]   (builds the release binary, or uses $OUTPOST_BINARY)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
model="$(scripts/fetch-model.sh)"
if [ -n "${OUTPOST_BINARY:-}" ]; then
  bin="$OUTPOST_BINARY"
else
  swift build -c release --product outpost >&2
  bin="$(swift build -c release --show-bin-path)/outpost"
fi
work="$(mktemp -d /tmp/outpost-bench.XXXXXX)"
sock="$work/o.sock"
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
start=$(date +%s.%N)
"$bin" run --model "$model" --state-dir "$work/state" --socket "$sock" --ctx 2048 --threads 2 2>"$work/agent.log" &
pid=$!
python3 - "$sock" "$N" "$pid" "$start" "$model" <<'PY'
import http.client, json, os, socket, sys, time
sock, n, pid, start, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

deadline = time.time() + 60
ready = None
while time.time() < deadline:
    try:
        c = UnixConnection(sock); c.request("GET", "/health"); r = c.getresponse(); r.read(); c.close()
        if r.status == 200:
            ready = time.time() - start
            break
    except OSError:
        pass
    time.sleep(0.005)
if ready is None:
    sys.exit("agent not ready within 60 s")

body = json.dumps({"messages": [{"role": "user", "content": "How often should I clean the air filter?"}],
                   "max_tokens": 32})
c = UnixConnection(sock)
def ask():
    c.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    assert r.status == 200, data
    return json.loads(data)
first = ask()
assert first["outpost"]["cached"] is False
for _ in range(50):
    ask()
lat = []
for _ in range(n):
    t = time.perf_counter(); o = ask(); lat.append((time.perf_counter() - t) * 1e3)
    assert o["outpost"]["cached"] is True
lat.sort()
def pct(p): return lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
status = open(f"/proc/{pid}/status").read()
hwm = int([l for l in status.splitlines() if l.startswith("VmHWM")][0].split()[1]) * 1024
# f16 KV cache: layers x 2 (K,V) x context x kv_dim x 2 bytes, for the default model
kv = 30 * 2 * 2048 * 192 * 2
budget = os.path.getsize(model) + kv + 40 * 2**20
print(json.dumps({"ready_s": round(ready, 3), "cached_replay_ms": {"p50": round(pct(50), 3), "p99": round(pct(99), 3),
                  "max": round(lat[-1], 3)}, "requests": n, "peak_rss_bytes": hwm, "rss_budget_bytes": budget,
                  "rss_within_budget": hwm <= budget,
                  "overhead_mib": round((hwm - os.path.getsize(model) - kv) / 2**20, 1)}))
PY
