#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Format-all through ade's engine (tests/integration/ade-engine-tool), proven with stock cryptsetup
# and device-mapper in the guest (guest/format-all.sh): an ext4 disk and an XFS disk, each with a
# label and files, become LUKS2 volumes carrying our token with a new, empty filesystem of the same
# type and label. Without the confirmation, or while mounted, nothing changes. One boot.
set -u
. "$(dirname "$0")/vm-lib.sh"
vm_require
command -v mkfs.xfs >/dev/null || vm_skip "mkfs.xfs is missing (xfsprogs)"
command -v jq >/dev/null || vm_skip "jq is missing (the guest reads cryptsetup's JSON metadata with it)"
vm_prepare || exit 1
vm_new_run || exit 1
[ -x "${top_builddir:-$vm_top}/tests/integration/ade-engine-tool" ] ||
        { vm_log "tests/integration/ade-engine-tool is not built (make check builds it)"; exit 1; }

# A few files; the guest copies them onto the XFS disk (the host kernel may lack XFS), mkfs.ext4 -d
# puts them on the ext4 one.
tree=$VM_RUN/tree
mkdir -p "$tree/dir" || exit 1
head -c 3M /dev/urandom >"$tree/dir/random" || exit 1
echo hello >"$tree/hello.txt"

ext4=$(vm_image fa-ext4 200M) || exit 1
mkfs.ext4 -q -F -L fa-ext4 -d "$tree" "$ext4" || exit 1
xfs=$(vm_image fa-xfs 320M) || exit 1
mkfs.xfs -q -L fa-xfs "$xfs" || exit 1

vm_run "$(dirname "$0")/guest/format-all.sh" "$ext4:fa-ext4" "$xfs:fa-xfs"
rc=$?
echo "# figure vm-seconds $VM_SECONDS s"
# The host judges the images too: each carries a LUKS2 header with our token.
if [ $rc -eq 0 ]; then
        for img in "$ext4" "$xfs"; do
                if cryptsetup luksDump "$img" 2>/dev/null | grep -q 'Azure_Disk_Encryption'; then
                        echo "ok - host: $(basename "$img") is LUKS2 with the Azure_Disk_Encryption token"
                else
                        echo "not ok - host: $(basename "$img") is not LUKS2 with the Azure_Disk_Encryption token"
                        rc=1
                fi
        done
fi
exit $rc
