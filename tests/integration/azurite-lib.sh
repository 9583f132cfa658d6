# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the tests that need Microsoft's Storage emulator, Azurite (blob-azurite.sh,
# tests/daemon/daemon-backup.sh). Needs $srcdir and $builddir.
#
# azurite_install: the version pinned in tests/integration/azurite/, with "npm ci" into the build
#   folder (tests/emulator/npm-ci.sh). Returns 77 (skip) without Node.js >= 20 and npm or when the
#   registry cannot be reached, 1 when npm ci fails.
# azurite_start DIR CA_PEM CA_KEY: a server certificate for 127.0.0.1 from that CA, then Azurite's
#   Blob service on an ephemeral loopback port, in memory, without telemetry, over HTTPS with
#   "--oauth basic" (it checks a token's issuer, audience and lifetime, not its signature). Sets
#   AZURITE_PID (the caller stops it) and AZURITE_ACCOUNT (https://127.0.0.1:PORT/devstoreaccount1).
# azurite_create_container NAME TOKEN CA: creates the container NAME with a Storage bearer token.

azurite_install() {
        local rc
        if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
                echo "SKIP: node and npm are needed (tools/setup-deps.sh installs them)"
                return 77
        fi
        if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
                echo "SKIP: Node.js $(node --version) is older than 20"
                return 77
        fi
        AZURITE_DIR=$builddir/tests/integration/azurite-node
        . "$srcdir/tests/emulator/npm-ci.sh"
        npm_ci_cached "$srcdir/tests/integration/azurite" "$AZURITE_DIR"
        rc=$?
        return $rc
}

azurite_start() {
        local dir=$1 ca=$2 ca_key=$3
        mkdir -p "$dir/data"
        openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -subj /CN=127.0.0.1 -out "$dir/req.csr" \
                2>"$dir/openssl.log" || { cat "$dir/openssl.log"; return 1; }
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
        openssl x509 -req -in "$dir/req.csr" -CA "$ca" -CAkey "$ca_key" -CAcreateserial -CAserial "$dir/ca.srl" \
                -days 2 -extfile "$dir/ext" -out "$dir/cert.pem" 2>"$dir/openssl.log" || { cat "$dir/openssl.log"; return 1; }
        (cd "$dir/data" && exec node "$AZURITE_DIR/node_modules/azurite/dist/src/blob/main.js" --blobHost 127.0.0.1 \
                --blobPort 0 --cert "$dir/cert.pem" --key "$dir/key.pem" --oauth basic --inMemoryPersistence \
                --disableTelemetry --silent) >"$dir/azurite.log" 2>&1 &
        AZURITE_PID=$!
        local url=
        for _ in $(seq 600); do
                url=$(sed -n 's/.*successfully listens on \(https:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$dir/azurite.log")
                [ -n "$url" ] && break
                kill -0 "$AZURITE_PID" 2>/dev/null || { cat "$dir/azurite.log"; echo "Azurite exited"; return 1; }
                sleep 0.1
        done
        [ -n "$url" ] || { cat "$dir/azurite.log"; echo "Azurite did not listen within 60 s"; return 1; }
        AZURITE_ACCOUNT=$url/devstoreaccount1
}

azurite_create_container() {
        local name=$1 token=$2 ca=$3 status
        status=$(curl -sS -o /dev/null -w '%{http_code}' --noproxy '*' --cacert "$ca" -X PUT \
                -H "Authorization: Bearer $token" -H 'x-ms-version: 2021-12-02' \
                -H "x-ms-date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')" -H 'Content-Length: 0' \
                "$AZURITE_ACCOUNT/$name?restype=container")
        [ "$status" = 201 ] || { echo "creating the container $name answered $status"; return 1; }
}
