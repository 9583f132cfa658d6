#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's first command: ./demo.sh, run as a user would (root, the build tree as its build
# folder), must end with every sample file intact and leave nothing behind (no loop device over its
# images, no process, no temporary folder). It was once broken for a whole stop with every other
# suite green: nothing ran it.
set -uo pipefail
[ "${ADE_HEAVY_TESTS:-yes}" = no ] && { echo "SKIP: heavy tests disabled (make distcheck)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: the demo needs root (loop devices)"; exit 77; }
losetup -f >/dev/null 2>&1 || { echo "SKIP: no free loop device"; exit 77; }

top=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-$top/build}
out=$(mktemp /tmp/ade-test-demo.XXXXXX)
trap 'rm -f "$out"' EXIT
before=$(ls -d /tmp/ade-demo.* 2>/dev/null | sort)

failed=0
check() {
        local what=$1
        shift
        if "$@"; then echo "ok - $what"; else echo "not ok - $what"; failed=1; fi
}

ADE_BUILDDIR=$builddir "$top/demo.sh" </dev/null >"$out" 2>&1
rc=$?
sed 's/\x1b\[[0-9;]*m//g; s/^/# /' "$out" | tail -n 40
check "./demo.sh exits 0" test "$rc" = 0
check "it says every sample file is intact" grep -q "sha256: all 7 files intact" "$out"
check "stock cryptsetup opened the volume with the resolved key" grep -q "cryptsetup: the key file opens" "$out"
check "it cleaned up" grep -q "demo: cleaned up" "$out"
after=$(ls -d /tmp/ade-demo.* 2>/dev/null | sort)
check "no temporary folder is left" test "$before" = "$after"
check "no loop device over its images is left" sh -c "! losetup -a | grep -q '/tmp/ade-demo\.'"
check "no aded or emulator of the demo is left" sh -c "! pgrep -f -- '/tmp/ade-demo\.' >/dev/null"
exit $failed
