#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-unlock.sh, after a fresh boot: nothing is open; aded unlocks both disks with the
# keys resolved through their tokens and the emulator's reloaded vault, and mounts the ext4 one where
# it was before the reboot (with its options), and the XFS one nowhere (it had no mount point). Then
# the ext4 disk's mount point goes missing, then busy: Unlock leaves the volume open and says why,
# and mounts it once the mount point is free again.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"

require "state disk: mount" sh -c "mkdir -p $WORK && mount /dev/vda $WORK"
check "fresh boot: no mapping is open" test -z "$(ls /dev/mapper | grep -v control)"
check "fresh boot: the ext4 disk's mount point $EXT4_MNT is there and empty" sh -c "test -d $EXT4_MNT && ! mountpoint -q $EXT4_MNT && test -z \"\$(ls -A $EXT4_MNT)\""
require "the emulator starts again with its saved vault" start_emulator_fixed
write_config
require "aded starts" start_aded
check "ext4 disk: still Encrypted after the reboot" test "$(volume_field /dev/vdb state)" = Encrypted
check "xfs disk: still Encrypted after the reboot" test "$(volume_field /dev/vdc state)" = Encrypted
require "adectl unlock" sh -c "'$ADECTL' unlock >/tmp/unlock.out 2>&1"
sed 's/^/# unlock: /' /tmp/unlock.out
adectl show --json | jq -c '.volumes[] | {device, state, header, unlocked, mapper, mountpoint}' | sed 's/^/# boot 2: /'
check "ext4 disk: unlocked" test "$(volume_field /dev/vdb unlocked)" = true
check "xfs disk: unlocked" test "$(volume_field /dev/vdc unlocked)" = true
ext4_mapper=$(volume_field /dev/vdb mapper)
xfs_mapper=$(volume_field /dev/vdc mapper)
check "ext4 disk: mounted again where it was, $EXT4_MNT, from $ext4_mapper" mounted_from "$EXT4_MNT" "$ext4_mapper"
check "ext4 disk: with the options it had (noatime, nodev)" sh -c "findmnt -n -o OPTIONS $EXT4_MNT | tr , '\n' | grep -qx noatime && findmnt -n -o OPTIONS $EXT4_MNT | tr , '\n' | grep -qx nodev"
check "ext4 disk: every file is identical" verify_tree "$EXT4_MNT"
check "ext4 disk: the file written before the reboot is there, identical" sh -c "cd $EXT4_MNT && sha256sum -c --strict $WORK/before-reboot.sha256"
check "xfs disk: open but mounted nowhere (no mount point was recorded for it)" mounted_nowhere "$xfs_mapper"
mkdir -p /mnt/xfs
require "xfs disk: mount its mapper ($xfs_mapper)" mount -o ro "$xfs_mapper" /mnt/xfs
check "xfs disk: every file is identical" verify_tree /mnt/xfs
umount /mnt/xfs

# The mount point is gone: the volume stays open, and Unlock says why, naming the mapper and the path.
require "ext4 disk: unmounted, its mount point removed" sh -c "umount $EXT4_MNT && rmdir $EXT4_MNT"
adectl unlock >/tmp/unlock.out 2>&1
rc=$?
sed 's/^/# unlock: /' /tmp/unlock.out
check "mount point missing: adectl unlock exits 0" test $rc -eq 0
check "mount point missing: unlock says so, naming $ext4_mapper and $EXT4_MNT" sh -c "grep -F '$ext4_mapper' /tmp/unlock.out | grep -F '$EXT4_MNT does not exist'"
check "mount point missing: the volume stays open" test "$(volume_field /dev/vdb unlocked)" = true
check "mount point missing: nothing is mounted from it" mounted_nowhere "$ext4_mapper"
check "mount point missing: aded's log says why" grep -qF "$EXT4_MNT does not exist" "$WORK/aded.log"

# Something else is mounted there: left alone, and Unlock says it is busy.
require "a tmpfs takes $EXT4_MNT" sh -c "mkdir $EXT4_MNT && mount -t tmpfs busy $EXT4_MNT"
adectl unlock >/tmp/unlock.out 2>&1
rc=$?
sed 's/^/# unlock: /' /tmp/unlock.out
check "mount point busy: adectl unlock exits 0" test $rc -eq 0
check "mount point busy: unlock says so, naming $EXT4_MNT" grep -qF "$EXT4_MNT is busy" /tmp/unlock.out
check "mount point busy: the tmpfs is still there, on top" test "$(findmnt -n -o FSTYPE $EXT4_MNT)" = tmpfs
check "mount point busy: nothing is mounted from the volume" mounted_nowhere "$ext4_mapper"
umount "$EXT4_MNT"

# Free again: Unlock mounts the open volume.
require "adectl unlock, the mount point free again" sh -c "'$ADECTL' unlock >/tmp/unlock.out 2>&1"
sed 's/^/# unlock: /' /tmp/unlock.out
check "ext4 disk: mounted on $EXT4_MNT by the second unlock" mounted_from "$EXT4_MNT" "$ext4_mapper"
check "ext4 disk: every file is identical, the one written before the reboot too" sh -c "cd $EXT4_MNT && sha256sum -c --quiet --strict $ADE_VM_RUN/manifest && sha256sum -c --strict $WORK/before-reboot.sha256"
adectl unlock >/tmp/unlock.out 2>&1
check "a third unlock has nothing left to do" grep -q "No locked volume to open" /tmp/unlock.out
umount "$EXT4_MNT"
stop_all
done_checks
