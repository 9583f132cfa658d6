#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded killed with -9 in the middle of a decryption (disable), then started again, finishes it by
# itself: the volume ends NotEncrypted with the original files.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 1024
start_emulator
write_config
start_aded
adectl enable --volume-type DATA >/dev/null 2>&1 || fail "enable failed"

adectl disable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "disable --no-wait failed"
wait_for_state "$VOLUME" DecryptionInProgress 30
wait_for_progress "$VOLUME"
kill -9 "$ADED_PID"
wait "$ADED_PID" 2>/dev/null
ADED_PID=""
[ "$(jq -r '.volumes[0].job' "$WORK/state/state.json")" = decrypt ] || fail "the state file has no decrypt record"

start_aded
grep -q "resuming the decryption of $VOLUME" "$WORK/aded.log" || fail "aded did not resume the decryption"
wait_for_state "$VOLUME" NotEncrypted 120
cryptsetup isLuks "$VOLUME" && fail "a LUKS header is still on $VOLUME"
check_files_on_plain "$VOLUME" "$MANIFEST"
pass
