#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# enable with a key-encryption key: the secret is a "Wrapped BEK" naming the KEK, Show reports the KEK
# URL, and the key the resolver unwraps opens the volume and decrypts a copy with stock cryptsetup.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid')
case "$kek" in https://*/keys/kek/*) ;; *) fail "no versioned KEK in the emulator: '$kek'" ;; esac
vault_id=$(sed -n 's/^resource-id = //p' "$WORK/ade.conf")
adectl enable --volume-type data --kek-url "$kek" --kek-vault-resource-id "$vault_id" --kek-algorithm RSA-OAEP-256 \
        >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable with a KEK failed"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
[ "$(volume_field "$VOLUME" kekUrl)" = "$kek" ] || fail "Show does not report the KEK"
emulator_state | jq -e --arg k "$kek" '.secrets | length == 1 and .[0].contentType == "Wrapped BEK" and
        .[0].tags.DiskEncryptionKeyEncryptionKeyURL == $k and
        .[0].tags.DiskEncryptionKeyEncryptionAlgorithm == "RSA-OAEP-256"' >/dev/null ||
        fail "the secret is not a Wrapped BEK for the KEK: $(emulator_state | jq -c '.secrets')"
check_files_encrypted "$VOLUME" "$MANIFEST"
pass
