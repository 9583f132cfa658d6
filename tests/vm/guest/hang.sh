#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-harness.sh: never returns; the host's timeout must end it.
echo "hanging"
while :; do sleep 60; done
