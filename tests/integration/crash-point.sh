#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Points of the crash matrix (crash-matrix.sh runs them all; docs/crash-matrix.md is the table), one
# after the other on one volume:
#   crash-point.sh KIND OP/POINT/LATER...
# KIND attached|detached; OP encrypt|rotate|decrypt (a volume that is not encrypted is enabled
# first for rotate and decrypt); POINT the kill point (engine:NAME or state:...; see crash-shim.c);
# LATER the points after it, comma-separated (may be empty).
# For each: aded, driven through adectl like an operator, is killed with SIGKILL at POINT; started
# again it is killed at POINT or a later one if the resume gets there; started a third time it
# finishes. The volume must then be in the intended state (Encrypted, NotEncrypted, Encrypted under
# the new secret) with its data byte-identical (files checked with stock cryptsetup and the resolved
# key, or the raw device's sha256), one keyslot, and no second secret once the first was escrowed.
# Prints one line per point: OP|KIND|POINT|first run|second run|end|secrets|keyslots|seconds.
. "$(dirname "$0")/../daemon/daemon-lib.sh"
KIND=$1
shift
SHIM=$top_builddir/tests/integration/crash-shim.so
daemon_require_root
[ -f "$SHIM" ] || skip "the crash shim is not built ($SHIM)"
# The shim reads aded's debug lines from stderr; under systemd aded would log to the journal.
unset JOURNAL_STREAM INVOCATION_ID
# An aded built with ASan wants its runtime first; the preloaded shim comes before it.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
started=$SECONDS

case $KIND in
attached)
        make_volume 160 ext4 ;;
detached)
        # No filesystem: a detached header, the data encrypted where it lies. Random data, with no
        # signature blkid would take for something (zeros where most signatures live).
        truncate -s 160M "$WORK/raw.img"
        for _ in 1 2 3; do
                head -c $((158 * 1024 * 1024)) /dev/urandom | dd of="$WORK/raw.img" bs=1M seek=1 conv=notrunc status=none
                blkid -p "$WORK/raw.img" >/dev/null 2>&1 || break
        done
        blkid -p "$WORK/raw.img" >/dev/null 2>&1 && fail "random data looks like a signature three times"
        VOLUME=$(losetup -f --show "$WORK/raw.img") || fail "losetup failed"
        LOOPS+=("$VOLUME")
        IMAGE=$WORK/raw.img ;;
esac
raw_sum=$(sha256sum <"$VOLUME")
# The emulator's keys, made once by the driver: generating them is most of its start.
if [ -n "${ADE_CRASH_EMU_KEYS:-}" ]; then
        mkdir -p "$WORK/emu"
        cp "$ADE_CRASH_EMU_KEYS"/*.pem "$ADE_CRASH_EMU_KEYS"/*.key "$WORK/emu/" 2>/dev/null
fi
start_emulator
write_config

final_state() {
        case $OP in decrypt) echo NotEncrypted ;; *) echo Encrypted ;; esac
}

# The operation, as an operator asks for it (waits for the job; fails when aded dies under it).
issue() {
        case $OP in
        encrypt) adectl enable --volume-type DATA >>"$WORK/adectl.out" 2>&1 ;;
        decrypt) adectl disable --volume-type DATA >>"$WORK/adectl.out" 2>&1 ;;
        rotate) adectl rotate >>"$WORK/adectl.out" 2>&1 ;;
        esac
}

# alive PID: running, not a zombie (one the shim killed and nobody has waited for yet).
alive() {
        local st
        st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$st" ] && [ "$st" != Z ]
}

# run_aded POINTS: starts aded with the shim armed at POINTS (comma-separated; empty: never), lets
# it resume what it resumes or, when it resumes nothing and the volume is not where OP leaves it,
# asks for OP; sets RESULT to "killed at X" or "finished".
run_aded() {
        local from mark=$WORK/mark rc
        rm -f "$mark" "$SOCKET"
        from=1
        [ -f "$WORK/aded.log" ] && from=$(($(wc -l <"$WORK/aded.log") + 1))
        ADE_CRASH_AT=$1 ADE_CRASH_MARK=$mark ADE_CRASH_STATE=$WORK/state/state.json LD_PRELOAD=$SHIM \
                "$ADED" --config "$WORK/ade.conf" --log-level debug >>"$WORK/aded.log" 2>&1 &
        ADED_PID=$!
        for _ in $(seq 1 200); do
                alive "$ADED_PID" || break
                [ -S "$SOCKET" ] && "$ADECTL" show >/dev/null 2>&1 && break
                sleep 0.05
        done
        if alive "$ADED_PID"; then
                if tail -n +"$from" "$WORK/aded.log" | grep -q "resuming the"; then
                        for _ in $(seq 1 1200); do
                                alive "$ADED_PID" || break
                                tail -n +"$from" "$WORK/aded.log" | grep -qE "job on .* (finished|stopped|failed)" && break
                                sleep 0.05
                        done
                elif [ "$(volume_field "$VOLUME" state)" != "$(final_state)" ] || [ -n "$1" ]; then
                        issue
                fi
        fi
        if alive "$ADED_PID"; then
                stop_aded || fail "aded did not stop cleanly"
                tail -n +"$from" "$WORK/aded.log" | grep -E "job on .* failed" && fail "the job failed"
                RESULT=finished
                return
        fi
        # (The shell's "Killed" notice goes nowhere: the kill is the point.)
        { wait "$ADED_PID"; } 2>/dev/null
        rc=$?
        ADED_PID=""
        [ $rc = 137 ] || fail "aded ended with $rc, not by the shim's SIGKILL: $(tail -n 5 "$WORK/aded.log")"
        [ -s "$mark" ] || fail "aded was killed, but not by the shim"
        RESULT="killed at $(cat "$mark")"
}

# run_point: OP, POINT and LATER are set.
run_point() {
        local point_started=$SECONDS
        POINTS_DONE=$((${POINTS_DONE:-0} + 1))
        # ---- the volume before OP -------------------------------------------------------------------
        if [ "$OP" != encrypt ] && [ "$(cryptsetup isLuks "$VOLUME" && echo y)" != y ] &&
                [ -z "$(find "$WORK/headers" -type f -name '*.header')" ]; then
                start_aded
                adectl enable --volume-type DATA >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable failed"; }
                stop_aded || fail "aded did not stop"
        fi
        secrets_before=$(secrets_count)
        secret_before=$(jq -r '.volumes[0].secretUrl // empty' "$WORK/state/state.json" 2>/dev/null)

        # ---- killed, killed again, finished ---------------------------------------------------------
        run_aded "$POINT" 2>>"$WORK/shell-notices"
        first=$RESULT
        [ "$first" = "killed at $POINT" ] || fail "the first run was not killed at $POINT: $first"
        run_aded "$POINT${LATER:+,$LATER}" 2>>"$WORK/shell-notices"
        second=$RESULT
        run_aded "" 2>>"$WORK/shell-notices"
        [ "$RESULT" = finished ] || fail "the third run did not finish: $RESULT"

        # ---- where the volume ended ----------------------------------------------------------------
        start_aded
        state=$(volume_field "$VOLUME" state)
        [ "$state" = "$(final_state)" ] || fail "the volume ended $state, not $(final_state)"
        header=$(jq -r '.volumes[0].headerPath // empty' "$WORK/state/state.json" 2>/dev/null)
        stop_aded || fail "aded did not stop"
        secrets=$(secrets_count)
        keyslots=-
        if [ "$OP" = decrypt ]; then
                cryptsetup isLuks "$VOLUME" && fail "still LUKS after decryption"
                [ -z "$(find "$WORK/headers" -type f -name '*header*')" ] || fail "a header file is left in header-dir"
                if [ "$KIND" = attached ]; then
                        check_files_on_plain "$VOLUME" "$MANIFEST"
                else
                        [ "$(sha256sum <"$VOLUME")" = "$raw_sum" ] || fail "the decrypted device differs from the original"
                fi
        else
                if [ "$KIND" = attached ]; then
                        keyslots=$(cryptsetup luksDump "$VOLUME" | grep -cE '^  [0-9]+: luks2')
                        check_files_encrypted "$VOLUME" "$MANIFEST"
                else
                        [ -f "$header" ] || fail "no detached header recorded"
                        keyslots=$(cryptsetup luksDump "$header" | grep -cE '^  [0-9]+: luks2')
                        key=$WORK/key.$POINTS_DONE
                        rm -f "$key" "$WORK/copy.header" "$WORK/copy.img"
                        "$RESOLVE" --config "$WORK/ade.conf" --header "$header" --output "$key" "$VOLUME" 2>"$WORK/resolve.err" || { cat "$WORK/resolve.err"; }; [ -s "$key" ] ||
                                fail "ade-resolve-key failed"
                        cp "$header" "$WORK/copy.header"
                        cp --sparse=always "$IMAGE" "$WORK/copy.img"
                        copy=$(losetup -f --show "$WORK/copy.img")
                        LOOPS+=("$copy")
                        cryptsetup reencrypt -q --decrypt --header "$WORK/copy.header" --key-file "$key" "$copy" >/dev/null 2>&1 ||
                                fail "stock cryptsetup cannot decrypt a copy"
                        [ "$(sha256sum <"$copy")" = "$raw_sum" ] || fail "the decrypted copy differs from the original device"
                        losetup -d "$copy"
                        rm -f "$key" "$WORK/copy.header" "$WORK/copy.img"
                fi
                [ "$keyslots" = 1 ] || fail "$keyslots keyslots, not 1"
        fi
        case $OP/$POINT in
        encrypt/state:encrypt:none | encrypt/state:encrypt:preconditions | encrypt/state:encrypt:keyfile | encrypt/state:encrypt:wrap)
                # Before the escrow is recorded: the record is dropped and enable runs anew; a secret
                # written but not recorded (the wrap point) stays unused in Key Vault (docs/architecture.md §4).
                ;;
        encrypt/*) [ "$secrets" = 1 ] || fail "$secrets secrets escrowed; a resume escrowed again" ;;
        rotate/*)
                [ "$secrets" = $((secrets_before + 1)) ] || fail "$secrets secrets after one rotation (was $secrets_before)"
                secret_now=$(jq -r '.volumes[0].secretUrl' "$WORK/state/state.json")
                [ "$secret_now" != "$secret_before" ] || fail "the secret did not change"
                [ "$(jq -r '.volumes[0].pendingSecretUrl // empty' "$WORK/state/state.json")" = "" ] || fail "a rotation is still pending"
                ;;
        esac
        echo "$OP|$KIND|$POINT|$first|$second|$state|$secrets|$keyslots|$((SECONDS - point_started))"
}

for spec in "$@"; do
        OP=${spec%%/*}
        rest=${spec#*/}
        POINT=${rest%%/*}
        LATER=${rest#*/}
        [ "$LATER" = "$rest" ] && LATER=
        run_point
done
