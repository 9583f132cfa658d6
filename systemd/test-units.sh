#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# systemd-analyze verify is the judge of the units: any complaint fails the test (it exits 0 on
# warnings such as an unknown option, so its output is what counts).
set -u
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found"; exit 77; }
src=${top_srcdir:-$(dirname "$0")/..}
build=${top_builddir:-.}
[ -x "$build/daemon/aded" ] || { echo "daemon/aded not built"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|@sbindir[@]|$(cd "$build/daemon" && pwd)|g" "$src/systemd/aded.service.in" >"$tmp/aded.service"
cp "$src/systemd/aded.socket" "$src/systemd/aded-key.socket" "$tmp/"

out=$(cd "$tmp" && systemd-analyze verify --man=no ./aded.socket ./aded-key.socket ./aded.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "systemd-analyze verify complained (rc=$rc):"
        echo "$out"
        exit 1
fi
echo "units verified: aded.service aded.socket aded-key.socket"
