#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 6, end to end: for every failing precondition, "adectl enable" through aded is refused with
# the named check (exit 3), the device is byte-for-byte unchanged, and no secret reaches Key Vault.
# One emulator scenario per failure; the good scenarios (a restore point instead of a snapshot, soft
# delete off) pass the checks, shown by a dry run.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
SUM=$(sha256sum <"$VOLUME")
VAULT_ID=/subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso
checked=0

restart() {
        stop_aded 2>/dev/null
        if [ -n "$EMU_PID" ]; then
                kill "$EMU_PID" 2>/dev/null
                wait "$EMU_PID" 2>/dev/null
                EMU_PID=""
        fi
        # A fresh vault each time: the state file would bring back the previous scenario's keys.
        rm -f "$WORK/emu/ready.json" "$WORK/emu/vault-state.json"
        start_emulator "$1"
        write_config
        [ -z "${2:-}" ] || sed -i "$2" "$WORK/ade.conf"
        start_aded
        KEK_URL=$(emulator_state | jq -r '[.keys[] | select(.name == "kek")][-1].kid')
}

# expect NAME JQ_FILTER [ADECTL_ARGS...]: enable is refused as JQ_FILTER says, nothing changed.
expect() {
        local name=$1 filter=$2
        shift 2
        adectl --json enable --volume-type DATA "$@" >"$WORK/json" 2>"$WORK/err"
        local rc=$?
        [ $rc = 3 ] || fail "$name: exit status $rc, expected 3: $(cat "$WORK/json" "$WORK/err")"
        jq -e "$filter" "$WORK/json" >/dev/null || fail "$name: unexpected refusal: $(cat "$WORK/json")"
        [ "$(sha256sum <"$VOLUME")" = "$SUM" ] || fail "$name: the device changed"
        [ "$(secrets_count)" = 0 ] || fail "$name: a secret was written"
        echo "ok - $name: $(jq -c '{error, parameters}' "$WORK/json")"
        checked=$((checked + 1))
}

failed_check() {
        echo ".error == \"io.ade.DiskEncryption.PreconditionFailed\" and .parameters.check == \"$1\""
}

snapshot_missing='.error == "io.ade.DiskEncryption.SnapshotMissing"'

restart '{"snapshots": []}'
expect "no snapshot" "$snapshot_missing"

restart '{"snapshots": [{"name": "s0", "disk": "ade-test-vm_DataDisk_0", "age_seconds": 172800},
                        {"name": "s1", "disk": "ade-test-vm_DataDisk_1", "age_seconds": 172800}]}'
expect "snapshot too old" "$snapshot_missing"

restart '{"snapshots": [{"name": "s0", "disk": "ade-test-vm_OsDisk"}]}'
expect "snapshot of another disk" "$snapshot_missing"

restart '{"snapshots": [{"name": "s0", "disk": "ade-test-vm_DataDisk_0", "state": "Failed"},
                        {"name": "s1", "disk": "ade-test-vm_DataDisk_1", "state": "Failed"}]}'
expect "snapshot in state Failed" "$snapshot_missing"

for region in "East US" "eastus" "EAST US 2"; do
        restart "{\"vm\": {\"location\": \"$region\"}}"
        expect "region mismatch ($region)" \
                ".error == \"io.ade.DiskEncryption.RegionMismatch\" and .parameters.vmLocation == \"$region\""
done

restart '{"vault": {"enabled_for_disk_encryption": false}}'
expect "vault not enabled for disk encryption" "$(failed_check vault-enabled-for-disk-encryption)"

restart '{"vault": {"subscription_id": "ffffffff-0000-4000-8000-00000000000f"}}' \
        "s|^resource-id = .*|resource-id = /subscriptions/ffffffff-0000-4000-8000-00000000000f/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso|"
expect "vault in another subscription" "$(failed_check same-subscription)"

restart ''
expect "KEK unversioned" "$(failed_check kek-valid)" --kek-url "${KEK_URL%/*}" --kek-vault-resource-id "$VAULT_ID"

restart '{"vault": {"keys": [{"name": "kek", "enabled": false}]}}'
expect "KEK disabled" "$(failed_check kek-valid)" --kek-url "$KEK_URL" --kek-vault-resource-id "$VAULT_ID"

restart '{"vault": {"keys": [{"name": "kek", "expires_in_seconds": -3600}]}}'
expect "KEK expired" "$(failed_check kek-valid)" --kek-url "$KEK_URL" --kek-vault-resource-id "$VAULT_ID"

restart '{"vault": {"keys": [{"name": "kek", "kty": "EC", "crv": "P-256", "key_ops": ["wrapKey", "unwrapKey"]}]}}'
expect "KEK is an EC key" "$(failed_check kek-valid)" --kek-url "$KEK_URL" --kek-vault-resource-id "$VAULT_ID"

restart '{"vault": {"keys": [{"name": "kek", "key_ops": ["encrypt", "decrypt", "unwrapKey"]}]}}'
expect "KEK without wrapKey" "$(failed_check kek-valid)" --kek-url "$KEK_URL" --kek-vault-resource-id "$VAULT_ID"

# IMDS unreachable: nothing listens on the configured port.
restart '' "s|^imds = .*|imds = http://127.0.0.1:9|"
expect "IMDS unreachable" "$(failed_check vm-identity)"

restart '{"identities": {"system": {"snapshot_reader": false}}, "apps": [{"name": "ade-test-app-secret", "client_id": "5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03", "object_id": "0e1f2a3b-3333-4c5d-8e7f-9a0b1c2d3e03", "secret": "ade~emulator.Secret-0123456789", "certificate": false, "snapshot_reader": false}]}'
adectl --json enable --volume-type DATA >"$WORK/json" 2>/dev/null
jq -e '.parameters.reason // .parameters.disk // "" | tostring | length > 0' "$WORK/json" >/dev/null ||
        fail "ARM 403: no refusal: $(cat "$WORK/json")"
adectl enable --volume-type DATA --dry-run >"$WORK/dry" 2>&1
grep -q "Reader" "$WORK/dry" || fail "ARM 403: the plan does not name the role to grant: $(cat "$WORK/dry")"
expect "ARM 403 on snapshots" "$snapshot_missing"

# The good ones: the checks pass, shown by a dry run that changes nothing.
restart '{"snapshots": [], "restore_point_collections": [{"name": "rpc1", "restore_points": [{"name": "rp1", "age_seconds": 3600}]}]}'
adectl enable --volume-type DATA --dry-run >"$WORK/dry" 2>&1 || fail "restore point: refused: $(cat "$WORK/dry")"
grep -q "restore point rp1" "$WORK/dry" || fail "restore point: the plan does not name it: $(cat "$WORK/dry")"
echo "ok - a valid restore point instead of a snapshot passes"

restart '{"vault": {"enable_soft_delete": false}}'
adectl enable --volume-type DATA --dry-run >"$WORK/dry" 2>&1 || fail "soft delete off: refused: $(cat "$WORK/dry")"
grep -qi "warn.*soft-delete" "$WORK/dry" || fail "soft delete off: no warning in the plan: $(cat "$WORK/dry")"
echo "ok - soft delete off passes with a warning in the plan"

[ "$(sha256sum <"$VOLUME")" = "$SUM" ] || fail "the device changed"
pass "$checked refusals, 2 passes"
