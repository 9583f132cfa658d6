#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# OS-volume encryption does not exist yet: enable --volume-type OS is refused (exit 3) with a message
# saying so, and nothing changes.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

sum=$(sha256sum <"$VOLUME")
adectl enable --volume-type os >"$WORK/out" 2>&1
rc=$?
[ $rc = 3 ] || fail "exit status $rc, expected 3"
grep -q "OS volume is not supported" "$WORK/out" || fail "message does not say why: $(cat "$WORK/out")"
[ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "the device changed"
[ "$(secrets_count)" = 0 ] || fail "a secret was written"
pass
