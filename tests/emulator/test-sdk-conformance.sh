#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The official Azure SDK for JavaScript judges the emulator: installs the SDK versions pinned in
# sdk/package-lock.json with "npm ci" into the build folder (kept between runs, redone when the
# lock file changes), starts a fresh emulator and runs sdk/conformance.mjs against it.
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
mkdir -p "$sdk"
(
        # Two test runs sharing a build folder must not install over each other.
        flock 9
        want=$(cat "$srcdir/tests/emulator/sdk/package.json" "$srcdir/tests/emulator/sdk/package-lock.json" | sha256sum | cut -d' ' -f1)
        if [ ! -d "$sdk/node_modules" ] || [ "$(cat "$sdk/.installed" 2>/dev/null)" != "$want" ]; then
                cp "$srcdir/tests/emulator/sdk/package.json" "$srcdir/tests/emulator/sdk/package-lock.json" "$sdk/"
                rm -f "$sdk/.installed"
                if ! (cd "$sdk" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts >npm.log 2>&1); then
                        if ! (cd "$sdk" && timeout 60 npm ping >/dev/null 2>&1); then
                                echo "SKIP: the npm registry cannot be reached"
                                exit 77
                        fi
                        echo "ERROR: npm ci failed in $sdk:"
                        tail -n 30 "$sdk/npm.log"
                        exit 1
                fi
                echo "$want" >"$sdk/.installed"
        fi
) 9>"$sdk/.lock"
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
