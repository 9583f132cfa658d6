# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the daemon's guest scripts that keep aded's state on the persistent disk
# (tests/vm/guest/unlock-lib.sh: $WORK, $EXT4_MNT, volume_field), after it: waits bounded by the
# guest's clock, the job's progress, a writer of fsync'd files and the checks of what it wrote.
# The caller sets dev (the data disk), SUMS (where the checksums of fsync'd files go) and
# WRITER_TAG (the writer's folder on the volume: written-$WRITER_TAG).

# within SECONDS COMMAND...: until COMMAND succeeds, for SECONDS of the guest's clock at most (each
# try starts programs, which TCG makes slow: counting tries would say nothing about the time).
within() {
        local end=$(($(cut -d. -f1 /proc/uptime) + $1))
        shift
        until "$@"; do
                [ "$(cut -d. -f1 /proc/uptime)" -lt $end ] || return 1
                sleep 0.2
        done
}

# progress: the job's bytesDone / bytesTotal, 0 without a job.
progress() {
        "$ADECTL" show --json | jq -r --arg d "$dev" \
                '.volumes[] | select(.device == $d) | if (.bytesTotal // 0) > 0 then .bytesDone / .bytesTotal else 0 end'
}

# progress_at FRACTION: the job has done FRACTION of the volume.
progress_at() {
        local p
        p=$(progress)
        [ -n "$p" ] && awk -v p="$p" -v f="$1" 'BEGIN { exit !(p >= f) }'
}

# wait_progress FRACTION SECONDS
wait_progress() {
        within "$2" progress_at "$1" && return 0
        echo "progress $(progress), state $(volume_field "$dev" state), error $(volume_field "$dev" error)"
        return 1
}

# logged TEXT: aded's log has TEXT (-a: a power cut leaves NUL bytes where its last writes were).
logged() {
        grep -aq "$1" "$WORK/aded.log"
}

encrypted() {
        test "$(volume_field "$dev" state)" = Encrypted
}

# writer: until killed, 256 KiB files on the mounted volume, 40 at most (10 MiB: the disks are
# small); a file's checksum is recorded only once the file and its folder are fsync'd, and the
# record itself is fsync'd before the next file.
writer() {
        local n=0 d=written-$WRITER_TAG f
        mkdir -p "$EXT4_MNT/$d"
        while [ $n -lt 40 ]; do
                n=$((n + 1))
                f=$d/f$n
                if head -c 256K /dev/urandom >"$EXT4_MNT/$f" && sync "$EXT4_MNT/$f" "$EXT4_MNT/$d"; then
                        (cd "$EXT4_MNT" && sha256sum "$f") >>"$SUMS" && sync "$SUMS"
                else
                        echo "# writing $f failed"
                fi
                sleep 0.2
        done
}

# mounted_back: the volume's mapper is mounted on $EXT4_MNT.
mounted_back() {
        local mapper
        mapper=$(volume_field "$dev" mapper)
        [ -n "$mapper" ] && [ "$mapper" != null ] && mounted_from "$EXT4_MNT" "$mapper"
}

# tree_intact, fsynced_intact: every file of the tree, every file whose checksum was recorded, is
# there byte for byte.
tree_intact() {
        mountpoint -q "$EXT4_MNT" || { echo "nothing is mounted on $EXT4_MNT"; return 1; }
        verify_tree "$EXT4_MNT"
}
fsynced_intact() {
        mountpoint -q "$EXT4_MNT" || { echo "nothing is mounted on $EXT4_MNT"; return 1; }
        (cd "$EXT4_MNT" && sha256sum -c --quiet --strict "$SUMS")
}
