# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by guest scripts (bash, inside the VM). Each check prints "ok N - what" or
# "not ok N - what" followed by the command's output; done_checks prints the totals and exits
# non-zero when any check failed. The host counts these lines.
ade_checks=0
ade_failed=0

ade_result() {
        local rc=$1 what=$2 log=$3
        ade_checks=$((ade_checks + 1))
        if [ "$rc" -eq 0 ]; then
                echo "ok $ade_checks - $what"
        else
                ade_failed=$((ade_failed + 1))
                echo "not ok $ade_checks - $what"
                sed 's/^/#   /' "$log"
        fi
}

# check WHAT COMMAND...: passes when COMMAND succeeds.
check() {
        local what=$1 log rc
        shift
        log=$(mktemp)
        "$@" >"$log" 2>&1
        rc=$?
        ade_result "$rc" "$what" "$log"
        rm -f "$log"
        return "$rc"
}

# check_fails WHAT COMMAND...: passes when COMMAND fails.
check_fails() {
        local what=$1 log rc
        shift
        log=$(mktemp)
        "$@" >"$log" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
                ade_result 0 "$what" "$log"
        else
                ade_result 1 "$what (succeeded, expected a failure)" "$log"
        fi
        rm -f "$log"
        [ "$rc" -ne 0 ]
}

# require WHAT COMMAND...: a check the rest depends on; stops the script when it fails.
require() {
        check "$@" && return 0
        echo "# stopping: the checks after this one depend on it"
        done_checks
}

# A figure for the report (not a check): "# figure NAME VALUE UNIT".
figure() {
        echo "# figure $1 $2 $3"
}

# Seconds since boot, with hundredths, from the kernel's clock; read by the shell itself, since a
# program started under TCG would add a tenth of a second to every figure.
now() {
        local t rest
        read -r t rest </proc/uptime
        echo "$t"
}

elapsed() {
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

done_checks() {
        echo "# $ade_checks checks, $ade_failed failed"
        [ "$ade_failed" -eq 0 ]
        exit $?
}
