#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded killed with -9 during an online encryption, in the VM (guest/aded-online-kill.sh): the
# mounted filesystem keeps working, aded started again finishes the job by itself, data intact.
# About 170 s of VM time here; the harness's default budget (900 s) holds it on a loaded host.
ADE_VM_GUEST=aded-online-kill.sh exec bash "$(dirname "$0")/daemon-vm-online.sh"
