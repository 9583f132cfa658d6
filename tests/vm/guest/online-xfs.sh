#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-online-xfs.sh. /dev/vda is an empty 320 MiB XFS disk: filled from the tree,
# then encrypted online by ade's engine (tests/vm/ade-vm-online) with a detached header: unmount,
# header in header-dir, activate, mount from /dev/mapper at the first progress report, reencrypt
# in the background while files are read and written. With ADE_VM_XFS_KILL=yes (the reproducer
# xfail-online-xfs-kill.sh) the engine is killed with -9 midway instead, as a crash of aded would
# kill it, and resumed with the active name.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"
. "$top_srcdir/tests/vm/guest/online-lib.sh"

dev=/dev/vda
tool=$top_builddir/tests/vm/ade-vm-online
mkdir -p /mnt/xfs /tmp/ade-headers
make_keyfile /tmp/key

require "ade's online driver is built" test -x "$tool"
require "xfs: mount the empty XFS data disk" mount $dev /mnt/xfs
require "xfs: fill it with the tree" cp -a "$ADE_VM_RUN/tree/." /mnt/xfs/
require "xfs: its files match the manifest" verify_tree /mnt/xfs
require "xfs: unmount to flush" umount /mnt/xfs
require "the plaintext marker is on the disk before encryption" marker_on $dev
require "xfs: mount it again, in use" mount $dev /mnt/xfs

t0=$(now)
echo "# xfs: unmounting at $t0 (uptime)"
require "xfs: unmount" umount /mnt/xfs
"$tool" --debug --header-dir /tmp/ade-headers --mount /mnt/xfs --fstype xfs encrypt $dev /tmp/key ade-xfs >/tmp/xfs.log 2>&1 &
pid=$!
require "xfs: initialised, activated and mounted from /dev/mapper/ade-xfs" wait_for_line /tmp/xfs.log mounted $pid
t1=$(now)
echo "# xfs: mounted at $t1"
figure xfs-downtime "$(elapsed "$t0" "$t1")" s
sed -n '1,/^mounted$/p' /tmp/xfs.log | sed 's/^/#   ade: /'
check "xfs: the mapper is what is mounted" sh -c "findmnt -n -o SOURCE /mnt/xfs | grep -qx /dev/mapper/ade-xfs"
header=$(find /tmp/ade-headers -name '*.header' | head -n1)
require "xfs: the header is a file in header-dir" test -f "$header"
check "xfs: the header file is private (0600)" test "$(stat -c %a "$header")" = 600
check_fails "xfs: the disk itself carries no LUKS header" cryptsetup isLuks $dev

if [ "${ADE_VM_XFS_KILL:-no}" != yes ]; then
        during_reencryption xfs /mnt/xfs $pid /tmp/xfs.log
        during=xfs
else
        # The reproducer (xfail-online-xfs-kill.sh): kill -9 while the first hotzone is being
        # reencrypted (the engine's default hotzone takes the whole of this small disk, so there is
        # no progress report to aim at: a few seconds in is mid-hotzone). libcryptsetup keeps the
        # hotzone's mapping suspended while it works on it; after the kill nothing resumes it, so
        # no file I/O until the resume.
        sleep 3
        kill -9 $pid
        wait $pid
        require "xfs: the engine was killed (-9) midway" test $? -eq 137
        dmsetup info -c -o name,attr,open 2>&1 | sed 's/^/#   after the kill: /'
        check "xfs: the reencryption is left unfinished in the header" sh -c "cryptsetup luksDump '$header' | grep -q reencrypt"
        check "xfs: the mapping survived the kill" test -b /dev/mapper/ade-xfs
        # What aded does when it starts again: resume with the active name. Its messages stream out
        # as they come, so that a hang shows where.
        "$tool" --quiet --debug-cryptsetup --header "$header" --header-dir /tmp/ade-headers resume $dev /tmp/key ade-xfs 2>&1 |
                grep -v libdevmapper | sed 's/^/#   resume: /'
        check "xfs: the resume finished" test "${PIPESTATUS[0]}" -eq 0
        dmsetup info -c -o name,attr,open 2>&1 | sed 's/^/#   after the resume: /'
        during=
fi
check "xfs: the header carries our token" sh -c "cryptsetup luksDump '$header' | grep -q Azure_Disk_Encryption"
check "xfs: the token names the device" sh -c "cryptsetup token export --token-id 0 '$header' | grep -q DeviceId"
during_names=$during after_encryption xfs $dev ade-xfs /mnt/xfs "xfs_repair -n" "$header"
done_checks
