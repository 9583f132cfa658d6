#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the daemon's end-to-end tests: a temporary folder, loop devices (only those we attach),
# the Azure emulator, and aded with a config pointing at both; everything is undone on exit.
#
#   . "$top_srcdir/tests/daemon/daemon-lib.sh"
#   daemon_require_root            # exit 77 unless root with loop devices and ADE_HEAVY_TESTS != no
#   make_volume 256 ext4           # sets VOLUME (a loop device) with sample files; MANIFEST lists them
#   start_emulator; write_config; start_aded
#   adectl show --json | jq ...
set -uo pipefail

top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
ADED=$top_builddir/daemon/aded
ADECTL=$top_builddir/tools/adectl
RESOLVE=$top_builddir/tools/ade-resolve-key
EMULATOR=${ADE_EMULATOR:-$top_builddir/tests/emulator/ade-emulator}
TEST_NAME=$(basename "$0" .sh)

WORK=""
LOOPS=()
EMU_PID=""
ADED_PID=""
CLEANUPS=()

daemon_cleanup() {
        local rc=$?
        trap - EXIT
        for c in "${CLEANUPS[@]}"; do eval "$c" 2>/dev/null || true; done
        if [ -n "$ADED_PID" ] && kill -TERM "$ADED_PID" 2>/dev/null; then
                # A job stops at its next hotzone boundary; do not wait forever for it.
                for _ in $(seq 1 100); do kill -0 "$ADED_PID" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$ADED_PID" 2>/dev/null
                wait "$ADED_PID" 2>/dev/null
        fi
        [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
        # Only a loop device still backed by our file: a name detached earlier may be another test's.
        for l in "${LOOPS[@]}"; do losetup "$l" 2>/dev/null | grep -qF "$WORK/" && losetup -d "$l" 2>/dev/null; done
        if [ $rc != 0 ] && [ $rc != 77 ] && [ -n "$WORK" ]; then
                echo "--- aded log"; grep -v "^aded: varlink: call\b" "$WORK/aded.log" 2>/dev/null | tail -n 60
        fi
        [ -n "$WORK" ] && rm -rf "$WORK"
        exit $rc
}

skip() {
        echo "SKIP: $TEST_NAME: $*"
        exit 77
}

fail() {
        echo "FAIL: $TEST_NAME: $*"
        exit 1
}

pass() {
        echo "PASS: $TEST_NAME${1:+: $1}"
}

daemon_require_root() {
        [ "${ADE_HEAVY_TESTS:-yes}" = no ] && skip "ADE_HEAVY_TESTS=no"
        [ "$(id -u)" = 0 ] || skip "needs root for loop devices"
        command -v losetup >/dev/null || skip "no losetup"
        command -v jq >/dev/null || skip "no jq"
        [ -x "$ADED" ] && [ -x "$ADECTL" ] || skip "aded/adectl not built in $top_builddir"
        [ -x "$EMULATOR" ] || skip "the emulator is not built ($EMULATOR)"
        daemon_workdir
}

daemon_workdir() {
        [ -n "$WORK" ] && return 0
        WORK=$(mktemp -d "/tmp/ade-daemon-test.XXXXXX")
        trap daemon_cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
}

# make_volume SIZE_MIB [FSTYPE]: an image with sample files, attached; sets VOLUME, IMAGE, MANIFEST.
make_volume() {
        local size=$1 fstype=${2:-ext4} name=vol$((${#LOOPS[@]}))
        mkdir -p "$WORK/$name.sample/sub"
        head -c 5000000 /dev/urandom >"$WORK/$name.sample/a.bin"
        head -c 1234567 /dev/urandom >"$WORK/$name.sample/sub/b.bin"
        echo "hello from $name" >"$WORK/$name.sample/sub/hello.txt"
        (cd "$WORK/$name.sample" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/$name.manifest"
        truncate -s "${size}M" "$WORK/$name.img"
        mkfs."$fstype" -q -d "$WORK/$name.sample" "$WORK/$name.img" >/dev/null 2>&1 || fail "mkfs.$fstype failed"
        VOLUME=$(losetup -f --show "$WORK/$name.img") || fail "losetup failed"
        LOOPS+=("$VOLUME")
        IMAGE=$WORK/$name.img
        MANIFEST=$WORK/$name.manifest
}

# make_group_member PREFIX: a group (GROUP, for write_config) and a user in it (MEMBER), named
# PREFIX g/m and this shell's pid, both removed on exit; skips without useradd or setpriv.
make_group_member() {
        command -v useradd >/dev/null && command -v setpriv >/dev/null || skip "no useradd/setpriv"
        GROUP=${1}g$$ MEMBER=${1}m$$
        groupadd "$GROUP" || fail "groupadd failed"
        CLEANUPS+=("groupdel $GROUP")
        useradd -M -N -g nogroup -G "$GROUP" -s /usr/sbin/nologin "$MEMBER" || fail "useradd failed"
        CLEANUPS=("userdel $MEMBER" "${CLEANUPS[@]}")
}

# check_files_on_plain DEVICE MANIFEST: the files read back (debugfs, no mount) match.
check_files_on_plain() {
        local dev=$1 manifest=$2 out
        out=$(mktemp -d "$WORK/back.XXXXXX")
        e2fsck -fn "$dev" >/dev/null 2>&1 || fail "e2fsck -fn finds errors on $dev"
        debugfs -R "rdump / $out" "$dev" >/dev/null 2>&1 || fail "debugfs cannot read $dev"
        (cd "$out" && sha256sum --quiet -c "$manifest") || fail "files differ on $dev"
}

# check_files_encrypted DEVICE MANIFEST: with stock cryptsetup and the key the resolver recovers,
# a copy of the encrypted device decrypts to the original files.
check_files_encrypted() {
        local dev=$1 manifest=$2 key copy loop
        key=$(mktemp -u "$WORK/key.XXXXXX")
        "$RESOLVE" --config "$WORK/ade.conf" --output "$key" "$dev" 2>"$WORK/resolve.err" ||
                fail "ade-resolve-key failed on $dev: $(cat "$WORK/resolve.err")"
        cryptsetup open --test-passphrase --key-file "$key" "$dev" || fail "the resolved key does not open $dev"
        copy=$(mktemp "$WORK/copy.XXXXXX")
        cp --sparse=always "$(losetup -nO BACK-FILE "$dev")" "$copy"
        loop=$(losetup -f --show "$copy")
        LOOPS+=("$loop")
        cryptsetup reencrypt -q --decrypt --header "$copy.header" --key-file "$key" "$loop" >/dev/null 2>&1 ||
                fail "stock cryptsetup cannot decrypt a copy of $dev"
        check_files_on_plain "$loop" "$manifest"
}

# The Key Vault resource of the cloud the emulator plays (tests/emulator/README.md): the tests reach
# the vault as https://localhost:PORT, and aded follows Key Vault's challenge only when the vault's
# host lies within the resource's domain, as contoso.vault.azure.net lies under
# https://vault.azure.net. Tests that reach the emulator by Azure's own names set the public one.
EMULATOR_KEYVAULT_RESOURCE=${EMULATOR_KEYVAULT_RESOURCE:-https://localhost}

# start_emulator [OVERLAY_JSON]: the default scenario, with OVERLAY_JSON merged over it (and the
# Key Vault resource above, unless OVERLAY_JSON names one).
start_emulator() {
        local overlay=${1:-}
        [ -n "$overlay" ] || overlay='{}'
        jq -n --arg r "$EMULATOR_KEYVAULT_RESOURCE" --argjson o "$overlay" '{keyvault: {resource: $r}} * $o' \
                >"$WORK/emulator-overlay.json" || fail "bad emulator overlay: $overlay"
        "$EMULATOR" --dir "$WORK/emu" --state "$WORK/emu/vault-state.json" --config "$WORK/emulator-overlay.json" \
                >"$WORK/emulator.log" 2>&1 &
        EMU_PID=$!
        for _ in $(seq 1 300); do
                [ -s "$WORK/emu/ready.json" ] && break
                kill -0 "$EMU_PID" 2>/dev/null || { cat "$WORK/emulator.log"; fail "the emulator exited"; }
                sleep 0.1
        done
        [ -s "$WORK/emu/ready.json" ] || fail "the emulator did not get ready"
        HTTPS_PORT=$(jq -r .https_port "$WORK/emu/ready.json")
        HTTP_PORT=$(jq -r .http_port "$WORK/emu/ready.json")
}

emulator_state() {
        curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/state"
}

emulator_fault() {
        curl -sf -X POST -H 'Content-Type: application/json' -d "$1" "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null
}

# write_config [EXTRA_DAEMON_LINES]: ade.conf for the emulator, [volumes] data = every loop made.
write_config() {
        local group=${1:-root}
        printf 'ade~emulator.Secret-0123456789' >"$WORK/app-secret"
        chmod 600 "$WORK/app-secret"
        mkdir -p "$WORK/headers"
        cat >"$WORK/ade.conf" <<EOF
[keyvault]
url = https://localhost:$HTTPS_PORT
resource-id = /subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso

[identity]
type = client-secret
client-id = 5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03
tenant-id = 72f988bf-86f1-41af-91ab-2d7cd011db47
client-secret-file = $WORK/app-secret

[azure]
imds = http://127.0.0.1:$HTTP_PORT
arm = https://localhost:$HTTPS_PORT
authority = https://localhost:$HTTPS_PORT
keyvault-resource = $EMULATOR_KEYVAULT_RESOURCE
ca-file = $WORK/emu/ca.pem

[volumes]
data = ${LOOPS[*]}
header-dir = $WORK/headers

[daemon]
socket = $WORK/run/io.ade.DiskEncryption
group = $group
state-dir = $WORK/state
key-socket = $WORK/run/key.socket
crypttab = $WORK/crypttab
fstab = $WORK/fstab
azure-disk-encryption-dir = $WORK/azure_disk_encryption_config
EOF
        SOCKET=$WORK/run/io.ade.DiskEncryption
        export ADE_SOCKET=$SOCKET
}

start_aded() {
        rm -f "$SOCKET"
        "$ADED" --config "$WORK/ade.conf" ${ADED_LOG_LEVEL:+--log-level $ADED_LOG_LEVEL} >>"$WORK/aded.log" 2>&1 &
        ADED_PID=$!
        for _ in $(seq 1 200); do
                [ -S "$SOCKET" ] && "$ADECTL" show >/dev/null 2>&1 && return 0
                kill -0 "$ADED_PID" 2>/dev/null || { cat "$WORK/aded.log"; fail "aded exited"; }
                sleep 0.05
        done
        fail "aded did not answer on $SOCKET"
}

# aded_unshared SNIPPET ARG: from now on start_aded starts aded in a mount namespace of its own,
# after "sh -c SNIPPET ARG" prepared it there (ARG is $0 in SNIPPET).
aded_unshared() {
        local real=$ADED
        ADED=$WORK/aded-unshared
        cat >"$ADED" <<EOS
#!/bin/sh
exec unshare --mount --propagation private sh -c '$1 && exec "\$@"' "$2" "$real" "\$@"
EOS
        chmod +x "$ADED"
}

# start_notify_listener: NOTIFY_SOCKET for aded, each datagram a line of $WORK/notify.log.
start_notify_listener() {
        export NOTIFY_SOCKET=$WORK/notify.sock
        python3 - "$NOTIFY_SOCKET" "$WORK/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        log.write(msg.replace("\n", "|") + "\n")
PY
        CLEANUPS+=("kill $!")
        for _ in $(seq 1 50); do [ -S "$NOTIFY_SOCKET" ] && break; sleep 0.1; done
}

# The crash shim (tests/integration/crash-shim.c) for the fault tests that hold aded at a step.
SHIM=$top_builddir/tests/integration/crash-shim.so
require_shim() {
        [ -f "$SHIM" ] || skip "the crash shim is not built ($SHIM)"
}

# enable_stopped_at POINT: starts aded with the shim, which stops it (SIGSTOP) once the state file
# reaches POINT (e.g. state:encrypt:keyfile), and an Enable (--no-wait); returns once aded is
# stopped there. "kill -CONT $ADED_PID" lets it go on. With STOPPED_ACTION=wait only the thread
# that reached POINT waits, inside the state file's rename, until $WORK/release exists: no other
# thread runs on unseen while a whole-process stop takes effect.
enable_stopped_at() {
        local mark=$WORK/mark-$1
        rm -f "$WORK/release"
        # An aded built with ASan wants its runtime first; the preloaded shim comes before it.
        ADE_CRASH_AT=$1 ADE_CRASH_ACTION=${STOPPED_ACTION:-stop} ADE_CRASH_RELEASE=$WORK/release \
                ADE_CRASH_MARK=$mark ADE_CRASH_STATE=$WORK/state/state.json \
                LD_PRELOAD=$SHIM ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_aded
        adectl enable --volume-type DATA --no-wait >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable --no-wait failed"; }
        for _ in $(seq 1 600); do [ -s "$mark" ] && return 0; sleep 0.1; done
        fail "aded never reached $1"
}

stop_aded() {
        [ -n "$ADED_PID" ] || return 0
        kill -TERM "$ADED_PID" 2>/dev/null
        wait "$ADED_PID"
        local rc=$?
        ADED_PID=""
        return $rc
}

adectl() {
        "$ADECTL" "$@"
}

# volume_field DEVICE FIELD: a field of the device's volume object in "adectl show --json".
volume_field() {
        "$ADECTL" show --json | jq -r --arg d "$1" ".volumes[] | select(.device == \$d) | .$2"
}

# wait_for_progress DEVICE: until a job on DEVICE has done some bytes but not all.
wait_for_progress() {
        local i done total
        for i in $(seq 1 600); do
                read -r done total < <("$ADECTL" show --json | jq -r --arg d "$1" \
                        '.volumes[] | select(.device == $d) | "\(.bytesDone) \(.bytesTotal)"')
                [ "${done:-0}" -gt 0 ] && [ "$done" -lt "$total" ] && return 0
                sleep 0.02
        done
        fail "no progress on $1"
}

# wait_for_state DEVICE STATE [SECONDS]
wait_for_state() {
        local i
        for i in $(seq 1 $((${3:-60} * 10))); do
                [ "$(volume_field "$1" state)" = "$2" ] && return 0
                sleep 0.1
        done
        fail "$1 did not reach $2 (now $(volume_field "$1" state))"
}

# check_detached_copy DEVICE HEADER IMAGE SUM: the volume encrypted with the detached HEADER holds
# the plaintext whose sha256 is SUM: a copy of IMAGE (DEVICE's file) decrypted by stock cryptsetup
# with the key ade-resolve-key fetches. The originals are not touched.
check_detached_copy() {
        local key=$WORK/copy.key copy
        rm -f "$key" "$WORK/copy.header" "$WORK/copy.img"
        "$RESOLVE" --config "$WORK/ade.conf" --header "$2" --output "$key" "$1" 2>"$WORK/resolve.err" ||
                fail "ade-resolve-key failed for $1: $(cat "$WORK/resolve.err")"
        cp "$2" "$WORK/copy.header"
        cp --sparse=always "$3" "$WORK/copy.img"
        copy=$(losetup -f --show "$WORK/copy.img") || fail "losetup failed"
        LOOPS+=("$copy")
        cryptsetup reencrypt -q --decrypt --header "$WORK/copy.header" --key-file "$key" "$copy" >/dev/null 2>&1 ||
                fail "stock cryptsetup cannot decrypt a copy of $1"
        [ "$(sha256sum <"$copy")" = "$4" ] || fail "the decrypted copy of $1 differs from the original"
        losetup -d "$copy"
        unset 'LOOPS[-1]' # detached: the name may be another test's by the exit
        rm -f "$key" "$WORK/copy.header" "$WORK/copy.img"
}

secrets_count() {
        emulator_state | jq '[.secrets[].name] | unique | length'
}
