#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-eio.sh: aded's state folder and header-dir are on a filesystem (ext4
# without a journal, errors=continue, as a disk that fails and comes back leaves it usable) on a
# device-mapper linear target over the persistent disk /dev/vda. In the middle of the online
# encryption of the mounted ext4 disk /dev/vdb the target's table becomes "error": every read and
# write of the state disk fails with EIO. The job ends Failed with a message naming the device,
# the first file it could not write there (crypttab, beside the state folder, today) and
# "Input/output error", never a generic one; the mounted volume keeps working and every file stays
# intact. The table back to linear and the state disk's filesystem checked and mounted again (ext4
# keeps failing fsync after a writeback error until then), aded started again finishes: Encrypted.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"
. "$top_srcdir/tests/daemon/guest/aded-vm-lib.sh"

LOOPS=(/dev/vdb)
dev=/dev/vdb
SUMS=/tmp/fsynced.sha256
WRITER_TAG=eio
sectors=$(blockdev --getsz /dev/vda)

# table linear|error: the state disk's target, swapped under the mounted filesystem.
table() {
        local t="0 $sectors linear /dev/vda 0"
        [ "$1" = error ] && t="0 $sectors error"
        # Neither a freeze nor a flush: both fail on a disk that returns EIO.
        dmsetup suspend --nolockfs --noflush ade-test-state && dmsetup load ade-test-state --table "$t" &&
                dmsetup resume ade-test-state
}

# No udev here: dmsetup makes the node itself when asked.
require "the state disk behind a linear target" sh -c "dmsetup create ade-test-state --table '0 $sectors linear /dev/vda 0' && dmsetup mknodes ade-test-state && test -b /dev/mapper/ade-test-state"
require "its filesystem: ext4 without a journal" mkfs.ext4 -q -O ^has_journal /dev/mapper/ade-test-state
require "mounted on $WORK (errors=continue)" sh -c "mkdir -p $WORK && mount -o errors=continue /dev/mapper/ade-test-state $WORK"
require "ext4: mounted on $EXT4_MNT" sh -c "mkdir -p $EXT4_MNT && mount $dev $EXT4_MNT"
: >"$SUMS"
require "the emulator starts on 127.0.0.1:$HTTPS_PORT" start_emulator_fixed
write_config
require "aded starts" start_aded
require "adectl enable --no-wait starts the job" adectl enable --volume-type DATA --no-wait
require "the volume is mounted again on $EXT4_MNT, from the mapper" within 120 mounted_back
writer &
wpid=$!
require "the encryption is under way" wait_progress 0.1 600
require "the state disk fails: its table is now 'error'" table error
check "the state disk returns EIO" sh -c "! dd if=/dev/mapper/ade-test-state of=/dev/null bs=4096 count=1 iflag=direct 2>/tmp/dd.err; grep -q 'Input/output error' /tmp/dd.err"

failed() {
        test "$(volume_field $dev state)" = Failed
}
check "Show: the job ends Failed" within 600 failed
"$ADECTL" show --json | jq -c '.volumes[] | {device, state, message, mapper}' | sed 's/^/# show: /'
message=$(volume_field $dev message)
echo "# message: $message"
check "the message names the device" sh -c "echo '$message' | grep -qF $dev"
check "... and the file on the failing disk" sh -c "echo '$message' | grep -qF $WORK/"
check "... and says Input/output error" sh -c "echo '$message' | grep -qF 'Input/output error'"
check "adectl show says so too" sh -c "'$ADECTL' show | grep -F 'Input/output error'"
check "the volume stays mounted from the mapper" mounted_back
check "every file of the tree is intact" tree_intact
check "every file fsync'd meanwhile is intact" fsynced_intact
check "no worker is left" within 120 sh -c "! pgrep -f -- '--reencrypt-worke[r]'"

kill $wpid 2>/dev/null
wait $wpid 2>/dev/null
require "the state disk is back: its table is linear again" table linear
# A filesystem that saw EIO keeps failing fsync until it is mounted again (ext4 keeps the writeback
# error): what a person does once the disk is back. The volume's mapping stays open meanwhile.
mapper=$(volume_field $dev mapper)
stop_aded
kill "$EMU_PID" && wait "$EMU_PID"
require "the state disk checked and mounted again" sh -c "umount $EXT4_MNT && umount $WORK &&
        { e2fsck -fy /dev/mapper/ade-test-state >/tmp/fsck.out 2>&1; [ \$? -lt 4 ]; } &&
        mount -o errors=continue /dev/mapper/ade-test-state $WORK && mount $mapper $EXT4_MNT"
require "the emulator starts again" start_emulator_fixed
require "aded starts again" start_aded
check "aded finishes the job: Encrypted" within 600 encrypted
check "Show: no error left" test "$(volume_field $dev message)" = null
echo "# $(wc -l <"$SUMS") fsync'd files written"
check "still mounted from the mapper" mounted_back
check "every file of the tree is intact" tree_intact
check "every fsync'd file is intact, byte for byte" fsynced_intact
check "the device carries a LUKS2 header" cryptsetup isLuks --type luks2 $dev
check "the plaintext marker is gone from the disk" sh -c "! grep -qa ADE-VM-PLAINTEXT-MARKER $dev"
grep -av "varlink: call" "$WORK/aded.log" | grep -ai -e "input/output" -e resum | tail -n 10 | sed 's/^/# aded: /'
umount "$EXT4_MNT"
for m in /dev/mapper/ade-*; do [ -e "$m" ] && cryptsetup close "${m##*/}"; done
stop_all
dmsetup remove ade-test-state
done_checks
