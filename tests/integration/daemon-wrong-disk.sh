#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 2: a resume must work on the disk the job was about, never on whatever disk took its
# /dev name. (1) aded killed with -9 in the middle of an XFS enable (detached header) on /dev/loopX;
# another image attached at loopX, the first one at another loop name; aded restarted: the other
# image is byte-for-byte untouched and the first one is found under its new name and finishes,
# its data intact. (2) An attached-header enable killed the same way; its image's content replaced
# by another disk's (same loop device, same backing file: the same stable id): aded refuses to
# touch it, Show says Failed naming the device and why, and once the right content is back the
# encryption finishes with the files intact.
. "$(dirname "$0")/../daemon/daemon-lib.sh"
daemon_require_root
command -v mkfs.xfs >/dev/null || skip "no mkfs.xfs"

# set_data DEVICE...: the [volumes] data line of ade.conf.
set_data() {
        sed -i "s|^data = .*|data = $*|" "$WORK/ade.conf"
}

# forget_loop DEVICE: detach a loop device of ours and drop it from the list the cleanup detaches
# (another test may attach its own image there next).
forget_loop() {
        local l keep=()
        losetup -d "$1" || fail "cannot detach $1"
        for l in "${LOOPS[@]}"; do [ "$l" = "$1" ] || keep+=("$l"); done
        LOOPS=("${keep[@]}")
}

# ---- (1) a detached header, the name taken by another disk --------------------------------------
truncate -s 1G "$WORK/a.img" "$WORK/b.img"
mkfs.xfs -q -L first "$WORK/a.img" || fail "mkfs.xfs failed"
mkfs.xfs -q -L second "$WORK/b.img" || fail "mkfs.xfs failed"
# Data all over both, so that an encryption of either changes its bytes.
for i in a b; do
        l=$(losetup -f --show "$WORK/$i.img")
        mkdir -p "$WORK/m"
        mount "$l" "$WORK/m" && head -c 200000000 /dev/urandom >"$WORK/m/data" && umount "$WORK/m"
        losetup -d "$l"
done
sum_a=$(sha256sum <"$WORK/a.img")
sum_b=$(sha256sum <"$WORK/b.img")

L0=$(losetup -f --show "$WORK/a.img") || fail "losetup failed"
LOOPS+=("$L0")
start_emulator
write_config
# The machine is enrolled by the first enable, and the other disk is a data volume of [volumes]
# with a filesystem: aded's own pass over new disks would encrypt it once the disks had been quiet
# for new-disk-settle (30 s), which a slow resume on a loaded host outlasts. This test is about the
# resume alone.
echo "new-disks = no" >>"$WORK/ade.conf"
start_aded
adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$L0"
kill -9 "$ADED_PID"
wait "$ADED_PID" 2>/dev/null
ADED_PID=""
[ "$(jq -r '.volumes[0].step' "$WORK/state/state.json")" != done ] || fail "the job was done before the kill"
header=$(jq -r '.volumes[0].headerPath' "$WORK/state/state.json")
[ -f "$header" ] || fail "the state file names no header file before the engine returned ('$header')"

# The other disk takes loopX; the first comes back as another loop device.
forget_loop "$L0"
losetup "$L0" "$WORK/b.img" || fail "cannot attach the second image at $L0"
LOOPS+=("$L0")
L1=$(losetup -f --show "$WORK/a.img") || fail "losetup failed"
LOOPS+=("$L1")
set_data "$L0" "$L1"
start_aded
wait_for_state "$L1" Encrypted 180
[ "$(sha256sum <"$L0")" = "$sum_b" ] || fail "aded changed the disk that took $L0's name"
[ "$(volume_field "$L0" state)" = NotEncrypted ] || fail "$L0 (the other disk) is not NotEncrypted"
grep -q "resuming the encryption of $L0" "$WORK/aded.log" && fail "aded resumed on $L0, the wrong disk"
[ "$(jq -r --arg d "$L1" '.volumes[] | select(.device == $d) | .step' "$WORK/state/state.json")" = done ] ||
        fail "the record does not follow the first disk to $L1"
check_detached_copy "$L1" "$header" "$WORK/a.img" "$sum_a"
stop_aded || fail "aded did not stop"
echo "ok: detached header: the disk that took $L0 was left alone; the first one finished as $L1"
forget_loop "$L0"
forget_loop "$L1"
rm -f "$WORK"/*.img "$WORK/headers"/* "$WORK/state/state.json"

# ---- (2) an attached header, another disk's content under the same id ---------------------------
make_volume 1024
C=$VOLUME
C_IMAGE=$IMAGE
C_MANIFEST=$MANIFEST
set_data "$C"
start_aded
adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$C"
kill -9 "$ADED_PID"
wait "$ADED_PID" 2>/dev/null
ADED_PID=""
uuid=$(jq -r '.volumes[0].uuid' "$WORK/state/state.json")
[ "$(cryptsetup luksUUID "$C")" = "$uuid" ] || fail "the state file's UUID ($uuid) is not the header's"

# The same backing file (same inode: the same stable id) now holds another disk. The loop device
# stays attached (detached, its name could go to another test's image before it is attached again);
# its buffers are flushed before and dropped after the file changes under it.
blockdev --flushbufs "$C"
cp --sparse=always "$C_IMAGE" "$WORK/saved.img"
truncate -s 1G "$WORK/other.img"
mkfs.ext4 -q -F "$WORK/other.img"
cp --sparse=always "$WORK/other.img" "$C_IMAGE"
blockdev --flushbufs "$C"
sum_other=$(sha256sum <"$C")
[ "$sum_other" = "$(sha256sum <"$WORK/other.img")" ] || fail "$C does not show the other disk"
start_aded
wait_for_state "$C" Failed 60
msg=$(volume_field "$C" message)
case $msg in *"$C"*"not the disk"*) ;; *) fail "Show does not say which device and why: $msg" ;; esac
[ "$(sha256sum <"$C")" = "$sum_other" ] || fail "aded wrote to a disk whose header is not the recorded one"
stop_aded || fail "aded did not stop"

# The right disk is back: the encryption finishes.
blockdev --flushbufs "$C"
cp --sparse=always "$WORK/saved.img" "$C_IMAGE"
blockdev --flushbufs "$C"
start_aded
wait_for_state "$C" Encrypted 180
check_files_encrypted "$C" "$C_MANIFEST"
echo "ok: attached header: another disk under the same id was refused, the right one resumed"
pass
