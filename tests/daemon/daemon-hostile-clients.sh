#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile clients (no NUL, 20 MiB, invalid JSON, unknown method, wrong parameter types, half-closed,
# never reading) get an error or are dropped, while a well-behaved client keeps its answers, during an
# encryption; aded stays up and the job finishes.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "no python3"
make_volume 1024
start_emulator
write_config
start_aded

adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
python3 "$(dirname "$0")/varlink-clients.py" hostile "$SOCKET" || fail "a hostile client disturbed aded"
kill -0 "$ADED_PID" || fail "aded died"
wait_for_state "$VOLUME" Encrypted 120
check_files_encrypted "$VOLUME" "$MANIFEST"
pass
