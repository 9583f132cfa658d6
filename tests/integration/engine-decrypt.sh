#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Decryption by the engine, both header kinds: stopped at 30%, killed inside a hotzone after 60%,
# resumed; the device is then plaintext with every file as before. An attached header is first
# exported to header-dir (0600), and that file is removed once decryption ends.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"

for kind in attached detached; do
        img=$(new_image "$kind.img" 256)
        populate "$img" ext4 60  # resize2fs -P must allow the 32 MiB shrink: 100 MiB sometimes does not
        opts=(--header-dir "$HDIR" --run-dir "$WORK/run" --hotzone 16777216)
        [ $kind = detached ] && opts+=(--detached)
        loop=$(attach "$img")
        "$TOOL" --quiet "${opts[@]}" encrypt "$loop" "$KEY" > "$WORK/out" || fail "$kind: encrypt failed"
        marker_absent "$loop"
        hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
        hopt=(); [ -n "$hdr" ] && hopt=(--header "$hdr")

        rc=0; "$TOOL" "${opts[@]}" "${hopt[@]}" --cancel-at 30 decrypt "$loop" "$KEY" > "$WORK/out" || rc=$?
        [ $rc -eq 3 ] || fail "$kind: cancel did not stop the decryption (exit $rc): $(tail -3 "$WORK/out")"
        if [ $kind = attached ]; then
                hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
                [ -f "$hdr" ] || fail "attached: no exported header"
                case $hdr in "$HDIR"/*) ;; *) fail "attached: header exported outside header-dir: $hdr" ;; esac
                [ "$(stat -c %a "$hdr")" = 600 ] || fail "attached: exported header mode $(stat -c %a "$hdr")"
                cryptsetup isLuks "$loop" && fail "attached: the device still looks like LUKS"
                hopt=(--header "$hdr")
                ok "attached: header exported to header-dir, 0600; the device no longer looks like LUKS"
        fi
        "$TOOL" "${hopt[@]}" status "$loop" | grep -q '^state=clean$' || fail "$kind: not in a clean stop after cancel"
        ok "$kind: decryption stops cleanly at 30%"

        rc=0; "$TOOL" --quiet "${opts[@]}" encrypt "$loop" "$KEY" > "$WORK/out" 2>&1 || rc=$?
        [ $rc -ne 0 ] || fail "$kind: encrypt during an unfinished decryption succeeded"
        "$TOOL" "${hopt[@]}" status "$loop" | grep -q '^state=clean$' || fail "$kind: encrypt changed the decryption state"
        ok "$kind: encrypt is refused while a decryption is unfinished"

        kill_mid_hotzone "$loop" "${hopt[1]:-}" "${opts[@]}" "${hopt[@]}" --crash-at 60 resume
        ok "$kind: SIGKILL inside a hotzone of the decryption leaves state crash"

        # No --header: the engine finds the header in header-dir by the device its token names.
        "$TOOL" --quiet "${opts[@]}" decrypt "$loop" "$KEY" > "$WORK/out3" || fail "$kind: resume failed: $(cat "$WORK/out3")"
        [ -e "$hdr" ] && fail "$kind: header file $hdr left after decryption"
        cryptsetup isLuks "$loop" && fail "$kind: still LUKS"
        ok "$kind: decryption resumed to the end, header found in header-dir by device; header file removed"

        verify_files "$loop" "$img.sha"
        ok "$kind: plaintext again, every file's sha256 matches"
        detach "$loop"
        rm -f "$img"
done
