#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded killed with -9 during an online encryption, in the VM (guest/aded-online-kill.sh): the
# mounted filesystem keeps working, aded started again finishes the job by itself, data intact.
# Three aded starts, each fetching the key under TCG, beside the other VM suites: on a loaded CI
# host it took more than the harness's default 900 s of VM time, so it has 1500 (the per-test
# ceiling is 1800).
ADE_VM_TIMEOUT=${ADE_VM_TIMEOUT:-1500} ADE_VM_GUEST=aded-online-kill.sh exec bash "$(dirname "$0")/daemon-vm-online.sh"
