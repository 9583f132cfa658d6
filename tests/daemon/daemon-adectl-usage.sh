#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# adectl's exit codes without a daemon: 2 for usage errors (each refused before connecting), 4 with a
# message naming the socket when aded is not there. Needs no root.
. "$(dirname "$0")/daemon-lib.sh"
[ -x "$ADECTL" ] || skip "adectl not built"
daemon_workdir
export ADE_SOCKET=$WORK/nothing-here

expect() {
        local want=$1; shift
        "$ADECTL" "$@" >"$WORK/out" 2>&1
        local rc=$?
        [ $rc = "$want" ] || fail "adectl $* exited $rc, expected $want: $(cat "$WORK/out")"
}

expect 2
expect 2 frobnicate
expect 2 enable
expect 2 enable --volume-type FLOPPY
expect 2 enable --volume-type DATA --format-all
expect 2 enable --volume-type DATA --yes
expect 2 disable
expect 2 show --kek-url https://x.vault.azure.net/keys/k/1
expect 2 show extra-argument
expect 2 rotate --volume-type DATA
expect 2 --no-such-option show
expect 0 --help

expect 4 show
grep -q "$WORK/nothing-here" "$WORK/out" || fail "the message does not name the socket: $(cat "$WORK/out")"
grep -qi "aded" "$WORK/out" || fail "the message does not mention aded"
expect 4 --socket "$WORK/other" --json show
grep -q "$WORK/other" "$WORK/out" || fail "--socket is not the socket named"
expect 4 enable --volume-type DATA
expect 4 watch
pass
