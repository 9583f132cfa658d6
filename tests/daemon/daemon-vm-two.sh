#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Two online encryptions at once in aded (guest/aded-online-two.sh): in a QEMU guest with
# device-mapper, a mounted ext4 data disk (attached header, data shifted) and a mounted XFS one
# (detached header) are enabled by one "adectl enable"; both must end Encrypted. Skips (77) like the
# other VM tests: no root, no qemu, ADE_HEAVY_TESTS=no, or no kernel package.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/vm-lib.sh"
vm_require
command -v mkfs.xfs >/dev/null || vm_skip "mkfs.xfs is missing (xfsprogs)"
vm_require_built daemon/aded tools/adectl tests/emulator/ade-emulator
vm_prepare || exit 1
vm_new_run || exit 1
vm_make_tree || exit 1
ext4=$(vm_ext4_image two-ext4 300M) || exit 1
xfs=$(vm_image two-xfs 320M) || exit 1
mkfs.xfs -q "$xfs" || exit 1
vm_setenv ADE_TWO_XFS_ONLINE "${ADE_TWO_XFS_ONLINE:-yes}"
state=$(vm_image two-state 128M) || exit 1
vm_run "$(dirname "$0")/guest/aded-online-two.sh" "$ext4:two-ext4" "$xfs:two-xfs" "$state:two-state" >"$VM_RUN/result"
rc=$?
cat "$VM_RUN/result"
echo "# figure vm-seconds $VM_SECONDS s"
vm_check_summary "$VM_RUN/result" $rc
exit $rc
