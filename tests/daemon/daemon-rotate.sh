#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# adectl rotate gives the volume a new key file in a new secret: the secret URL changes, the new key
# opens the volume, and the old one no longer does: neither on the device, nor in a header backup
# aded keeps, nor through Key Vault (the old secret is disabled).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

adectl enable --volume-type DATA >/dev/null 2>&1 || fail "enable failed"
old_url=$(volume_field "$VOLUME" secretUrl)
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/old.key" "$VOLUME" 2>/dev/null || fail "cannot resolve the old key"
adectl rotate >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "rotate failed"; }
new_url=$(volume_field "$VOLUME" secretUrl)
[ -n "$new_url" ] && [ "$new_url" != "$old_url" ] || fail "the secret URL did not change ($old_url)"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted after rotate"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/new.key" "$VOLUME" 2>/dev/null || fail "cannot resolve the new key"
cryptsetup open --test-passphrase --key-file "$WORK/new.key" "$VOLUME" || fail "the new key does not open the volume"
cryptsetup open --test-passphrase --key-file "$WORK/old.key" "$VOLUME" 2>/dev/null && fail "the old key still opens the volume"
check_files_encrypted "$VOLUME" "$MANIFEST"

# Revocation: the old secret is disabled in Key Vault (kept, so that a snapshot from before the
# rotation can still be opened once its owner enables it again), the new one is enabled, and no
# header backup that aded keeps still holds a keyslot the old key file opens.
old_version=${old_url##*/}
new_version=${new_url##*/}
[ "$(emulator_state | jq -r --arg v "$old_version" '.secrets[] | select(.version == $v) | .attributes.enabled')" = false ] ||
        fail "the old secret $old_url is still enabled"
[ "$(emulator_state | jq -r --arg v "$new_version" '.secrets[] | select(.version == $v) | .attributes.enabled')" = true ] ||
        fail "the new secret $new_url is not enabled"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/again.key" "$VOLUME" 2>/dev/null ||
        fail "the volume's key cannot be resolved after the rotation"
n=0
for backup in "$WORK"/headers/*.backup; do
        [ -e "$backup" ] || continue
        n=$((n + 1))
        cryptsetup open --test-passphrase --header "$backup" --key-file "$WORK/old.key" "$VOLUME" 2>/dev/null &&
                fail "the header backup $backup still opens with the old key file"
        cryptsetup open --test-passphrase --header "$backup" --key-file "$WORK/new.key" "$VOLUME" ||
                fail "the header backup $backup does not open with the new key file"
done
[ $n -ge 1 ] || fail "aded kept no header backup"
pass
