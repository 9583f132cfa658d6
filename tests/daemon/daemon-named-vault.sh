#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A vault that ade.conf does not name, named by root in Enable (--keyvault-url, --kek-url): the
# secret and the KEK go there, aded records it in its state file, and after a restart RotateKey and
# ade-resolve-key still reach it. Without that record (a fresh state folder) the same disk gets
# nothing from it. The vault is the emulator under another name (other.localhost, another origin).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

OTHER=https://other.localhost:$HTTPS_PORT
kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid')
kek=$OTHER${kek#https://localhost:"$HTTPS_PORT"}
vault_id=$(sed -n 's/^resource-id = //p' "$WORK/ade.conf")
adectl enable --volume-type data --keyvault-url "$OTHER" --kek-url "$kek" --kek-vault-resource-id "$vault_id" \
        >"$WORK/out" 2>&1 || fail "enable with a vault named by root failed: $(cat "$WORK/out")"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
case "$(volume_field "$VOLUME" secretUrl)" in "$OTHER"/secrets/*) ;; *) fail "the secret is not in $OTHER" ;; esac
jq -e --arg v "$OTHER" --arg k "$kek" '.volumes[0].keyVaultUrl == $v and .volumes[0].kekUrl == $k' \
        "$WORK/state/state.json" >/dev/null || fail "the state file does not record the vaults: $(cat "$WORK/state/state.json")"

# After a restart the recorded vaults are trusted: the key is fetched there again.
stop_aded || fail "aded did not stop cleanly"
start_aded
adectl rotate >"$WORK/out" 2>&1 || fail "rotate after a restart failed: $(cat "$WORK/out")"
case "$(volume_field "$VOLUME" secretUrl)" in "$OTHER"/secrets/*) ;; *) fail "the new secret is not in $OTHER" ;; esac
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/key" "$VOLUME" >"$WORK/out" 2>&1 ||
        fail "ade-resolve-key does not trust the recorded vault: $(cat "$WORK/out")"
cryptsetup open --test-passphrase --key-file "$WORK/key" "$VOLUME" || fail "the resolved key does not open $VOLUME"

# Without the record, nobody named that vault: nothing is sent there.
stop_aded || fail "aded did not stop cleanly"
mv "$WORK/state" "$WORK/state.kept"
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/requests" >/dev/null
rm -f "$WORK/key"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/key" "$VOLUME" >"$WORK/out" 2>&1 &&
        fail "ade-resolve-key reached a vault nobody named"
grep -q "no token is sent to $OTHER" "$WORK/out" || fail "ade-resolve-key does not say why: $(cat "$WORK/out")"
n=$(curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/requests" | jq '[.requests[] | select(.service == "keyvault")] | length')
[ "$n" = 0 ] || fail "$n requests reached Key Vault for a vault nobody named"
pass
