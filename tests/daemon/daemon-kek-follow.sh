#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# [rotation] kek-follow-latest: a volume enabled with a versioned KEK stays with it while it is the
# key's current version; once Key Vault has a newer enabled version (made here through Key Vault's
# own create-key call, as an operator's rotation policy would), aded rotates the volume's key file
# under it by itself: kekUrl names the new version (still versioned), the new secret is wrapped
# with it, the key resolves and opens the volume, and the old secret is disabled.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
printf '\n[rotation]\nkek-follow-latest = yes\nkek-interval = 2s\n' >>"$WORK/ade.conf"
start_aded

kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid')
case "$kek" in https://*/keys/kek/*) ;; *) fail "no versioned KEK in the emulator: '$kek'" ;; esac
vault_id=$(sed -n 's/^resource-id = //p' "$WORK/ade.conf")
adectl enable --volume-type data --kek-url "$kek" --kek-vault-resource-id "$vault_id" >"$WORK/out" 2>&1 ||
        fail "enable failed: $(cat "$WORK/out")"
first=$(volume_field "$VOLUME" secretUrl)
# Several checks of the KEK pass with nothing to do.
sleep 5
[ "$(volume_field "$VOLUME" secretUrl)" = "$first" ] || fail "the key was rotated while its KEK was current"
[ "$(volume_field "$VOLUME" kekUrl)" = "$kek" ] || fail "kekUrl changed while the KEK was current"
echo "ok: the KEK is current: nothing rotated"

# A new version of the KEK, made with Key Vault's create-key call and a token from Entra ID.
token=$(curl -sf --cacert "$WORK/emu/ca.pem" \
        -d "grant_type=client_credentials&client_id=$(sed -n 's/^client-id = //p' "$WORK/ade.conf")" \
        --data-urlencode "client_secret@$WORK/app-secret" \
        --data-urlencode "scope=$EMULATOR_KEYVAULT_RESOURCE/.default" \
        "https://localhost:$HTTPS_PORT/$(sed -n 's/^tenant-id = //p' "$WORK/ade.conf")/oauth2/v2.0/token" | jq -r .access_token)
[ -n "$token" ] && [ "$token" != null ] || fail "no token from the emulated Entra ID"
newkek=$(curl -sf --cacert "$WORK/emu/ca.pem" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d '{"kty": "RSA", "key_size": 2048, "key_ops": ["wrapKey", "unwrapKey"]}' \
        "https://localhost:$HTTPS_PORT/keys/kek/create?api-version=7.4" | jq -r .key.kid)
case "$newkek" in https://*/keys/kek/*) ;; *) fail "Key Vault made no new version of the KEK: '$newkek'" ;; esac
[ "$newkek" != "$kek" ] || fail "the new version has the old kid"
echo "ok: Key Vault has a newer version of the KEK: $newkek"

for _ in $(seq 1 600); do
        [ "$(volume_field "$VOLUME" kekUrl)" = "$newkek" ] && [ "$(volume_field "$VOLUME" state)" = Encrypted ] && break
        sleep 0.1
done
[ "$(volume_field "$VOLUME" kekUrl)" = "$newkek" ] || fail "aded did not follow the KEK to $newkek within 60 s: $(adectl --json show)"
grep -q "has a newer version" "$WORK/aded.log" || fail "aded did not say why it rotated"
second=$(volume_field "$VOLUME" secretUrl)
[ "$second" != "$first" ] || fail "the secret did not change"
emulator_state | jq -e --arg v "${second##*/}" --arg k "$newkek" \
        '.secrets[] | select(.version == $v) | .contentType == "Wrapped BEK" and .tags.DiskEncryptionKeyEncryptionKeyURL == $k' \
        >/dev/null || fail "the new secret is not wrapped with $newkek: $(emulator_state | jq -c '.secrets')"
[ "$(emulator_state | jq -r --arg v "${first##*/}" '.secrets[] | select(.version == $v) | .attributes.enabled')" = false ] ||
        fail "the old secret is still enabled"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/new.key" "$VOLUME" 2>/dev/null || fail "cannot resolve the key under the new KEK"
cryptsetup open --test-passphrase --key-file "$WORK/new.key" "$VOLUME" || fail "the resolved key does not open the volume"
check_files_encrypted "$VOLUME" "$MANIFEST"
echo "ok: aded followed the KEK: kekUrl $newkek, the new secret wrapped with it, the old one disabled"
pass
