#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-unlock.sh, after a fresh boot: nothing is open; aded unlocks both disks with the
# keys resolved through their tokens and the emulator's reloaded vault.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"

require "state disk: mount" sh -c "mkdir -p $WORK && mount /dev/vda $WORK"
check "fresh boot: no mapping is open" test -z "$(ls /dev/mapper | grep -v control)"
require "the emulator starts again with its saved vault" start_emulator_fixed
write_config
require "aded starts" start_aded
check "ext4 disk: still Encrypted after the reboot" test "$(volume_field /dev/vdb state)" = Encrypted
check "xfs disk: still Encrypted after the reboot" test "$(volume_field /dev/vdc state)" = Encrypted
require "adectl unlock" adectl unlock
adectl show --json | jq -c '.volumes[] | {device, state, header, unlocked, mapper}' | sed 's/^/# boot 2: /'
check "ext4 disk: unlocked" test "$(volume_field /dev/vdb unlocked)" = true
check "xfs disk: unlocked" test "$(volume_field /dev/vdc unlocked)" = true
mkdir -p /mnt/ext4 /mnt/xfs
ext4_mapper=$(volume_field /dev/vdb mapper)
xfs_mapper=$(volume_field /dev/vdc mapper)
require "ext4 disk: mount its mapper ($ext4_mapper)" mount -o ro "$ext4_mapper" /mnt/ext4
check "ext4 disk: every file is identical" verify_tree /mnt/ext4
require "xfs disk: mount its mapper ($xfs_mapper)" mount -o ro "$xfs_mapper" /mnt/xfs
check "xfs disk: every file is identical" verify_tree /mnt/xfs
umount /mnt/ext4 /mnt/xfs
stop_all
done_checks
