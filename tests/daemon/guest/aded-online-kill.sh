#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of daemon-vm-kill9.sh: aded killed with -9 in the middle of an online encryption of the
# mounted ext4 disk /dev/vda, twice, while files are written and read. The reencryption runs in a
# worker that outlives aded (daemon/aded-worker.h), so the mounted filesystem never hangs on a
# suspended hotzone. First kill: the worker is then sent SIGTERM, as systemd does to what is left of
# the unit, and must stop at a hotzone boundary with no device-mapper helper left; aded started
# again resumes on its own. Second kill: the worker is left to run, slowed down (its reads and writes
# of the disk limited by the cgroup's io.max) so that it is certainly still at work when the next
# aded looks; that aded waits for it. The volume ends Encrypted with every file intact.
#
# Why slowed and not frozen: a worker stopped (SIGSTOP) inside a hotzone keeps the hotzone's mapping
# suspended and libcryptsetup's header lock held, and everything that reads the header or the
# filesystem waits for as long as it stays stopped; a slowed worker only makes them wait for one
# hotzone.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"
. "$top_srcdir/tests/vm/guest/online-lib.sh"

. "$top_srcdir/tests/daemon/guest/aded-lib.sh"

# wait_progress FRACTION: until Show's progress reaches FRACTION (60 s at most).
wait_progress() {
        local p
        for _ in $(seq 1 600); do
                p=$(field progress)
                [ -n "$p" ] && awk -v p="$p" -v f="$1" 'BEGIN { exit !(p >= f) }' && return 0
                sleep 0.1
        done
        return 1
}

worker_pid() {
        pgrep -f -- "--reencrypt-worker resume $dev" | head -n 1
}

# throttle PID BPS: PID's reads and writes of $dev limited to BPS bytes a second ("max": none), by
# the io controller of cgroup v2 (the guest's init mounts no cgroup file system: mounted here).
throttle() {
        local cg=/sys/fs/cgroup
        mountpoint -q $cg || mount -t cgroup2 cgroup2 $cg || return 1
        grep -qw io $cg/cgroup.subtree_control || echo +io >$cg/cgroup.subtree_control || return 1
        mkdir -p $cg/ade-slow || return 1
        echo "$(cat /sys/class/block/${dev#/dev/}/dev) rbps=$2 wbps=$2" >$cg/ade-slow/io.max || return 1
        grep -qx "$1" $cg/ade-slow/cgroup.procs || echo "$1" >$cg/ade-slow/cgroup.procs || return 1
        cat $cg/ade-slow/io.max
}

# stuck_report: what the guest is doing when the encryption did not end, for the log.
stuck_report() {
        local p
        echo "# stuck: Show says $(adectl show --json)"
        ps -eo pid,stat,wchan:32,etime,args | grep -e aded -e reencrypt -e ' D' | sed 's/^/# stuck: /'
        for p in $(pgrep -f -- 'aded'); do
                sed "s/^/# stuck: $p stack: /" /proc/$p/stack 2>/dev/null
        done
        dmsetup info -c 2>&1 | sed 's/^/# stuck: /'
        tail -n 20 "$w/aded.log" | sed 's/^/# stuck: aded: /'
        return 1
}

# write_file NAME: 1 MiB on the mounted volume, synced, within 30 s (a suspended stack would hang it).
write_file() {
        timeout 30 sh -c "head -c 1M /dev/urandom >/mnt/data/$1 && sync /mnt/data/$1" &&
                (cd /mnt/data && sha256sum "$1") >>/tmp/during-kill.sha256
}

require "adectl enable --no-wait starts the job" adectl enable --volume-type DATA --no-wait
for _ in $(seq 1 600); do findmnt -n -o SOURCE /mnt/data | grep -q mapper && break; sleep 0.1; done
require "the volume is back, mounted from /dev/mapper" sh -c "findmnt -n -o SOURCE /mnt/data | grep -q '^/dev/mapper/ade-'"
sleep 1000 &
io_until=$!
background_io /mnt/data aded $io_until >/tmp/io.out &
io=$!

require "the encryption is under way (15%)" wait_progress 0.15
kill -9 "$aded_pid"
wait "$aded_pid" 2>/dev/null
worker=$(worker_pid)
check "the reencryption worker outlives aded" test -n "$worker"
check "the mounted filesystem takes writes while aded is dead" write_file after-kill-1

# What systemd does to the rest of the unit's processes when its main process died: SIGTERM.
kill -TERM "$worker" 2>/dev/null
check "the worker stops on SIGTERM (at a hotzone boundary)" \
        timeout 120 sh -c "while kill -0 $worker 2>/dev/null; do sleep 0.2; done"
check "no device-mapper helper of the reencryption is left" sh -c "! dmsetup ls | grep -q -e -hotzone -e -overlay"
check "the mounted filesystem takes writes with nothing running" write_file after-term

start_aded
check "aded started again resumes by itself (50%)" wait_progress 0.5
kill -9 "$aded_pid"
wait "$aded_pid" 2>/dev/null
worker=$(worker_pid)
check "the worker of the second aded outlives it too" test -n "$worker"
# 512 KiB/s: the half of the disk left (at most 150 MiB, read and written) takes the worker at
# least 10 minutes, far longer than the next aded needs to fetch the key and look (a loaded CI host
# under TCG took over a minute); one hotzone (16 MiB read, then written) stalls the filesystem about
# a minute.
check "the worker is slowed down (cgroup io.max)" throttle $worker 524288
start_aded
# The message comes once aded has the volume's key back from the emulator (TLS and RSA under TCG):
# a loaded CI host took longer than a minute, so wait up to five (the slowed worker needs ten).
check "the next aded waits for the worker it finds at work" \
        sh -c "for _ in \$(seq 1 3000); do grep -q 'still at work' '$w/aded.log' && exit 0; sleep 0.1; done; exit 1" ||
        stuck_report
check "the worker runs at full speed again" throttle $worker max

# Ten minutes by the clock (each Show takes a while under TCG), with what Show says every 30 s.
t_end=$(($(date +%s) + 600)) t_say=0
while [ "$(field state)" != Encrypted ] && [ "$(date +%s)" -lt $t_end ]; do
        if [ "$(date +%s)" -ge $t_say ]; then
                echo "# waiting: $(adectl show --json | tr -d '\n ' | cut -c1-400)"
                ps -eo pid,stat,etime,args | grep -e '[a]ded' | sed 's/^/# waiting: /'
                t_say=$(($(date +%s) + 30))
        fi
        sleep 1
done
check "Show: Encrypted in the end" test "$(field state)" = Encrypted || stuck_report
check "the mounted filesystem takes writes after the encryption" write_file after-done
kill "$io_until"
wait "$io"
echo "# background io: $(cat /tmp/io.out)"
check "no background read or write failed" grep -q ' errors 0 ' /tmp/io.out
check "no worker is left" sh -c "! pgrep -f -- '--reencrypt-worke[r]'"
check "no device-mapper helper is left" sh -c "! dmsetup ls | grep -q -e -hotzone -e -overlay"
check "the device carries a LUKS2 header" cryptsetup isLuks --type luks2 $dev
check "every file is intact, those written across both kills too" verify_tree /mnt/data aded kill
check "the plaintext marker is gone from the disk" sh -c "! grep -qa ADE-VM-PLAINTEXT-MARKER $dev"
sed 's/^/# aded: /' "$w/aded.log" | grep -v "varlink: call" | tail -n 12
umount /mnt/data
dmsetup remove_all 2>/dev/null
done_checks
