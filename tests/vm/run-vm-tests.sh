#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The whole VM suite: runs every tests/vm/test-*.sh (each boots its own VM once) and adds up the
# guest's checks. Registered with automake; exits 77 when no VM can run here (no root, no qemu,
# ADE_HEAVY_TESTS=no, the kernel package cannot be fetched). The last line has the form of a Check
# summary so that tests/summarize.sh counts each guest check. Run by hand as root:
#   top_builddir=$PWD/build tests/vm/run-vm-tests.sh [test-smoke.sh ...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/vm-lib.sh"
vm_require
# Fetch the kernel once up front: a failure to fetch is a skip for the whole suite.
vm_prepare || exit 1

if [ $# -gt 0 ]; then
        tests=("$@")
else
        # The Debian guest's tests (test-debian-*.sh, debian-lib.sh) are registered on their own.
        tests=()
        for t in "$here"/test-*.sh; do
                case $t in */test-debian-*) ;; *) tests+=("$t") ;; esac
        done
fi

checks=0 failures=0 files_failed=0 files_skipped=0
start=$(date +%s)
for t in "${tests[@]}"; do
        [ -f "$t" ] || t=$here/$t
        name=$(basename "$t" .sh)
        echo "=== $name"
        log=$(mktemp)
        t0=$(date +%s)
        bash "$t" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        t1=$(date +%s)
        ok=$(grep -cE '^ok [0-9]* ?-' "$log")
        notok=$(grep -cE '^not ok [0-9]* ?-' "$log")
        rm -f "$log"
        case $rc in
        0) echo "=== $name: PASS ($ok checks, $((t1 - t0)) s)" ;;
        77) echo "=== $name: SKIP"; files_skipped=$((files_skipped + 1)) ;;
        *)
                echo "=== $name: FAIL (exit $rc, $notok of $((ok + notok)) checks failed, $((t1 - t0)) s)"
                files_failed=$((files_failed + 1))
                # A file that failed without a failing check (the VM did not come back) counts as one.
                [ "$notok" -gt 0 ] || notok=1
                ;;
        esac
        checks=$((checks + ok + notok))
        failures=$((failures + notok))
done
end=$(date +%s)

echo "VM suite: ${#tests[@]} files, $files_failed failed, $files_skipped skipped, $((end - start)) s in all"
if [ "$files_skipped" -eq "${#tests[@]}" ]; then
        exit 77
fi
pct=100
[ "$checks" -eq 0 ] || pct=$(((checks - failures) * 100 / checks))
echo "$pct%: Checks: $checks, Failures: $failures, Errors: 0"
[ "$files_failed" -eq 0 ]
