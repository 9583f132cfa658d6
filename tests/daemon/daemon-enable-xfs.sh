#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# XFS cannot shrink: enable encrypts it with a detached LUKS2 header in header-dir (no data moved).
# Show reports it Encrypted with header Detached, also after a restart without the state file, and
# stock cryptsetup opens it with that header and the resolved key.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v mkfs.xfs >/dev/null || skip "no mkfs.xfs"
daemon_workdir
truncate -s 300M "$WORK/xfs.img"
mkfs.xfs -q "$WORK/xfs.img" || fail "mkfs.xfs failed"
VOLUME=$(losetup -f --show "$WORK/xfs.img") || fail "losetup failed"
LOOPS+=("$VOLUME")
# A detached header moves no data: after decryption the whole device must be as it was.
sum=$(sha256sum <"$VOLUME")
start_emulator
write_config
start_aded

adectl enable --volume-type DATA >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable failed"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
[ "$(volume_field "$VOLUME" header)" = Detached ] || fail "header is not Detached"
header=$(jq -r '.volumes[0].headerPath' "$WORK/state/state.json")
[ -f "$header" ] || fail "the state file names no header file ('$header')"
case "$header" in "$WORK/headers/"*) ;; *) fail "the header is not in header-dir: $header" ;; esac
[ "$(stat -c %a "$header")" = 600 ] || fail "the header file is not 0600"
cryptsetup isLuks "$VOLUME" && fail "a detached-header volume has a LUKS header on the device"

# Without the state file, header-dir is scanned.
stop_aded || fail "aded did not stop"
rm -f "$WORK/state/state.json"
start_aded
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted without the state file"

key=$WORK/key
"$RESOLVE" --config "$WORK/ade.conf" --header "$header" --output "$key" "$VOLUME" 2>/dev/null || fail "cannot resolve the key"
cryptsetup open --test-passphrase --header "$header" --key-file "$key" "$VOLUME" || fail "the key does not open it"
cp "$header" "$WORK/copy.header"
cp --sparse=always "$WORK/xfs.img" "$WORK/copy.img"
copy=$(losetup -f --show "$WORK/copy.img")
LOOPS+=("$copy")
cryptsetup reencrypt -q --decrypt --header "$WORK/copy.header" --key-file "$key" "$copy" >/dev/null 2>&1 ||
        fail "stock cryptsetup cannot decrypt a copy"
[ "$(sha256sum <"$copy")" = "$sum" ] || fail "the decrypted copy differs from the original device"
pass
