#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fault injection, the network: Key Vault cut in the middle of an Enable (after the preconditions,
# before the escrow; aded held at that step by the crash shim while the cut is made). The job ends
# Failed with a message that names the device and what failed, Show reports it, the volume is
# byte-for-byte as it was; once Key Vault answers again, Enable finishes with the files intact and
# one secret in use. (A cut in the middle of an Unlock needs device-mapper: the VM suite.)
. "$(dirname "$0")/../daemon/daemon-lib.sh"
SHIM=$top_builddir/tests/integration/crash-shim.so
daemon_require_root
[ -f "$SHIM" ] || skip "the crash shim is not built ($SHIM)"

make_volume 160 ext4
sum=$(sha256sum <"$VOLUME")
start_emulator
write_config

# aded stops itself (SIGSTOP) once the record says the key file is made: the next step talks to
# Key Vault.
mark=$WORK/mark
# An aded built with ASan wants its runtime first; the preloaded shim comes before it.
ADE_CRASH_AT=state:encrypt:keyfile ADE_CRASH_ACTION=stop ADE_CRASH_MARK=$mark \
        ADE_CRASH_STATE=$WORK/state/state.json LD_PRELOAD=$SHIM \
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_aded
adectl enable --volume-type DATA --no-wait >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable --no-wait failed"; }
for _ in $(seq 1 600); do [ -s "$mark" ] && break; sleep 0.1; done
[ -s "$mark" ] || fail "aded never reached the keyfile step"
# Every Key Vault request from now on gets its connection closed without an answer.
emulator_fault '{"route": "keyvault", "drop": true, "count": 100000}' || fail "cannot inject the fault"
kill -CONT "$ADED_PID"

wait_for_state "$VOLUME" Failed 180
msg=$(volume_field "$VOLUME" message)
case $msg in *"$VOLUME"*) ;; *) fail "the message does not name $VOLUME: $msg" ;; esac
case $msg in *"Key Vault"* | *"https://"*) ;; *) fail "the message does not say what failed: $msg" ;; esac
[ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "the volume changed although Key Vault was cut"
echo "ok: Key Vault cut mid-enable: Failed with '$msg', the volume untouched"

# The network is back: Enable again finishes, once.
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
adectl enable --volume-type DATA >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable failed once Key Vault was back"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
check_files_encrypted "$VOLUME" "$MANIFEST"
[ "$(secrets_count)" -le 1 ] || fail "$(secrets_count) secrets escrowed for one volume"
echo "ok: Enable finished once Key Vault answered again"
pass
