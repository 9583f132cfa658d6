#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Unlock after a fresh boot (issue 7), two boots of the VM with a persistent state disk:
#  1. the emulator (in the guest, on loopback, fixed ports, vault kept in a state file) and aded
#     encrypt an ext4 disk (header attached; mounted, so online, and its mount point is recorded in
#     the state file) and an XFS disk (header detached, in header-dir; not mounted, so offline); a
#     file is written through the ext4 disk's mapper;
#  2. a fresh boot: the emulator reloads its vault, aded starts, "adectl unlock" opens both through
#     their tokens and mounts the ext4 one where it was, with its options (the XFS one nowhere);
#     every file reads back identical, the one written before the reboot too. With the mount point
#     missing, then busy, Unlock leaves the volume open and says why; freed, it mounts it.
# guest/unlock-1.sh and guest/unlock-2.sh; the persistent disk holds ade.conf, aded's state folder,
# header-dir and the emulator's folder.
set -u
. "$(dirname "$0")/vm-lib.sh"
vm_require
command -v mkfs.xfs >/dev/null || vm_skip "mkfs.xfs is missing (xfsprogs)"
b=${top_builddir:-$vm_top}
for p in daemon/aded tools/adectl tests/emulator/ade-emulator; do
        [ -x "$b/$p" ] || vm_skip "$b/$p is not built"
done
vm_prepare || exit 1
vm_new_run || exit 1
vm_make_tree || exit 1

state=$(vm_image state 128M) || exit 1
ext4=$(vm_ext4_image unlock-ext4 300M) || exit 1
xfs=$(vm_image unlock-xfs 320M) || exit 1
mkfs.xfs -q -L unlockxfs "$xfs" || exit 1
disks=("$state:ade-state" "$ext4:data-ext4" "$xfs:data-xfs")

vm_run "$(dirname "$0")/guest/unlock-1.sh" "${disks[@]}"
rc=$?
echo "# figure vm-seconds-boot-1 $VM_SECONDS s"
[ $rc -eq 0 ] || exit $rc
vm_run "$(dirname "$0")/guest/unlock-2.sh" "${disks[@]}"
rc=$?
echo "# figure vm-seconds-boot-2 $VM_SECONDS s"
exit $rc
