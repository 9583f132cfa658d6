#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fault injection, no space left: state-dir and header-dir each on a tiny loop-mounted filesystem,
# filled up. (a) Enable with a full state-dir, (b) Enable of a volume whose detached header cannot
# be written, (c) Disable whose header backup cannot be written: each job ends Failed with a
# message naming the device and the cause, Show reports it, the volume is byte-for-byte as it was;
# once space is freed the job resumes (at start, or when asked again) and ends where it should,
# the data identical and the key escrowed once. (EIO needs device-mapper's error target: a loop
# device turns its backing file's ENOSPC into ENOSPC, not EIO; the VM suite injects EIO.)
. "$(dirname "$0")/../daemon/daemon-lib.sh"
daemon_require_root
command -v mkfs.ext2 >/dev/null || skip "no mkfs.ext2"

# tiny_fs DIR MIB: a small ext2 mounted on DIR (unmounted at exit). header-dir needs room for a
# detached header (16 MiB), a header backup and an export when it is not full.
tiny_fs() {
        local img l
        img=$(mktemp "$WORK/tiny.XXXXXX")
        truncate -s "$2M" "$img"
        mkfs.ext2 -q -F -b 1024 -m 0 "$img" || fail "mkfs.ext2 failed"
        l=$(losetup -f --show "$img") || fail "losetup failed"
        LOOPS+=("$l")
        mkdir -p "$1"
        mount "$l" "$1" || fail "cannot mount a tiny filesystem on $1"
        CLEANUPS+=("umount -l '$1'")
}

# fill DIR / unfill DIR: no byte left on its filesystem, then space again.
fill() {
        dd if=/dev/zero of="$1/.fill" bs=1k 2>/dev/null
        : >"$1/.fill.more" 2>/dev/null
        dd if=/dev/zero of="$1/.fill.more" bs=1 2>/dev/null
        sync
}
unfill() {
        rm -f "$1/.fill" "$1/.fill.more"
        sync
}

# names_device_and_cause WHAT DEVICE MESSAGE: the job's message says which device and why.
names_device_and_cause() {
        case $3 in *"$2"*) ;; *) fail "$1 the message does not name $2: $3" ;; esac
        case $3 in *"No space left"*) ;; *) fail "$1 the message does not say why: $3" ;; esac
}

# A volume with files (attached header) and one without a filesystem (detached header).
make_volume 160 ext4
A=$VOLUME A_MANIFEST=$MANIFEST
truncate -s 160M "$WORK/raw.img"
head -c $((150 * 1024 * 1024)) /dev/urandom | dd of="$WORK/raw.img" bs=1M seek=1 conv=notrunc status=none
blkid -p "$WORK/raw.img" >/dev/null 2>&1 && skip "random data looked like a signature"
B=$(losetup -f --show "$WORK/raw.img") || fail "losetup failed"
LOOPS+=("$B")
sum_a=$(sha256sum <"$A") sum_b=$(sha256sum <"$B")

start_emulator
write_config
tiny_fs "$WORK/state" 2
tiny_fs "$WORK/headers" 64
sed -i "s|^data = .*|data = $A|" "$WORK/ade.conf"

# ---- (a) state-dir full -----------------------------------------------------------------------
fill "$WORK/state"
start_aded
adectl enable --volume-type DATA >"$WORK/out" 2>&1 && fail "(a) enable succeeded with a full state-dir"
[ "$(volume_field "$A" state)" = Failed ] || fail "(a) Show does not say Failed: $(volume_field "$A" state)"
msg=$(volume_field "$A" message)
names_device_and_cause "(a)" "$A" "$msg"
[ "$(sha256sum <"$A")" = "$sum_a" ] || fail "(a) the volume changed"
unfill "$WORK/state"
adectl enable --volume-type DATA >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "(a) enable failed once space was back"; }
[ "$(volume_field "$A" state)" = Encrypted ] || fail "(a) not Encrypted"
check_files_encrypted "$A" "$A_MANIFEST"
echo "ok: (a) full state-dir: Failed with '$msg'; encrypted once space was back"

# ---- (b) header-dir full when the detached header is written -----------------------------------
stop_aded || fail "aded did not stop"
sed -i "s|^data = .*|data = $B|" "$WORK/ade.conf"
fill "$WORK/headers"
secrets=$(secrets_count)
start_aded
adectl enable --volume-type DATA >"$WORK/out" 2>&1 && fail "(b) enable succeeded with a full header-dir"
[ "$(volume_field "$B" state)" = Failed ] || fail "(b) Show does not say Failed: $(volume_field "$B" state)"
msg=$(volume_field "$B" message)
names_device_and_cause "(b)" "$B" "$msg"
[ "$(sha256sum <"$B")" = "$sum_b" ] || fail "(b) the volume changed"
stop_aded || fail "aded did not stop"
unfill "$WORK/headers"
start_aded # the record is past the escrow: resumed at start
wait_for_state "$B" Encrypted 120
[ "$(secrets_count)" = $((secrets + 1)) ] || fail "(b) the resume escrowed again"
header=$(jq -r --arg d "$B" '.volumes[] | select(.device == $d) | .headerPath' "$WORK/state/state.json")
check_detached_copy "$B" "$header" "$WORK/raw.img" "$sum_b"
echo "ok: (b) full header-dir: Failed with '$msg'; resumed at start once space was back"

# ---- (c) header-dir full when Disable backs the header up ---------------------------------------
stop_aded || fail "aded did not stop"
sed -i "s|^data = .*|data = $A|" "$WORK/ade.conf"
uuid=$(cryptsetup luksUUID "$A")
fill "$WORK/headers"
start_aded
adectl disable --volume-type DATA >"$WORK/out" 2>&1 && fail "(c) disable succeeded with a full header-dir"
[ "$(volume_field "$A" state)" = Failed ] || fail "(c) Show does not say Failed: $(volume_field "$A" state)"
msg=$(volume_field "$A" message)
names_device_and_cause "(c)" "$A" "$msg"
[ "$(cryptsetup luksUUID "$A")" = "$uuid" ] || fail "(c) the header changed"
unfill "$WORK/headers"
adectl disable --volume-type DATA >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "(c) disable failed once space was back"; }
[ "$(volume_field "$A" state)" = NotEncrypted ] || fail "(c) not NotEncrypted"
check_files_on_plain "$A" "$A_MANIFEST"
echo "ok: (c) full header-dir at Disable: Failed with '$msg'; decrypted once space was back"
pass
