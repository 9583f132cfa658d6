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

# tiny_fs DIR: a 2 MiB ext2 mounted on DIR (unmounted at exit).
tiny_fs() {
        local img l
        img=$(mktemp "$WORK/tiny.XXXXXX")
        truncate -s 2M "$img"
        mkfs.ext2 -q -F -b 1024 -m 0 "$img" || fail "mkfs.ext2 failed"
        l=$(losetup -f --show "$img") || fail "losetup failed"
        LOOPS+=("$l")
        mkdir -p "$1"
        mount "$l" "$1" || fail "cannot mount a tiny filesystem on $1"
        CLEANUPS+=("umount '$1'")
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
tiny_fs "$WORK/state"
tiny_fs "$WORK/headers"
sed -i "s|^data = .*|data = $A|" "$WORK/ade.conf"

# ---- (a) state-dir full -----------------------------------------------------------------------
fill "$WORK/state"
start_aded
adectl enable --volume-type DATA >"$WORK/out" 2>&1 && fail "(a) enable succeeded with a full state-dir"
[ "$(volume_field "$A" state)" = Failed ] || fail "(a) Show does not say Failed: $(volume_field "$A" state)"
msg=$(volume_field "$A" message)
case $msg in *"$A"*"No space left"*) ;; *) fail "(a) the message does not name the device and the cause: $msg" ;; esac
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
case $msg in *"$B"*"No space left"*) ;; *) fail "(b) the message does not name the device and the cause: $msg" ;; esac
[ "$(sha256sum <"$B")" = "$sum_b" ] || fail "(b) the volume changed"
stop_aded || fail "aded did not stop"
unfill "$WORK/headers"
start_aded # the record is past the escrow: resumed at start
wait_for_state "$B" Encrypted 120
[ "$(secrets_count)" = $((secrets + 1)) ] || fail "(b) the resume escrowed again"
header=$(jq -r --arg d "$B" '.volumes[] | select(.device == $d) | .headerPath' "$WORK/state/state.json")
key=$WORK/key.b
"$RESOLVE" --config "$WORK/ade.conf" --header "$header" --output "$key" "$B" 2>/dev/null || fail "(b) cannot resolve the key"
cp "$header" "$WORK/copy.header"
cp --sparse=always "$WORK/raw.img" "$WORK/copy.img"
copy=$(losetup -f --show "$WORK/copy.img")
LOOPS+=("$copy")
cryptsetup reencrypt -q --decrypt --header "$WORK/copy.header" --key-file "$key" "$copy" >/dev/null 2>&1 ||
        fail "(b) stock cryptsetup cannot decrypt a copy"
[ "$(sha256sum <"$copy")" = "$sum_b" ] || fail "(b) the data differ"
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
case $msg in *"$A"*"No space left"*) ;; *) fail "(c) the message does not name the device and the cause: $msg" ;; esac
[ "$(cryptsetup luksUUID "$A")" = "$uuid" ] || fail "(c) the header changed"
unfill "$WORK/headers"
adectl disable --volume-type DATA >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "(c) disable failed once space was back"; }
[ "$(volume_field "$A" state)" = NotEncrypted ] || fail "(c) not NotEncrypted"
check_files_on_plain "$A" "$A_MANIFEST"
echo "ok: (c) full header-dir at Disable: Failed with '$msg'; decrypted once space was back"
pass
