#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Key Vault refuses the escrow (404 on every request): enable fails with KeyVaultError (exit 1)
# naming the device and the vault's URL, the device is byte-for-byte unchanged, Show says Failed with
# the reason, and a later enable (Key Vault back) succeeds. Then Key Vault cannot be reached (every
# connection dropped) during a rotation: KeyVaultError naming the device and the URL too.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

sum=$(sha256sum <"$VOLUME")
# After the read-only checks (which read the vault through ARM, not Key Vault's data plane).
emulator_fault '{"route": "keyvault", "status": 404, "count": 1000}' || fail "cannot inject the fault"
adectl --json enable --volume-type DATA >"$WORK/out" 2>"$WORK/err"
rc=$?
[ $rc = 1 ] || fail "enable exited $rc, expected 1: $(cat "$WORK/out" "$WORK/err")"
jq -e 'select(.error) | .error == "io.ade.DiskEncryption.KeyVaultError" and .parameters.status == 404' "$WORK/out" \
        >/dev/null || fail "not a KeyVaultError 404: $(cat "$WORK/out")"
grep -q "Key Vault at [^ ]* answered 404" "$WORK/err" || fail "the message does not say what Key Vault answered: $(cat "$WORK/err")"
# names_device_and_url OUT ERR: the reply's parameters and adectl's sentence name both.
names_device_and_url() {
        jq -e --arg d "$VOLUME" 'select(.error) | .parameters.device == $d and
                (.parameters.url | startswith("https://localhost:"))' "$1" >/dev/null ||
                fail "the KeyVaultError does not name the device and the URL: $(cat "$1")"
        grep -qF "$VOLUME" "$2" && grep -q "https://localhost:" "$2" ||
                fail "adectl's message does not name the device and the URL: $(cat "$2")"
}
names_device_and_url "$WORK/out" "$WORK/err"
[ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "the device changed although the key was never escrowed"
[ "$(volume_field "$VOLUME" state)" = Failed ] || fail "Show does not say Failed"
volume_field "$VOLUME" message | grep -q "Key Vault" || fail "Show's message does not name Key Vault"

curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
adectl enable --volume-type DATA >/dev/null 2>&1 || fail "enable failed once Key Vault was back"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted on the second try"
[ "$(secrets_count)" = 1 ] || fail "expected one secret, found $(secrets_count)"

emulator_fault '{"route": "keyvault", "drop": true, "count": 100000}' || fail "cannot inject the fault"
adectl --json rotate >"$WORK/out" 2>"$WORK/err"
rc=$?
[ $rc = 1 ] || fail "rotate with Key Vault unreachable exited $rc, expected 1: $(cat "$WORK/out" "$WORK/err")"
grep -q "could not be reached" "$WORK/err" || fail "rotate does not say Key Vault could not be reached: $(cat "$WORK/err")"
names_device_and_url "$WORK/out" "$WORK/err"
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted after the failed rotation"
pass
