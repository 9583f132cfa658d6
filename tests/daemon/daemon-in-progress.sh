#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# While an encryption runs, Disable, RotateKey and RestoreHeader are refused with OperationInProgress
# (exit 3) and change nothing; Show still answers. The refusal names the device whose job holds the
# volumes, in the error's parameters and in adectl's message. (An Enable is queued instead:
# daemon-enable-queued.sh.)
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 1536
start_emulator
write_config
start_aded

adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$VOLUME"
for cmd in "rotate" "disable --volume-type DATA" "restore-header --dry-run $VOLUME"; do
        adectl --json $cmd >"$WORK/out" 2>/dev/null
        rc=$?
        if [ "$(volume_field "$VOLUME" state)" != EncryptionInProgress ]; then
                skip "the job ended before '$cmd' was tried"
        fi
        [ $rc = 3 ] || fail "'$cmd' during a job exited $rc, expected 3: $(cat "$WORK/out")"
        jq -e '.error == "io.ade.DiskEncryption.OperationInProgress"' "$WORK/out" >/dev/null ||
                fail "'$cmd': not OperationInProgress: $(cat "$WORK/out")"
        jq -e --arg d "$VOLUME" '.parameters.device == $d' "$WORK/out" >/dev/null ||
                fail "'$cmd': OperationInProgress does not name $VOLUME: $(cat "$WORK/out")"
        adectl $cmd >/dev/null 2>"$WORK/err"
        if [ "$(volume_field "$VOLUME" state)" != EncryptionInProgress ]; then
                skip "the job ended before '$cmd' was tried again"
        fi
        grep -q "refused: another job is running on $VOLUME;" "$WORK/err" ||
                fail "'$cmd': adectl's message does not name $VOLUME: $(cat "$WORK/err")"
done
wait_for_state "$VOLUME" Encrypted 120
[ "$(secrets_count)" = 1 ] || fail "expected one secret, found $(secrets_count)"
pass
