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
# Gemma 3 270M (Q4_K_M): the gemma3 architecture and the SentencePiece tokenizer's reference file.
scripts/fetch-gemma.sh >/dev/null
# The test models and llama.cpp's reference outputs on them, in the model cache: the default model
# re-quantized by llama.cpp to Q4_0, Q4_K_M, Q5_K_M, Q6_K; SmolLM2 rewritten as qwen2, qwen3,
# llama 3 and phi3 (scripts/make-arch-models.py); the Gemma file's references. A no-op once made;
# the first run on a fresh machine builds llama-cpp-python (~6 minutes) and makes them (~3 minutes).
scripts/make-test-models.sh >/dev/null
scripts/test-neon.sh

config="${OUTPOST_TEST_CONFIG:-release}"
flags=(-c "$config")
if [ "$config" = release ]; then flags+=(-Xswiftc -enable-testing); fi
swift build --build-tests "${flags[@]}"
# Two runs, one after the other. The first holds the tests that drive child processes (the agent,
# the CLI) and wait on them; the second the in-process ones (gateways, caches, the engine), which
# live on the test process's cooperative threads. On a 2-core machine that pool has two threads:
# run together, a test blocked waiting on a child would starve an in-process gateway under test.
# A third run holds the in-process suites that time things on the cooperative threads (the
# socket API's idle timeout, the scheduler's queue): beside the engine tests, which keep both
# cores busy, their clients could be starved for seconds.
process_suites='AgentTests|OutpostCLITests'
quiet_suites='AgentTests.GenerationSchedulerTests|LocalAPITests'
swift test --skip-build "${flags[@]}" --filter "$process_suites" --skip "$quiet_suites"
swift test --skip-build "${flags[@]}" --skip "$process_suites|$quiet_suites"
swift test --skip-build "${flags[@]}" --filter "$quiet_suites"
