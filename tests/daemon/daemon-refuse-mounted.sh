#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Without device-mapper a mounted volume cannot be encrypted online: enable is refused (exit 3) with a
# message naming the mount point, the volume stays mounted and unchanged.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
grep -qw device-mapper /proc/devices && skip "device-mapper is available here: a mounted volume is encrypted online"
make_volume 200
mkdir "$WORK/mnt"
mount "$VOLUME" "$WORK/mnt" 2>/dev/null || skip "cannot mount here"
CLEANUPS+=("umount '$WORK/mnt'")
start_emulator
write_config
start_aded

adectl enable --volume-type DATA >"$WORK/out" 2>&1
rc=$?
[ $rc = 3 ] || fail "exit status $rc, expected 3"
grep -q "mounted at $WORK/mnt" "$WORK/out" || fail "message does not name the mount point: $(cat "$WORK/out")"
grep -q "device-mapper" "$WORK/out" || fail "message does not say why: $(cat "$WORK/out")"
mountpoint -q "$WORK/mnt" || fail "the volume was unmounted"
[ "$(secrets_count)" = 0 ] || fail "a secret was written"
pass
