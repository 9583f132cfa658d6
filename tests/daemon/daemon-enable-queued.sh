#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An Enable that arrives while a job runs is queued, not refused (issue 12), and starts, checks
# first, once aded is idle. (1) During an encryption: a dry run is refused (its plan would describe
# a volume the job is changing); "enable --no-wait" is answered "queued" at once; "enable" with
# progress says it is queued, waits, and ends with the volume Encrypted; both queued Enables then
# find nothing left to do: one secret escrowed, not three. (2) During a decryption (Disable): an
# Enable queued behind it encrypts the volume again once the decryption is done, with a new secret,
# every file intact. The running jobs are held at a state step by the crash shim (nothing timed).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
require_shim
make_volume 160
start_emulator
write_config

# ---- (1) queued behind an encryption ------------------------------------------------------------
STOPPED_ACTION=wait enable_stopped_at state:encrypt:keyfile
adectl --json enable --volume-type DATA --dry-run >"$WORK/out" 2>/dev/null
rc=$?
[ $rc = 3 ] || fail "(1) a dry run during a job exited $rc, expected 3: $(cat "$WORK/out")"
jq -e '.error == "io.ade.DiskEncryption.OperationInProgress"' "$WORK/out" >/dev/null ||
        fail "(1) the dry run was not refused with OperationInProgress: $(cat "$WORK/out")"
adectl --json enable --volume-type DATA --no-wait >"$WORK/out" 2>&1 ||
        fail "(1) enable --no-wait during a job was refused: $(cat "$WORK/out")"
jq -e '.queued == true' "$WORK/out" >/dev/null || fail "(1) enable --no-wait is not answered queued: $(cat "$WORK/out")"
adectl enable --no-wait --volume-type DATA >"$WORK/out-text" 2>&1 || fail "(1) a second enable --no-wait was refused"
grep -q "^Queued" "$WORK/out-text" || fail "(1) adectl does not say the Enable is queued: $(cat "$WORK/out-text")"
adectl enable --volume-type DATA >"$WORK/out-more" 2>&1 &
client=$!
for _ in $(seq 1 300); do grep -q "^Queued" "$WORK/out-more" && break; sleep 0.1; done
grep -q "^Queued" "$WORK/out-more" || fail "(1) enable with progress does not say it is queued: $(cat "$WORK/out-more")"
kill -0 $client 2>/dev/null || fail "(1) enable with progress did not wait: $(cat "$WORK/out-more")"
echo "ok: (1) during an encryption: dry run refused, two Enables answered queued, one waiting"

touch "$WORK/release"
wait_for_state "$VOLUME" Encrypted 180
wait $client || fail "(1) the queued enable with progress failed: $(cat "$WORK/out-more")"
grep -q "Encrypted" "$WORK/out-more" || fail "(1) the queued enable does not end with the volume: $(cat "$WORK/out-more")"
[ "$(grep -c "starting the queued Enable" "$WORK/aded.log")" = 3 ] ||
        fail "(1) aded did not start the three queued Enables: $(grep -i queued "$WORK/aded.log")"
grep -q "nothing left to encrypt" "$WORK/aded.log" ||
        fail "(1) the queued Enables without a caller do not say they found nothing to do"
[ "$(secrets_count)" = 1 ] || fail "(1) expected one secret escrowed, found $(secrets_count)"
check_files_encrypted "$VOLUME" "$MANIFEST"
echo "ok: (1) the volume Encrypted once, the queued Enables changed nothing, one secret"

# ---- (2) queued behind a decryption -------------------------------------------------------------
stop_aded || fail "aded did not stop cleanly"
rm -f "$WORK/release" "$WORK/mark-dec"
ADE_CRASH_AT=state:decrypt:header ADE_CRASH_ACTION=wait ADE_CRASH_RELEASE=$WORK/release \
        ADE_CRASH_MARK=$WORK/mark-dec ADE_CRASH_STATE=$WORK/state/state.json \
        LD_PRELOAD=$SHIM ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_aded
adectl disable --volume-type DATA --no-wait >"$WORK/out" 2>&1 || fail "(2) disable --no-wait failed: $(cat "$WORK/out")"
for _ in $(seq 1 600); do [ -s "$WORK/mark-dec" ] && break; sleep 0.1; done
[ -s "$WORK/mark-dec" ] || fail "(2) the decryption never reached its header step"
adectl --json enable --volume-type DATA --no-wait >"$WORK/out" 2>&1 ||
        fail "(2) enable during a decryption was refused: $(cat "$WORK/out")"
jq -e '.queued == true' "$WORK/out" >/dev/null || fail "(2) not answered queued: $(cat "$WORK/out")"
touch "$WORK/release"
for _ in $(seq 1 1800); do
        [ "$(secrets_count)" = 2 ] && [ "$(volume_field "$VOLUME" state)" = Encrypted ] && break
        sleep 0.1
done
[ "$(secrets_count)" = 2 ] || fail "(2) the queued Enable escrowed no new secret ($(secrets_count) in the vault)"
wait_for_state "$VOLUME" Encrypted 180
check_files_encrypted "$VOLUME" "$MANIFEST"
echo "ok: (2) the Enable queued behind a decryption encrypted the volume again, every file intact"
pass
