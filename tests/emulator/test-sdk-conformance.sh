#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The official Azure SDK for JavaScript judges the emulator: installs the SDK versions pinned in
# sdk/package-lock.json with "npm ci" into the build folder (npm-ci.sh: kept between runs, redone
# when the lock file changes), starts a fresh emulator and runs sdk/conformance.mjs against it.
# Skips (77) when ADE_HEAVY_TESTS=no, when not root, without Node.js >= 20 and npm, or when the
# npm registry cannot be reached.
set -uo pipefail

if [ "${ADE_HEAVY_TESTS:-yes}" = no ]; then
        echo "SKIP: ADE_HEAVY_TESTS=no"
        exit 77
fi
# Like the other suites that need npm, it runs as root only (CI does).
if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: not root"
        exit 77
fi
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-$(pwd)}
emulator=${ADE_EMULATOR:-$builddir/tests/emulator/ade-emulator}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "SKIP: node and npm are needed (tools/setup-deps.sh installs them)"
        exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
        echo "SKIP: Node.js $(node --version) is older than the SDK's minimum, 20"
        exit 77
fi
if [ ! -x "$emulator" ]; then
        echo "ERROR: $emulator is missing; build it with 'make check' (it needs libmicrohttpd)"
        exit 99
fi

sdk=$builddir/tests/emulator/sdk-node
. "$srcdir/tests/emulator/npm-ci.sh"
npm_ci_cached "$srcdir/tests/emulator/sdk" "$sdk"
rc=$?
[ $rc -eq 0 ] || exit $rc
# Beside node_modules, so that its imports resolve there.
cp "$srcdir/tests/emulator/sdk/conformance.mjs" "$sdk/"

tmp=$(mktemp -d /tmp/ade-sdk-conformance.XXXXXX)
pid=
cleanup() {
        if [ -n "$pid" ]; then
                kill "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT

"$emulator" --dir "$tmp/emu" &
pid=$!
for _ in $(seq 1200); do
        [ -f "$tmp/emu/ready.json" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
                echo "ERROR: the emulator exited before it was ready"
                exit 1
        fi
        sleep 0.1
done
if [ ! -f "$tmp/emu/ready.json" ]; then
        echo "ERROR: the emulator did not write $tmp/emu/ready.json within 120 s"
        exit 1
fi

NODE_EXTRA_CA_CERTS="$tmp/emu/ca.pem" timeout 600 node "$sdk/conformance.mjs" "$tmp/emu"
