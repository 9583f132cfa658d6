#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 3: a decryption killed at each of its points (header backed up; header exported,
# its decryption initialised; the device's own header erased), for both header kinds, then run
# twice more (the first of them killed again at the same point when it gets there): the device
# ends plaintext, not LUKS, with every file as before and no header file left. An existing export
# that is not this device's is refused with a sentence and nothing changes; one that is a mere
# copy of this device's header (an export cut short) is replaced.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
base=$(new_image base.img 160)
populate "$base" ext4 24

points_attached="header-backed-up decrypt-header-exported decrypt-device-wiped"
points_detached="header-backed-up"

for kind in attached detached; do
        pts=points_$kind
        for point in ${!pts}; do
                img="$WORK/$kind-$point.img"
                cp --sparse=always "$base" "$img"
                opts=(--header-dir "$HDIR" --run-dir "$WORK/run" --hotzone 16777216)
                [ $kind = detached ] && opts+=(--detached)
                loop=$(attach "$img")
                "$TOOL" --quiet "${opts[@]}" encrypt "$loop" "$KEY" > "$WORK/out" || fail "$kind: encrypt failed"
                hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
                hopt=(); [ -n "$hdr" ] && hopt=(--header "$hdr")

                rc=0; "$TOOL" --quiet "${opts[@]}" "${hopt[@]}" --hook-exit "$point" decrypt "$loop" "$KEY" \
                        > "$WORK/out" 2>&1 || rc=$?
                [ $rc -eq 9 ] || fail "$kind/$point: the decryption did not stop at $point (exit $rc): $(tail -3 "$WORK/out")"
                # The retries name no header: the engine finds what header-dir holds for the device.
                # The first retry dies at the same point when it gets there again (it does not when
                # the work before it is done already); the last one finishes.
                again=finished
                for run in again finish; do
                        hook=(); [ $run = again ] && hook=(--hook-exit "$point")
                        rc=0; "$TOOL" --quiet "${opts[@]}" "${hook[@]}" decrypt "$loop" "$KEY" > "$WORK/out" 2>&1 || rc=$?
                        [ $run = again ] && [ $rc -eq 9 ] && { again="killed again"; continue; }
                        [ $rc -eq 0 ] || fail "$kind/$point: decrypt run '$run' after the kill failed (exit $rc): $(tail -3 "$WORK/out")"
                        break
                done
                cryptsetup isLuks "$loop" && fail "$kind/$point: still LUKS after decryption"
                left=$(find "$HDIR" -type f -name '*header*' | wc -l)
                [ "$left" -eq 0 ] || fail "$kind/$point: $left header file(s) left in header-dir: $(ls "$HDIR")"
                verify_files "$loop" "$base.sha"
                ok "$kind: killed at $point, retried ($again), then finished: plaintext, files identical"
                detach "$loop"
                rm -f "$img" "$HDIR"/*
        done
done

# An export under this UUID that belongs to another volume: refused, the device untouched.
img="$WORK/foreign.img"
cp --sparse=always "$base" "$img"
loop=$(attach "$img")
"$TOOL" --quiet --header-dir "$HDIR" --run-dir "$WORK/run" encrypt "$loop" "$KEY" > /dev/null || fail "encrypt failed"
uuid=$(cryptsetup luksUUID "$loop")
other=$(new_image other.img 32)
cryptsetup luksFormat -q --type luks2 --key-file "$KEY" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$other"
cryptsetup luksHeaderBackup "$other" --header-backup-file "$HDIR/$uuid.decrypt-header"
before=$(sha256sum < "$loop")
rc=0; "$TOOL" --debug --quiet --header-dir "$HDIR" decrypt "$loop" "$KEY" > "$WORK/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "a foreign export was not refused (exit $rc)"
grep -q "is not an export of the header of $loop" "$WORK/out" || fail "the refusal does not say why: $(tail -3 "$WORK/out")"
[ "$(sha256sum < "$loop")" = "$before" ] || fail "the refused decryption changed the device"
ok "a foreign export under the device's UUID is refused with a sentence; the device is untouched"

# A mere copy of the device's header under the export's name (an export cut short by an older
# aded): replaced, and the decryption finishes.
cryptsetup luksHeaderBackup "$loop" --header-backup-file "$WORK/copy.hdr"
mv "$WORK/copy.hdr" "$HDIR/$uuid.decrypt-header"
"$TOOL" --quiet --header-dir "$HDIR" decrypt "$loop" "$KEY" > "$WORK/out" 2>&1 ||
        fail "decrypt over an uninitialised copy of the header failed: $(tail -3 "$WORK/out")"
cryptsetup isLuks "$loop" && fail "still LUKS"
verify_files "$loop" "$base.sha"
ok "an uninitialised copy of the device's header is replaced; the decryption finishes"
