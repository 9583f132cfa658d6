#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# For Azure's VM Run Command (docs/fleet/README.md), on one VM or many:
#
#   az vm run-command invoke -g RG -n VM --command-id RunShellScript \
#       --scripts @docs/fleet/run-command.sh --parameters KEYVAULT_URL=... KEYVAULT_RESOURCE_ID=...
#
# Installs ade from the repository already configured on the VM, writes ade.conf for the VM's
# managed identity unless one naming a vault is there, enables the data volumes and prints
# "adectl show --json" (Run Command returns the output).
set -eu
# Run Command hands named parameters over as NAME=VALUE arguments or as the environment: both work.
for a in "$@"; do
        case $a in
        KEYVAULT_URL=* | KEYVAULT_RESOURCE_ID=* | KEK_URL=* | KEK_VAULT_RESOURCE_ID=* | VOLUME_TYPE=*) export "$a" ;;
        *) echo "run-command.sh: unknown argument '$a'" >&2 && exit 2 ;;
        esac
done
: "${KEYVAULT_URL:?set KEYVAULT_URL}" "${KEYVAULT_RESOURCE_ID:?set KEYVAULT_RESOURCE_ID}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq ade >/dev/null
if ! grep -q '^url *=' /etc/ade/ade.conf 2>/dev/null; then
        umask 022
        {
                printf '[keyvault]\nurl = %s\nresource-id = %s\n' "$KEYVAULT_URL" "$KEYVAULT_RESOURCE_ID"
                [ -z "${KEK_URL:-}" ] || printf 'kek-url = %s\nkek-vault-resource-id = %s\n' "$KEK_URL" \
                        "${KEK_VAULT_RESOURCE_ID:-$KEYVAULT_RESOURCE_ID}"
                printf '\n[identity]\ntype = managed\n'
        } >/etc/ade/ade.conf.new
        mv /etc/ade/ade.conf.new /etc/ade/ade.conf
fi
aded --check-config
rc=0
adectl enable --volume-type "${VOLUME_TYPE:-DATA}" --no-wait || rc=$?
adectl show --json
exit "$rc"
