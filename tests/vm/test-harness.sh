#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The harness itself: a guest script's exit code comes back as vm_run's; a VM that hangs fails
# loudly at the timeout; a VM that powers off without reporting fails loudly. Three short boots.
set -u
. "$(dirname "$0")/vm-lib.sh"
vm_require
vm_prepare || exit 1
vm_new_run || exit 1
guest=$(dirname "$0")/guest
failed=0

result() {
        if [ "$1" = yes ]; then
                echo "ok - $2"
        else
                echo "not ok - $2"
                failed=1
        fi
}

out=$(vm_run "$guest/exit-code.sh" 2>&1)
rc=$?
result "$([ $rc -eq 3 ] && echo yes)" "the guest script's exit code (3) is vm_run's (got $rc)"
result "$(grep -qx 'output from the guest' <<<"$out" && echo yes)" "the guest script's output comes back"
result "$(grep -q 'ADE-VM-' <<<"$out" || echo yes)" "the markers are not in the output"

out=$(ADE_VM_TIMEOUT=40 vm_run "$guest/hang.sh" 2>&1)
rc=$?
result "$([ $rc -eq 1 ] && echo yes)" "a hanging guest fails (got $rc)"
result "$(grep -q 'did not come back within 40s' <<<"$out" && echo yes)" "a hanging guest is reported as such"

out=$(vm_run "$guest/vanish.sh" 2>&1)
rc=$?
result "$([ $rc -eq 1 ] && echo yes)" "a guest that powers off without an exit code fails (got $rc)"
result "$(grep -q 'without reporting an exit code' <<<"$out" && echo yes)" "and is reported as such"

[ $failed -eq 0 ] || { printf '%s\n' "$out" | tail -n 20; }
exit $failed
