#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-powerloss.sh, one script for its three boots ($PL_BOOT). aded's state
# folder, header-dir, log and the emulator's vault are on the persistent disk /dev/vda (mounted on
# $WORK, as /var/lib/ade is on a root disk); the ext4 data disk /dev/vdb is mounted on
# $WORK/data-ext4 (a folder of that disk, so the mount point outlives the cuts).
#  1. "adectl enable" encrypts the mounted disk online while files are written, each fsync'd (the
#     file and its folder) before its checksum is appended to $WORK/fsynced.sha256 (fsync'd too);
#     at 30 % the guest prints the cut line and the host kills QEMU.
#  2. A fresh boot: aded resumes by itself, mounts the volume again where it was, the fsync'd files
#     are read and more written; at 50 % the host cuts again (a resume of a resume).
#  3. A fresh boot: aded resumes and finishes; the volume is Encrypted, mounted where it was, and
#     every file of the tree and every fsync'd file is intact byte for byte. Then, closed again:
#     an Unlock while Key Vault's connections are dropped fails with nothing opened, and succeeds
#     once they are not; an Unlock held at its key fetch (Key Vault
#     answering nothing) makes a Disable meanwhile fail with OperationInProgress.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"
. "$top_srcdir/tests/daemon/guest/aded-vm-lib.sh"

powerloss_start

if [ "$PL_BOOT" = 1 ]; then
        require "ext4: mounted on $EXT4_MNT" sh -c "mkdir -p $EXT4_MNT && mount $dev $EXT4_MNT"
        require "ext4: its files match the manifest" verify_tree "$EXT4_MNT"
        : >"$SUMS"
        require "aded starts" start_aded
        require "adectl enable --no-wait starts the job" adectl enable --volume-type DATA --no-wait
        require "the volume is mounted again on $EXT4_MNT, from the mapper" within 120 mounted_back
        encryption_cut_at 0.3
fi

encryption_resumed

if [ "$PL_BOOT" = 2 ]; then
        mounted_back && writer &
        # The encryption goes on meanwhile: the tree is read after the next cut, in boot 3.
        require "the resumed encryption reaches 50 %" wait_progress 0.5 900
        cut_line
fi

encryption_finishes three
check "the device carries a LUKS2 header" cryptsetup isLuks --type luks2 $dev
encrypted_and_clean e2fsck -fn

# Key Vault cut while an Unlock fetches the key: every connection to it closed without an answer.
require "Key Vault's connections are dropped from now on" emulator_fault '{"route": "keyvault", "drop": true, "count": 100000}'
"$ADECTL" unlock $dev >/tmp/unlock.out 2>&1
rc=$?
sed 's/^/# unlock: /' /tmp/unlock.out
check "Key Vault cut: adectl unlock $dev fails" test $rc -ne 0
check "... naming the device and the vault's URL, and saying Key Vault could not be reached" \
        grep -q "unlock of $dev failed: Key Vault at https://[^ ]* could not be reached" /tmp/unlock.out
check "... nothing is left half-opened" test -z "$(ls /dev/mapper | grep -v -e control -e ade-test-)"
check "... nothing is mounted on $EXT4_MNT" sh -c "! mountpoint -q $EXT4_MNT"
clear_faults() {
        curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null
}
require "Key Vault answers again" clear_faults
check "adectl unlock $dev: opened and mounted where it was" sh -c "'$ADECTL' unlock $dev >/tmp/unlock.out 2>&1"
sed 's/^/# unlock: /' /tmp/unlock.out
check "... from the mapper" mounted_back
check "... every file intact" fsynced_intact
umount "$EXT4_MNT"
for m in /dev/mapper/ade-*; do [ -e "$m" ] && cryptsetup close "${m##*/}"; done

# Unlock and Disable on the same volume: Unlock held at its key fetch (Key Vault accepts the call
# and does not answer), Disable meanwhile is refused; and never both.
require "Key Vault holds every request from now on" emulator_fault '{"route": "keyvault", "hang": true, "count": 100000}'
"$ADECTL" unlock $dev >/tmp/unlock.out 2>&1 &
upid=$!
held() {
        curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/faults" | jq -e '.held > 0' >/dev/null
}
require "the Unlock waits on Key Vault" within 120 held
"$ADECTL" disable --volume-type DATA >/tmp/disable.out 2>&1
rc=$?
sed 's/^/# disable: /' /tmp/disable.out
check "adectl disable during the Unlock fails" test $rc -ne 0
check "... saying another job is running (OperationInProgress)" grep -q "disable refused: another job is running" /tmp/disable.out
check "... and the volume stays Encrypted (nothing was decrypted)" encrypted
require "Key Vault answers again" clear_faults
wait $upid
rc=$?
sed 's/^/# unlock: /' /tmp/unlock.out
check "the held Unlock finishes" test $rc -eq 0
check "... mounted from the mapper" mounted_back
check "still Encrypted: the Disable never ran" encrypted
umount "$EXT4_MNT"
for m in /dev/mapper/ade-*; do [ -e "$m" ] && cryptsetup close "${m##*/}"; done
require "aded and the emulator stop; the state disk is unmounted" stop_all
done_checks
