#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A state file saying an encryption stopped before its key was escrowed (a crash after the key file
# was made): at start aded drops that record instead of resuming it, because nothing was written
# anywhere; the device stays byte-for-byte the same and no secret appears in Key Vault.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
mkdir -p "$WORK/state"
cat >"$WORK/state/state.json" <<EOF2
{"version": 1, "volumes": [{"device": "$VOLUME", "job": "encrypt", "step": "keyfile",
 "volumeType": "Data", "keyVaultUrl": "https://localhost:$HTTPS_PORT"}]}
EOF2
chmod 600 "$WORK/state/state.json"
sum=$(sha256sum <"$VOLUME")
start_aded

grep -q "before its key was escrowed" "$WORK/aded.log" || fail "aded did not say why it dropped the record"
[ "$(jq '.volumes | length' "$WORK/state/state.json")" = 0 ] || fail "the record is still in the state file"
[ "$(volume_field "$VOLUME" state)" = NotEncrypted ] || fail "not NotEncrypted"
[ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "the device changed"
[ "$(secrets_count)" = 0 ] || fail "a secret was escrowed"
pass
