#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A member of [daemon] group (who may call Show) floods aded: 1100 connections that send nothing
# (more than the 1024 descriptors a process gets by default) and 40 messages of almost 16 MiB that
# never end. Root is still accepted and answered while they are held, aded can still open files
# (Show reads the devices), and its memory stays bounded (issue 11 item 4: before, root waited or
# was refused and aded grew from 13 MiB to 669 MiB).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
# The member runs it: a python3 under root's home (pyenv) is out of its reach.
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || skip "no $PYTHON"
make_group_member adef
group=$GROUP member=$MEMBER

make_volume 200
start_emulator
write_config "$group"
chmod 755 "$WORK"
# What systemd gives a service unless its unit says otherwise; aded must cope with it.
ulimit -Sn 1024
start_aded
rss_start=$(awk '/^VmRSS/ {print $2}' "/proc/$ADED_PID/status")

coproc FLOOD { setpriv --reuid "$member" --regid nogroup --init-groups \
        "$PYTHON" "$(dirname "$0")/varlink-clients.py" flood "$SOCKET" 1100 40 2>&1; }
CLEANUPS=("kill ${FLOOD_PID} 2>/dev/null; wait ${FLOOD_PID}" "${CLEANUPS[@]}") # gone before userdel
read -r -u "${FLOOD[0]}" line || fail "the flooding client died"
[ "$line" = ready ] || fail "the flooding client said: $line"
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$ADED_PID/status")
echo "aded VmRSS at start ${rss_start} KiB, peak once the flood is in ${peak} KiB"

# Root, while the member holds everything that aded let it keep.
for i in 1 2 3; do
        timeout 60 "$ADECTL" show --json >"$WORK/root-show" 2>&1 || { cat "$WORK/root-show"; fail "root's Show $i failed during the flood"; }
        jq -e '.volumes | length == 1' "$WORK/root-show" >/dev/null || fail "root's Show $i lacks the volume"
done
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$ADED_PID/status")
echo "aded peak after root's calls ${peak} KiB"
kill -0 "$ADED_PID" || fail "aded died"
eval "exec ${FLOOD[1]}>&-"
wait "$FLOOD_PID"

# The budget for peers other than root is one message's worth (ade-varlink.h): 40 of them must not
# take aded anywhere near 40 × 16 MiB (640 MiB). The bound is on the growth, and a quarter of that:
# room for the allocator, the Show replies and, in the sanitizer build, ASan's shadow memory and
# quarantine (there aded starts at about 40 MiB and grew by 120 MiB; the plain build by far less).
growth=$((peak - rss_start))
[ "$growth" -lt $((160 * 1024)) ] ||
        fail "aded grew by ${growth} KiB during the flood (from ${rss_start} KiB to a peak of ${peak} KiB)"
timeout 60 "$ADECTL" show >/dev/null 2>&1 || fail "root's Show failed after the flood"
pass "grew by ${growth} KiB (peak ${peak} KiB)"
