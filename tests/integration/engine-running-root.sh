#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The running root's first step (docs/architecture.md §9): its LUKS2 header is initialised,
# detached, while the filesystem stays mounted, and nothing is written to the device; the boot
# after it opens the volume and the encryption continues online (which needs device-mapper: the
# Debian guest proves that part). Here: a mounted ext4 (read-only, so that any write to the
# device would show in its hash) and a mounted read-write XFS, on loop devices.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
OTHER="$WORK/other"; newkey "$OTHER"
BOOT="$WORK/boot-luks"

img=$(new_image root.img 160)
populate "$img" ext4 40
loop=$(attach "$img")
mount_ro "$loop" "$WORK/root"
before=$(sha256sum < "$loop")

"$TOOL" --quiet --header-dir "$BOOT" encrypt "$loop" "$KEY" > "$WORK/out" 2>&1 && fail "a mounted volume was encrypted without --running-root"
grep -q 'busy' "$WORK/out" || fail "the refusal is not 'busy': $(cat "$WORK/out")"
"$TOOL" --quiet --header-dir "$BOOT" --running-root encrypt "$loop" "$KEY" > "$WORK/out" 2>&1 && fail "the running root was encrypted beyond its header (no --init-only)"
[ -z "$(ls -A "$BOOT" 2>/dev/null)" ] || fail "a refused call left files in $BOOT: $(ls "$BOOT")"
ok "refused: a mounted volume without the running-root path, and the running root past its header"

"$TOOL" --quiet --header-dir "$BOOT" --running-root --init-only encrypt "$loop" "$KEY" > "$WORK/out" || fail "init-only of the running root failed: $(cat "$WORK/out")"
grep -q '^header=Detached$' "$WORK/out" || fail "not the detached path: $(cat "$WORK/out")"
hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
case $hdr in "$BOOT"/*) ;; *) fail "the header $hdr is not in $BOOT" ;; esac
[ "$(stat -c %a "$hdr")" = 600 ] || fail "header file mode is $(stat -c %a "$hdr")"
ok "detached header $hdr, 0600"

[ "$(sha256sum < "$loop")" = "$before" ] || fail "the device changed: init-only must write nothing to the running root"
ok "the device is byte for byte as before"

"$TOOL" --header "$hdr" status "$loop" > "$WORK/st" || fail "status failed"
grep -q '^state=clean$' "$WORK/st" || fail "the header is not an initialised reencryption: $(cat "$WORK/st")"
dump=$(cryptsetup luksDump "$hdr")
grep -q 'online-reencrypt' <<<"$dump" || fail "stock cryptsetup sees no reencryption requirement"
grep -q 'Azure_Disk_Encryption' <<<"$dump" || fail "token missing"
cryptsetup open --test-passphrase --header "$hdr" --key-file "$KEY" "$loop" || fail "stock cryptsetup refuses the key file"
cryptsetup isLuks "$loop" && fail "the device itself carries a LUKS header"
ok "stock cryptsetup: a reencryption in its header, our token, the key file opens it; no header on the device"

hsum=$(sha256sum < "$hdr")
"$TOOL" --quiet --header-dir "$BOOT" --running-root --init-only encrypt "$loop" "$KEY" > "$WORK/out" || fail "a second Enable before the reboot failed: $(cat "$WORK/out")"
[ "$(sha256sum < "$hdr")" = "$hsum" ] || fail "a second Enable changed the header"
[ "$(sha256sum < "$loop")" = "$before" ] || fail "a second Enable wrote to the device"
"$TOOL" --quiet --header-dir "$BOOT" --running-root --init-only encrypt "$loop" "$OTHER" > "$WORK/out" 2>&1 && fail "another key file was taken for the initialised root"
[ "$(sha256sum < "$hdr")" = "$hsum" ] || fail "another key file changed the header"
ok "again before the reboot: the header is kept as it is; another key file is refused"

umount_last
manifest_of() { mount_ro "$1" "$WORK/check"; manifest "$WORK/check"; umount_last; }
[ "$(manifest_of "$loop")" = "$(cat "$img.sha")" ] || fail "files differ"
detach "$loop"
ok "ext4: every file intact"

# XFS, mounted read-write and written to around the call, as a running root is.
ximg=$(new_image xroot.img 320)
populate "$ximg" xfs 40
xloop=$(attach "$ximg")
mkdir -p "$WORK/xroot"; mount "$xloop" "$WORK/xroot"; MOUNTS+=("$WORK/xroot")
echo before > "$WORK/xroot/live"; sync
# With the UUID chosen by the caller (aded records it before the header exists), the header is
# named after it: the name the boot contract's crypttab line gives it.
xuuid=$(cat /proc/sys/kernel/random/uuid)
"$TOOL" --quiet --header-dir "$BOOT" --running-root --init-only --uuid "$xuuid" encrypt "$xloop" "$KEY" > "$WORK/out" || fail "XFS: init-only of the running root failed: $(cat "$WORK/out")"
xhdr=$(sed -n 's/^header_path=//p' "$WORK/out")
[ "$xhdr" != "$hdr" ] || fail "XFS: the same header file as the ext4 volume"
[ "$xhdr" = "$BOOT/$xuuid.header" ] || fail "XFS: the header is $xhdr, not $BOOT/$xuuid.header"
cryptsetup luksDump "$xhdr" | grep -q "^UUID:[[:space:]]*$xuuid\$" || fail "XFS: the header's UUID is not $xuuid"
echo after >> "$WORK/xroot/live"; sync
umount_last
xfs_repair -n "$xloop" > /dev/null 2>&1 || fail "XFS: xfs_repair -n finds damage"
cryptsetup open --test-passphrase --header "$xhdr" --key-file "$KEY" "$xloop" || fail "XFS: stock cryptsetup refuses the key file"
mount_ro "$xloop" "$WORK/xcheck"
[ "$(cat "$WORK/xcheck/live")" = "$(printf 'before\nafter')" ] || fail "XFS: a file written after the call is not intact"
umount_last
detach "$xloop"
ok "XFS mounted read-write: header initialised, filesystem clean, files written after it intact"
