#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-harness.sh: some output, then exit code 3.
echo "output from the guest"
exit 3
