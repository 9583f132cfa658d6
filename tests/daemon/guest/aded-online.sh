#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-online.sh, in a VM with device-mapper. /dev/vda is a 300 MiB ext4 data
# disk, mounted like a data disk in use. The Azure emulator and aded run here; "adectl enable" must
# encrypt it online: unmount, header, activate, mount again from /dev/mapper, encrypt underneath,
# with files written meanwhile; Show says unlocked with its mapper during the job and Encrypted
# after, and every file is intact.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"
. "$top_srcdir/tests/vm/guest/online-lib.sh"

. "$top_srcdir/tests/daemon/guest/aded-lib.sh"
check "Show: the mounted volume is NotEncrypted" sh -c "'$b/tools/adectl' show --json | grep -q NotEncrypted"
check "the dry run plans an online encryption" sh -c "'$b/tools/adectl' enable --volume-type DATA --dry-run | grep -q online"

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
