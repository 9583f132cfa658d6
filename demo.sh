#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# ade in two minutes, as root on a fresh Debian 12 machine:
#   - installs what is missing and builds (in $ADE_BUILDDIR, default build/);
#   - makes a 512 MiB ext4 volume on a loop device, with sample files, in a temporary folder;
#   - starts the Azure emulator (Key Vault, IMDS, Entra ID, ARM) and aded with a demo config there;
#   - runs "adectl enable --volume-type DATA" with its progress, then "adectl show";
#   - proves the files intact with stock cryptsetup and the key file that ade's key resolver gets
#     back from Key Vault (not with ade's own decryption): cryptsetup checks the key and decrypts
#     a copy of the volume, and the files are read back from that copy and compared;
#   - cleans up (processes, loop devices, files) on exit, also when interrupted.
# Nothing but the loop devices it creates is touched.
set -euo pipefail

top=$(cd "$(dirname "$0")" && pwd)
builddir=${ADE_BUILDDIR:-$top/build}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (I attach loop devices and start aded)"

say "Installing what is missing"
"$top/tools/setup-deps.sh"

say "Building"
if [ ! -x "$top/configure" ]; then
        (cd "$top" && ./autogen.sh)
fi
mkdir -p "$builddir"
if [ ! -f "$builddir/Makefile" ]; then
        (cd "$builddir" && "$top/configure" --enable-silent-rules >configure.out) ||
                { cat "$builddir/configure.out"; die "configure failed"; }
fi
make -C "$builddir" -j"$(nproc)" daemon/aded tools/adectl tools/ade-resolve-key tests/emulator/ade-emulator \
        >"$builddir/demo-make.out" 2>&1 || { tail -n 40 "$builddir/demo-make.out"; die "build failed"; }
aded=$builddir/daemon/aded
adectl=$builddir/tools/adectl
resolve=$builddir/tools/ade-resolve-key
emulator=${ADE_EMULATOR:-$builddir/tests/emulator/ade-emulator}

work=$(mktemp -d /tmp/ade-demo.XXXXXX)
loop="" copy_loop="" emu_pid="" aded_pid=""
cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        [ -n "$aded_pid" ] && kill "$aded_pid" 2>/dev/null && wait "$aded_pid" 2>/dev/null
        [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
        [ -n "$copy_loop" ] && losetup -d "$copy_loop" 2>/dev/null
        [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
        rm -rf "$work"
        [ $rc = 0 ] && echo "demo: cleaned up" || echo "demo: stopped (status $rc); cleaned up" >&2
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "A 512 MiB ext4 volume with sample files, on a loop device"
mkdir -p "$work/sample/docs" "$work/headers"
for i in 1 2 3 4 5; do
        head -c $((i * 3 * 1024 * 1024)) /dev/urandom >"$work/sample/data-$i.bin"
done
printf 'Quarterly report: revenue up, encryption on.\n' >"$work/sample/docs/report.txt"
cp /etc/os-release "$work/sample/docs/os-release"
(cd "$work/sample" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/manifest"
truncate -s 512M "$work/data.img"
# mkfs.ext4 -d fills the filesystem from a folder: no mount needed.
mkfs.ext4 -q -L ade-demo -d "$work/sample" "$work/data.img"
loop=$(losetup -f --show "$work/data.img")
echo "volume: $loop ($(wc -l <"$work/manifest") files, $(du -sh "$work/sample" | cut -f1))"

say "Starting the Azure emulator"
# The emulator is reached as https://localhost:PORT, so it plays a cloud whose Key Vault resource is
# https://localhost (ade.conf below says so too): aded sends a vault its token only when the vault's
# host lies within the resource's domain, as contoso.vault.azure.net lies under vault.azure.net.
printf '{"keyvault": {"resource": "https://localhost"}}\n' >"$work/emulator-overlay.json"
"$emulator" --dir "$work/emu" --state "$work/emu/vault-state.json" --config "$work/emulator-overlay.json" \
        >"$work/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 1 300); do
        [ -s "$work/emu/ready.json" ] && break
        kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emulator.log"; die "the emulator exited"; }
        sleep 0.1
done
[ -s "$work/emu/ready.json" ] || die "the emulator did not become ready"
json_num() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$work/emu/ready.json"; }
https_port=$(json_num https_port)
http_port=$(json_num http_port)
vault_id=/subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso
echo "Key Vault, Entra ID, ARM: https://localhost:$https_port   IMDS: http://127.0.0.1:$http_port"

# The VM's managed identity, as on Azure; ADE_DEMO_IDENTITY=client-secret uses the emulator's Entra app.
if [ "${ADE_DEMO_IDENTITY:-managed}" = client-secret ]; then
        printf 'ade~emulator.Secret-0123456789' >"$work/app-secret"
        chmod 600 "$work/app-secret"
        identity="type = client-secret
client-id = 5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03
tenant-id = 72f988bf-86f1-41af-91ab-2d7cd011db47
client-secret-file = $work/app-secret"
else
        identity="type = managed"
fi
cat >"$work/ade.conf" <<EOF
# ade demo configuration: the emulator's endpoints and one loop-device data volume.
[keyvault]
url = https://localhost:$https_port
resource-id = $vault_id

[identity]
$identity

[azure]
imds = http://127.0.0.1:$http_port
arm = https://localhost:$https_port
authority = https://localhost:$https_port
keyvault-resource = https://localhost
ca-file = $work/emu/ca.pem

[volumes]
data = $loop
header-dir = $work/headers

[daemon]
socket = $work/run/io.ade.DiskEncryption
group = root
state-dir = $work/state
key-socket = $work/run/key.socket
crypttab = $work/crypttab
fstab = $work/fstab
EOF

say "Starting aded"
"$aded" --config "$work/ade.conf" >"$work/aded.log" 2>&1 &
aded_pid=$!
for _ in $(seq 1 100); do
        [ -S "$work/run/io.ade.DiskEncryption" ] && break
        kill -0 "$aded_pid" 2>/dev/null || { cat "$work/aded.log"; die "aded exited"; }
        sleep 0.1
done
export ADE_SOCKET=$work/run/io.ade.DiskEncryption
echo "aded (pid $aded_pid) on $ADE_SOCKET"

say "adectl enable --volume-type DATA"
"$adectl" enable --volume-type DATA

say "adectl show"
"$adectl" show

say "The key, recovered by ade's key resolver from Key Vault through the volume's LUKS2 token"
"$resolve" --config "$work/ade.conf" --output "$work/key" "$loop"

say "Stock cryptsetup: the header, and the key file opening its keyslot"
cryptsetup luksDump "$loop" | sed -n '1,12p;/^Tokens:/,/^Digests:/p'
cryptsetup open --test-passphrase --key-file "$work/key" "$loop" && echo "cryptsetup: the key file opens $loop"

say "Stock cryptsetup decrypts a copy; the files are read back from it and compared"
cp --sparse=always "$work/data.img" "$work/copy.img"
copy_loop=$(losetup -f --show "$work/copy.img")
# The header is at the start of the device: decryption moves it out to a file, then shifts the data back.
cryptsetup reencrypt --batch-mode --decrypt --header "$work/copy.header" --key-file "$work/key" "$copy_loop" \
        >"$work/cryptsetup-decrypt.out" 2>&1 || { cat "$work/cryptsetup-decrypt.out"; die "cryptsetup could not decrypt"; }
echo "cryptsetup reencrypt --decrypt: the copy is plaintext again"
e2fsck -fn "$copy_loop" >/dev/null 2>&1 && echo "e2fsck: the decrypted copy is a clean ext4 filesystem"
mkdir "$work/back"
debugfs -R "rdump / $work/back" "$copy_loop" >/dev/null 2>&1
(cd "$work/back" && sha256sum --quiet -c "$work/manifest") && echo "sha256: all $(wc -l <"$work/manifest") files intact"

say "Done: the volume was encrypted in place by aded, its key escrowed in (emulated) Key Vault"
