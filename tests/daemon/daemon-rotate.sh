#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# adectl rotate gives the volume a new key file in a new secret: the secret URL changes, the new key
# opens the volume, and the old one no longer does.
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
pass
