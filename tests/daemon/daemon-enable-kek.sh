#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# enable with a key-encryption key: the secret is a "Wrapped BEK" naming the KEK, Show reports the KEK
# URL, and the key the resolver unwraps opens the volume and decrypts a copy with stock cryptsetup.
# What was asked is recorded as the enrollment (a dry run records nothing), and Show prints it, also
# after a restart.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid')
case "$kek" in https://*/keys/kek/*) ;; *) fail "no versioned KEK in the emulator: '$kek'" ;; esac
vault_id=$(sed -n 's/^resource-id = //p' "$WORK/ade.conf")
adectl show --json | jq -e 'has("enrollment") | not' >/dev/null || fail "enrolled before any Enable"
adectl show | grep -q "^Enrolled: *no" || fail "the table does not say the machine is not enrolled"
adectl enable --volume-type data --kek-url "$kek" --dry-run >"$WORK/out" 2>&1 || fail "dry run failed: $(cat "$WORK/out")"
adectl show --json | jq -e 'has("enrollment") | not' >/dev/null || fail "a dry run enrolled the machine"
adectl enable --volume-type data --kek-url "$kek" --kek-vault-resource-id "$vault_id" --kek-algorithm RSA-OAEP-256 \
        --skip-snapshot-check \
        >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable with a KEK failed"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
[ "$(volume_field "$VOLUME" kekUrl)" = "$kek" ] || fail "Show does not report the KEK"
emulator_state | jq -e --arg k "$kek" '.secrets | length == 1 and .[0].contentType == "Wrapped BEK" and
        .[0].tags.DiskEncryptionKeyEncryptionKeyURL == $k and
        .[0].tags.DiskEncryptionKeyEncryptionAlgorithm == "RSA-OAEP-256"' >/dev/null ||
        fail "the secret is not a Wrapped BEK for the KEK: $(emulator_state | jq -c '.secrets')"
check_enrollment() {
        adectl show --json | jq -e --arg k "$kek" --arg v "$vault_id" '.enrollment | .volumeType == "Data" and
                (.keyVaultUrl | startswith("https://")) and .kekUrl == $k and .kekVaultResourceId == $v and
                .kekAlgorithm == "RSA-OAEP-256" and .skipSnapshotCheck == true and .formatAll == false and
                (.since | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))' >/dev/null ||
                fail "$1: the enrollment is not what Enable asked: $(adectl show --json | jq -c .enrollment)"
        adectl show | grep -qF "Enrolled:     Data since" || fail "$1: the table does not print the enrollment"
}
check_enrollment "after enable"
jq -e '.enrollment.kekUrl' "$WORK/state/state.json" >/dev/null || fail "the enrollment is not in the state file"
stop_aded
start_aded
check_enrollment "after a restart"
check_files_encrypted "$VOLUME" "$MANIFEST"
pass
