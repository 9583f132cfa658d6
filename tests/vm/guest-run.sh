#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs inside the VM, chrooted into the host's root (read-only 9p, tmpfs on /tmp, /run, /var/tmp):
# reads the job's environment from the run folder the host made, and runs the test's guest script
# in a fresh work folder. Its exit code is the test's.
set -u
job=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TMPDIR=/tmp
# shellcheck source=/dev/null
. "$job/env"
mkdir -p /tmp/work && cd /tmp/work || exit 1
exec /bin/bash "$ADE_VM_SCRIPT"
