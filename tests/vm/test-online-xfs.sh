#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Online encryption of a mounted XFS data disk through ade's engine (issue 7): XFS cannot shrink, so
# the header is detached (a file in header-dir) and no data moves; files read and written during the
# encryption; downtime figure (guest/online-xfs.sh). One boot. ADE_VM_XFS_KILL=yes kills the engine
# midway and resumes it instead (xfail-online-xfs-kill.sh).
set -u
. "$(dirname "$0")/vm-lib.sh"
vm_require
command -v mkfs.xfs >/dev/null || vm_skip "mkfs.xfs is missing (xfsprogs)"
vm_prepare || exit 1
vm_new_run || exit 1
vm_make_tree || exit 1

# XFS wants 300 MiB at least; the guest fills it from the tree (the host kernel may lack XFS).
img=$(vm_image xfs 320M) || exit 1
mkfs.xfs -q -L xfsdata "$img" || exit 1
vm_setenv ADE_VM_XFS_KILL "${ADE_VM_XFS_KILL:-no}"
# A hung filesystem after the kill would otherwise wait for the default 15 minutes.
ADE_VM_TIMEOUT=${ADE_VM_TIMEOUT:-600} vm_run "$(dirname "$0")/guest/online-xfs.sh" "$img:xfs-data"
rc=$?
echo "# figure vm-seconds $VM_SECONDS s"
if [ $rc -eq 0 ]; then
        # The header lives apart: the disk itself must carry none.
        if cryptsetup isLuks "$img"; then
                echo "not ok - host: xfs.img carries a LUKS header although it was detached"
                rc=1
        else
                echo "ok - host: xfs.img carries no LUKS header (detached)"
        fi
fi
exit $rc
