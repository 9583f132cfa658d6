#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# One Enable (two data volumes, so two jobs escrow at once, with a KEK, so the preconditions read the
# key in Key Vault too) asks for one token per resource, Key Vault and ARM, answers Key Vault's
# challenge once, and reuses its TLS connections: counted in the emulator's request log. The
# identity is the managed one, whose token requests name their resource in the query string.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
make_volume 200
start_emulator
write_config
# The managed identity instead of daemon-lib's Entra app: IMDS token requests name their resource.
sed -i '/^\[identity\]/,/^$/d' "$WORK/ade.conf"
printf '[identity]\ntype = managed\n' >>"$WORK/ade.conf"
start_aded

requests() { curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/requests"; }
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/requests" >/dev/null || fail "cannot clear the request log"

kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid' | tail -n1)
adectl enable --volume-type DATA --kek-url "$kek" >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable failed"; }
for v in "${LOOPS[@]}"; do
        [ "$(volume_field "$v" state)" = Encrypted ] || fail "$v is not Encrypted"
done
[ "$(secrets_count)" = 2 ] || fail "expected two escrowed secrets, found $(secrets_count)"

requests >"$WORK/requests.json"
tokens_for() {
        jq --arg r "$1" '[.requests[] | select(.route == "imds-token") |
                select(.query | test("resource=" + ($r | @uri) + "(&|$)"))] | length' "$WORK/requests.json"
}
vault_tokens=$(tokens_for "$EMULATOR_KEYVAULT_RESOURCE")
arm_tokens=$(tokens_for https://management.azure.com/)
all_tokens=$(jq '[.requests[] | select(.route == "imds-token" or .route == "entra")] | length' "$WORK/requests.json")
[ "$vault_tokens" = 1 ] || fail "$vault_tokens Key Vault token requests for one Enable, expected 1"
[ "$arm_tokens" = 1 ] || fail "$arm_tokens ARM token requests for one Enable, expected 1"
[ "$all_tokens" = 2 ] || fail "$all_tokens token requests in all, expected 2: $(jq -c '[.requests[] |
        select(.route == "imds-token" or .route == "entra") | .query]' "$WORK/requests.json")"

# Key Vault's challenge (the probe without a token) once for the process, not once per client.
challenges=$(jq '[.requests[] | select(.service == "keyvault" and (.authorization | not))] | length' "$WORK/requests.json")
[ "$challenges" = 1 ] || fail "$challenges Key Vault challenges for one Enable, expected 1"

# Connections: the preconditions' reads run side by side (IMDS, ARM's vault, Key Vault's KEK, then
# ARM's snapshots and restore points) and the two jobs escrow side by side, so a few connections
# open; every further HTTPS request reuses one of them.
tls_requests=$(jq '[.requests[] | select(.tls)] | length' "$WORK/requests.json")
tls_connections=$(jq '[.requests[] | select(.tls) | .connection] | unique | length' "$WORK/requests.json")
[ "$tls_connections" -le 5 ] ||
        fail "$tls_connections TLS connections for $tls_requests requests: connections are not reused"
[ "$tls_requests" -ge $((tls_connections * 2)) ] ||
        fail "only $tls_requests requests over $tls_connections TLS connections: connections are not reused"
pass "$vault_tokens+$arm_tokens tokens, $challenges challenge, $tls_requests HTTPS requests over $tls_connections connections"
