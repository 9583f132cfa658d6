#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded killed with -9 in the middle of an encryption, then started again, finishes the job by itself
# (nobody calls Enable again): the volume ends Encrypted with the same files, and its key was escrowed
# exactly once.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 1024
start_emulator
write_config
start_aded

adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$VOLUME"
kill -9 "$ADED_PID"
wait "$ADED_PID" 2>/dev/null
ADED_PID=""
[ "$(jq -r '.volumes[0].step' "$WORK/state/state.json")" != done ] || fail "the job was done before the kill: make the volume bigger"
url=$(jq -r '.volumes[0].secretUrl' "$WORK/state/state.json")

start_aded
grep -q "resuming the encryption of $VOLUME" "$WORK/aded.log" || fail "aded did not resume at start"
wait_for_state "$VOLUME" Encrypted 120
[ "$(secrets_count)" = 1 ] || fail "expected one escrowed secret, found $(secrets_count)"
[ "$(volume_field "$VOLUME" secretUrl)" = "$url" ] || fail "the secret changed across the restart"
check_files_encrypted "$VOLUME" "$MANIFEST"
pass
