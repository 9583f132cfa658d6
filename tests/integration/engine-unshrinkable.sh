#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An ext4 that resize2fs will not shrink by 32 MiB takes the detached path and keeps every byte:
# after stock decryption the whole image is identical to the original.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
img=$(new_image full.img 160)
l=$(attach "$img")
make_fs ext4 "$l" full
mkdir -p "$WORK/mnt"; mount "$l" "$WORK/mnt"; MOUNTS+=("$WORK/mnt")
# Fill it until the filesystem is full: resize2fs -P then leaves no 32 MiB to give.
fill "$WORK/mnt" 140 2>/dev/null || true
manifest "$WORK/mnt" > "$img.sha"
umount_last; detach "$l"
orig=$(sha256sum < "$img")

loop=$(attach "$img")
"$TOOL" plan --header-dir "$HDIR" "$loop" > "$WORK/plan"
grep -q '^header=Detached$' "$WORK/plan" || fail "plan is not detached: $(cat "$WORK/plan")"
grep -q 'resize2fs cannot shrink' "$WORK/plan" || fail "plan does not say why"
ok "plan: detached, because resize2fs cannot shrink"

[ "$(sha256sum < "$img")" = "$orig" ] || fail "planning changed the device"
ok "planning is read-only"

"$TOOL" --quiet --header-dir "$HDIR" encrypt "$loop" "$KEY" > "$WORK/out" || fail "encrypt failed"
hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
marker_absent "$loop"
ok "encrypted with a detached header"
detach "$loop"

plain=$(stock_decrypt "$img" "$hdr")
[ "$(sha256sum < "$plain")" = "$orig" ] || fail "decrypted image differs from the original"
ok "decrypted image is byte-for-byte the original"
