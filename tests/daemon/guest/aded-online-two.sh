#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-two.sh, in a VM with device-mapper: /dev/vda is an ext4 data disk (its
# header goes in front, data shifted) and /dev/vdb an XFS one (detached header in header-dir), both
# mounted like data disks in use. One "adectl enable --volume-type DATA" runs both jobs at once,
# online; both must end Encrypted, unlocked and mounted again from their mappers with every file
# intact. Two concurrent jobs once failed the detached one with libcryptsetup's "Detected attempt for
# concurrent LUKS2 metadata update".
. "$top_srcdir/tests/vm/guest/guest-lib.sh"
. "$top_srcdir/tests/vm/guest/online-lib.sh"
. "$top_srcdir/tests/daemon/daemon-lib.sh"
set +o pipefail

WORK=/tmp/aded
XFS_ONLINE=${ADE_TWO_XFS_ONLINE:-yes}
LOOPS=(/dev/vda /dev/vdb)
mkdir -p "$WORK" /mnt/ext4 /mnt/xfs
# aded's folders (header-dir, state) on a disk, as on a real machine: not on tmpfs, where
# libcryptsetup cannot use O_DIRECT.
require "state disk: format and mount on $WORK" sh -c "mkfs.ext4 -q /dev/vdc && mount /dev/vdc $WORK"
# aded with debug messages: libcryptsetup's own go to the log too, for a post-mortem.
printf '#!/bin/sh\nexec %s --log-level debug "$@"\n' "$ADED" >/tmp/aded-debug
chmod +x /tmp/aded-debug
ADED=/tmp/aded-debug

require "ext4: mounted on /mnt/ext4" mount /dev/vda /mnt/ext4
require "xfs: filled with the tree" sh -c "mount /dev/vdb /mnt/xfs && cp -a '$ADE_VM_RUN/tree/.' /mnt/xfs/ && umount /mnt/xfs"
[ "$XFS_ONLINE" = no ] || require "xfs: mounted on /mnt/xfs" mount /dev/vdb /mnt/xfs
require "the emulator is ready" start_emulator
write_config
require "aded starts" start_aded
check "both volumes NotEncrypted before enable" test "$(volume_field /dev/vda state) $(volume_field /dev/vdb state)" = "NotEncrypted NotEncrypted"

check "adectl enable --volume-type DATA: both jobs at once" adectl enable --volume-type DATA
check "ext4 disk: Encrypted" test "$(volume_field /dev/vda state)" = Encrypted
check "xfs disk: Encrypted" test "$(volume_field /dev/vdb state)" = Encrypted
check "ext4 disk: unlocked" test "$(volume_field /dev/vda unlocked)" = true
[ "$XFS_ONLINE" = no ] || check "xfs disk: unlocked" test "$(volume_field /dev/vdb unlocked)" = true
check "ext4 disk: header attached" cryptsetup isLuks --type luks2 /dev/vda
check_fails "xfs disk: no header on the disk (detached)" cryptsetup isLuks /dev/vdb
check "ext4 disk: mounted again from its mapper" sh -c "findmnt -n -o SOURCE /mnt/ext4 | grep -q '^/dev/mapper/ade-'"
[ "$XFS_ONLINE" = no ] || check "xfs disk: mounted again from its mapper" sh -c "findmnt -n -o SOURCE /mnt/xfs | grep -q '^/dev/mapper/ade-'"
check "ext4 disk: every file is intact" verify_tree /mnt/ext4
[ "$XFS_ONLINE" = no ] || check "xfs disk: every file is intact" verify_tree /mnt/xfs
check_fails "no concurrent LUKS2 metadata update in aded's log" grep -i "concurrent LUKS2 metadata" "$WORK/aded.log"
adectl show --json | jq -c '.volumes[] | {device, state, header, unlocked, error}' | sed 's/^/# /'
grep -i "libcryptsetup: .*\(concurrent\|fail\|error\)\|error\|fail" "$WORK/aded.log" | grep -v "varlink: call" | tail -n 30 | sed 's/^/# aded: /'
umount /mnt/ext4
[ "$XFS_ONLINE" = no ] || umount /mnt/xfs
stop_aded
kill "$EMU_PID" 2>/dev/null
dmsetup remove_all 2>/dev/null
done_checks
