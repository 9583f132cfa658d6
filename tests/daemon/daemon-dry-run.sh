#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# enable --dry-run reports the checks and steps and changes nothing: the device is byte-for-byte
# the same, and no secret is written to Key Vault.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

sum=$(sha256sum <"$VOLUME")
adectl enable --volume-type DATA --dry-run >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "dry run failed"; }
grep -q "volume-eligible" "$WORK/out" || fail "the plan does not list volume-eligible"
grep -q "contentType 'BEK', tags DiskEncryptionKeyFileName=LinuxPassPhraseFileName_0_0" "$WORK/out" ||
        fail "the plan does not say what would be written to Key Vault: $(cat "$WORK/out")"
adectl enable --volume-type DATA --dry-run --json | jq -e '.plan.checks | length > 0' >/dev/null || fail "no checks in JSON"
[ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "the dry run changed the device"
[ "$(secrets_count)" = 0 ] || fail "the dry run wrote a secret"
pass
