#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Power loss in the middle of an online encryption (guest/aded-powerloss.sh): QEMU is killed at 30 %
# of "adectl enable" on a mounted ext4 disk while fsync'd files are written, and again at 60 % of
# the resume; each next boot of the same images has aded resume by itself from the state on its
# persistent disk and mount the volume again where it was; the last one finishes: Encrypted, every
# file and every fsync'd file intact. Then an Unlock with Key Vault cut, and a Disable while an
# Unlock waits on Key Vault (guest/aded-powerloss.sh). Skips (77) like the other VM tests.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/vm-lib.sh"
vm_power_cut_prepare
data=$(vm_ext4_image powerloss 160M) || exit 1
# The data disk throttled to 4 MiB/s: the encryption takes about a minute, so that the cut lands
# near 30 % (the guest notices the progress only as fast as it can start adectl under TCG).
disks=("$VM_STATE_IMG:ade-state" "$data:data-ext4:throttling.bps-total=4194304")
guest=$(dirname "$0")/guest/aded-powerloss.sh
vm_power_cut_boots 3 "$guest" "${disks[@]}"
rc=$?
if [ $rc -eq 0 ]; then
        vm_host_check "stock cryptsetup finds the LUKS2 header on the data disk" \
                cryptsetup isLuks --type luks2 "$data" || rc=1
fi
vm_check_summary "$VM_RUN/result" $rc
exit $rc
