#!/usr/bin/env bash
# Installs Outpost as a systemd service on this board: the release binary, the board's config
# (kept if one is already there), the default model, a dedicated `outpost` user, and the unit.
#
#   sudo ./scripts/install.sh [--board rpi5|x86_64] [--binary PATH] [--no-start]
#
# Users in the `outpost` group may talk to the agent on /run/outpost/outpost.sock.
set -euo pipefail
cd "$(dirname "$0")/.."

board=""
binary=""
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --board) board="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --no-start) start=0; shift ;;
    *) echo "install: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$board" ]; then
  case "$(uname -m)" in
    aarch64|arm64) board=rpi5 ;;
    *) board=x86_64 ;;
  esac
fi
[ -f "board/$board/outpost.json" ] || { echo "install: no profile board/$board/outpost.json" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "install: run as root (sudo)" >&2; exit 1; }

if [ -z "$binary" ]; then
  flags=()
  if [ "$board" = rpi5 ]; then flags=(-Xcc -mcpu=cortex-a76 -Xswiftc -target-cpu -Xswiftc cortex-a76); fi
  swift build -c release "${flags[@]}" >&2
  binary="$(swift build -c release "${flags[@]}" --show-bin-path)/outpost"
fi

getent group outpost >/dev/null || groupadd --system outpost
id -u outpost >/dev/null 2>&1 || useradd --system --gid outpost --home-dir /var/lib/outpost --shell /usr/sbin/nologin outpost

install -D -m 0755 "$binary" /usr/local/bin/outpost
install -d -m 0750 -o root -g outpost /etc/outpost
if [ ! -f /etc/outpost/outpost.json ]; then
  install -m 0640 -o root -g outpost "board/$board/outpost.json" /etc/outpost/outpost.json
fi
install -d -m 0750 -o outpost -g outpost /var/lib/outpost /var/lib/outpost/models
OUTPOST_MODEL_CACHE=/var/lib/outpost/models scripts/fetch-model.sh >/dev/null
chown -R outpost:outpost /var/lib/outpost/models
install -m 0644 systemd/outpost.service /etc/systemd/system/outpost.service
/usr/local/bin/outpost model info --model /var/lib/outpost/models/SmolLM2-135M-Instruct.Q4_1.gguf >&2

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$start" -eq 1 ]; then
    systemctl enable --now outpost.service
    systemctl --no-pager status outpost.service | head -n 5 >&2 || true
  fi
else
  echo "install: systemd is not running here; the unit is installed but not started" >&2
fi
echo "install: done (board $board). Ask it: outpost ask --socket /run/outpost/outpost.sock \"hello\"" >&2
