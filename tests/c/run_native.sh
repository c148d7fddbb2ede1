#!/usr/bin/env bash
# run_native.sh -- the switch-core scenarios (tests/c/) without Python, three
# ways, on this machine's architecture:
#
#   (a) gcc -O2 -g, run plainly;
#   (b) the same binary under Valgrind memcheck: zero errors required;
#   (c) rebuilt with -fsanitize=address,undefined.
#
# Works from any directory; builds in a temporary one; prints every command.
# Exits non-zero if any step fails.  Environment: CC (default gcc),
# STL_SWITCH_DIR (another copy of csrc/switch/, to try a fix).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SWITCH=${STL_SWITCH_DIR:-$ROOT/csrc/switch}
CC=${CC:-gcc}

case $(uname -m) in
    x86_64 | amd64) ROUTINE=x86_64_sysv.S ;;
    aarch64 | arm64) ROUTINE=aarch64_aapcs64.S ;;
    *) echo "run_native.sh: no switch routine for $(uname -m)" >&2; exit 1 ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stl-switch-native.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

SOURCES=(
    "$SWITCH/switch.c" "$SWITCH/arch/$ROUTINE"
    "$HERE/test_util.c" "$HERE/test_harness.c" "$HERE/switch_scenarios.c"
    "$HERE/switch_stress.c" "$HERE/switch_alloc.c" "$HERE/selftest_main.c"
)

run() {
    echo "+ $*"
    "$@"
}

# build OUTPUT [EXTRA FLAGS...]: switch.c allocates through the counting
# realloc of test_util.c, which the scenarios use to count and fail allocations.
build() {
    local out=$1
    shift
    run "$CC" -O2 -g -Wall -Wextra "$@" -I"$SWITCH" -I"$HERE" \
        -DSTL_REALLOC=stl_test_realloc -include "$HERE/test_alloc.h" \
        "${SOURCES[@]}" -lm -o "$WORK/$out"
}

plain() {
    build selftest
    run "$WORK/selftest" -t 20
}

# Every scenario runs in a forked child; Valgrind follows forks (no exec), so
# each child prints its own summary into its own log.  Zero errors in all of
# them are required: a child with errors exits 1 (--error-exitcode), which
# the harness reports as a failed scenario, and the logs are counted here.
#
# --max-stackframe: Memcheck takes a stack-pointer move larger than this
# (default 2,000,000 bytes) for a switch to another stack and then stops
# tracking definedness across it.  The core moves the stack pointer within
# the one C stack, by at most the depth of the deepest window (about 400 KB
# in deep_recursion), so the default would do; 16 MB (twice the default
# 8 MiB main stack) states that every move is an ordinary stack change, so
# that a larger scenario would keep the same checking instead of silently
# losing it.
valgrind_run() {
    if ! command -v valgrind > /dev/null; then
        echo "valgrind not installed" >&2
        return 1
    fi
    if ! echo '#include <valgrind/memcheck.h>' | "$CC" -E -x c - > /dev/null 2>&1; then
        echo "warning: no <valgrind/memcheck.h>: the core is built without its Valgrind annotations" >&2
    fi
    [ -x "$WORK/selftest" ] || build selftest
    local status=0
    run valgrind --tool=memcheck --error-exitcode=1 --max-stackframe=16777216 \
        --leak-check=full --errors-for-leak-kinds=definite \
        --log-file="$WORK/vg.%p.log" "$WORK/selftest" -t 60 || status=$?
    local total=0 logs=0 n
    for log in "$WORK"/vg.*.log; do
        n=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
        total=$((total + ${n:-0}))
        logs=$((logs + 1))
        if [ "${n:-0}" != 0 ]; then
            echo "--- $log"
            cat "$log"
        fi
    done
    echo "valgrind: $logs processes, $total errors in total"
    [ "$status" = 0 ] && [ "$total" = 0 ]
}

# detect_stack_use_after_return=0: that mode moves locals to heap "fake
# frames" whose lifetime ASan ties to the order in which frames die, which
# switching breaks (docs/switch.md, "What Valgrind and AddressSanitizer are
# told").
sanitizers() {
    build selftest-asan -fsanitize=address,undefined -fno-omit-frame-pointer \
        -fno-sanitize-recover=undefined
    run env ASAN_OPTIONS=detect_stack_use_after_return=0 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$WORK/selftest-asan" -t 20
}

failed=()
for step in plain valgrind_run sanitizers; do
    echo "=== $step"
    if "$step"; then
        echo "=== $step: passed"
    else
        echo "=== $step: FAILED"
        failed+=("$step")
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "run_native.sh: failed: ${failed[*]}"
    exit 1
fi
echo "run_native.sh: all passed"
