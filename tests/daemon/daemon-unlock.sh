#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# adectl unlock: a device aded does not manage is NoSuchVolume (exit 1); without device-mapper the
# unlock is refused with a message saying so (exit 3); with it, the volume opens as /dev/mapper/ade-UUID.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded
adectl enable --volume-type DATA >/dev/null 2>&1 || fail "enable failed"

adectl unlock /dev/no-such-disk >"$WORK/out" 2>&1
rc=$?
[ $rc = 1 ] || fail "unlock of an unknown device exited $rc, expected 1"
grep -q "/dev/no-such-disk is not a volume aded manages" "$WORK/out" || fail "message: $(cat "$WORK/out")"

adectl unlock >"$WORK/out" 2>&1
rc=$?
if grep -qw device-mapper /proc/devices; then
        [ $rc = 0 ] || fail "unlock exited $rc: $(cat "$WORK/out")"
        [ "$(volume_field "$VOLUME" unlocked)" = true ] || fail "not unlocked after unlock"
        mapper=$(volume_field "$VOLUME" mapper)
        [ -b "$mapper" ] || fail "no block device at '$mapper'"
        CLEANUPS+=("cryptsetup close '$(basename "$mapper")'")
else
        [ $rc = 3 ] || fail "unlock without device-mapper exited $rc, expected 3"
        grep -q "device-mapper is not available" "$WORK/out" || fail "message: $(cat "$WORK/out")"
        [ "$(volume_field "$VOLUME" unlocked)" = false ] || fail "reported unlocked without device-mapper"
fi
pass
