#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SIGTERM while e2fsck -p runs for an enable (it finishes whatever systemd sends: stopped half-way it
# can leave the filesystem worse): aded asks systemd for more time with EXTEND_TIMEOUT_USEC= instead
# of being killed at TimeoutStopSec= (issue 11 item 10), and stops once e2fsck is done. aded runs in
# a mount namespace of its own where e2fsck is a wrapper that waits for the test before it runs
# the real one, so that it certainly still runs while aded stops.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "no python3"
make_volume 200
start_emulator
write_config

start_notify_listener
# e2fsck -p (the repair before the shrink) waits on a FIFO; every other e2fsck runs at once.
cp /usr/sbin/e2fsck "$WORK/e2fsck.real"
mkfifo "$WORK/go"
# Held open both ways: writing the line that lets e2fsck go never blocks, even once it is gone.
exec 3<>"$WORK/go"
cat >"$WORK/e2fsck" <<EOS
#!/bin/sh
if [ "\$2" = -p ]; then
        : >"$WORK/fsck-started"
        read -r _ <"$WORK/go"
fi
exec "$WORK/e2fsck.real" "\$@"
EOS
chmod +x "$WORK/e2fsck"
aded_unshared 'mount --bind "$0" /usr/sbin/e2fsck' "$WORK/e2fsck"
start_aded
adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
for _ in $(seq 1 1200); do [ -e "$WORK/fsck-started" ] && break; sleep 0.05; done
[ -e "$WORK/fsck-started" ] || fail "the job's e2fsck -p never ran"
CLEANUPS+=("echo >&3")
kill -TERM "$ADED_PID"
for _ in $(seq 1 600); do grep -q "EXTEND_TIMEOUT_USEC=" "$WORK/notify.log" && break; sleep 0.05; done
grep -q "EXTEND_TIMEOUT_USEC=" "$WORK/notify.log" || { echo >&3; fail "no EXTEND_TIMEOUT_USEC= while e2fsck runs: $(cat "$WORK/notify.log")"; }
kill -0 "$ADED_PID" || fail "aded exited while e2fsck still ran"
echo >&3
stop_aded || fail "aded did not exit 0 after e2fsck finished"
unset NOTIFY_SOCKET
grep -q "STOPPING=1" "$WORK/notify.log" || fail "no STOPPING=1"
pass
