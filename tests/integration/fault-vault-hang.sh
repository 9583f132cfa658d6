#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fault injection, Key Vault hanging during SIGTERM: an Enable is inside a Key Vault call that the
# vault accepted and never answers (the emulator's "hang" fault) when aded is told to stop, (a) in
# the Enable's preparation (its cloud checks), (b) in the job's escrow (aded held at that step by
# the crash shim while the fault is set). aded cancels the call and exits 0 within its stop budget
# instead of sitting out the request timeout (a minute) and its retries; the Enable is recorded as
# stopped, not done; the volume is byte-for-byte as it was and nothing is escrowed; started again
# with the vault answering, aded finishes the Enable with the files intact and one secret escrowed.
. "$(dirname "$0")/../daemon/daemon-lib.sh"
daemon_require_root
require_shim

make_volume 200 ext4
sum=$(sha256sum <"$VOLUME")
start_emulator
write_config

held() { curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/faults" | jq -r .held; }

# wait_held WHAT: until the emulator holds a Key Vault request of aded's.
wait_held() {
        for _ in $(seq 1 600); do [ "$(held)" -ge 1 ] && return 0; sleep 0.1; done
        fail "$1: aded never called Key Vault"
}

# stop_while_held WHAT: SIGTERM; aded must be gone well before a request would time out. A ceiling,
# not a timing: cancelling takes a moment, while an aded that waits for the vault is still there
# when the request's own 60 s timeout would end it, and then retries.
stop_while_held() {
        local rc
        kill -TERM "$ADED_PID"
        for _ in $(seq 1 450); do kill -0 "$ADED_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$ADED_PID" 2>/dev/null; then
                fail "$1: aded still runs 45 s after SIGTERM while Key Vault hangs: $(tail -n 3 "$WORK/aded.log")"
        fi
        wait "$ADED_PID"
        rc=$?
        ADED_PID=""
        [ $rc = 0 ] || fail "$1: aded exited $rc on SIGTERM: $(tail -n 5 "$WORK/aded.log")"
        [ "$(held)" -ge 1 ] || fail "$1: the vault answered before aded stopped: nothing was shown"
        [ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "$1: the volume changed although the key was never escrowed"
        [ "$(secrets_count)" = 0 ] || fail "$1: a secret was escrowed although Key Vault never answered"
        curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
        for _ in $(seq 1 100); do [ "$(held)" = 0 ] && break; sleep 0.1; done
        [ "$(held)" = 0 ] || fail "$1: the emulator still holds a request once the faults are cleared"
}

# ---- (a) in the preparation's cloud checks ----------------------------------------------------
start_aded
emulator_fault '{"route": "keyvault", "hang": true, "count": 100000}' || fail "cannot inject the fault"
adectl enable --volume-type DATA >"$WORK/out-a" 2>&1 &
client=$!
wait_held "(a)"
stop_while_held "(a)"
wait $client && fail "(a) enable succeeded although aded stopped: $(cat "$WORK/out-a")"
grep -q "stopping" "$WORK/out-a" || fail "(a) the caller is not told that aded stopped: $(cat "$WORK/out-a")"
echo "ok: (a) SIGTERM in the preparation's Key Vault call: aded exited 0; the caller read '$(head -n 1 "$WORK/out-a")'"

# ---- (b) in the job's escrow ------------------------------------------------------------------
STOPPED_ACTION=wait enable_stopped_at state:encrypt:keyfile
emulator_fault '{"route": "keyvault", "hang": true, "count": 100000}' || fail "cannot inject the fault"
touch "$WORK/release"
wait_held "(b)"
stop_while_held "(b)"
step=$(jq -r --arg d "$VOLUME" '.volumes[] | select(.device == $d) | .step' "$WORK/state/state.json")
[ "$step" = keyfile ] || fail "(b) the record does not say where the Enable stopped: step '$step'"
echo "ok: (b) SIGTERM in the escrow's Key Vault call: aded exited 0, the record at step '$step'"

# The vault answers again: nothing was written before the escrow, so aded drops that record at
# start (daemon-resume-before-escrow.sh) and the Enable asked again finishes, once.
start_aded
adectl enable --volume-type DATA >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable failed once Key Vault answered"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted: $(volume_field "$VOLUME" state)"
check_files_encrypted "$VOLUME" "$MANIFEST"
[ "$(secrets_count)" = 1 ] || fail "expected one secret escrowed, found $(secrets_count)"
echo "ok: the Enable finished once Key Vault answered, one secret escrowed"
pass
