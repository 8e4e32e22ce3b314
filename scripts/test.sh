#!/usr/bin/env bash
# The test command: the aarch64 NEON kernel tests under qemu, then the Swift test suite (the real
# model, real SQLite files, a real mosquitto broker on loopback ports, the real agent over its
# Unix socket). Run scripts/setup.sh once first on a fresh machine.
#
# The Swift tests run on an optimised build (-c release with testing enabled): the engine tests
# generate with the real model, and the unoptimised C kernels and Swift loops of a debug build
# are two orders of magnitude slower. OUTPOST_TEST_CONFIG=debug runs them on a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-model.sh >/dev/null
scripts/test-neon.sh

config="${OUTPOST_TEST_CONFIG:-release}"
flags=(-c "$config")
if [ "$config" = release ]; then flags+=(-Xswiftc -enable-testing); fi
swift build --build-tests "${flags[@]}"
swift test --skip-build "${flags[@]}"
