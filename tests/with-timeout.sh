#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every registered test runs under this ceiling (Makefile.am's LOG_COMPILER): a test that hangs fails
# after ADE_TEST_TIMEOUT seconds (default 1800), with its process group (QEMU, aded, emulators)
# stopped, instead of holding up the whole run. It is a guard against hangs, not a timing check.
limit=${ADE_TEST_TIMEOUT:-1800}
timeout --kill-after=60 "$limit" "$@"
rc=$?
if [ $rc = 124 ] || [ $rc = 137 ]; then
        echo "FAIL: $* did not finish within ${limit} s (ADE_TEST_TIMEOUT); stopped"
        exit 1
fi
exit $rc
