#!/usr/bin/env bash
# Tests the CQuants kernels outside SwiftPM with the C driver Tests/CQuantsDriver/cquants_driver.c:
#   1. natively (on x86_64: scalar vs AVX2 and AVX-512 VNNI; the dispatcher must pick avx512-vnni
#      when the CPU has AVX-512 VNNI+VL besides AVX2+FMA+F16C, avx2 with those alone, scalar
#      otherwise; on a VNNI CPU a second run puts the dispatched entry points on avx2),
#   2. cross-compiled for aarch64 and run under qemu-user twice: -cpu cortex-a76 (NEON + dotprod,
#      the dispatcher must pick neon-dotprod) and -cpu cortex-a53 (plain NEON, must pick neon).
#   3. when a clang is on PATH (the Swift toolchain has one; SwiftPM builds CQuants with it), the
#      aarch64 driver again, built by clang, on both CPUs (labels cortex-a76-clang, cortex-a53-clang):
#      clang takes other branches (target("dotprod") attributes) than gcc.
# Prints one closing line per run, e.g. "cortex-a76: 341 passed, 0 failed"; exits non-zero if any
# run fails or crashes.
#
# Needs (Debian 12): gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user, and a native C
# compiler: cc/gcc, or else the Swift toolchain's clang. Overrides: CC, CC_AARCH64, CLANG (empty:
# skip step 3), QEMU_AARCH64, QEMU_LD_PREFIX (the aarch64 sysroot, default /usr/aarch64-linux-gnu).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/Sources/CQuants"
driver="$root/Tests/CQuantsDriver/cquants_driver.c"
fixtures="$root/Tests/CQuantsTests/Fixtures"
CC=${CC:-$(command -v cc || command -v gcc || command -v clang || echo cc)}
CC_AARCH64=${CC_AARCH64:-aarch64-linux-gnu-gcc}
QEMU_AARCH64=${QEMU_AARCH64:-qemu-aarch64}
QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
CFLAGS=(-std=gnu11 -O2 -Wall -Wextra -Werror -I"$src/include")

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for tool in "$CC" "$CC_AARCH64" "$QEMU_AARCH64"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test-neon: '$tool' not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)" >&2
    exit 1
  fi
done

status=0

# run LABEL EXPECTED_KERNEL COMMAND...: runs the driver, shows failures and its closing line.
# DRIVER_PATH=NAME in the environment runs the dispatched entry points on that path.
run() {
  local label=$1 expect=$2
  shift 2
  local args=(--label "$label" --fixtures "$fixtures")
  [ -n "$expect" ] && args+=(--expect-kernel "$expect")
  [ -n "${DRIVER_PATH:-}" ] && args+=(--path "$DRIVER_PATH")
  local rc=0
  "$@" "${args[@]}" >"$out/$label.log" 2>&1 || rc=$?
  grep -E '^(FAIL|kernel path|skipping)' "$out/$label.log" | sed "s/^/  [$label] /" || true
  if ! grep -E "^$label: [0-9]+ passed, [0-9]+ failed$" "$out/$label.log"; then
    tail -n 20 "$out/$label.log" >&2
    echo "$label: driver did not finish (exit $rc)"
    status=1
  elif [ "$rc" -ne 0 ]; then
    status=1
  fi
}

# Native.
native_expect=""
if [ "$(uname -m)" = x86_64 ]; then
  flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
  if grep -qw avx2 <<<"$flags" && grep -qw fma <<<"$flags" && grep -qw f16c <<<"$flags"; then
    native_expect=avx2
    if grep -qw avx512_vnni <<<"$flags" && grep -qw avx512vl <<<"$flags"; then native_expect=avx512-vnni; fi
  else
    native_expect=scalar
  fi
fi
"$CC" "${CFLAGS[@]}" "$src"/*.c "$driver" -lm -o "$out/cquants-native"
run "native-$(uname -m)" "$native_expect" "$out/cquants-native"
# Where the best path is avx512-vnni, the avx2 path (what a CPU without VNNI runs) once more as the
# dispatched one.
if [ "$native_expect" = avx512-vnni ]; then
  DRIVER_PATH=avx2 run "native-$(uname -m)-avx2" avx512-vnni "$out/cquants-native"
fi

# aarch64 under qemu.
"$CC_AARCH64" "${CFLAGS[@]}" "$src"/*.c "$driver" -lm -o "$out/cquants-aarch64"
run cortex-a76 neon-dotprod "$QEMU_AARCH64" -L "$QEMU_LD_PREFIX" -cpu cortex-a76 "$out/cquants-aarch64"
run cortex-a53 neon "$QEMU_AARCH64" -L "$QEMU_LD_PREFIX" -cpu cortex-a53 "$out/cquants-aarch64"

# aarch64 built by clang (what SwiftPM uses), under qemu.
CLANG=${CLANG-$(command -v clang || true)}
if [ -n "$CLANG" ]; then
  if "$CLANG" --target=aarch64-linux-gnu "${CFLAGS[@]}" "$src"/*.c "$driver" -lm -o "$out/cquants-aarch64-clang" 2>"$out/clang.log"; then
    run cortex-a76-clang neon-dotprod "$QEMU_AARCH64" -L "$QEMU_LD_PREFIX" -cpu cortex-a76 "$out/cquants-aarch64-clang"
    run cortex-a53-clang neon "$QEMU_AARCH64" -L "$QEMU_LD_PREFIX" -cpu cortex-a53 "$out/cquants-aarch64-clang"
  else
    echo "test-neon: note: $CLANG cannot cross-compile for aarch64 here; clang-built runs skipped:" >&2
    head -n 5 "$out/clang.log" >&2
  fi
fi

exit $status
