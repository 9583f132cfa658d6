#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the libFuzzer tree when needed (clang, --enable-fuzzing: tests/fuzz/README.md), replays every
# committed corpus (the regression inputs included), then fuzzes each target for a while. Fails on
# any crash, leak, undefined behaviour, timeout or broken invariant, printing the input that did it.
#   ADE_FUZZ_SECONDS   seconds of fuzzing per target (default 10; 0 replays only)
#   ADE_FUZZ_JOBS      targets fuzzed at once (default: the number of CPUs)
#   ADE_FUZZ_TARGETS   the targets to run, e.g. "url state" (default: all)
#   ADE_FUZZ_BUILDDIR  the clang build folder (default: build-fuzz/ in the source tree)
#   ADE_FUZZ_CC        the compiler (default: clang-14, else clang)
# New inputs a run finds go to $ADE_FUZZ_BUILDDIR/tests/fuzz/found/<target>/, crashes to
# .../tests/fuzz/artifacts/; the committed corpus is only read. Prints one line per target and ends
# with "N passed, N failed" (each replay and each fuzzing run counts once); each run also leaves an
# automake-style .trs beside its log in .../tests/fuzz/logs/, so that tests/summarize.sh counts it.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${ADE_FUZZ_BUILDDIR:-$top/build-fuzz}
seconds=${ADE_FUZZ_SECONDS:-10}
jobs=${ADE_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
passed=0 failed=0

# Longest input per target: room for several messages, documents or lines, small enough that
# each run is quick.
max_len() {
        case "$1" in
        varlink-stream | varlink-server | arm | state) echo 16384 ;;
        varlink-idl | config | imds | keyvault) echo 8192 ;;
        luks-token | entra | jwt | base64) echo 4096 ;;
        keysocket) echo 128 ;; # a peer address is at most 108 bytes
        *) echo 2048 ;;
        esac
}

cc=${ADE_FUZZ_CC:-}
if [ -z "$cc" ]; then
        cc=$(command -v clang-14 || command -v clang || true)
fi
if [ -z "$cc" ]; then
        echo "run-fuzzers: no clang; install clang-14 and libclang-rt-14-dev (tools/setup-deps.sh)"
        echo "0 passed, 1 failed"
        exit 1
fi

mkdir -p "$builddir" || exit 1
cd "$builddir" || exit 1
if [ ! -f Makefile ]; then
        [ -x "$top/configure" ] || (cd "$top" && ./autogen.sh >/dev/null 2>&1) ||
                { echo "run-fuzzers: autogen failed"; echo "0 passed, 1 failed"; exit 1; }
        "$top/configure" --enable-silent-rules --enable-fuzzing --disable-heavy-tests CC="$cc" \
                CFLAGS="-g -O1" >configure.out 2>&1 ||
                { tail -n 30 configure.out; echo "0 passed, 1 failed"; exit 1; }
fi
make -j"$jobs" fuzz-targets >make.out 2>&1 || { tail -n 60 make.out; echo "0 passed, 1 failed"; exit 1; }

all=$(make -s print-fuzz-targets | tr ' ' '\n' | sed 's|^tests/fuzz/fuzz-||')
targets=${ADE_FUZZ_TARGETS:-$all}
mkdir -p tests/fuzz/logs tests/fuzz/artifacts
rm -f tests/fuzz/logs/*.trs

# The last statistics line libFuzzer printed ("#N DONE cov: C ft: F corp: ..."), shortened.
stats() {
        grep -E '^#[0-9]+' "$1" | tail -n 1 | sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+/\1 runs, /; s/[[:space:]]+/ /g'
}

# Any sanitizer report, leak or libFuzzer "deadly signal"/timeout counts, also when the exit code
# does not say so.
report() {
        grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: |invariant broken|Test unit written to' "$1" |
                head -n 8 | sed 's/^/    | /'
}

run() { # phase name
        local phase=$1 name=$2 bin=tests/fuzz/fuzz-$2 log=tests/fuzz/logs/$1-$2.log corpus=$top/tests/fuzz/corpus/$2
        local rc

        if [ ! -d "$corpus" ]; then
                echo "FAILED: $name: no corpus at $corpus" >"$log"
                return 1
        fi
        if [ "$phase" = replay ]; then
                "./$bin" -runs=0 -timeout=10 -rss_limit_mb=2048 "$corpus" >"$log" 2>&1
        else
                mkdir -p "tests/fuzz/found/$name"
                "./$bin" -max_total_time="$seconds" -max_len="$(max_len "$name")" -timeout=10 -rss_limit_mb=2048 \
                        -print_final_stats=1 -artifact_prefix="tests/fuzz/artifacts/$name-" \
                        "tests/fuzz/found/$name" "$corpus" >"$log" 2>&1
        fi
        rc=$?
        if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
                return 1
        fi
        return 0
}

summarize() { # phase name rc
        local log=tests/fuzz/logs/$1-$2.log
        if [ "$3" -eq 0 ]; then
                passed=$((passed + 1))
                echo "$1 $2: ok ($(stats "$log"))"
                echo ":test-result: PASS" >"${log%.log}.trs"
        else
                failed=$((failed + 1))
                echo "FAILED: $1 $2 ($builddir/$log)"
                report "$log"
                echo ":test-result: FAIL" >"${log%.log}.trs"
        fi
}

for phase in replay fuzz; do
        [ "$phase" = fuzz ] && [ "$seconds" -eq 0 ] && break
        declare -A pids=()
        for name in $targets; do
                while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
                        wait -n
                done
                run "$phase" "$name" &
                pids[$name]=$!
        done
        for name in $targets; do
                wait "${pids[$name]}"
                summarize "$phase" "$name" $?
        done
        unset pids
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
