#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Key rotation killed at each of its points (after the new escrow, after the keyslot add, after the
# token swap, after the old keyslot's removal): the volume always opens with the old key file or
# the new one, and running the rotation again finishes it. The data survives every rotation.
. "$(dirname "$0")/engine-lib.sh"

img=$(new_image rot.img 200)
populate "$img" ext4 40
KEY="$WORK/key0"; newkey "$KEY"
loop=$(attach "$img")
"$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" encrypt "$loop" "$KEY" > "$WORK/out" || fail "encrypt failed"

opens() { cryptsetup open --test-passphrase --key-file "$1" "$loop" 2>/dev/null; }
url() { echo "https://contoso.vault.azure.net/secrets/rot-$1/00000000000000000000000000000$1"; }

n=0
for point in escrowed rotate-keyslot-added rotate-token-swapped rotate-old-removed; do
        old="$WORK/key$n"; new="$WORK/key$((n + 1))"; newkey "$new"
        if [ $point != escrowed ]; then
                # The new secret is escrowed (by the daemon) before the engine is called; crash inside.
                rc=0; "$TOOL" --header-dir "$HDIR" --secret-url "$(url $((n + 1)))" --hook-exit $point \
                        rotate "$loop" "$old" "$new" > "$WORK/out" 2>&1 || rc=$?
                [ $rc -eq 9 ] || fail "$point: the rotation did not stop there (exit $rc)"
        fi
        opens "$old" || opens "$new" || fail "$point: neither key file opens the volume"
        ok "$point: after a crash the volume opens with the old or the new key file"

        "$TOOL" --header-dir "$HDIR" --secret-url "$(url $((n + 1)))" rotate "$loop" "$old" "$new" > "$WORK/out" 2>&1 \
                || fail "$point: rotation rerun failed: $(cat "$WORK/out")"
        opens "$new" || fail "$point: the new key file does not open"
        opens "$old" && fail "$point: the old key file still opens"
        "$TOOL" token "$loop" | grep -q "^SecretURL=$(url $((n + 1)))\$" || fail "$point: token not swapped"
        [ "$(cryptsetup luksDump "$loop" | grep -cE '^  [0-9]+: luks2')" -eq 1 ] || fail "$point: not exactly one keyslot"
        ok "$point: rerun finishes: new key only, token names the new secret, one keyslot"
        n=$((n + 1))
done

[ "$(ls "$HDIR"/*.backup 2>/dev/null | wc -l)" -eq 1 ] || fail "not exactly one header backup: $(ls "$HDIR")"
[ "$(stat -c %a "$(ls "$HDIR"/*.backup)")" = 600 ] || fail "header backup is not 0600"
cryptsetup luksDump "$(ls "$HDIR"/*.backup)" >/dev/null || fail "the header backup is not a LUKS2 header"
ok "header backup in header-dir, 0600, a LUKS2 header; older ones pruned after each successful rotation"

rc=0; "$TOOL" --header-dir "$HDIR" rotate "$loop" "$WORK/key0" "$WORK/key9" > "$WORK/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "rotation with a wrong old key and a missing new key succeeded"
ok "rotation with key files that open nothing is refused"

rc=0; newkey "$WORK/keyX"; "$TOOL" --header-dir "$HDIR" rotate "$loop" "$WORK/key0" "$WORK/keyX" > "$WORK/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "rotation with a stale old key succeeded"
opens "$WORK/key$n" || fail "a refused rotation broke the current key"
ok "rotation with a stale old key file is refused, current key still opens"

# A new KEK alone: the same key file re-wrapped into a new secret; only the token changes.
slot=$("$TOOL" token "$loop" | sed -n 's/^keyslot=//p')
kek=https://contoso.vault.azure.net/keys/kek2/0123456789abcdef0123456789abcdef
rc=0; "$TOOL" --header-dir "$HDIR" --no-escrow --secret-url "$(url 8)" --kek-url "$kek" update-token "$loop" "$WORK/key$n" \
        > "$WORK/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "token update without a confirmed escrow succeeded"
"$TOOL" token "$loop" | grep -q "^SecretURL=$(url $n)\$" || fail "a refused token update changed the token"
ok "token update without a confirmed escrow is refused, token unchanged"

"$TOOL" --header-dir "$HDIR" --secret-url "$(url 8)" --kek-url "$kek" update-token "$loop" "$WORK/key$n" > "$WORK/out" 2>&1 \
        || fail "token update failed: $(cat "$WORK/out")"
"$TOOL" token "$loop" > "$WORK/tok"
grep -q "^SecretURL=$(url 8)\$" "$WORK/tok" && grep -q "^KeyEncryptionKeyURL=$kek\$" "$WORK/tok" || fail "token not updated"
grep -q "^keyslot=$slot\$" "$WORK/tok" || fail "token no longer bound to keyslot $slot"
opens "$WORK/key$n" || fail "the key file no longer opens after a token update"
ok "new KEK: token names the new secret and KEK, same keyslot, same key file opens"

detach "$loop"
KEY="$WORK/key$n"
plain=$(stock_decrypt "$img")
verify_files "$plain" "$img.sha"
ok "data intact after four rotations"
