#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Power loss in the middle of an online encryption of a mounted XFS data disk
# (guest/aded-powerloss-xfs.sh): XFS cannot shrink, so aded writes a detached LUKS2 header into its
# header-dir on the persistent disk. QEMU is killed at 30 % of "adectl enable" while fsync'd files
# are written; the next boot of the same images has aded resume by itself, open the volume with the
# detached header and mount it again where it was, with its options; it ends Encrypted, every file
# intact and xfs_repair -n clean. On the host, stock cryptsetup finds the LUKS2 header, its
# reencryption finished, in the header file (read out of the state disk with debugfs) and none on
# the data disk. Skips (77) like the other VM tests.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/vm-lib.sh"
command -v mkfs.xfs >/dev/null || vm_skip "mkfs.xfs is missing (xfsprogs)"
command -v debugfs >/dev/null || vm_skip "debugfs is missing (e2fsprogs)"
vm_power_cut_prepare
# XFS wants 300 MiB at least; the guest fills it from the tree (the host kernel may lack XFS).
data=$(vm_image xfs 320M) || exit 1
mkfs.xfs -q -f -L xfsdata "$data" || exit 1
# Not throttled: under TCG the encryption itself is slow enough (about 2 MiB/s) for the guest to
# stop at 30 %.
disks=("$VM_STATE_IMG:ade-state" "$data:data-xfs")
vm_power_cut_boots 2 "$(dirname "$0")/guest/aded-powerloss-xfs.sh" "${disks[@]}"
rc=$?
# finished_header FILE: a LUKS2 header whose reencryption is not in progress.
finished_header() {
        cryptsetup isLuks --type luks2 "$1" && ! cryptsetup luksDump "$1" | grep -q online-reencrypt
}
if [ $rc -eq 0 ]; then
        vm_host_check "the XFS data disk carries no LUKS header (detached)" sh -c "! cryptsetup isLuks '$data'" || rc=1
        name=$(debugfs -R "ls /headers" "$VM_STATE_IMG" 2>/dev/null | tr -s ' ' '\n' | grep '\.header$' | head -n1)
        header=$VM_RUN/detached.header
        [ -z "$name" ] || debugfs -R "dump /headers/$name $header" "$VM_STATE_IMG" >/dev/null 2>&1
        vm_host_check "stock cryptsetup finds a LUKS2 header, its reencryption finished, in header-dir (${name:-no .header file})" \
                finished_header "$header" || rc=1
fi
vm_check_summary "$VM_RUN/result" $rc
exit $rc
