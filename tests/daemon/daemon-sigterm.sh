#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SIGTERM during an encryption: aded stops the job at a hotzone boundary and exits 0, leaving the
# volume resumable; started again it finishes on its own.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 1024
start_emulator
write_config
start_aded

adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$VOLUME"
stop_aded || fail "aded did not exit 0 on SIGTERM"
grep -q "stopped" "$WORK/aded.log" || fail "aded did not log its stop"
status=$(cryptsetup luksDump "$VOLUME" 2>/dev/null | grep -c "online-reencrypt\|reencrypt" || true)
[ "$status" -gt 0 ] || fail "no reencryption in progress left in the header: it was not stopped midway"

start_aded
wait_for_state "$VOLUME" Encrypted 120
[ "$(secrets_count)" = 1 ] || fail "expected one escrowed secret, found $(secrets_count)"
check_files_encrypted "$VOLUME" "$MANIFEST"
pass
