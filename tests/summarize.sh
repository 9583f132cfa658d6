#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Adds up the results of an automake test run in the build folders given: a Check suite counts
# its cases (from its "N%: Checks: C, Failures: F, Errors: E" line), any other test counts once.
# Prints failing tests' names with the end of their logs, then "N passed, N failed, N skipped".
passed=0 failed=0 skipped=0

# CI keeps only what is printed: show why a test failed, not just that it did.
report_failure() {
        echo "FAILED: $1"
        [ -f "$1.log" ] && tail -n 40 "$1.log" | sed 's/^/    | /'
}

for dir in "$@"; do
        while IFS= read -r -d '' trs; do
                log=${trs%.trs}.log
                result=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
                line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" 2>/dev/null | tail -n1)
                if [ -n "$line" ]; then
                        c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
                        f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
                        e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
                        passed=$((passed + c - f - e))
                        failed=$((failed + f + e))
                        if [ "$result" != PASS ] && [ $((f + e)) -eq 0 ]; then
                                failed=$((failed + 1))
                        fi
                        if [ $((f + e)) -gt 0 ] || [ "$result" != PASS ]; then
                                report_failure "${trs%.trs}"
                        fi
                else
                        case "$result" in
                        PASS | XFAIL) passed=$((passed + 1)) ;;
                        SKIP) skipped=$((skipped + 1)) ;;
                        *) failed=$((failed + 1)); report_failure "${trs%.trs}" ;;
                        esac
                fi
        done < <(find "$dir" -name '*.trs' -not -path '*/_build/*' -print0 2>/dev/null)
done
echo "$passed passed, $failed failed, $skipped skipped"
