#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Online encryption of a mounted ext4 data disk (issue 7): stock cryptsetup's --init-only +
# --resume-only on one disk as the baseline, ade's engine on an identical one in the same VM, files
# read and written during the encryption, downtime figures for both; then ade's online disable of
# the second disk (guest/online-ext4.sh). One boot.
set -u
. "$(dirname "$0")/vm-lib.sh"
vm_require
vm_prepare || exit 1
vm_new_run || exit 1
vm_make_tree || exit 1

cli=$(vm_ext4_image cli 300M) || exit 1
ade=$VM_RUN/ade.img
cp --sparse=always "$cli" "$ade" || exit 1
vm_run "$(dirname "$0")/guest/online-ext4.sh" "$cli:cli-data" "$ade:ade-data"
rc=$?
echo "# figure vm-seconds $VM_SECONDS s"
if [ $rc -eq 0 ]; then
        # Stock tools on the host judge what the guest left: cli.img encrypted; ade.img encrypted,
        # then disabled online, so plain ext4 again with no LUKS header.
        if cryptsetup isLuks --type luks2 "$cli"; then
                echo "ok - host: cli.img carries a LUKS2 header"
        else
                echo "not ok - host: cli.img carries no LUKS2 header"
                rc=1
        fi
        if ! cryptsetup isLuks "$ade" && e2fsck -fn "$ade" >/dev/null 2>&1; then
                echo "ok - host: ade.img is a clean plain ext4 again after the online disable"
        else
                echo "not ok - host: ade.img is not a clean plain ext4 after the online disable"
                rc=1
        fi
fi
exit $rc
