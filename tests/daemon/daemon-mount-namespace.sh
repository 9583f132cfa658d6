#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded started in a mount namespace of its own (as ProtectHome= and friends made it under systemd)
# where the system's mounted volume looks unmounted: aded says at start that it is not in pid 1's
# namespace, and enable refuses the volume, naming the mount point (issue 11 item 0: it ran e2fsck
# -p and resize2fs on a filesystem the system had mounted). The volume stays mounted and unchanged.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v unshare >/dev/null || skip "no unshare"
# Our namespace is pid 1's when our first mount is in its table (/proc/1/ns/mnt may be unreadable).
cut -d' ' -f1 /proc/1/mountinfo | grep -qx "$(head -n1 /proc/self/mountinfo | cut -d' ' -f1)" ||
        skip "the tests run outside pid 1's mount namespace"
make_volume 200
mkdir "$WORK/mnt"
mount "$VOLUME" "$WORK/mnt" 2>/dev/null || skip "cannot mount here"
CLEANUPS+=("umount '$WORK/mnt'")
sum_before=$(sha256sum <"$WORK/mnt/sub/hello.txt")
start_emulator
write_config

# aded in a namespace of its own, in which the volume is unmounted: only there.
aded_unshared 'umount "$0"' "$WORK/mnt"
start_aded

adectl enable --volume-type DATA >"$WORK/out" 2>&1
rc=$?
[ $rc = 3 ] || fail "exit status $rc, expected 3: $(cat "$WORK/out")"
grep -q "mounted at $WORK/mnt" "$WORK/out" || fail "message does not name the mount point: $(cat "$WORK/out")"
grep -q "mount namespace" "$WORK/out" || fail "message does not say why: $(cat "$WORK/out")"
mountpoint -q "$WORK/mnt" || fail "the volume was unmounted"
[ "$(blkid -p -o value -s TYPE "$VOLUME")" = ext4 ] || fail "the volume is no longer plain ext4"
[ "$(sha256sum <"$WORK/mnt/sub/hello.txt")" = "$sum_before" ] || fail "a file changed"
[ "$(secrets_count)" = 0 ] || fail "a secret was written"
grep -q "mount namespace of its own" "$WORK/aded.log" || fail "aded did not say at start that its mount namespace is not the system's"
pass
