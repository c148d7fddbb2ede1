#!/usr/bin/env bash
# run_aarch64.sh -- the switch-core scenarios (tests/c/) on AArch64 under
# emulation: cross-compiled with aarch64-linux-gnu-gcc (-O2 -g -static, so
# qemu needs no sysroot) and run with qemu-aarch64.
#
# Needs the Debian packages gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user.  Works from any directory; builds in a temporary one; prints
# every command; exits non-zero on any failure.  Environment: CROSS_CC,
# QEMU, STL_SWITCH_DIR (another copy of csrc/switch/, to try a fix).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SWITCH=${STL_SWITCH_DIR:-$ROOT/csrc/switch}
CROSS_CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}

for tool in "$CROSS_CC" "$QEMU"; do
    if ! command -v "$tool" > /dev/null; then
        echo "run_aarch64.sh: $tool not found (apt-get install gcc-aarch64-linux-gnu" \
             "libc6-dev-arm64-cross qemu-user)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stl-switch-aarch64.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

run() {
    echo "+ $*"
    "$@"
}

run "$CROSS_CC" -O2 -g -static -Wall -Wextra -I"$SWITCH" -I"$HERE" \
    -DSTL_REALLOC=stl_test_realloc -include "$HERE/test_alloc.h" \
    "$SWITCH/switch.c" "$SWITCH/arch/aarch64_aapcs64.S" \
    "$HERE/test_util.c" "$HERE/test_harness.c" "$HERE/switch_scenarios.c" \
    "$HERE/switch_stress.c" "$HERE/switch_alloc.c" "$HERE/selftest_main.c" \
    -lm -o "$WORK/selftest"
run file "$WORK/selftest" || true
# Emulation is slower than native (the whole run takes seconds): 30 s per
# scenario is generous, and bounds a hang.
run "$QEMU" "$WORK/selftest" -t 30
echo "run_aarch64.sh: all passed"
