#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The VM (East US, from IMDS) and the vault (westeurope, from ARM) are in different regions: enable is
# refused with RegionMismatch naming both (exit 3), and nothing is written, no secret escrowed.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator '{"vm": {"location": "East US"}}'
write_config
start_aded

sum=$(sha256sum <"$VOLUME")
adectl enable --volume-type DATA >"$WORK/out" 2>&1
rc=$?
[ $rc = 3 ] || fail "exit status $rc, expected 3: $(cat "$WORK/out")"
grep -q "East US" "$WORK/out" && grep -q "westeurope" "$WORK/out" || fail "the message does not name both regions: $(cat "$WORK/out")"
adectl --json enable --volume-type DATA >"$WORK/json" 2>/dev/null
jq -e '.error == "io.ade.DiskEncryption.RegionMismatch" and .parameters.vmLocation == "East US"' "$WORK/json" >/dev/null ||
        fail "not a RegionMismatch error: $(cat "$WORK/json")"
# A dry run lists every check, the failed one too, and exits 3 as well.
adectl enable --volume-type DATA --dry-run >"$WORK/dry" 2>&1
rc=$?
[ $rc = 3 ] || fail "dry run exit status $rc, expected 3"
grep -q "FAIL same-region" "$WORK/dry" || fail "the dry run does not show same-region failing: $(cat "$WORK/dry")"
grep -q "ok   snapshot" "$WORK/dry" || fail "the dry run does not show the other checks: $(cat "$WORK/dry")"
[ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "the device changed"
[ "$(secrets_count)" = 0 ] || fail "a secret was written"
pass
