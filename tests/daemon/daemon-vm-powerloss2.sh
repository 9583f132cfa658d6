#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Power loss in the middle of an online decryption (guest/aded-powerloss2.sh): a mounted ext4 disk
# is encrypted online by "adectl enable", then decrypted online by "adectl disable" while fsync'd
# files are written, and QEMU is killed at about 30 % of the decryption. The next boot of the same
# images has aded resume the decryption by itself from the state on its persistent disk, with the
# volume mounted again where it was; it ends NotEncrypted, no LUKS header left, every file intact.
# Skips (77) like the other VM tests.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/vm-lib.sh"
vm_power_cut_prepare
data=$(vm_ext4_image powerloss 160M) || exit 1
# Throttled (8 MiB/s), so that the cut lands part-way through the decryption (about 40 s).
disks=("$VM_STATE_IMG:ade-state" "$data:data-ext4:throttling.bps-total=8388608")
guest=$(dirname "$0")/guest/aded-powerloss2.sh
vm_power_cut_boots 2 "$guest" "${disks[@]}"
rc=$?
if [ $rc -eq 0 ]; then
        vm_host_check "the data disk carries no LUKS header" sh -c "! cryptsetup isLuks '$data'" || rc=1
fi
vm_check_summary "$VM_RUN/result" $rc
exit $rc
