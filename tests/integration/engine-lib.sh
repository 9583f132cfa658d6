# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the engine's shell tests: skip rules, images on loop devices (always detached on exit),
# random files with a plaintext marker, and sha256 manifests. Sourced, not run.
set -euo pipefail
shopt -s inherit_errexit

if [ "${ADE_HEAVY_TESTS:-yes}" = no ]; then echo "SKIP: ADE_HEAVY_TESTS=no"; exit 77; fi
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root"; exit 77; fi
for p in cryptsetup mkfs.ext4 mkfs.xfs losetup sha256sum; do
        command -v "$p" >/dev/null || { echo "SKIP: $p missing"; exit 77; }
done
[ -e /dev/loop-control ] || { echo "SKIP: no loop devices"; exit 77; }

TOOL="${top_builddir:?}/tests/integration/ade-engine-tool"
WORK=$(mktemp -d /tmp/ade-engine-test.XXXXXX)
HDIR="$WORK/headers"
LOOPS=()
MOUNTS=()
MARKER="ADE-PLAINTEXT-MARKER-$$-$RANDOM$RANDOM"

# Loop devices are recorded in a file, not only in an array: attach runs inside $(...), a
# subshell, whose variables never reach this shell.
LOOPLIST="$WORK/.loops"
: > "$LOOPLIST"

cleanup() {
        set +e
        for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
        for l in "${LOOPS[@]}" $(cat "$LOOPLIST" 2>/dev/null); do
                # Only what is still backed by one of our images.
                losetup "$l" 2>/dev/null | grep -qF "$WORK/" && losetup -d "$l" 2>/dev/null
        done
        rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# attach IMAGE -> prints the loop device
attach() {
        local l
        l=$(losetup -f --show "$1")
        LOOPS+=("$l")
        echo "$l" >> "$LOOPLIST"
        echo "$l"
}
detach() { losetup -d "$1"; }

# new_image NAME SIZE_MIB -> path
new_image() {
        truncate -s "$2M" "$WORK/$1"
        echo "$WORK/$1"
}

# fill MOUNTDIR MIB: random files of assorted sizes, a marker at the start of each
fill() {
        local dir=$1 mib=$2 i=0 done_kib=0 kib
        mkdir -p "$dir/d"
        while [ "$done_kib" -lt $((mib * 1024)) ]; do
                kib=$(( (RANDOM % 2048) + 4 ))
                { printf '%s file %d\n' "$MARKER" "$i"; head -c "$((kib * 1024))" /dev/urandom; } > "$dir/d/f$i"
                done_kib=$((done_kib + kib))
                i=$((i + 1))
        done
        sync
}

# manifest MOUNTDIR -> sorted sha256 lines of every file
manifest() { (cd "$1" && find . -type f ! -path './lost+found/*' -print0 | sort -z | xargs -0 sha256sum); }

mount_ro() {
        mkdir -p "$2"
        mount -o ro "$1" "$2"
        MOUNTS+=("$2")
}
umount_last() {
        local n=$((${#MOUNTS[@]} - 1))
        umount "${MOUNTS[$n]}"
        unset "MOUNTS[$n]"
}

# make_fs TYPE DEVICE LABEL
make_fs() {
        case $1 in
        ext4) mkfs.ext4 -q -F -L "$3" "$2" ;;
        xfs) mkfs.xfs -q -f -L "$3" "$2" ;;
        esac
}

# populated IMAGE TYPE FILL_MIB: filesystem with files; prints nothing, writes $WORK/IMAGE.sha
populate() {
        local img=$1 type=$2 mib=$3 l
        l=$(attach "$img")
        make_fs "$type" "$l" data
        mkdir -p "$WORK/mnt"
        mount "$l" "$WORK/mnt"
        MOUNTS+=("$WORK/mnt")
        fill "$WORK/mnt" "$mib"
        manifest "$WORK/mnt" > "$img.sha"
        umount_last
        detach "$l"
}

newkey() { head -c 127 /dev/urandom | base64 -w0 > "$1"; }

# marker_absent DEVICE_OR_IMAGE
marker_absent() {
        if grep -qaF "$MARKER" "$1"; then fail "plaintext marker found on $1"; fi
}

# check_dump DEVICE [HEADER]: aes-xts-plain64, 512-bit key, one finished crypt segment, our token
check_dump() {
        local dump
        if [ -n "${2:-}" ]; then dump=$(cryptsetup luksDump "$2"); else dump=$(cryptsetup luksDump "$1"); fi
        grep -q 'cipher: aes-xts-plain64' <<<"$dump" || fail "cipher is not aes-xts-plain64"
        grep -qE 'Cipher key:[[:space:]]+512 bits' <<<"$dump" || fail "key is not 512 bits"
        [ "$(grep -cE '^  [0-9]+: crypt' <<<"$dump")" -eq 1 ] || fail "not exactly one crypt segment"
        grep -q 'reencrypt' <<<"$dump" && grep -qE '^  [0-9]+: (linear|reencrypt)' <<<"$dump" && fail "reencryption unfinished"
        grep -q 'Azure_Disk_Encryption' <<<"$dump" || fail "token missing"
        grep -q 'PBKDF:      pbkdf2' <<<"$dump" || fail "keyslot is not PBKDF2"
        grep -qE 'Iterations: +1000$' <<<"$dump" || fail "keyslot iterations are not 1000"
        return 0
}

# verify_files IMAGE_OR_DEVICE EXPECTED_SHA_FILE
verify_files() {
        local l=$1
        [ -b "$l" ] || l=$(attach "$1")
        mount_ro "$l" "$WORK/check"
        manifest "$WORK/check" > "$WORK/actual.sha"
        umount_last
        [ "$l" != "$1" ] && detach "$l"
        diff -q "$2" "$WORK/actual.sha" >/dev/null || fail "files differ from before"
        return 0
}

# stock_decrypt IMAGE [HEADER]: decrypt a copy with stock cryptsetup, prints the copy's path
stock_decrypt() {
        local copy="$WORK/stock-copy.img" l
        cp --sparse=always "$1" "$copy"
        l=$(attach "$copy")
        if [ -n "${2:-}" ]; then
                cp "$2" "$WORK/stock-copy.hdr"
                cryptsetup reencrypt --decrypt --batch-mode --header "$WORK/stock-copy.hdr" --key-file "$KEY" "$l" >/dev/null
        else
                rm -f "$WORK/stock-export.hdr"
                cryptsetup reencrypt --decrypt --batch-mode --header "$WORK/stock-export.hdr" --key-file "$KEY" "$l" >/dev/null
        fi
        detach "$l"
        echo "$copy"
}

# run_until_paused OUTFILE TOOL-ARGS...: runs the tool in the background with --pause-at given in
# the args, waits for it to report "paused" (it then sits inside libcryptsetup's progress callback,
# mid-run), and kills it with SIGKILL.
kill_when_paused() {
        local out=$1 pid
        shift
        "$TOOL" "$@" > "$out" 2>&1 &
        pid=$!
        while ! grep -q '^paused' "$out"; do
                kill -0 "$pid" 2>/dev/null || fail "the tool ended before pausing: $(tail -3 "$out")"
                sleep 0.1
        done
        kill -9 "$pid"
        wait "$pid" 2>/dev/null || true
}

# kill_mid_hotzone DEVICE HEADER_OR_EMPTY TOOL-ARGS...: runs the tool (with --crash-mid-hotzone)
# until a SIGKILL lands while a hotzone is in flight, i.e. the state is crash. Under load the kill
# can land just after the hotzone's metadata commit instead (state clean, one hotzone further on):
# then it tries again from there, up to 5 times. Sets STATE.
kill_mid_hotzone() {
        local dev=$1 hdr=$2 try rc
        shift 2
        local hopt=(); [ -n "$hdr" ] && hopt=(--header "$hdr")
        for try in 1 2 3 4 5; do
                rc=0; "$TOOL" "$@" --quiet --crash-mid-hotzone "$dev" "$KEY" > "$WORK/kill.out" 2>&1 || rc=$?
                [ $rc -eq 137 ] || fail "a run meant to be killed mid-hotzone ended with $rc: $(tail -3 "$WORK/kill.out")"
                STATE=$("$TOOL" "${hopt[@]}" status "$dev" | sed -n 's/^state=//p')
                [ "$STATE" = crash ] && return 0
                [ "$STATE" = clean ] || fail "state after a SIGKILL mid-hotzone is $STATE"
        done
        fail "5 kills mid-hotzone never left the crash state"
}
