#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded refuses to start on a corrupt state file or one of an unknown version, with a message naming
# the file, rather than guess where its jobs stood. Needs no root.
. "$(dirname "$0")/daemon-lib.sh"
[ -x "$ADED" ] || skip "aded not built"
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

printf '{"version": 1, "volumes": [' >"$WORK/state/state.json"
"$ADED" --config "$WORK/ade.conf" >"$WORK/out" 2>&1 && fail "aded started on a corrupt state file"
grep -q "$WORK/state/state.json" "$WORK/out" || fail "the message does not name the file: $(cat "$WORK/out")"
grep -q "corrupt" "$WORK/out" || fail "the message does not say corrupt: $(cat "$WORK/out")"
[ -S "$WORK/run/sock" ] && fail "aded listened although it refused to start"

printf '{"version": 7, "volumes": []}' >"$WORK/state/state.json"
"$ADED" --config "$WORK/ade.conf" >"$WORK/out" 2>&1 && fail "aded started on state version 7"
grep -q "version 7" "$WORK/out" || fail "the message does not name the version: $(cat "$WORK/out")"
pass
