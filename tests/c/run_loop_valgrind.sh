#!/usr/bin/env bash
# run_loop_valgrind.sh -- the loop scenarios (tests/c/loop_scen_*.c) without
# Python, on every backend:
#
#   (a) gcc -O2 -g, run plainly, full size;
#   (b) the same binary under Valgrind memcheck, sizes divided by 10:
#       zero errors required (leaks of kind "definite" count as errors);
#   (c) rebuilt with -fsanitize=address,undefined, full size.
#
# Works from any directory; builds in a temporary one; prints every command.
# Exits non-zero if any step fails.  Environment: CC (default gcc),
# STL_LOOP_DIR (another copy of csrc/loop/, to try a fix),
# STL_LOOP_STEPS (default "plain valgrind_run sanitizers").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LOOP=${STL_LOOP_DIR:-$ROOT/csrc/loop}
CC=${CC:-gcc}
read -r -a STEPS <<<"${STL_LOOP_STEPS:-plain valgrind_run sanitizers}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stl-loop-native.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

SOURCES=("$LOOP"/*.c "$HERE/loop_harness.c" "$HERE"/loop_scen_*.c "$HERE/loop_selftest.c")

run() {
    echo "+ $*"
    "$@"
}

# build OUTPUT [EXTRA FLAGS...]: csrc/loop allocates through the counting
# allocator of loop_harness.c, which the scenarios use to count and fail
# allocations.
build() {
    local out=$1
    shift
    run "$CC" -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread "$@" -I"$LOOP" -I"$HERE" \
        -DSTL_LOOP_REALLOC=tl_realloc -DSTL_LOOP_FREE=tl_free -include "$HERE/loop_tests.h" \
        "${SOURCES[@]}" -lm -o "$WORK/$out"
}

plain() {
    build selftest
    run "$WORK/selftest" -t 60
}

# Every scenario runs in a forked child, and some fork again; Valgrind
# follows forks (no exec), so each process writes its own log.  A process
# with errors exits 1 (--error-exitcode), which the harness reports as a
# failed scenario; the logs are also counted here.  --fair-sched=yes:
# Valgrind runs one thread at a time, and its default lock lets a thread
# that spins on a syscall (fork_while_signals_fly's kill() loop) take it
# back at once, so the main thread, woken in waitpid, could starve for
# minutes; a ticket lock hands it over in turn.
valgrind_run() {
    if ! command -v valgrind >/dev/null; then
        echo "valgrind not installed" >&2
        return 1
    fi
    [ -x "$WORK/selftest" ] || build selftest
    local status=0
    run valgrind --tool=memcheck --fair-sched=yes --error-exitcode=1 --leak-check=full \
        --errors-for-leak-kinds=definite --track-fds=no \
        --log-file="$WORK/vg.%p.log" "$WORK/selftest" -t 300 -s 10 || status=$?
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

sanitizers() {
    build selftest-asan -fsanitize=address,undefined -fno-omit-frame-pointer \
        -fno-sanitize-recover=undefined
    run env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$WORK/selftest-asan" -t 120
}

failed=()
for step in "${STEPS[@]}"; do
    echo "=== $step"
    if "$step"; then
        echo "=== $step: passed"
    else
        echo "=== $step: FAILED"
        failed+=("$step")
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "run_loop_valgrind.sh: failed: ${failed[*]}"
    exit 1
fi
echo "run_loop_valgrind.sh: all passed"
