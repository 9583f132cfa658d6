#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# adectl watch streams the volumes while a job runs: it sees EncryptionInProgress, then Encrypted.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 400
start_emulator
write_config
start_aded

adectl watch --json >"$WORK/watch.out" 2>&1 &
watch_pid=$!
CLEANUPS+=("kill $watch_pid")
for _ in $(seq 1 50); do [ -s "$WORK/watch.out" ] && break; sleep 0.1; done
[ -s "$WORK/watch.out" ] || fail "watch printed nothing at start"
adectl enable --volume-type DATA >/dev/null 2>&1 || fail "enable failed"
sleep 0.5
kill $watch_pid
jq -r --arg d "$VOLUME" '.volumes[] | select(.device == $d) | .state' "$WORK/watch.out" | uniq >"$WORK/states"
grep -qx EncryptionInProgress "$WORK/states" || fail "watch never reported EncryptionInProgress: $(cat "$WORK/states")"
[ "$(tail -n 1 "$WORK/states")" = Encrypted ] || fail "watch did not end at Encrypted: $(cat "$WORK/states")"
pass
