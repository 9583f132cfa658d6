# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the daemon's guest scripts after guest-lib.sh and online-lib.sh: mounts /dev/vda on
# /mnt/data, starts the Azure emulator and aded (start_aded again after a kill) with a config for them.
b=$top_builddir
dev=/dev/vda
w=/tmp/aded
mkdir -p /mnt/data "$w/headers" "$w/state"
require "mount the ext4 data disk" mount $dev /mnt/data
require "its files match the manifest" verify_tree /mnt/data

# The vault is reached as https://localhost:PORT: the emulator plays a cloud whose Key Vault resource
# is https://localhost (tests/daemon/daemon-lib.sh says why).
printf '{"keyvault":{"resource":"https://localhost"}}' >"$w/emulator-overlay.json"
"$b/tests/emulator/ade-emulator" --dir "$w/emu" --config "$w/emulator-overlay.json" >"$w/emulator.log" 2>&1 &
for _ in $(seq 1 600); do [ -s "$w/emu/ready.json" ] && break; sleep 0.1; done
require "the emulator is ready" test -s "$w/emu/ready.json"
https=$(sed -n 's/.*"https_port": *\([0-9]*\).*/\1/p' "$w/emu/ready.json")
http=$(sed -n 's/.*"http_port": *\([0-9]*\).*/\1/p' "$w/emu/ready.json")
printf 'ade~emulator.Secret-0123456789' >"$w/app-secret"
chmod 600 "$w/app-secret"
cat >"$w/ade.conf" <<EOF2
[keyvault]
url = https://localhost:$https
resource-id = /subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso
[identity]
type = client-secret
client-id = 5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03
tenant-id = 72f988bf-86f1-41af-91ab-2d7cd011db47
client-secret-file = $w/app-secret
[azure]
imds = http://127.0.0.1:$http
arm = https://localhost:$https
authority = https://localhost:$https
keyvault-resource = https://localhost
ca-file = $w/emu/ca.pem
[volumes]
data = $dev
header-dir = $w/headers
[daemon]
socket = $w/run/io.ade.DiskEncryption
group = root
state-dir = $w/state
key-socket = $w/run/key.socket
crypttab = $w/crypttab
fstab = $w/fstab
EOF2
export ADE_SOCKET=$w/run/io.ade.DiskEncryption

start_aded() {
        rm -f "$ADE_SOCKET"
        "$b/daemon/aded" --config "$w/ade.conf" >>"$w/aded.log" 2>&1 &
        aded_pid=$!
        for _ in $(seq 1 300); do [ -S "$ADE_SOCKET" ] && break; sleep 0.1; done
        require "aded listens" test -S "$ADE_SOCKET"
}

adectl() {
        "$b/tools/adectl" "$@"
}

# field NAME: the data volume's field NAME (a jq path: state, backup.state) in "adectl show --json".
# By jq: a pattern over the text found the last "state" key, which since Show has a backup object
# is that object's, and a wait for Encrypted never ended.
field() {
        adectl show --json | jq -r --arg d "$dev" ".volumes[] | select(.device == \$d) | .$1 // empty"
}

start_aded
