#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# With [backup] url, an encryption that finishes uploads its header to the container (Azurite),
# encrypted with the volume's KEK in client-side encryption v2 (docs/architecture.md §11): the blob
# is named after the machine, the volume's UUID and generation 1, carries the volume's UUID, stable
# id and secret URL as metadata, and decrypts (with ade's client and with Azure's Python SDK) to
# exactly the header stock cryptsetup backs up. With Storage unreachable the next encryption still
# succeeds, and the log says the backup was not uploaded.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
python=/usr/bin/python3
"$python" -c 'import azure.storage.blob' 2>/dev/null ||
        skip "Azure's Python SDK is missing (apt-get install python3-azure; tools/setup-deps.sh does)"
. "$(dirname "$0")/daemon-backup-lib.sh"
backup_storage_start
container=$AZURITE_ACCOUNT/backups

backup_config() {
        write_config
        printf '\n[backup]\nurl = %s\n' "$container" >>"$WORK/ade.conf"
}
backup_config
start_aded

kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid')
vault_id=$(sed -n 's/^resource-id = //p' "$WORK/ade.conf")

adectl enable --volume-type data --kek-url "$kek" --kek-vault-resource-id "$vault_id" --skip-snapshot-check \
        >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable with a KEK failed"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
uuid=$(cryptsetup luksUUID "$VOLUME") || fail "no LUKS UUID on $VOLUME"
secret_url=$(volume_field "$VOLUME" secretUrl)

backup_only_generation_1 "$uuid"
grep -q ' (encrypted)$' "$WORK/list" || fail "the blob has no encryptiondata"
t get "$name" "$WORK/header.backup" >"$WORK/meta" || fail "ade cannot decrypt the backup"
grep -qx "AdeVolume=$uuid" "$WORK/meta" || fail "no AdeVolume: $(cat "$WORK/meta")"
grep -qx "AdeGeneration=1" "$WORK/meta" || fail "no AdeGeneration=1: $(cat "$WORK/meta")"
grep -qx "AdeSecretUrl=$secret_url" "$WORK/meta" || fail "no AdeSecretUrl $secret_url: $(cat "$WORK/meta")"
grep -q "^AdeDeviceId=." "$WORK/meta" || fail "no AdeDeviceId: $(cat "$WORK/meta")"
cryptsetup luksHeaderBackup "$VOLUME" --header-backup-file "$WORK/stock.backup" || fail "luksHeaderBackup failed"
cmp -s "$WORK/header.backup" "$WORK/stock.backup" || fail "the uploaded header is not the volume's header"

ADE_IMDS=$imds ADE_CA=$ca ADE_KEK=$kek "$python" "$srcdir/tests/integration/blob-sdk.py" read "$AZURITE_ACCOUNT" \
        backups "$name" "$WORK/sdk.backup" >"$WORK/sdk.log" 2>&1 || { cat "$WORK/sdk.log"; fail "the SDK cannot decrypt it"; }
cmp -s "$WORK/sdk.backup" "$WORK/stock.backup" || fail "the SDK's decryption is not the volume's header"

# Storage gone: a second volume still encrypts; the log says why it has no backup.
stop_aded
kill "$AZURITE_PID"
wait "$AZURITE_PID" 2>/dev/null
first=$VOLUME
make_volume 200
backup_config
start_aded
adectl enable --volume-type data --kek-url "$kek" --kek-vault-resource-id "$vault_id" --skip-snapshot-check \
        >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable failed while Storage was unreachable"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "the second volume is not Encrypted"
[ "$(volume_field "$first" state)" = Encrypted ] || fail "the first volume is not Encrypted any more"
grep -q "$VOLUME: the header backup was not uploaded to $container" "$WORK/aded.log" ||
        fail "the log does not say the backup failed: $(grep -i backup "$WORK/aded.log" | tail -n 5)"
check_files_encrypted "$VOLUME" "$MANIFEST"

# A volume without a KEK has nothing to wrap the content key with: no upload is even tried.
stop_aded
make_volume 200
backup_config
start_aded
adectl enable --volume-type data --skip-snapshot-check --dry-run >"$WORK/out" 2>&1 ||
        { cat "$WORK/out"; fail "the dry run without a KEK failed"; }
grep -q "$VOLUME: no KEK: no backup" "$WORK/out" || fail "the dry run does not say 'no KEK: no backup': $(cat "$WORK/out")"
adectl enable --volume-type data --skip-snapshot-check >"$WORK/out" 2>&1 ||
        { cat "$WORK/out"; fail "enable without a KEK failed"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "the volume without a KEK is not Encrypted"
grep -q "$VOLUME: no KEK: no backup" "$WORK/aded.log" || fail "the log does not say the volume without a KEK has no backup"
grep -q "$VOLUME: the header backup was not uploaded" "$WORK/aded.log" && fail "an upload was tried without a KEK"
[ "$(volume_field "$VOLUME" backup.state)" = NoKek ] || fail "Show does not say NoKek: $(volume_field "$VOLUME" backup)"
adectl show >"$WORK/table" || fail "adectl show failed"
grep -q "^    backup:  no KEK: no backup$" "$WORK/table" || fail "the table does not say 'no KEK: no backup': $(cat "$WORK/table")"
pass
