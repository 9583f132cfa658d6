#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's test command: installs what is missing, builds, runs every suite and prints
# "N passed, N failed, N skipped" last. Run as root for the loop-device, VM and npm suites.
#   ADE_BUILDDIR   build folder (default: build/ in the source tree)
#   CFLAGS         passed to configure (CI adds -Werror)
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${ADE_BUILDDIR:-$top/build}
jobs=$(nproc 2>/dev/null || echo 2)

"$top/tools/setup-deps.sh" || { echo "setup-deps failed"; echo "0 passed, 1 failed"; exit 1; }

if [ ! -x "$top/configure" ]; then
        (cd "$top" && ./autogen.sh) || { echo "0 passed, 1 failed"; exit 1; }
fi
mkdir -p "$builddir"
cd "$builddir" || exit 1
if [ ! -f Makefile ]; then
        "$top/configure" --enable-silent-rules ${ADE_CONFIGURE_FLAGS:-} >configure.out 2>&1 ||
                { cat configure.out; echo "0 passed, 1 failed"; exit 1; }
fi
make -j"$jobs" >make.out 2>&1 || { cat make.out; echo "0 passed, 1 failed"; exit 1; }

make -j"$jobs" -k check ${ADE_TESTS:+TESTS="$ADE_TESTS"}
rc=$?

"$top/tests/summarize.sh" "$builddir"
exit $rc
