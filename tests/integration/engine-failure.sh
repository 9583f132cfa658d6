#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Failures inside an encryption: before anything is written the device stays byte-for-byte
# unchanged; after the shrink and before the header the filesystem grows back to the whole
# device with every file intact; a crash (exit) right after the shrink is finished by the next run.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
img=$(new_image f.img 256)
populate "$img" ext4 60
loop=$(attach "$img")
blocks() { dumpe2fs -h "$loop" 2>/dev/null | sed -n 's/^Block count: *//p'; }
full=$(blocks)

before=$(sha256sum < "$loop")
rc=0; "$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" --hook-fail planned encrypt "$loop" "$KEY" > "$WORK/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "failure after planning: exit $rc"
[ "$(sha256sum < "$loop")" = "$before" ] || fail "failure after planning changed the device"
ok "failure after the read-only checks: device byte-for-byte unchanged"

rc=0; "$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" --hook-fail shrunk encrypt "$loop" "$KEY" > "$WORK/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "failure after the shrink: exit $rc"
cryptsetup isLuks "$loop" && fail "failure after the shrink left a LUKS header"
[ "$(blocks)" = "$full" ] || fail "filesystem not grown back: $(blocks) blocks instead of $full"
verify_files "$loop" "$img.sha"
ok "failure after the shrink: no header, filesystem grown back, every file intact"

rc=0; "$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" --hook-exit shrunk encrypt "$loop" "$KEY" > "$WORK/out" 2>&1 || rc=$?
[ $rc -eq 9 ] || fail "crash after the shrink: exit $rc"
"$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" encrypt "$loop" "$KEY" > "$WORK/out" || fail "rerun after the crash failed"
"$TOOL" status "$loop" | grep -q '^state=finished$' || fail "not finished after the rerun"
detach "$loop"
plain=$(stock_decrypt "$img")
verify_files "$plain" "$img.sha"
ok "crash after the shrink: the next run finishes, every file intact"
