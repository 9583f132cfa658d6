#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# crypttab and fstab (docs/architecture.md §9), on the tables of [daemon] crypttab and fstab: an
# Enable that finishes adds the volume's crypttab line (the key socket as key file) and points its
# fstab line at /dev/mapper/ade-<LUKS UUID> with _netdev,nofail, keeping every other line and a
# backup; a second volume without an fstab line gets none; Disable puts both tables back as they
# were, byte for byte. A malformed crypttab is refused with file and line, left as it was, and the
# volume is encrypted all the same.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
A=$VOLUME
MANIFEST_A=$MANIFEST
make_volume 200
B=$VOLUME
start_emulator
write_config
fs_uuid=$(blkid -o value -s UUID "$A")
cat >"$WORK/fstab" <<EOF2
# /etc/fstab: static file system information.
UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1
UUID=$fs_uuid /srv/data ext4 defaults,noatime 0 2
EOF2
printf '# <target name>\t<source device>\t<key file>\t<options>\nswap /dev/sdz2 /dev/urandom swap\n' >"$WORK/crypttab"
cp "$WORK/fstab" "$WORK/fstab.orig"
cp "$WORK/crypttab" "$WORK/crypttab.orig"
start_aded
adectl enable --volume-type DATA >"$WORK/out" 2>&1 || fail "enable failed: $(cat "$WORK/out")"
ua=$(cryptsetup luksUUID "$A")
ub=$(cryptsetup luksUUID "$B")

expected=$(cat "$WORK/crypttab.orig"; printf '%s\n' \
        "ade-$ua UUID=$ua $WORK/run/key.socket luks,_netdev,nofail,headless=true,tries=1" \
        "ade-$ub UUID=$ub $WORK/run/key.socket luks,_netdev,nofail,headless=true,tries=1")
# The two volumes finish in either order.
[ "$(sort "$WORK/crypttab")" = "$(echo "$expected" | sort)" ] ||
        fail "crypttab: $(cat "$WORK/crypttab")"
grep -qx "ade-$ua UUID=$ua $WORK/run/key.socket luks,_netdev,nofail,headless=true,tries=1" "$WORK/crypttab" ||
        fail "no crypttab line for $A"
[ "$(cat "$WORK/fstab")" = "# /etc/fstab: static file system information.
UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1
# ade: ade-$ua was: UUID=$fs_uuid /srv/data ext4 defaults,noatime 0 2
/dev/mapper/ade-$ua /srv/data ext4 defaults,noatime,_netdev,nofail,x-systemd.before=multi-user.target 0 2" ] || fail "fstab: $(cat "$WORK/fstab")"
ls "$WORK"/crypttab.ade-* >/dev/null 2>&1 || fail "no backup of crypttab"
cmp -s "$(ls "$WORK"/fstab.ade-* | head -n 1)" "$WORK/fstab.orig" || fail "the fstab backup is not the old file"

adectl disable --volume-type data >"$WORK/out" 2>&1 || fail "disable failed: $(cat "$WORK/out")"
cmp -s "$WORK/crypttab" "$WORK/crypttab.orig" || fail "crypttab after disable: $(cat "$WORK/crypttab")"
cmp -s "$WORK/fstab" "$WORK/fstab.orig" || fail "fstab after disable: $(cat "$WORK/fstab")"
check_files_on_plain "$A" "$MANIFEST_A"

# A malformed crypttab: the volume is encrypted, the table untouched, the reason said.
printf 'lonely\n' >"$WORK/crypttab"
adectl enable --volume-type DATA >"$WORK/out" 2>&1 || fail "enable with a malformed crypttab failed: $(cat "$WORK/out")"
[ "$(cat "$WORK/crypttab")" = lonely ] || fail "a malformed crypttab was changed"
grep -q "$WORK/crypttab:1: 1 fields where crypttab wants 2 to 4" "$WORK/aded.log" || fail "the refusal does not name file and line"
[ "$(volume_field "$A" state)" = Encrypted ] || fail "$A is not Encrypted"
pass
