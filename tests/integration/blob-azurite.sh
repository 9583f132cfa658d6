#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# ade's Blob Storage client and client-side encryption (lib/ade-blob.h, lib/ade-cse.h) against
# Microsoft's Storage emulator, Azurite (the version pinned in tests/integration/azurite/, installed
# with "npm ci" into the build folder like the JavaScript SDK's test), over HTTPS with a certificate
# from the emulator's test CA and OAuth ("--oauth basic": Azurite checks a token's issuer, audience
# and lifetime; the tokens come from the emulator's IMDS, for https://storage.azure.com/). The KEK is
# the emulator's Key Vault key.
#   - ade round trip: put (encrypted, with metadata), get, decrypt; an empty blob; List Blobs by
#     prefix over several pages; a missing blob is Storage's BlobNotFound.
#   - Conformance with Azure's own Python SDK (python3-azure, encryption_version 2.0, a KEK object
#     over the emulator's Key Vault): the SDK decrypts a blob ade wrote, found through its KeyId by
#     key_resolver_function, and ade decrypts a blob the SDK wrote.
# Skips (77) when ADE_HEAVY_TESTS=no, when not root (like the other suites that need npm), without
# Node.js >= 20 and npm, when the npm registry cannot be reached, or without python3-azure.
set -uo pipefail

skip() {
        echo "blob-azurite: SKIP: $*"
        exit 77
}
[ "${ADE_HEAVY_TESTS:-yes}" != no ] || skip "ADE_HEAVY_TESTS=no"
[ "$(id -u)" -eq 0 ] || skip "not root"
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-$(pwd)}
emulator=${ADE_EMULATOR:-$builddir/tests/emulator/ade-emulator}
tool=$builddir/tests/integration/ade-blob-tool

# Debian's python3-azure is for Debian's own interpreter, whatever python3 comes first in PATH.
python=/usr/bin/python3
"$python" -c 'import azure.storage.blob' 2>/dev/null ||
        skip "Azure's Python SDK is missing (apt-get install python3-azure; tools/setup-deps.sh does)"
for c in curl jq openssl cmp; do
        command -v "$c" >/dev/null || skip "$c is not installed"
done
[ -x "$emulator" ] || { echo "blob-azurite: ERROR: $emulator is missing"; exit 99; }
[ -x "$tool" ] || { echo "blob-azurite: ERROR: $tool is missing"; exit 99; }

. "$srcdir/tests/integration/azurite-lib.sh"
azurite_install
rc=$?
[ $rc -eq 0 ] || exit $rc

work=$(mktemp -d /tmp/ade-blob-azurite.XXXXXX)
emu_pid=
AZURITE_PID=
cleanup() {
        local p
        for p in "$AZURITE_PID" "$emu_pid"; do
                if [ -n "$p" ]; then
                        kill -TERM "$p" 2>/dev/null
                        wait "$p" 2>/dev/null
                fi
        done
        rm -rf "$work"
}
trap cleanup EXIT

failures=0
fail() {
        echo "FAIL: $*"
        failures=$((failures + 1))
}

# The emulator: IMDS tokens and the KEK. Its vault is reached as https://localhost:PORT, so it plays
# a cloud whose Key Vault resource is https://localhost (tests/daemon/daemon-lib.sh says why).
printf '{"keyvault":{"resource":"https://localhost"}}' >"$work/emu-overlay.json"
. "$srcdir/tests/emulator/emu-start.sh"
emu_start "$work/emu" "$work/emu-overlay.json" || exit 1
https_port=$(jq -r .https_port "$work/emu/ready.json")
http_port=$(jq -r .http_port "$work/emu/ready.json")
ca=$(jq -r .ca_file "$work/emu/ready.json")
imds=http://127.0.0.1:$http_port
vault=https://localhost:$https_port
kek=$(curl -sSf --noproxy '*' "$imds/_emulator/state" | jq -r '.keys[] | select(.name == "kek") | .kid')
[ -n "$kek" ] || { echo "blob-azurite: no KEK in the emulator's state"; exit 1; }

azurite_start "$work/azurite" "$work/emu/ca.pem" "$work/emu/ca.key" || exit 1
account=$AZURITE_ACCOUNT
container=$account/backups
# The container, with a token from IMDS (ade's client makes none: the operator does, once).
token=$(curl -sSf --noproxy '*' -H 'Metadata: true' \
        "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F" |
        jq -r .access_token)
azurite_create_container backups "$token" "$ca" || exit 1

t() {
        "$tool" --container "$container" --imds "$imds" --ca "$ca" --vault "$vault" --vault-resource https://localhost "$@"
}

# A plaintext of three regions (4 MiB + 4 MiB + 5 bytes), the shape of a LUKS2 header and more.
size=$((2 * 4194304 + 5))
head -c "$size" /dev/urandom >"$work/plain"

# 1. ade round trip, with metadata beside encryptiondata.
if t --meta AdeVolume=0b8e2c4a --meta AdeGeneration=1 put headers/vm1/vol1/1 "$work/plain" "$kek"; then
        t get headers/vm1/vol1/1 "$work/back" "$size" >"$work/meta.out" || fail "ade could not read back its blob"
        cmp -s "$work/plain" "$work/back" || fail "ade's round trip changed the data"
        grep -qx 'AdeVolume=0b8e2c4a' "$work/meta.out" || fail "metadata AdeVolume did not come back: $(cat "$work/meta.out")"
        grep -qx 'AdeGeneration=1' "$work/meta.out" || fail "metadata AdeGeneration did not come back"
        # Stored encrypted: not the plaintext, 28 bytes more per region.
        t list headers/vm1/ >"$work/list.out" || fail "list failed"
        grep -qx "headers/vm1/vol1/1 $((size + 3 * 28)) AdeGeneration=1 AdeVolume=0b8e2c4a (encrypted)" "$work/list.out" ||
                grep -qx "headers/vm1/vol1/1 $((size + 3 * 28)) AdeVolume=0b8e2c4a AdeGeneration=1 (encrypted)" "$work/list.out" ||
                fail "the listing does not show the encrypted blob as expected: $(cat "$work/list.out")"
        # The wrong size is refused (a body cut at a region boundary would decrypt to less).
        t get headers/vm1/vol1/1 "$work/back2" $((size - 1)) >/dev/null 2>&1 && fail "a wrong expected size was accepted"
else
        fail "ade could not upload an encrypted blob"
fi

# 2. An empty plaintext: no region at all, still a valid blob.
: >"$work/empty"
t put headers/empty "$work/empty" "$kek" || fail "putting an empty encrypted blob failed"
t get headers/empty "$work/empty.back" 0 >/dev/null || fail "getting an empty encrypted blob failed"
[ -f "$work/empty.back" ] && [ ! -s "$work/empty.back" ] || fail "the empty blob did not come back empty"

# 3. List Blobs by prefix over pages of 2 (NextMarker), names in order, other prefixes left out.
for i in 1 2 3 4 5; do
        t --meta Index="$i" put "paged/item-$i" "$work/empty" || fail "put paged/item-$i failed"
done
t put other/item "$work/empty" || fail "put other/item failed"
t list paged/ 2 >"$work/paged.out" || fail "listing paged/ failed"
printf 'paged/item-%s 0 Index=%s\n' 1 1 2 2 3 3 4 4 5 5 >"$work/paged.want"
cmp -s "$work/paged.out" "$work/paged.want" || fail "listing paged/ by 2 gave: $(cat "$work/paged.out")"

# 4. A missing blob: Storage's error, not a generic one.
t get headers/none "$work/none" >/dev/null 2>"$work/none.err" && fail "a missing blob was read"
grep -q 'BlobNotFound' "$work/none.err" || fail "a missing blob did not say BlobNotFound: $(cat "$work/none.err")"

# Delete Blob: the blob is gone from the listing and from Get; a second delete says BlobNotFound.
t delete paged/item-5 || fail "deleting paged/item-5 failed"
t list paged/ >"$work/deleted.out" || fail "listing paged/ after the delete failed"
head -n 4 "$work/paged.want" | cmp -s - "$work/deleted.out" || fail "paged/item-5 is still listed: $(cat "$work/deleted.out")"
t get paged/item-5 "$work/none" >/dev/null 2>&1 && fail "a deleted blob was read"
t delete paged/item-5 >/dev/null 2>"$work/delete.err" && fail "deleting a missing blob succeeded"
grep -q 'BlobNotFound' "$work/delete.err" || fail "deleting a missing blob did not say BlobNotFound: $(cat "$work/delete.err")"

# 5. Azure's Python SDK decrypts what ade wrote, finding the KEK through the blob's KeyId.
export ADE_IMDS=$imds ADE_CA=$ca ADE_KEK=$kek
if "$python" "$srcdir/tests/integration/blob-sdk.py" read "$account" backups headers/vm1/vol1/1 "$work/sdk.back" \
        >"$work/sdk-read.log" 2>&1; then
        cmp -s "$work/plain" "$work/sdk.back" || fail "the SDK's decryption of ade's blob differs"
else
        cat "$work/sdk-read.log"
        fail "the SDK could not decrypt a blob ade wrote"
fi

# 6. ade decrypts what the SDK wrote.
if "$python" "$srcdir/tests/integration/blob-sdk.py" write "$account" backups sdk/written "$work/plain" \
        >"$work/sdk-write.log" 2>&1; then
        t get sdk/written "$work/from-sdk" "$size" >/dev/null || fail "ade could not decrypt a blob the SDK wrote"
        cmp -s "$work/plain" "$work/from-sdk" || fail "ade's decryption of the SDK's blob differs"
else
        cat "$work/sdk-write.log"
        fail "the SDK could not write an encrypted blob"
fi

if [ "$failures" -ne 0 ]; then
        echo "blob-azurite: $failures failure(s)"
        exit 1
fi
echo "blob-azurite: all checks passed"
