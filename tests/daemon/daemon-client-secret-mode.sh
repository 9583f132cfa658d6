#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A client-secret file that others may read is refused: aded says so as it starts, with the fix;
# enable fails and the secret never goes to Entra. Once it is 0600, enable works.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
chmod 644 "$WORK/app-secret"
start_aded
grep -q "$WORK/app-secret: the client secret must be .*chmod 600" "$WORK/aded.log" ||
        fail "aded did not say the client secret is readable by others: $(cat "$WORK/aded.log")"
adectl enable --volume-type data >"$WORK/out" 2>&1 && fail "enable succeeded with a world-readable client secret"
grep -q "client secret $WORK/app-secret may be read or written by others.*chmod 600" "$WORK/out" ||
        fail "enable's error does not say why: $(cat "$WORK/out")"
n=$(curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/requests" | jq '[.requests[] | select(.route == "entra")] | length')
[ "$n" = 0 ] || fail "$n token requests reached Entra with a client secret others may read"
[ "$(volume_field "$VOLUME" state)" = NotEncrypted ] || fail "the volume changed"

chmod 600 "$WORK/app-secret"
adectl enable --volume-type data >"$WORK/out" 2>&1 || fail "enable failed with a 0600 client secret: $(cat "$WORK/out")"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
pass
