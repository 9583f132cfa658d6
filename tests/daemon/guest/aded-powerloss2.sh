#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-powerloss2.sh, one script for its two boots ($PL_BOOT); the disks are laid
# out as in aded-powerloss.sh (state, header-dir and log on /dev/vda mounted on $WORK, the ext4 data
# disk /dev/vdb mounted on $WORK/data-ext4).
#  1. "adectl enable" encrypts the mounted disk online; once Encrypted, "adectl disable" decrypts it
#     online, still mounted, while fsync'd files are written; at 30 % of the decryption the guest
#     prints the cut line and the host kills QEMU.
#  2. A fresh boot: aded resumes the decryption by itself, mounts the volume again where it was and
#     finishes: NotEncrypted, no LUKS header, the plain filesystem clean and every file intact.
#     Then aded stops, and the state file taken during the decryption is put back, as a cut right
#     after the end of the reencryption would leave it: aded started again mounts the plain disk
#     where it was and drops the record.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"
. "$top_srcdir/tests/daemon/guest/aded-vm-lib.sh"

powerloss_start

state_is() {
        test "$(volume_field "$dev" state)" = "$1"
}
# decryption_at FRACTION: a decryption runs and has done FRACTION of the volume.
decryption_at() {
        "$ADECTL" show --json | jq -e --arg d "$dev" --argjson f "$1" \
                '.volumes[] | select(.device == $d) | select((.bytesTotal // 0) > 0 and .bytesDone / .bytesTotal >= $f) | select(.state | test("Decrypt"))' >/dev/null
}
# on_mount: something is mounted on $EXT4_MNT whose files are the volume's.
on_mount() {
        mountpoint -q "$EXT4_MNT" && [ -f "$EXT4_MNT/marker.txt" ]
}

if [ "$PL_BOOT" = 1 ]; then
        require "ext4: mounted on $EXT4_MNT" sh -c "mkdir -p $EXT4_MNT && mount $dev $EXT4_MNT"
        : >"$SUMS"
        require "aded starts" start_aded
        require "adectl enable encrypts the mounted volume online" adectl enable --volume-type DATA
        require "Show: Encrypted" within 600 encrypted
        require "mounted from the mapper on $EXT4_MNT" mounted_back
        require "adectl disable --no-wait starts the decryption" adectl disable --volume-type DATA --no-wait
        writer &
        require "the decryption reaches 30 %" within 900 decryption_at 0.3
        echo "# cut at $(progress) of the volume ($(volume_field $dev state)), $(wc -l <"$SUMS") fsync'd files written"
        echo ADE-VM-CUT
        sleep 1000
fi

check "fresh boot after the cut: nothing is open" test -z "$(ls /dev/mapper | grep -v control)"
check "fresh boot after the cut: nothing is mounted on $EXT4_MNT" sh -c "! mountpoint -q $EXT4_MNT"
require "aded starts" start_aded
check "aded resumes the decryption by itself" within 300 logged 'resuming the decryption'
# The state file while the decryption runs, for the last part below.
cp "$WORK/state/state.json" "$WORK/state.during"
check "the volume is mounted again where it was ($EXT4_MNT)" within 300 on_mount
check "every file fsync'd before the cut is intact" fsynced_intact
on_mount && writer &
wpid=$!
check "Show: NotEncrypted in the end" within 600 state_is NotEncrypted
kill $wpid 2>/dev/null
wait $wpid 2>/dev/null
echo "# $(wc -l <"$SUMS") fsync'd files written over the two boots"
grep -av "varlink: call" "$WORK/aded.log" | grep -ai -e resum -e mount -e error -e fail | tail -n 20 | sed 's/^/# aded: /'
check "still mounted where it was ($EXT4_MNT)" on_mount
check "every file of the tree is intact" tree_intact
check "every fsync'd file of the two boots is intact, byte for byte" fsynced_intact
check "no worker is left" sh -c "! pgrep -f -- '--reencrypt-worke[r]'"
check "no device-mapper helper is left" sh -c "! dmsetup ls | grep -q -e -hotzone -e -overlay"
check "the device carries no LUKS header" sh -c "! cryptsetup isLuks $dev"
check "no exported header is left in header-dir" sh -c "! find $WORK -name '*.decrypt-header' | grep -q ."
{ dmsetup ls; findmnt -n "$EXT4_MNT"; } 2>&1 | sed 's/^/#   after: /'
umount "$EXT4_MNT"
for m in /dev/mapper/ade-*; do [ -e "$m" ] && dmsetup remove "${m##*/}"; done
drop_caches
check "the plaintext is back on the disk" marker_on $dev
check "e2fsck -fn on the plain disk is clean" e2fsck -fn $dev

# A power cut after the reencryption ended but before the state file said so: the disk is plain,
# nothing is open nor mounted, and the state file still holds the decryption's record (the copy
# taken while it ran). At start aded finds the volume plain: it mounts it where the record says
# and drops the record.
require "aded stops" stop_aded
require "the state file of a cut at the end of the decryption" cp "$WORK/state.during" "$WORK/state/state.json"
check "... it holds the decryption's record" \
        jq -e --arg d $dev '.volumes[] | select(.device == $d and .job == "decrypt" and .mountPoint != null)' "$WORK/state/state.json"
check "... nothing is mounted on $EXT4_MNT" sh -c "! mountpoint -q $EXT4_MNT"
require "aded starts" start_aded
check "aded mounts the plain disk where it was ($EXT4_MNT)" within 120 mounted_from "$EXT4_MNT" $dev
check "... every file of the tree is intact" tree_intact
check "... every fsync'd file is intact" fsynced_intact
record_gone() {
        ! jq -e --arg d $dev '.volumes[] | select(.device == $d)' "$WORK/state/state.json" >/dev/null
}
check "the record is gone" within 60 record_gone
check "Show: NotEncrypted" state_is NotEncrypted
grep -av "varlink: call" "$WORK/aded.log" | tail -n 5 | sed 's/^/# aded: /'
umount "$EXT4_MNT"
require "aded and the emulator stop; the state disk is unmounted" stop_all
done_checks
