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

# cut_line: how far the job is and how many fsync'd files were written, then the line on which the
# host cuts the power (vm_power_cut_boots); waits for the cut.
cut_line() {
        echo "# cut at $(progress) of the volume, $(wc -l <"$SUMS") fsync'd files written"
        echo ADE-VM-CUT
        sleep 1000
}

# encryption_cut_at FRACTION: with the writer at work, once the encryption has done FRACTION of the
# volume, a file written and never fsync'd (a power cut may lose it, and may not), then the cut.
encryption_cut_at() {
        writer &
        require "the encryption reaches $(awk -v f="$1" 'BEGIN { print f * 100 }') %" wait_progress "$1" 900
        head -c 1M /dev/urandom >"$EXT4_MNT/not-fsynced"
        cut_line
}

# encryption_resumed: a fresh boot after a cut: nothing is open; aded, started, resumes the
# encryption by itself and mounts the volume again where it was; every fsync'd file is there.
encryption_resumed() {
        check "fresh boot after the cut: nothing is open" test -z "$(ls /dev/mapper | grep -v control)"
        require "aded starts" start_aded
        check "aded resumes the encryption by itself" within 300 logged 'resuming the encrypt'
        check "the volume is mounted again where it was ($EXT4_MNT), from the mapper" within 300 mounted_back
        check "every file fsync'd before the cut is intact" fsynced_intact
}

# encryption_finishes BOOTS: with the writer at work, the encryption ends Encrypted; the volume is
# still mounted where it was, every file of the tree and every fsync'd file of the BOOTS boots is
# intact, and no worker nor helper mapping is left.
encryption_finishes() {
        local wpid
        mounted_back && writer &
        wpid=$!
        check "Show: Encrypted in the end" within 600 encrypted
        kill $wpid 2>/dev/null
        wait $wpid 2>/dev/null
        echo "# $(wc -l <"$SUMS") fsync'd files written over the $1 boots"
        if [ -f "$EXT4_MNT/not-fsynced" ]; then
                echo "# the file written but not fsync'd before the first cut survived ($(stat -c %s "$EXT4_MNT/not-fsynced") bytes)"
        else
                echo "# the file written but not fsync'd before the first cut was lost"
        fi
        check "still mounted where it was ($EXT4_MNT), from the mapper" mounted_back
        check "every file of the tree is intact" tree_intact
        check "every fsync'd file of the $1 boots is intact, byte for byte" fsynced_intact
        check "no worker is left" sh -c "! pgrep -f -- '--reencrypt-worke[r]'"
        check "no device-mapper helper is left" sh -c "! dmsetup ls | grep -q -e -hotzone -e -overlay"
}

# powerloss_start: how each boot of a power-cut guest begins: the data disk /dev/vdb is the only
# volume, the writer's record and folder are set, the persistent disk is mounted on $WORK, the
# emulator runs and aded's configuration is written.
powerloss_start() {
        LOOPS=(/dev/vdb)
        dev=/dev/vdb
        SUMS=$WORK/fsynced.sha256
        WRITER_TAG=$PL_BOOT
        require "state disk: mount on $WORK" sh -c "mkdir -p $WORK && mount /dev/vda $WORK"
        require "the emulator starts on 127.0.0.1:$HTTPS_PORT" start_emulator_fixed
        write_config
}

# encrypted_and_clean FSCK...: once Encrypted, the plaintext marker is gone from the disk; aded's
# lines about resuming and failures are shown; unmounted, FSCK (e2fsck -fn, xfs_repair -n) finds
# the filesystem on the mapper clean; then the volume is closed.
encrypted_and_clean() {
        local mapper m
        check "the plaintext marker is gone from the disk" sh -c "! grep -qa ADE-VM-PLAINTEXT-MARKER $dev"
        grep -av "varlink: call" "$WORK/aded.log" | grep -ai -e resum -e error -e fail | tail -n 20 | sed 's/^/# aded: /'
        mapper=$(volume_field $dev mapper)
        umount "$EXT4_MNT"
        check "$*: the filesystem is clean" "$@" "$mapper"
        for m in /dev/mapper/ade-*; do [ -e "$m" ] && cryptsetup close "${m##*/}"; done
}
