#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet examples of docs/fleet/: the Ansible playbook passes ansible-playbook --syntax-check
# (Debian's ansible-core), the ade.conf it writes (its Jinja template, rendered with the
# playbook's own defaults, with and without a KEK, a client id and metrics) is accepted by
# "aded --check-config", and the Run Command script is valid sh that refuses to run without a
# vault. Skips (77) without ansible-playbook.
set -uo pipefail
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
fail() {
        echo "FAIL: $*"
        exit 1
}
command -v ansible-playbook >/dev/null || { echo "SKIP: ansible-playbook is missing (Debian's ansible-core)"; exit 77; }
WORK=$(mktemp -d /tmp/ade-fleet.XXXXXX) || fail "mktemp"
trap 'rm -rf "$WORK"' EXIT

ANSIBLE_LOCAL_TEMP=$WORK/ansible ANSIBLE_HOME=$WORK/ansible \
        ansible-playbook --syntax-check -i localhost, "$top_srcdir/docs/fleet/ade.yml" >"$WORK/out" 2>&1 ||
        fail "ansible-playbook --syntax-check: $(cat "$WORK/out")"
echo "ok: ansible-playbook --syntax-check docs/fleet/ade.yml"

# The template as the playbook has it, rendered the way Ansible renders it (Jinja2, trim_blocks).
python3 - "$top_srcdir/docs/fleet/ade.yml" "$WORK" <<'PY' || fail "cannot render the playbook's ade.conf"
import sys, yaml, jinja2
play = yaml.safe_load(open(sys.argv[1]))[0]
task = next(t for t in play["tasks"] if t.get("name") == "/etc/ade/ade.conf")
template = task["ansible.builtin.copy"]["content"]
env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
cases = {
    "defaults": {},
    "everything": {"ade_kek_url": "https://contoso.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef",
                   "ade_identity_client_id": "5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03",
                   "ade_metrics_path": "/var/lib/prometheus/node-exporter/ade.prom"},
}
for name, extra in cases.items():
    v = dict(play["vars"])
    v["ade_keyvault_resource_id"] = ("/subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/rg"
                                     "/providers/Microsoft.KeyVault/vaults/contoso")
    v.update(extra)
    # Ansible resolves variables that name others; one level is all the playbook has.
    v = {k: env.from_string(x).render(**v) if isinstance(x, str) else x for k, x in v.items()}
    open("%s/%s.conf" % (sys.argv[2], name), "w").write(env.from_string(template).render(**v))
PY
for c in defaults everything; do
        "$top_builddir/daemon/aded" --check-config --config "$WORK/$c.conf" >"$WORK/out" 2>&1 ||
                fail "aded refuses the playbook's ade.conf ($c): $(cat "$WORK/out"; cat "$WORK/$c.conf")"
done
grep -q '^path = /var/lib/prometheus/node-exporter/ade.prom$' "$WORK/everything.conf" || fail "no [metrics] path"
grep -q '^kek-url = ' "$WORK/defaults.conf" && fail "an empty KEK URL was written"
echo "ok: the ade.conf the playbook writes passes aded --check-config, with and without the optional keys"

sh -n "$top_srcdir/docs/fleet/run-command.sh" || fail "run-command.sh is not valid sh"
sh "$top_srcdir/docs/fleet/run-command.sh" >"$WORK/out" 2>&1 && fail "run-command.sh ran without a vault"
grep -q 'KEYVAULT_URL' "$WORK/out" || fail "run-command.sh does not say what is missing: $(cat "$WORK/out")"
sh "$top_srcdir/docs/fleet/run-command.sh" BOGUS=1 >"$WORK/out" 2>&1 && fail "run-command.sh took an unknown argument"
echo "ok: run-command.sh is valid sh and refuses to run without a vault or with an unknown argument"
echo "PASS: fleet docs"
