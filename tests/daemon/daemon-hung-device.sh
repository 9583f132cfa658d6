#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A device that hangs stalls only the call that reads it (issue 11 item 12): while a Show, a Disable
# or an Unlock waits on a volume's device, GetInfo and a second client's Show are answered and the
# loop keeps pinging the watchdog; once the device answers, the held call finishes as it would have.
# The hang is the crash shim's (tests/integration/crash-shim.c, ADE_CRASH_ACTION=wait): the first
# open of the loop device after the test arms the point waits until a file appears. No disk of the
# machine is involved.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "no python3"
SHIM=$top_builddir/tests/integration/crash-shim.so
[ -f "$SHIM" ] || skip "the crash shim is not built ($SHIM)"
CLIENTS=$(dirname "$0")/varlink-clients.py
make_volume 200
start_emulator
write_config

# aded with the shim, the point armed later through a file; nothing else runs with the shim.
real=$ADED
ADED=$WORK/aded-shim
cat >"$ADED" <<EOS
#!/bin/sh
export LD_PRELOAD="$SHIM" ADE_CRASH_AT_FILE="$WORK/armed" ADE_CRASH_ACTION=wait
export ADE_CRASH_RELEASE="$WORK/release" ADE_CRASH_MARK="$WORK/reached"
# Under ASan the shim comes before its runtime; it allocates nothing ASan must see first.
export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0"
exec "$real" "\$@"
EOS
chmod +x "$ADED"
start_notify_listener
CLEANUPS+=("touch '$WORK/release'")

# aded anew (the shim holds one open per process), watched by the watchdog.
restart_aded() {
        stop_aded >/dev/null 2>&1
        rm -f "$WORK/armed" "$WORK/release" "$WORK/reached"
        WATCHDOG_USEC=1000000 start_aded
}

# held WHAT EXPECTED_RC COMMAND...: COMMAND (an adectl call that reads $VOLUME) is held on the
# device; meanwhile aded answers others and pings the watchdog; released, COMMAND exits EXPECTED_RC.
held() {
        local what=$1 want=$2 pid pings rc
        shift 2
        echo "open:$VOLUME" >"$WORK/armed"
        "$@" >"$WORK/held.out" 2>&1 &
        pid=$!
        for _ in $(seq 1 600); do
                [ -e "$WORK/reached" ] && break
                kill -0 "$pid" 2>/dev/null || fail "$what ended without reading $VOLUME: $(cat "$WORK/held.out")"
                sleep 0.1
        done
        [ -e "$WORK/reached" ] || fail "aded never opened $VOLUME for $what"

        pings=$(grep -c "WATCHDOG=1" "$WORK/notify.log")
        python3 "$CLIENTS" call "$SOCKET" org.varlink.service.GetInfo >"$WORK/info" ||
                fail "GetInfo was not answered while $what waited on $VOLUME: $(cat "$WORK/info")"
        python3 "$CLIENTS" call "$SOCKET" io.ade.DiskEncryption.Show >"$WORK/show2" ||
                fail "a second client's Show was not answered while $what waited on $VOLUME: $(cat "$WORK/show2")"
        jq -e --arg d "$VOLUME" '.parameters.volumes[] | select(.device == $d)' "$WORK/show2" >/dev/null ||
                fail "the second Show does not list $VOLUME: $(cat "$WORK/show2")"
        for _ in $(seq 1 600); do
                [ "$(grep -c "WATCHDOG=1" "$WORK/notify.log")" -gt "$pings" ] && break
                sleep 0.1
        done
        [ "$(grep -c "WATCHDOG=1" "$WORK/notify.log")" -gt "$pings" ] ||
                fail "no watchdog ping while $what waited on $VOLUME"
        kill -0 "$pid" 2>/dev/null || fail "$what was answered before $VOLUME answered: $(cat "$WORK/held.out")"

        touch "$WORK/release"
        wait "$pid"
        rc=$?
        [ $rc = "$want" ] || fail "$what exited $rc once $VOLUME answered, expected $want: $(cat "$WORK/held.out")"
}

# Show: the held call's reply is the full one.
restart_aded
held "a show" 0 adectl show --json
jq -e --arg d "$VOLUME" '.volumes[] | select(.device == $d)' "$WORK/held.out" >/dev/null ||
        fail "the held Show does not list $VOLUME: $(cat "$WORK/held.out")"

# Unlock of the volume: it is read to check its name; without device-mapper it is then refused
# (exit 3), with it the volume is not encrypted and there is nothing to open (exit 0).
restart_aded
if grep -qw device-mapper /proc/devices; then want=0; else want=3; fi
held "an unlock" $want adectl unlock "$VOLUME"

# Disable of an encrypted volume: the choice of volumes is held; then the decryption runs.
restart_aded
adectl enable --volume-type DATA >"$WORK/out" 2>&1 || fail "enable failed: $(cat "$WORK/out")"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted after enable"
held "a disable" 0 adectl disable --volume-type data
[ "$(volume_field "$VOLUME" state)" = NotEncrypted ] || fail "not NotEncrypted after the held disable"
check_files_on_plain "$VOLUME" "$MANIFEST"
kill -0 "$ADED_PID" 2>/dev/null || fail "aded exited"
pass
