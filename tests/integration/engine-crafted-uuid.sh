#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 6: a LUKS2 header whose UUID is "../../…" (libcryptsetup loads any text there; the
# two binary headers are patched and their checksums recomputed, as a hostile disk would carry)
# must not make the engine write outside header-dir: rotate, update-token and decrypt refuse, with
# the reason in the log, and nothing appears outside header-dir. Also the engine's own names:
# a UUID asked of encrypt that is not one is refused before anything is written.
. "$(dirname "$0")/engine-lib.sh"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

KEY="$WORK/key"; newkey "$KEY"
NEW="$WORK/newkey"; newkey "$NEW"
escape="ae$$$RANDOM"
crafted="../../../../../tmp/$escape"
[ ${#crafted} -lt 40 ] || fail "the crafted UUID is too long for the header's field"

# set_uuid HEADER_FILE UUID: rewrites the UUID of both LUKS2 binary headers and their checksums.
set_uuid() {
        python3 - "$1" "$2" <<'PY'
import hashlib, struct, sys
path, uuid = sys.argv[1], sys.argv[2].encode()
with open(path, "r+b") as f:
    data = bytearray(f.read())
    size = struct.unpack(">Q", data[8:16])[0]
    for off in (0, size):
        assert data[off:off + 6] in (b"LUKS\xba\xbe", b"SKUL\xba\xbe"), "no LUKS2 header at %d" % off
        data[off + 168:off + 208] = uuid.ljust(40, b"\0")
        data[off + 448:off + 512] = bytes(64)
        data[off + 448:off + 480] = hashlib.sha256(bytes(data[off:off + size])).digest()
    f.seek(0)
    f.write(data)
PY
}

img=$(new_image vol.img 160)
populate "$img" ext4 8
loop=$(attach "$img")
"$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" --detached encrypt "$loop" "$KEY" > "$WORK/out" ||
        fail "encrypt failed"
hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
set_uuid "$hdr" "$crafted"
[ "$("$TOOL" --header "$hdr" status "$loop" | sed -n 's/^uuid=//p')" = "$crafted" ] ||
        fail "libcryptsetup does not load the crafted UUID: the test proves nothing"
before=$(sha256sum < "$hdr")

for cmd in rotate update-token decrypt; do
        args=("$loop" "$KEY"); [ $cmd = rotate ] && args+=("$NEW")
        rc=0; "$TOOL" --debug --quiet --header-dir "$HDIR" --header "$hdr" "$cmd" "${args[@]}" > "$WORK/out" 2>&1 || rc=$?
        [ $rc -eq 1 ] || fail "$cmd with a crafted UUID did not fail (exit $rc)"
        grep -q "is not of the form" "$WORK/out" || fail "$cmd: the log does not say why: $(tail -3 "$WORK/out")"
        ls /tmp/"$escape"* >/dev/null 2>&1 && { rm -f /tmp/"$escape"*; fail "$cmd wrote a file outside header-dir"; }
        [ "$(find "$HDIR" -type f | wc -l)" -eq 1 ] || fail "$cmd left a file in header-dir: $(ls "$HDIR")"
        [ "$(sha256sum < "$hdr")" = "$before" ] || fail "$cmd changed the header"
        ok "$cmd refuses a header whose UUID is '$crafted'; nothing written anywhere"
done

detach "$loop"
img2=$(new_image vol2.img 160)
loop=$(attach "$img2")
rc=0; "$TOOL" --quiet --header-dir "$HDIR" --uuid "$crafted" --detached encrypt "$loop" "$KEY" > "$WORK/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "encrypt with a UUID that is not one did not fail (exit $rc)"
[ "$(find "$HDIR" -type f | wc -l)" -eq 1 ] || fail "encrypt with a bad UUID left a file in header-dir"
ok "encrypt refuses a UUID that is not one before writing anything"
