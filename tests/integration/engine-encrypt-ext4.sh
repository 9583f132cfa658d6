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
