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

export NOTIFY_SOCKET=$WORK/notify.sock
python3 - "$NOTIFY_SOCKET" "$WORK/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        log.write(msg.replace("\n", "|") + "\n")
PY
listener=$!
CLEANUPS+=("kill $listener")
for _ in $(seq 1 50); do [ -S "$NOTIFY_SOCKET" ] && break; sleep 0.1; done
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
