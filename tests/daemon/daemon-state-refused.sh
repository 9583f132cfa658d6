#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A state file aded cannot trust (corrupt, or of a version newer than it knows) does not stop aded
# (it used to refuse to start, and under systemd that was a crash loop) nor get overwritten: aded
# runs read-only. Show answers and says why, naming the file; Enable, Disable, Unlock and RotateKey
# are refused with a message naming the file and what to do; the file is left as it was. A state
# file of an older version is migrated, the old file kept beside it. Needs no root.
. "$(dirname "$0")/daemon-lib.sh"
[ -x "$ADED" ] && [ -x "$ADECTL" ] || skip "aded/adectl not built"
command -v jq >/dev/null || skip "no jq"
daemon_workdir
mkdir -p "$WORK/state"
cat >"$WORK/ade.conf" <<EOF2
[keyvault]
url = https://localhost:1
[volumes]
header-dir = $WORK/headers
[daemon]
socket = $WORK/run/sock
state-dir = $WORK/state
key-socket = $WORK/run/key.socket
crypttab = $WORK/crypttab
fstab = $WORK/fstab
EOF2
SOCKET=$WORK/run/sock
export ADE_SOCKET=$SOCKET

# read_only WHAT NEEDLE: aded runs, Show says why (naming the file and NEEDLE), every mutating
# method is refused with that, and the file is untouched.
read_only() {
        local what=$1 needle=$2 sum msg verb
        sum=$(sha256sum <"$WORK/state/state.json")
        start_aded
        grep -q "$WORK/state/state.json" "$WORK/aded.log" || fail "$what: the log does not name the file"
        msg=$(adectl show --json | jq -r '.message // empty')
        case $msg in *"$WORK/state/state.json"*"$needle"*"read-only"*) ;; *) fail "$what: Show does not say why: '$msg'" ;; esac
        adectl show | grep -q "read-only" || fail "$what: adectl show does not print why"
        for verb in "enable --volume-type DATA" "disable --volume-type DATA" "rotate" "unlock"; do
                # shellcheck disable=SC2086
                adectl $verb >"$WORK/out" 2>&1 && fail "$what: '$verb' was accepted"
                grep -q "$WORK/state/state.json" "$WORK/out" || fail "$what: '$verb' refused without naming the file: $(cat "$WORK/out")"
        done
        stop_aded || fail "$what: aded did not stop cleanly"
        [ "$(sha256sum <"$WORK/state/state.json")" = "$sum" ] || fail "$what: aded wrote to the state file"
        : >"$WORK/aded.log"
}

printf '{"version": 2, "volumes": [' >"$WORK/state/state.json"
read_only "a corrupt file" corrupt

printf '{"version": 7, "volumes": []}' >"$WORK/state/state.json"
read_only "version 7" "version 7"

# Version 1 (records keyed by /dev name): migrated, the old file kept as state.json.v1.
cat >"$WORK/state/state.json" <<'EOF2'
{"version": 1, "volumes": [{"device": "/dev/ade-test-gone", "job": "encrypt", "step": "done",
 "secretUrl": "https://localhost:1/secrets/s/0123456789abcdef0123456789abcdef"}]}
EOF2
old=$(sha256sum <"$WORK/state/state.json")
start_aded
[ -z "$(adectl show --json | jq -r '.message // empty')" ] || fail "a version 1 file made aded read-only"
[ "$(jq -r .version "$WORK/state/state.json")" = 2 ] || fail "the state file was not migrated to version 2"
[ "$(jq -r '.volumes[0].deviceId' "$WORK/state/state.json")" = /dev/ade-test-gone ] ||
        fail "the migrated record has no deviceId"
[ "$(jq -r '.volumes[0].secretUrl' "$WORK/state/state.json")" = https://localhost:1/secrets/s/0123456789abcdef0123456789abcdef ] ||
        fail "the migration lost a field"
[ "$(sha256sum <"$WORK/state/state.json.v1")" = "$old" ] || fail "the old file is not kept as state.json.v1"
grep -q "migrating the state file from version 1" "$WORK/aded.log" || fail "the migration is not logged"
stop_aded || fail "aded did not stop cleanly"

# A version 1 record of a loop device (which had no stable id then) is keyed by the stable id of
# the device now at its name: keyed by the name it would never meet its volume again.
if [ "$(id -u)" = 0 ] && truncate -s 1M "$WORK/v1.img" && l=$(losetup -f --show "$WORK/v1.img" 2>/dev/null); then
        LOOPS+=("$l")
        rm -f "$WORK/state/state.json" "$WORK/state/state.json.v1"
        printf '{"version": 1, "volumes": [{"device": "%s", "job": "encrypt", "step": "done"}]}' "$l" >"$WORK/state/state.json"
        start_aded
        id=$(jq -r '.volumes[0].deviceId' "$WORK/state/state.json")
        case $id in loop:*) ;; *) fail "the migrated record of $l is keyed by '$id', not the loop device's stable id" ;; esac
        [ "$(jq -r '.volumes[0].device' "$WORK/state/state.json")" = "$l" ] || fail "the migrated record lost its device"
        stop_aded || fail "aded did not stop cleanly"
else
        echo "(not root or no loop device: the migration of a loop device's record is not checked)"
fi
pass
