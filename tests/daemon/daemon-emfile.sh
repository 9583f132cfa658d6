#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded runs out of file descriptors (issue 11: fault injection, EMFILE; item 4: a group member must
# not lock root out).
#
# (a) An encryption is held at an engine step and aded's open-files limit lowered (prlimit) so that
#     only two descriptors are free, then let go: whatever the job opens next fails. The job must
#     fail with a message naming the device and saying "Too many open files" (before, libcryptsetup
#     turned EMFILE into "Invalid argument", "Input/output error" or "Device or resource busy"),
#     and once the limit is back the encryption goes on and ends Encrypted, files intact, one secret.
# (b) A member of [daemon] group holds connections that each watch (so none idles out), and aded's
#     limit is lowered so that every descriptor is taken: root's Show is still answered, and aded
#     says once that it is short of file descriptors (before, root waited for ever, nothing logged).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
require_shim
command -v prlimit >/dev/null || skip "no prlimit"
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || skip "no $PYTHON"
make_group_member adee
group=$GROUP member=$MEMBER

make_volume 200
start_emulator
write_config "$group"
chmod 755 "$WORK"
ADED_LOG_LEVEL=debug # the shim sees engine steps in the debug log

# The lowest descriptor number aded has free: with the soft limit there, its next open fails.
lowest_free() {
        local i=0
        while [ -e "/proc/$ADED_PID/fd/$i" ]; do i=$((i + 1)); done
        echo "$i"
}

# limit_fds FREE: aded's soft limit set to leave FREE descriptors; the old one is in OLD_LIMIT.
limit_fds() {
        OLD_LIMIT=$(prlimit --pid "$ADED_PID" --nofile --output SOFT --noheadings | tr -d ' ')
        prlimit --pid "$ADED_PID" --nofile="$(($(lowest_free) + $1)):" || fail "prlimit failed"
}

restore_fds() {
        prlimit --pid "$ADED_PID" --nofile="$OLD_LIMIT:" || fail "prlimit failed"
}

# check_emfile_message WHAT TEXT
check_emfile_message() {
        case "$2" in
        *"$VOLUME"*"Too many open files"*) ;;
        *) fail "$1 does not name $VOLUME and say 'Too many open files': $2" ;;
        esac
        case "$2" in
        *"Invalid argument"* | *"Input/output error"* | *"resource busy"*) fail "$1 names another cause: $2" ;;
        esac
}

# (a) At each of these steps in turn. The first Enable is made by hand; after a restart aded resumes
# the job by itself.
first=yes
for point in engine:shrunk engine:header-written; do
        mark=$WORK/mark-$point
        rm -f "$mark"
        seen=0 # the log of this run starts after it
        [ -f "$WORK/aded.log" ] && seen=$(wc -l <"$WORK/aded.log")
        ADE_CRASH_AT=$point ADE_CRASH_ACTION=stop ADE_CRASH_MARK=$mark ADE_CRASH_STATE=$WORK/state/state.json \
                LD_PRELOAD=$SHIM ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_aded
        enable_pid=""
        if [ $first = yes ]; then
                adectl enable --volume-type DATA >"$WORK/enable.out" 2>&1 &
                enable_pid=$!
                first=no
        fi
        for _ in $(seq 1 600); do [ -s "$mark" ] && break; sleep 0.1; done
        [ -s "$mark" ] || fail "aded never reached $point"
        limit_fds 2
        kill -CONT "$ADED_PID"
        if [ -n "$enable_pid" ]; then
                wait "$enable_pid" && fail "the Enable succeeded with two descriptors free"
                check_emfile_message "the Enable's error" "$(tail -n 1 "$WORK/enable.out")"
        fi
        for _ in $(seq 1 600); do
                tail -n +$((seen + 1)) "$WORK/aded.log" | grep -q "job on $VOLUME \(failed\|finished\)" && break
                sleep 0.1
        done
        tail -n +$((seen + 1)) "$WORK/aded.log" | grep -q "job on $VOLUME failed" || fail "the job did not fail at $point with two descriptors free"
        restore_fds
        [ "$(volume_field "$VOLUME" state)" = Failed ] || fail "$VOLUME is $(volume_field "$VOLUME" state), not Failed"
        check_emfile_message "Show's note after $point" "$(volume_field "$VOLUME" message)"
        echo "ok: at $point: $(volume_field "$VOLUME" message)"
        stop_aded
done

# The fault is gone: the encryption goes on (aded resumes it as it starts; an Enable is refused
# as already running, or starts it) and ends with the data intact and one secret escrowed.
unset ADED_LOG_LEVEL
start_aded
adectl enable --volume-type DATA >"$WORK/enable.out" 2>&1
rc=$?
[ $rc = 0 ] || grep -q "another job is running" "$WORK/enable.out" || { cat "$WORK/enable.out"; fail "the Enable after the fault failed"; }
wait_for_state "$VOLUME" Encrypted 120
check_files_encrypted "$VOLUME" "$MANIFEST"
[ "$(secrets_count)" = 1 ] || fail "$(secrets_count) secrets in the vault, not one"
echo "ok: encrypted once the limit was back"

# (b) The member's watchers hold their connections; then aded has no descriptor free.
coproc WATCH { setpriv --reuid "$member" --regid nogroup --init-groups \
        "$PYTHON" "$(dirname "$0")/varlink-clients.py" watch "$SOCKET" 40 2>&1; }
CLEANUPS=("kill ${WATCH_PID} 2>/dev/null; wait ${WATCH_PID}" "${CLEANUPS[@]}") # gone before userdel
read -r -u "${WATCH[0]}" line n || fail "the watching client died"
[ "$line" = ready ] && [ "$n" -gt 0 ] || fail "the watching client said: $line $n"
echo "ok: the member watches on $n connections"
limit_fds 0
for i in 1 2 3; do
        timeout 60 "$ADECTL" show --json >"$WORK/root-show" 2>&1 || { cat "$WORK/root-show"; fail "root's Show $i failed with no descriptor free"; }
        jq -e '.volumes | length == 1' "$WORK/root-show" >/dev/null || fail "root's Show $i lacks the volume"
done
restore_fds
kill -0 "$ADED_PID" || fail "aded died"
eval "exec ${WATCH[1]}>&-"
wait "$WATCH_PID"
n=$(grep -c "short of file descriptors" "$WORK/aded.log")
[ "$n" = 1 ] || fail "aded said $n times that it is short of file descriptors, not once"
timeout 60 "$ADECTL" show >/dev/null 2>&1 || fail "root's Show failed after the watchers left"
pass
