#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-unlock.sh, first boot: aded encrypts both data disks through the emulator.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"

require "state disk: format and mount" sh -c "mkfs.ext4 -q /dev/vda && mkdir -p $WORK && mount /dev/vda $WORK"
mkdir -p /mnt/xfs
require "xfs: fill the XFS disk with the tree" sh -c "mount /dev/vdc /mnt/xfs && cp -a '$ADE_VM_RUN/tree/.' /mnt/xfs/ && umount /mnt/xfs"
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
adectl show --json | jq -c '.volumes[] | {device, state, header, unlocked, mapper}' | sed 's/^/# boot 1: /'
# Whatever aded left open is closed: the next boot must start from locked disks.
for m in /dev/mapper/ade-*; do [ -e "$m" ] && cryptsetup close "${m##*/}"; done
require "aded and the emulator stop; the state disk is unmounted" stop_all
done_checks
