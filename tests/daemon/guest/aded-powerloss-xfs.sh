#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-powerloss-xfs.sh, one script for its two boots ($PL_BOOT). aded's state
# folder, header-dir, log and the emulator's vault are on the persistent disk /dev/vda (mounted on
# $WORK); the XFS data disk /dev/vdb is mounted on $WORK/data-xfs (a folder of that disk, so that
# the mount point outlives the cut) with options of its own.
#  1. "adectl enable" encrypts the mounted XFS disk online, its header detached in header-dir,
#     while fsync'd files are written; at 30 % the guest prints the cut line and the host kills QEMU.
#  2. A fresh boot: aded resumes by itself, opens the volume with the detached header, mounts it
#     again where it was with its options and finishes: Encrypted, no header on the disk, every file
#     of the tree and every fsync'd file intact, xfs_repair -n clean.
. "$top_srcdir/tests/vm/guest/unlock-lib.sh"
. "$top_srcdir/tests/daemon/guest/aded-vm-lib.sh"

# aded-vm-lib.sh's writer and checks work on $EXT4_MNT: here it is the XFS disk's mount point.
EXT4_MNT=$WORK/data-xfs
# Not the defaults: they must come back with the volume.
OPTIONS=noatime,nodev,nosuid

powerloss_start

# with_options: what is mounted on $EXT4_MNT has every option of $OPTIONS.
with_options() {
        local have o
        have=,$(findmnt -n -o OPTIONS "$EXT4_MNT"),
        for o in ${OPTIONS//,/ }; do
                case $have in
                *",$o,"*) ;;
                *)
                        echo "$EXT4_MNT is mounted with ${have:1:-1}, without $o"
                        return 1
                        ;;
                esac
        done
}

if [ "$PL_BOOT" = 1 ]; then
        require "xfs: filled with the tree" sh -c "mkdir -p $EXT4_MNT && mount $dev $EXT4_MNT && cp -a '$ADE_VM_RUN/tree/.' $EXT4_MNT/ && umount $EXT4_MNT"
        require "the plaintext marker is on the disk before encryption" marker_on $dev
        require "xfs: mounted on $EXT4_MNT with $OPTIONS" mount -o "$OPTIONS" $dev "$EXT4_MNT"
        require "xfs: its files match the manifest" verify_tree "$EXT4_MNT"
        : >"$SUMS"
        require "aded starts" start_aded
        require "adectl enable --no-wait starts the job" adectl enable --volume-type DATA --no-wait
        require "the volume is mounted again on $EXT4_MNT, from the mapper" within 120 mounted_back
        check "... with its options ($OPTIONS)" with_options
        check "the header is detached: the disk carries none" sh -c "! cryptsetup isLuks $dev"
        encryption_cut_at 0.3
fi

encryption_resumed
check "the volume is mounted again with its options ($OPTIONS)" with_options
encryption_finishes two
check "still mounted with its options ($OPTIONS)" with_options
check "the disk itself carries no LUKS header (detached)" sh -c "! cryptsetup isLuks $dev"
check "Show: the header is detached" test "$(volume_field $dev header)" = Detached
header=$(find "$WORK/headers" -name '*.header' | head -n1)
check "the header is a file in header-dir" test -f "$header"
check "... a LUKS2 header whose reencryption finished" sh -c "cryptsetup isLuks --type luks2 '$header' && ! cryptsetup luksDump '$header' | grep -q online-reencrypt"
encrypted_and_clean xfs_repair -n
require "aded and the emulator stop; the state disk is unmounted" stop_all
done_checks
