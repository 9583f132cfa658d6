#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# EIO under aded's state folder in the middle of an online encryption (guest/aded-eio.sh): the
# state disk's device-mapper table becomes "error"; the job ends Failed saying "Input/output error"
# for the device and the folder, the mounted volume and its files are intact; with the table
# linear again, aded started again finishes. Skips (77) like the other VM tests.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/vm-lib.sh"
vm_aded_prepare
state=$(vm_image state 64M) || exit 1
data=$(vm_ext4_image eio 160M) || exit 1
# The data disk throttled to 4 MiB/s, so that the fault comes in the middle of the encryption.
vm_run "$(dirname "$0")/guest/aded-eio.sh" "$state:ade-state" "$data:data-ext4:throttling.bps-total=4194304" \
        >"$VM_RUN/result"
rc=$?
cat "$VM_RUN/result"
echo "# figure vm-seconds $VM_SECONDS s"
vm_check_summary "$VM_RUN/result" $rc
exit $rc
