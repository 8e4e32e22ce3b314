#!/usr/bin/env bash
# The test command: the Swift test suite (real model, real SQLite files, a real mosquitto broker
# on loopback ports) and, when present, the aarch64 NEON kernel tests under qemu.
# Run scripts/setup.sh once first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-model.sh >/dev/null

if [ -x scripts/test-neon.sh ]; then
  scripts/test-neon.sh
fi

swift build --build-tests
swift test --skip-build
