#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# disable after enable decrypts the volume back: NotEncrypted, no LUKS header, the same files.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

adectl enable --volume-type all >/dev/null 2>&1 || fail "enable --volume-type all failed"
adectl disable --volume-type data >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "disable failed"; }
[ "$(volume_field "$VOLUME" state)" = NotEncrypted ] || fail "not NotEncrypted after disable"
cryptsetup isLuks "$VOLUME" && fail "a LUKS header is still on $VOLUME"
check_files_on_plain "$VOLUME" "$MANIFEST"
[ "$(jq '.volumes | length' "$WORK/state/state.json")" = 0 ] || fail "the state file still has a record"
pass
