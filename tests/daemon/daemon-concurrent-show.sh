#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 100 clients calling Show at the same moment while an encryption runs are all answered, and the
# job is still running afterwards (Show never waits for it).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "no python3"
make_volume 1536
start_emulator
write_config
start_aded

adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$VOLUME"
python3 "$(dirname "$0")/varlink-clients.py" concurrent "$SOCKET" 100 || fail "not every client was answered"
grep -q "EncryptionInProgress" <(adectl show --json) || echo "note: the job ended before the last check"
wait_for_state "$VOLUME" Encrypted 120
pass
