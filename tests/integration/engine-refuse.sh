#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Devices the engine refuses stay byte-for-byte unchanged: too small, swap, mounted, already LUKS, and any device while the escrow is not confirmed or the
# SecretURL is not versioned.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"

# refused NAME IMAGE SKIP_OR_EMPTY [tool options...]: encrypt must fail and leave the image alone
refused() {
        local name=$1 img=$2 skip=$3 before loop
        shift 3
        before=$(sha256sum < "$img")
        loop=$(attach "$img")
        if [ -n "$skip" ]; then
                "$TOOL" probe "$loop" | grep -q "^skip=$skip\$" || fail "$name: not classified $skip"
        fi
        if "$TOOL" --quiet --header-dir "$HDIR" "$@" encrypt "$loop" "$KEY" > "$WORK/out" 2>&1; then
                fail "$name: encrypt succeeded"
        fi
        detach "$loop"
        [ "$(sha256sum < "$img")" = "$before" ] || fail "$name: the device changed"
        [ -z "$(ls -A "$HDIR" 2>/dev/null)" ] || fail "$name: something was written to header-dir"
        ok "$name: refused, device unchanged"
}

small=$(new_image small.img 100)
l=$(attach "$small"); make_fs ext4 "$l" small; detach "$l"
refused "too small (100 MiB)" "$small" too-small

swap=$(new_image swap.img 200)
l=$(attach "$swap"); mkswap -q "$l" >/dev/null 2>&1 || mkswap "$l" >/dev/null; detach "$l"
refused "swap" "$swap" swap

luks=$(new_image luks.img 200)
l=$(attach "$luks")
cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$KEY" "$l"
detach "$l"
refused "already LUKS" "$luks" luks

plain=$(new_image plain.img 200)
l=$(attach "$plain"); make_fs ext4 "$l" plain; detach "$l"
refused "escrow not confirmed" "$plain" "" --no-escrow
refused "unversioned SecretURL" "$plain" "" --secret-url https://contoso.vault.azure.net/secrets/abc
refused "format-all without confirmation" "$plain" "" --format-all

# A mounted volume is refused offline (ade never unmounts behind the operator's back).
before=$(sha256sum < "$plain")
l=$(attach "$plain")
mkdir -p "$WORK/m"; mount -o ro "$l" "$WORK/m"; MOUNTS+=("$WORK/m")
"$TOOL" --quiet --header-dir "$HDIR" encrypt "$l" "$KEY" > "$WORK/out" 2>&1 && fail "mounted: encrypt succeeded"
grep -q 'Device or resource busy' "$WORK/out" || fail "mounted: not refused as busy: $(cat "$WORK/out")"
umount_last; detach "$l"
[ "$(sha256sum < "$plain")" = "$before" ] || fail "mounted: the device changed"
ok "mounted: refused, device unchanged"
