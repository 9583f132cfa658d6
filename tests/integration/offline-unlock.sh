#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Microsoft's offline-unlock procedure (docs/protocols.md §4.3) on secrets that ade wrote, with and
# without a KEK: get a managed-identity token from IMDS, GET the secret, unwrapkey when the secret
# names a KEK, decode, and open a LUKS2 image formatted with the original key file. Only curl, jq,
# base64/basenc and stock cryptsetup read the secret; ade's code only writes it (test-envelope-tool).
# No root needed: the LUKS2 volume is an image file and is only tested, never activated.
set -euo pipefail

builddir=${top_builddir:-$(pwd)}
emulator=${ADE_EMULATOR:-$builddir/tests/emulator/ade-emulator}
tool=$builddir/tests/unit/test-envelope-tool

skip() { echo "offline-unlock: SKIP: $*"; exit 77; }
[ -x "$emulator" ] || skip "no emulator at $emulator"
[ -x "$tool" ] || skip "no $tool"
for c in curl jq cryptsetup base64 basenc truncate cmp; do
        command -v "$c" >/dev/null || skip "$c is not installed"
done

work=$(mktemp -d /tmp/ade-offline-unlock.XXXXXX)
emu_pid=
cleanup() {
        if [ -n "$emu_pid" ]; then
                kill -TERM "$emu_pid" 2>/dev/null || true
                wait "$emu_pid" 2>/dev/null || true
        fi
        rm -rf "$work"
}
trap cleanup EXIT

# The vault is reached as https://localhost:PORT, so the emulator plays a cloud whose Key Vault
# resource is https://localhost (tests/daemon/daemon-lib.sh says why); the tool asks for that one.
mkdir -p "$work/emu"
printf '{"keyvault":{"resource":"https://localhost"}}' >"$work/emu-overlay.json"
"$emulator" --dir "$work/emu" --config "$work/emu-overlay.json" --listen 127.0.0.1 >"$work/emu.log" 2>&1 &
emu_pid=$!
# Wait for ready.json (written atomically), not for a fixed time; give up after 120 s.
for _ in $(seq 1200); do
        [ -s "$work/emu/ready.json" ] && break
        kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emu.log"; echo "offline-unlock: emulator died"; exit 1; }
        sleep 0.1
done
[ -s "$work/emu/ready.json" ] || { echo "offline-unlock: emulator not ready"; exit 1; }

https_port=$(jq -r .https_port "$work/emu/ready.json")
http_port=$(jq -r .http_port "$work/emu/ready.json")
ca=$(jq -r .ca_file "$work/emu/ready.json")
vault=https://localhost:$https_port
imds=http://127.0.0.1:$http_port
kek=$(curl -sSf --noproxy '*' "$imds/_emulator/state" | jq -r '.keys[] | select(.name == "kek") | .kid')
[ -n "$kek" ] || { echo "offline-unlock: no KEK in the emulator's state"; exit 1; }

# The LUKS2 image every case opens, formatted by stock cryptsetup with the case's key file.
image=$work/disk.img

failures=0
check() {
        local mode=$1 secret_url token secret value kek_url alg wrapped unwrapped padded
        local key_file=$work/keyfile-$mode recovered=$work/recovered-$mode

        if [ "$mode" = none ]; then
                secret_url=$("$tool" --vault "$vault" --resource https://localhost --imds "$imds" --ca "$ca" --key-file "$key_file")
        else
                secret_url=$("$tool" --vault "$vault" --resource https://localhost --imds "$imds" --ca "$ca" --kek "$kek" --alg "$mode" \
                        --key-file "$key_file")
        fi

        # 1. A managed-identity token for Key Vault, from IMDS (no proxy, Metadata: true).
        token=$(curl -sSf --noproxy '*' -H 'Metadata: true' \
                "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" |
                jq -r .access_token)
        # 2. The secret.
        secret=$(curl -sSf --noproxy '*' --cacert "$ca" -H "Authorization: Bearer $token" \
                "$secret_url?api-version=7.4")
        value=$(jq -r .value <<<"$secret")
        kek_url=$(jq -r '.tags.DiskEncryptionKeyEncryptionKeyURL // empty' <<<"$secret")
        alg=$(jq -r '.tags.DiskEncryptionKeyEncryptionAlgorithm // "RSA-OAEP"' <<<"$secret")

        # 3. Unwrap when the secret names a KEK; 4. decode.
        if [ -n "$kek_url" ]; then
                wrapped=$(jq -n --arg alg "$alg" --arg value "$value" '{alg: $alg, value: $value}')
                unwrapped=$(curl -sSf --noproxy '*' --cacert "$ca" -H "Authorization: Bearer $token" \
                        -H 'Content-Type: application/json' -d "$wrapped" \
                        "$kek_url/unwrapkey?api-version=7.4" | jq -r .value)
                padded=$unwrapped
                while [ $(( ${#padded} % 4 )) -ne 0 ]; do padded="$padded="; done
                printf '%s' "$padded" | basenc --base64url -d >"$recovered"
        else
                printf '%s' "$value" | base64 -d >"$recovered"
        fi
        chmod 600 "$recovered"

        if ! cmp -s "$key_file" "$recovered"; then
                echo "FAIL: $mode: the recovered key file differs from the one ade escrowed"
                failures=$((failures + 1))
                return
        fi

        # 5. cryptsetup opens a LUKS2 volume formatted with the original key file using the recovered one.
        rm -f "$image"
        truncate -s 20M "$image"
        cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                --hash sha512 --key-file "$key_file" "$image" >/dev/null
        if cryptsetup open --test-passphrase --key-file "$recovered" "$image"; then
                echo "PASS: $mode: key file recovered ($(wc -c <"$recovered") bytes) and the LUKS2 image opens"
        else
                echo "FAIL: $mode: cryptsetup refused the recovered key file"
                failures=$((failures + 1))
        fi
}

for mode in none RSA-OAEP RSA-OAEP-256 RSA1_5; do
        check "$mode"
done

# The procedure must also fail when it should: a wrong key file does not open the image.
head -c 127 /dev/urandom | base64 -w0 >"$work/wrong"
if cryptsetup open --test-passphrase --key-file "$work/wrong" "$image" 2>/dev/null; then
        echo "FAIL: a random key file opened the image"
        failures=$((failures + 1))
else
        echo "PASS: a random key file does not open the image"
fi

[ "$failures" -eq 0 ]
