#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Encryption stopped cleanly at 30%, killed with SIGKILL at 50% (between hotzones) and after 70%
# (inside one: CRASH state), then resumed: the data is identical. For the header in front (datashift) and for a detached header.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"

for kind in attached detached; do
        img=$(new_image "$kind.img" 256)
        populate "$img" ext4 60  # resize2fs -P must allow the 32 MiB shrink: 100 MiB sometimes does not
        opts=(--header-dir "$HDIR" --run-dir "$WORK/run")
        # A 16 MiB hotzone gives the detached run real steps to stop between.
        [ $kind = detached ] && opts+=(--detached --hotzone 16777216)
        loop=$(attach "$img")

        rc=0; "$TOOL" "${opts[@]}" --cancel-at 30 encrypt "$loop" "$KEY" > "$WORK/out" || rc=$?
        [ $rc -eq 3 ] || fail "$kind: cancel did not stop the encryption (exit $rc)"
        hdr=$(sed -n 's/^header_path=//p' "$WORK/out")
        hopt=(); [ $kind = detached ] && hopt=(--header "$hdr")
        "$TOOL" "${hopt[@]}" status "$loop" | grep -q '^state=clean$' || fail "$kind: not in a clean stop after cancel"
        ok "$kind: cancel at 30% stops cleanly"

        kill_when_paused "$WORK/out2" "${opts[@]}" "${hopt[@]}" --pause-at 50 resume "$loop" "$KEY"
        state=$("$TOOL" "${hopt[@]}" status "$loop" | sed -n 's/^state=//p')
        case $state in crash|clean) ;; *) fail "$kind: state after SIGKILL is $state" ;; esac
        ok "$kind: SIGKILL at 50% between hotzones leaves state $state"

        # Now a SIGKILL inside a hotzone: the tool kills itself once the metadata marks a hotzone
        # in flight (its data half written). libcryptsetup's metadata then says CRASH, and the next
        # run must recover on its own.
        kill_mid_hotzone "$loop" "${hopt[1]:-}" "${opts[@]}" "${hopt[@]}" --crash-at 70 resume
        state=$STATE
        ok "$kind: SIGKILL inside a hotzone leaves state $state"

        "$TOOL" --quiet "${opts[@]}" "${hopt[@]}" resume "$loop" "$KEY" > "$WORK/out3" || fail "$kind: resume failed: $(cat "$WORK/out3")"
        "$TOOL" "${hopt[@]}" status "$loop" | grep -q '^state=finished$' || fail "$kind: not finished after resume"
        ok "$kind: resume finishes"

        marker_absent "$loop"
        detach "$loop"
        plain=$(stock_decrypt "$img" "$hdr")
        verify_files "$plain" "$img.sha"
        ok "$kind: data identical after cancel, kill and resume"
        rm -f "$img" "$plain"
done
