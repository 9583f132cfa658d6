#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-online.sh, in a VM with device-mapper. /dev/vda is a 300 MiB ext4 data
# disk, mounted like a data disk in use. The Azure emulator and aded run here; "adectl enable" must
# encrypt it online: unmount, header, activate, mount again from /dev/mapper, encrypt underneath,
# with files written meanwhile; Show says unlocked with its mapper during the job and Encrypted
# after, and every file is intact. First, while a process keeps the mount point busy, enable fails
# with a message naming it and that process.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"
. "$top_srcdir/tests/vm/guest/online-lib.sh"

. "$top_srcdir/tests/daemon/guest/aded-lib.sh"
check "Show: the mounted volume is NotEncrypted" sh -c "'$b/tools/adectl' show --json | grep -q NotEncrypted"
check "the dry run plans an online encryption" sh -c "'$b/tools/adectl' enable --volume-type DATA --dry-run | grep -q online"

# A process keeps the mount point busy (its working folder is there): the unmount is tried for a
# bounded time, then enable fails naming the mount point and the process, not with the generic
# "encrypting /dev/vda failed: Device or resource busy" (issue 11 item 9); the volume stays mounted
# and plain, and the enable below, once the process is gone, carries on.
(cd /mnt/data && exec sleep 600) &
holder=$!
for _ in $(seq 1 100); do [ "$(readlink /proc/$holder/cwd)" = /mnt/data ] && break; sleep 0.1; done
check "a process keeps /mnt/data busy" test "$(readlink /proc/$holder/cwd)" = /mnt/data
"$b/tools/adectl" enable --volume-type DATA >"$w/enable-busy.out" 2>&1
rc=$?
sed 's/^/# /' "$w/enable-busy.out" | tail -n 2
check "busy: enable fails" test $rc -ne 0
check "busy: the message names the mount point" grep -q "from /mnt/data to encrypt it online" "$w/enable-busy.out"
check "busy: the message names the process holding it" grep -q "pid $holder (sleep)" "$w/enable-busy.out"
check_fails "busy: the generic message does not replace it" grep -q "encrypting $dev failed" "$w/enable-busy.out"
check "busy: /mnt/data is still mounted from $dev" sh -c "findmnt -n -o SOURCE /mnt/data | grep -qx $dev"
check_fails "busy: no LUKS header was written" cryptsetup isLuks $dev
kill $holder
wait $holder 2>/dev/null

"$b/tools/adectl" enable --volume-type DATA >"$w/enable.out" 2>&1 &
enable=$!
# Files written while it runs, once the volume is back from the mapper.
for _ in $(seq 1 600); do findmnt -n -o SOURCE /mnt/data | grep -q mapper && break; sleep 0.1; done
# Show while the job runs (its worker frozen, so that it certainly still runs): the volume is open on
# its mapper and mounted from there, so Show says unlocked, with the mapper.
worker=""
for _ in $(seq 1 600); do
        worker=$(pgrep -f -- "--reencrypt-worker resume $dev" | head -n 1)
        [ -n "$worker" ] && break
        sleep 0.1
done
check "the reencryption worker is at work" test -n "$worker"
[ -n "$worker" ] && kill -STOP "$worker"
"$b/tools/adectl" show --json >"$w/show-during.json"
[ -n "$worker" ] && kill -CONT "$worker"
check "Show during the job: EncryptionInProgress" grep -q '"state":"EncryptionInProgress"' "$w/show-during.json"
check "Show during the job: unlocked, with its mapper" \
        grep -q '"unlocked":true,"mapper":"/dev/mapper/ade-' "$w/show-during.json"
background_io /mnt/data aded $enable
wait $enable
rc=$?
check "adectl enable exits 0" test $rc -eq 0
cat "$w/enable.out" | tail -n 5 | sed 's/^/# /'
check "/mnt/data is mounted from /dev/mapper" sh -c "findmnt -n -o SOURCE /mnt/data | grep -q '^/dev/mapper/ade-'"
"$b/tools/adectl" show --json >"$w/show.json"
check "Show: Encrypted" grep -q '"state":"Encrypted"' "$w/show.json"
check "Show: unlocked, with its mapper" grep -q '"unlocked":true,"mapper":"/dev/mapper/ade-' "$w/show.json"
check "the device carries a LUKS2 header" cryptsetup isLuks --type luks2 $dev
check "every file is intact, those written during the encryption too" verify_tree /mnt/data aded
check "the plaintext marker is gone from the disk" sh -c "! grep -qa ADE-VM-PLAINTEXT-MARKER $dev"
sed 's/^/# aded: /' "$w/aded.log" | tail -n 8
umount /mnt/data
dmsetup remove_all 2>/dev/null
done_checks
