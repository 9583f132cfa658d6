#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded speaks sd_notify: READY=1 once it listens, STATUS= with the job's progress
# ("Encrypting /dev/loopN: 42%"), STOPPING=1 on SIGTERM.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "no python3"
make_volume 600
start_emulator
write_config

start_notify_listener
start_aded
adectl enable --volume-type DATA >/dev/null 2>&1 || fail "enable failed"
stop_aded || fail "aded did not exit 0"
unset NOTIFY_SOCKET
sleep 0.2

grep -q "READY=1" "$WORK/notify.log" || fail "no READY=1: $(cat "$WORK/notify.log")"
grep -Eq "STATUS=Encrypting $VOLUME: [0-9]+%" "$WORK/notify.log" || fail "no progress STATUS: $(cat "$WORK/notify.log")"
grep -q "STATUS=Idle" "$WORK/notify.log" || fail "no Idle STATUS after the job: $(cat "$WORK/notify.log")"
grep -q "STOPPING=1" "$WORK/notify.log" || fail "no STOPPING=1: $(cat "$WORK/notify.log")"
pass
