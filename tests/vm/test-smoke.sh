#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Boots the VM once and proves dm-crypt there with stock cryptsetup on a 300 MiB virtio disk
# (guest/smoke.sh). Also the harness's own figures: boot time and whole VM time.
set -u
. "$(dirname "$0")/vm-lib.sh"
vm_require
vm_prepare || exit 1
vm_new_run || exit 1

disk=$(vm_image smoke-data 300M) || exit 1
vm_run "$(dirname "$0")/guest/smoke.sh" "$disk:smoke-data"
rc=$?
echo "# figure vm-seconds $VM_SECONDS s"
# The host judges the image too: what the guest wrote is a LUKS2 header stock cryptsetup reads.
if [ $rc -eq 0 ]; then
        if cryptsetup isLuks --type luks2 "$disk"; then
                echo "ok - host: the image carries a LUKS2 header"
        else
                echo "not ok - host: the image carries no LUKS2 header"
                rc=1
        fi
fi
exit $rc
