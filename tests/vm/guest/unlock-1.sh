#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-unlock.sh, first boot: aded encrypts both data disks through the emulator: the
# ext4 one online (it is mounted, with noatime,nodev), the XFS one offline (not mounted). A file is
# written through the ext4 disk's mapper before the reboot.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"

require "state disk: format and mount" sh -c "mkfs.ext4 -q /dev/vda && mkdir -p $WORK && mount /dev/vda $WORK"
mkdir -p /mnt/xfs
require "xfs: fill the XFS disk with the tree" sh -c "mount /dev/vdc /mnt/xfs && cp -a '$ADE_VM_RUN/tree/.' /mnt/xfs/ && umount /mnt/xfs"
require "ext4: mounted on $EXT4_MNT (noatime,nodev), as a data disk in use" sh -c "mkdir -p $EXT4_MNT && mount -o noatime,nodev /dev/vdb $EXT4_MNT"
require "the emulator starts on 127.0.0.1:$HTTPS_PORT" start_emulator_fixed
# One disk per enable: two concurrent jobs in aded have failed here with libcryptsetup's "Detected
# attempt for concurrent LUKS2 metadata update" on the detached-header job (reported; see README).
LOOPS=(/dev/vdb)
write_config
require "aded starts" start_aded
check "ext4 disk: NotEncrypted before enable" test "$(volume_field /dev/vdb state)" = NotEncrypted
require "adectl enable --volume-type DATA (ext4 disk)" adectl enable --volume-type DATA
require "aded stops" stop_aded
LOOPS=(/dev/vdb /dev/vdc)
write_config
require "aded starts with both disks" start_aded
check "xfs disk: NotEncrypted before enable" test "$(volume_field /dev/vdc state)" = NotEncrypted
require "adectl enable --volume-type DATA (xfs disk; the ext4 one is done)" adectl enable --volume-type DATA
check "ext4 disk: Encrypted" test "$(volume_field /dev/vdb state)" = Encrypted
check "xfs disk: Encrypted" test "$(volume_field /dev/vdc state)" = Encrypted
check "ext4 disk: header attached" cryptsetup isLuks --type luks2 /dev/vdb
check_fails "xfs disk: header detached (none on the disk)" cryptsetup isLuks /dev/vdc
check "xfs disk: its header is in header-dir" sh -c "ls $WORK/headers/ | grep -q header"
ext4_mapper=$(volume_field /dev/vdb mapper)
check "ext4 disk: encrypted online, mounted again on $EXT4_MNT from $ext4_mapper" mounted_from "$EXT4_MNT" "$ext4_mapper"
record() {
        jq -r --arg d "$1" ".volumes[] | select(.device == \$d) | .$2" "$WORK/state/state.json"
}
check "the state file records the ext4 disk's mount point" test "$(record /dev/vdb mountPoint)" = "$EXT4_MNT"
check "... and its options" sh -c "echo '$(record /dev/vdb mountOptions)' | tr , '\n' | grep -qx noatime"
check "the state file records no mount point for the XFS disk (it was not mounted)" test "$(record /dev/vdc mountPoint)" = null
require "ext4 disk: a file written through the mapper before the reboot" sh -c "head -c 1M /dev/urandom >$EXT4_MNT/written-before-reboot && sync $EXT4_MNT/written-before-reboot && cd $EXT4_MNT && sha256sum written-before-reboot >$WORK/before-reboot.sha256"
adectl show --json | jq -c '.volumes[] | {device, state, header, unlocked, mapper}' | sed 's/^/# boot 1: /'
# Whatever aded left open is closed: the next boot must start from locked disks.
umount "$EXT4_MNT"
for m in /dev/mapper/ade-*; do [ -e "$m" ] && cryptsetup close "${m##*/}"; done
require "aded and the emulator stop; the state disk is unmounted" stop_all
done_checks
