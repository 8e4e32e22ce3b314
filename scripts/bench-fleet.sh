#!/usr/bin/env bash
# Fleet benchmark: N gateways (PeerSync + AnswerCache each) on one mosquitto on a free loopback
# port. Prints JSON with the MQTT cache-hit round trip and the invalidation-visible-at-every-peer
# time, p50/p99/max in milliseconds. Targets: round trip p99 <= 5 ms, invalidation p99 <= 100 ms.
#
#   scripts/bench-fleet.sh [--gateways N] [--requests R] [--invalidations I] [--signed]
#   (--signed: invalidations signed with member keys and verified by every peer, as in a fleet with --trust-key)
#   CONFIG=debug scripts/bench-fleet.sh      # skip the (slow) release build
#   FLEETBENCH_BIN=.build/release/FleetBench scripts/bench-fleet.sh   # no build at all
#   BROKER=mqtt://host:1883 scripts/bench-fleet.sh   # an existing broker instead of a local one
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG="${CONFIG:-release}"
if [ -n "${FLEETBENCH_BIN:-}" ]; then
  BIN="$FLEETBENCH_BIN"   # an existing build (e.g. the test build's .build/release/FleetBench)
else
  swift build -c "$CONFIG" --product FleetBench >&2
  BIN="$(swift build -c "$CONFIG" --show-bin-path)/FleetBench"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-fleet.XXXXXX")
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${BROKER:-}" ]; then
  MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  cat > "$work/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 100000
set_tcp_nodelay true
user $(id -un)
CONF
  "$MOSQUITTO" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
  done
  BROKER="mqtt://127.0.0.1:$port"
fi

"$BIN" --broker "$BROKER" "$@"
