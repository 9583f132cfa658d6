#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A disk with a mounted partition is held: the engine refuses the whole disk and leaves it
# byte-for-byte unchanged. Needs partitions on loop devices (skips where the kernel shows none).
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
# A disk whose partition is mounted is held: the whole disk is refused.
disk=$(new_image disk.img 300)
# One Linux partition from sector 2048, 200 MiB long, in an MBR written by hand (no sfdisk here).
python3 - "$disk" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(446)
    f.write(bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack('<II', 2048, 409600))
    f.seek(510)
    f.write(b'\x55\xaa')
PY
l=$(losetup -f --show -P "$disk"); LOOPS+=("$l"); echo "$l" >> "$LOOPLIST"
part="${l}p1"
if [ ! -b "$part" ]; then
        # No udev here: make the partition's node from sysfs.
        sysdev="/sys/class/block/$(basename "$l")/$(basename "$l")p1/dev"
        [ -r "$sysdev" ] || { echo "SKIP: the kernel shows no partitions of loop devices here"; exit 77; }
        part="$WORK/part1"
        mknod "$part" b "$(cut -d: -f1 "$sysdev")" "$(cut -d: -f2 "$sysdev")"
fi
make_fs ext4 "$part" part
mkdir -p "$WORK/p"; mount -o ro "$part" "$WORK/p"; MOUNTS+=("$WORK/p")
before=$(sha256sum < "$disk")
"$TOOL" probe "$l" | grep -q '^skip=holders$' || fail "held disk: not classified holders"
"$TOOL" --quiet --header-dir "$HDIR" encrypt "$l" "$KEY" > "$WORK/out" 2>&1 && fail "held disk: encrypt succeeded"
umount_last; detach "$l"
[ "$(sha256sum < "$disk")" = "$before" ] || fail "held disk: the device changed"
ok "disk with a mounted partition: refused, device unchanged"
