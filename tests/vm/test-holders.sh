#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Discovery skips what something else holds (guest/holders.sh): a GPT disk whose partition is under
# device-mapper (a linear target, then an opened LUKS volume) or mounted, and a whole disk under a
# linear target. ade's engine classifies each as "holders", refuses to encrypt it (in place and
# format-all) and leaves it byte-identical; once the holder is gone, it no longer says holders. One
# boot.
set -u
. "$(dirname "$0")/vm-lib.sh"
vm_require
command -v python3 >/dev/null || vm_skip "python3 is missing (it writes the GPT)"
vm_prepare || exit 1
vm_new_run || exit 1
[ -x "${top_builddir:-$vm_top}/tests/integration/ade-engine-tool" ] ||
        { vm_log "tests/integration/ade-engine-tool is not built (make check builds it)"; exit 1; }

# A GPT with one Linux partition from sector 2048, 200 MiB long (so that the partition itself is
# large enough for ade), written by hand: sfdisk, sgdisk and parted are not installed here.
parted=$(vm_image held-parted 300M) || exit 1
python3 - "$parted" <<'PY' || exit 1
import struct, sys, uuid, zlib

path = sys.argv[1]
with open(path, 'r+b') as f:
    f.seek(0, 2)
    last = f.tell() // 512 - 1
    first, count = 2048, 200 * 2048
    entry = struct.pack('<16s16sQQQ72s', uuid.UUID('0fc63daf-8483-4772-8e79-3d69d8e47de4').bytes_le,
                        uuid.uuid4().bytes_le, first, first + count - 1, 0, 'held'.encode('utf-16-le'))
    entries = entry + bytes(128 * 127)
    disk_guid = uuid.uuid4().bytes_le

    def header(current, backup, entries_lba):
        h = struct.pack('<8sIIIIQQQQ16sQIII', b'EFI PART', 0x00010000, 92, 0, 0, current, backup, 34,
                        last - 33, disk_guid, entries_lba, 128, 128, zlib.crc32(entries))
        h = h[:16] + struct.pack('<I', zlib.crc32(h)) + h[20:]
        return h + bytes(512 - len(h))

    # The protective MBR: one 0xEE partition over the whole disk.
    mbr = bytearray(512)
    mbr[446:462] = bytes([0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF]) + struct.pack('<II', 1, min(last, 0xFFFFFFFF))
    mbr[510:512] = b'\x55\xaa'
    f.seek(0)
    f.write(mbr + header(1, last, 2) + entries)
    f.seek((last - 32) * 512)
    f.write(entries + header(last, 1, last - 32))
PY
whole=$(vm_image held-whole 200M) || exit 1
mkfs.ext4 -q -F -L held-whole "$whole" || exit 1

vm_run "$(dirname "$0")/guest/holders.sh" "$parted:held-parted" "$whole:held-whole"
rc=$?
echo "# figure vm-seconds $VM_SECONDS s"
exit $rc
