#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# XFS cannot shrink: the engine writes a detached header into header-dir (0600), moves no data, and
# stock cryptsetup decrypts a copy with that header back to the same files.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
img=$(new_image xfs.img 320)
populate "$img" xfs 100

loop=$(attach "$img")
"$TOOL" --quiet --header-dir "$HDIR" encrypt "$loop" "$KEY" > "$WORK/out" || fail "encrypt failed"
grep -q '^header=Detached$' "$WORK/out" || fail "not the detached path"
hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
[ -f "$hdr" ] || fail "no header file $hdr"
ok "detached header $hdr"

[ "$(stat -c %a "$hdr")" = 600 ] || fail "header file mode is $(stat -c %a "$hdr")"
ok "header file is 0600"

check_dump "$loop" "$hdr"
ok "luksDump of the header: aes-xts-plain64, 512-bit key, one crypt segment, token"

# The token names the device by its stable id: for a loop device the file behind it, which no
# other image attached at the same /dev/loopN shares.
id=$("$TOOL" probe "$loop" | sed -n 's/^stable_id=//p')
case $id in loop:*) ;; *) fail "the stable id of $loop is '$id', not its backing file" ;; esac
"$TOOL" token --header "$hdr" "$loop" | grep -qF "DeviceId=$id" || fail "token lacks the device id"
[ "$("$TOOL" --header-dir "$HDIR" find-header "$loop")" = "$hdr" ] || fail "header not found by device id"
ok "token records the device; the header is found again by it"

cryptsetup isLuks "$loop" && fail "the device itself carries a LUKS header"
ok "no LUKS header on the device"

cryptsetup open --test-passphrase --header "$hdr" --key-file "$KEY" "$loop" || fail "stock cryptsetup refuses the key file"
ok "stock cryptsetup accepts the key file with the header"

marker_absent "$loop"
ok "no plaintext marker on the raw device"
detach "$loop"

plain=$(stock_decrypt "$img" "$hdr")
verify_files "$plain" "$img.sha"
ok "stock cryptsetup decrypts a copy with the header; every file's sha256 matches"
