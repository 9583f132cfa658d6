#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A reproducer, not part of the suite (run-vm-tests.sh runs test-*.sh only; run it by name):
# ade's engine killed with -9 in the middle of an online encryption of a mounted XFS disk with a
# detached header, then resumed with the active name (test-online-xfs.sh with ADE_VM_XFS_KILL=yes).
# Today the hotzone's mapping stays suspended after the kill, file I/O on the mount hangs, and the
# resume hangs at "Reading keyslot area": the VM does not come back and this fails at its timeout.
# It should pass once the engine recovers an active device after a crash.
ADE_VM_XFS_KILL=yes ADE_VM_TIMEOUT=${ADE_VM_TIMEOUT:-300} exec bash "$(dirname "$0")/test-online-xfs.sh"
