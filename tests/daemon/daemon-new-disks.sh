#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# New data disks: once an Enable enrolled the machine, aded's own pass at start (after the settle
# period) encrypts a data volume that appeared since, with the enrollment's choices, and leaves an
# empty one alone, saying why in its log and in Show. A volume the operator disabled stays plain
# through the next pass, a second pass changes nothing, and disabling every data volume ends the
# enrollment. (udev's events run the same pass in the Debian guest: tests/vm/test-debian-service.sh.)
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
A=$VOLUME
start_emulator
write_config
start_aded
adectl enable --volume-type data --skip-snapshot-check >"$WORK/out" 2>&1 || fail "enable failed: $(cat "$WORK/out")"
[ "$(volume_field "$A" state)" = Encrypted ] || fail "$A is not Encrypted"
stop_aded

# Two disks arrive while aded is down: one with files, one empty.
make_volume 200
B=$VOLUME
MANIFEST_B=$MANIFEST
truncate -s 200M "$WORK/empty.img"
C=$(losetup -f --show "$WORK/empty.img") || fail "losetup failed"
LOOPS+=("$C")
write_config
printf 'new-disk-settle = 1s\n' >>"$WORK/ade.conf"

# wait_for_log TEXT: until aded's log holds TEXT (the pass logs what it left alone).
wait_for_log() {
        for _ in $(seq 1 600); do
                grep -qF "$1" "$WORK/aded.log" && return 0
                kill -0 "$ADED_PID" 2>/dev/null || fail "aded exited"
                sleep 0.1
        done
        fail "aded never logged '$1'"
}

: >"$WORK/aded.log"
start_aded
wait_for_log "is left alone: no filesystem"
wait_for_state "$B" Encrypted 120
check_files_encrypted "$B" "$MANIFEST_B"
[ "$(volume_field "$C" state)" = NotEncrypted ] || fail "the empty disk $C was touched"
volume_field "$C" message | grep -q "^$C is left alone: no filesystem: aded encrypts an empty disk by itself only when enrolled with --format-all" ||
        fail "show does not say why $C is left alone: $(volume_field "$C" message)"
secrets=$(emulator_state | jq '.secrets | length')
[ "$secrets" = 2 ] || fail "expected the secrets of $A and $B, found $secrets"

# The operator disables A: the next pass leaves it plain, and changes nothing else.
adectl disable --volume-type data "$A" >"$WORK/out" 2>&1 || fail "disable $A failed: $(cat "$WORK/out")"
[ "$(volume_field "$A" state)" = NotEncrypted ] || fail "$A is not NotEncrypted after disable"
jq -e --arg id "$(adectl show --json | jq -r '.enrollment.volumeType')" '.enrollment.excluded | length == 1' \
        "$WORK/state/state.json" >/dev/null || fail "the disabled volume is not excluded in the state file"
stop_aded
: >"$WORK/aded.log"
start_aded
wait_for_log "is left alone: disabled by the operator"
wait_for_log "is left alone: no filesystem"
[ "$(volume_field "$A" state)" = NotEncrypted ] || fail "the pass encrypted $A again after the operator disabled it"
volume_field "$A" message | grep -q "^$A is left alone: disabled by the operator" || fail "show does not say why $A is left alone"
[ "$(volume_field "$B" state)" = Encrypted ] || fail "$B changed"
[ "$(emulator_state | jq '.secrets | length')" = "$secrets" ] || fail "the second pass escrowed another secret"
check_files_on_plain "$A" "$WORK/vol0.manifest"

# Disabling every data volume ends the enrollment.
adectl disable --volume-type data >"$WORK/out" 2>&1 || fail "disable failed: $(cat "$WORK/out")"
adectl show --json | jq -e 'has("enrollment") | not' >/dev/null || fail "still enrolled after disabling every volume"
pass
