#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SIGKILL after the last hotzone, while libcryptsetup writes its finishing metadata (wipe of the
# unused area, keyslots destroyed, requirement flag cleared in several writes). libcryptsetup 2.6
# itself cannot resume from there (a datashift encryption fails with "No segments to set", a
# decryption has lost its keyslot); the engine must finish on its own: encryption leaves a clean
# header (one crypt segment, our keyslot and token) that stock cryptsetup decrypts to the same
# files; decryption leaves plaintext and no header file. Both header kinds, two kill points.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"

for kind in attached detached; do
        for delay in 0 5000; do
                img=$(new_image "$kind.img" 200)
                populate "$img" ext4 40
                opts=(--header-dir "$HDIR" --run-dir "$WORK/run" --hotzone 16777216)
                [ $kind = detached ] && opts+=(--detached)
                loop=$(attach "$img")

                rc=0; ADE_TEST_CRASH_DELAY_US=$delay "$TOOL" --quiet "${opts[@]}" --crash-at 100 encrypt "$loop" "$KEY" \
                        > "$WORK/out" 2>&1 || rc=$?
                [ $rc -eq 137 ] || [ $rc -eq 0 ] || fail "$kind/$delay: encrypt ended with $rc: $(tail -3 "$WORK/out")"
                hdr=""; [ $kind = detached ] && hdr=$(ls "$HDIR"/*.header)
                hopt=(); [ -n "$hdr" ] && hopt=(--header "$hdr")
                "$TOOL" --quiet "${opts[@]}" "${hopt[@]}" resume "$loop" "$KEY" > "$WORK/out" 2>&1 ||
                        fail "$kind/$delay: resume after a kill at the end of encryption failed: $(tail -3 "$WORK/out")"
                "$TOOL" "${hopt[@]}" status "$loop" | grep -q '^state=finished$' || fail "$kind/$delay: encryption not finished"
                check_dump "$loop" "$hdr"
                marker_absent "$loop"
                ok "$kind/$delay: killed at the end of encryption (exit $rc), finished by the next run; header clean"

                rc=0; ADE_TEST_CRASH_DELAY_US=$delay "$TOOL" --quiet "${opts[@]}" "${hopt[@]}" --crash-at 100 decrypt "$loop" "$KEY" \
                        > "$WORK/out" 2>&1 || rc=$?
                [ $rc -eq 137 ] || [ $rc -eq 0 ] || fail "$kind/$delay: decrypt ended with $rc: $(tail -3 "$WORK/out")"
                # No --header: the engine finds what is left in header-dir by the device its token names.
                "$TOOL" --quiet "${opts[@]}" decrypt "$loop" "$KEY" > "$WORK/out" 2>&1 ||
                        fail "$kind/$delay: decrypt after a kill at the end of decryption failed: $(tail -3 "$WORK/out")"
                cryptsetup isLuks "$loop" && fail "$kind/$delay: still LUKS after decryption"
                left=$(find "$HDIR" -name '*header' | wc -l)
                [ "$left" -eq 0 ] || fail "$kind/$delay: $left header file(s) left in header-dir after decryption"
                verify_files "$loop" "$img.sha"
                ok "$kind/$delay: killed at the end of decryption (exit $rc), finished by the next run; files identical"

                detach "$loop"
                rm -f "$img" "$HDIR"/*
        done
done
