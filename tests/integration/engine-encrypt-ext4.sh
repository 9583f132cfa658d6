#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An ext4 volume full of random files is encrypted in place with the header in front (shrink +
# datashift); stock cryptsetup then decrypts a copy and every file is as before.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
img=$(new_image ext4.img 256)
# resize2fs -P is pessimistic: with 100 MiB of files its minimum sometimes exceeds 224 MiB.
populate "$img" ext4 60

loop=$(attach "$img")
"$TOOL" plan --header-dir "$HDIR" "$loop" > "$WORK/plan"
grep -q '^header=Attached$' "$WORK/plan" || fail "plan is not attached: $(cat "$WORK/plan")"
grep -q '^shrink=yes$' "$WORK/plan" || fail "plan does not shrink"
ok "plan: attached header after a shrink"

"$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" encrypt "$loop" "$KEY" > "$WORK/out" || fail "encrypt failed"
grep -q '^done$' "$WORK/out" || fail "encrypt did not finish"
ok "encrypt finished"

[ -z "$(ls -A "$WORK/run")" ] || fail "temporary header left in the run folder"
ok "no temporary header left behind"

check_dump "$loop"
ok "luksDump: aes-xts-plain64, 512-bit key, one crypt segment, token, PBKDF2 1000"

"$TOOL" status "$loop" | grep -q '^state=finished$' || fail "status is not finished"
"$TOOL" token "$loop" | grep -q '^SecretURL=https://contoso.vault.azure.net/secrets/' || fail "token not readable"
ok "status finished, token read back"

cryptsetup open --test-passphrase --key-file "$KEY" "$loop" || fail "stock cryptsetup refuses the key file"
ok "stock cryptsetup accepts the key file"

marker_absent "$loop"
ok "no plaintext marker on the raw device"
detach "$loop"

plain=$(stock_decrypt "$img")
verify_files "$plain" "$img.sha"
ok "stock cryptsetup decrypts a copy; every file's sha256 matches"

# The header prepared ahead (as aded does while a volume is still mounted, for online encryption):
# made without touching the device, then used by the encryption, which removes it.
img2=$(new_image ext4-prepared.img 256)
populate "$img2" ext4 60
loop=$(attach "$img2")
before=$(sha256sum < "$loop")
"$TOOL" --run-dir "$WORK/run" prepare "$loop" "$KEY" > "$WORK/out" || fail "prepare failed"
prepared=$(sed -n 's/^prepared=//p' "$WORK/out")
case $prepared in "$WORK/run/"*) ;; *) fail "prepared header not in the run folder: $prepared" ;; esac
[ "$(sha256sum < "$loop")" = "$before" ] || fail "preparing a header changed the device"
cryptsetup isLuks --type luks2 "$prepared" || fail "the prepared header is not LUKS2"
ok "prepare: a LUKS2 header in the run folder; the device untouched"

"$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" --prepared-header "$prepared" encrypt "$loop" "$KEY" \
        > "$WORK/out" || fail "encrypt with the prepared header failed"
[ -z "$(ls -A "$WORK/run")" ] || fail "the prepared header was left in the run folder"
check_dump "$loop"
[ "$(cryptsetup luksUUID "$loop")" = "$(sed -n 's/^uuid=//p' <("$TOOL" status "$loop"))" ] || fail "status disagrees on the UUID"
marker_absent "$loop"
detach "$loop"
plain=$(stock_decrypt "$img2")
verify_files "$plain" "$img2.sha"
ok "encrypt with the prepared header: one crypt segment, token, PBKDF2 1000; stock cryptsetup decrypts a copy to the same files"
