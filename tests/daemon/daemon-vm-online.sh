#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded's online encryption where device-mapper exists: in a QEMU guest (tests/vm's harness), a mounted
# ext4 data disk is encrypted through "adectl enable" while files are written to it
# (guest/aded-online.sh). Skips (77) like the other VM tests: no root, no qemu, ADE_HEAVY_TESTS=no,
# or no kernel package.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/vm-lib.sh"
vm_require
vm_require_built daemon/aded tools/adectl tests/emulator/ade-emulator
vm_prepare || exit 1
vm_new_run || exit 1
vm_make_tree || exit 1
img=$(vm_ext4_image data 300M) || exit 1
# daemon-vm-kill9.sh runs this with another guest script.
vm_run "$(dirname "$0")/guest/${ADE_VM_GUEST:-aded-online.sh}" "$img:data" >"$VM_RUN/result"
rc=$?
cat "$VM_RUN/result"
echo "# figure vm-seconds $VM_SECONDS s"
if [ $rc -eq 0 ]; then
        if cryptsetup isLuks --type luks2 "$img"; then
                echo "ok - host: stock cryptsetup finds the LUKS2 header the guest's aded wrote" | tee -a "$VM_RUN/result"
        else
                echo "not ok - host: the image carries no LUKS2 header" | tee -a "$VM_RUN/result"
                rc=1
        fi
fi
vm_check_summary "$VM_RUN/result" $rc
exit $rc
