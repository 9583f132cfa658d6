#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# disable after enable decrypts the volumes back: NotEncrypted, no LUKS header, the same files.
# With a device only that one (an unknown device is NoSuchVolume, exit 1), the other stays Encrypted.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
A=$VOLUME
MANIFEST_A=$MANIFEST
make_volume 200
B=$VOLUME
MANIFEST_B=$MANIFEST
start_emulator
write_config
start_aded

adectl enable --volume-type data >/dev/null 2>&1 || fail "enable --volume-type data failed"

adectl disable --volume-type data /dev/no-such-disk >"$WORK/out" 2>&1
rc=$?
[ $rc = 1 ] || fail "disable of an unknown device exited $rc, expected 1: $(cat "$WORK/out")"
grep -q "/dev/no-such-disk is not a volume aded manages" "$WORK/out" || fail "message: $(cat "$WORK/out")"

adectl disable --volume-type data "$B" >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "disable of $B failed"; }
[ "$(volume_field "$B" state)" = NotEncrypted ] || fail "$B not NotEncrypted after its disable"
[ "$(volume_field "$A" state)" = Encrypted ] || fail "$A was decrypted too: $(volume_field "$A" state)"
check_files_on_plain "$B" "$MANIFEST_B"

adectl disable --volume-type data >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "disable failed"; }
[ "$(volume_field "$A" state)" = NotEncrypted ] || fail "not NotEncrypted after disable"
cryptsetup isLuks "$A" && fail "a LUKS header is still on $A"
check_files_on_plain "$A" "$MANIFEST_A"
[ "$(jq '.volumes | length' "$WORK/state/state.json")" = 0 ] || fail "the state file still has a record"
pass
