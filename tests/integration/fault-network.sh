#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fault injection, the network: Key Vault cut in the middle of an Enable (after the preconditions,
# before the escrow; aded held at that step by the crash shim while the cut is made). The job ends
# Failed with a message that names the device and what failed, Show reports it, the volume is
# byte-for-byte as it was; once Key Vault answers again, Enable finishes with the files intact and
# one secret in use. (A cut in the middle of an Unlock needs device-mapper: the VM suite.)
. "$(dirname "$0")/../daemon/daemon-lib.sh"
daemon_require_root
require_shim

make_volume 160 ext4
sum=$(sha256sum <"$VOLUME")
start_emulator
write_config

# aded stops itself (SIGSTOP) once the record says the key file is made: the next step talks to
# Key Vault.
enable_stopped_at state:encrypt:keyfile
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
