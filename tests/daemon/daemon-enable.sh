#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# adectl enable --volume-type DATA through aded's socket: the volume ends Encrypted (locked: this host
# has no device-mapper, or it is offline), its key escrowed once, and stock cryptsetup with the key
# the resolver recovers decrypts a copy back to the same files.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

[ "$(volume_field "$VOLUME" state)" = NotEncrypted ] || fail "state before enable is not NotEncrypted"
adectl enable --volume-type DATA >"$WORK/enable.out" 2>&1 || { cat "$WORK/enable.out"; fail "enable failed"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted after enable"
[ "$(volume_field "$VOLUME" unlocked)" = false ] || grep -qw device-mapper /proc/devices || fail "unlocked without device-mapper"
[ "$(volume_field "$VOLUME" progress)" = 1 ] || fail "progress is not 1"
url=$(volume_field "$VOLUME" secretUrl)
case "$url" in https://localhost:$HTTPS_PORT/secrets/*/*) ;; *) fail "secretUrl '$url' is not a versioned secret URL" ;; esac
[ "$(secrets_count)" = 1 ] || fail "expected exactly one escrowed secret, found $(secrets_count)"
# ADE's secret: contentType BEK without a KEK, and the file-name tag of the first [volumes] device
# without an Azure LUN.
emulator_state | jq -e '.secrets[0].contentType == "BEK" and
        .secrets[0].tags.DiskEncryptionKeyFileName == "LinuxPassPhraseFileName_0_0"' >/dev/null ||
        fail "the secret is not ADE's: $(emulator_state | jq -c '.secrets[0] | {contentType, tags}')"
cryptsetup isLuks --type luks2 "$VOLUME" || fail "no LUKS2 header on $VOLUME"
[ "$(stat -c %a "$WORK/state/state.json")" = 600 ] || fail "state file mode is not 0600"
[ "$(jq -r '.volumes[0].step' "$WORK/state/state.json")" = done ] || fail "state file step is not done"
check_files_encrypted "$VOLUME" "$MANIFEST"
pass
