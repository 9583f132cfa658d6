# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by guest/unlock-*.sh: the daemon suite's helpers (tests/daemon/daemon-lib.sh: write_config,
# start_aded, stop_aded, volume_field) with their folder on the persistent disk /dev/vda, the data
# disks /dev/vdb (ext4, mounted on $EXT4_MNT, a folder of the persistent disk, so that its mount
# point outlives the reboot) and /dev/vdc (XFS, never mounted by the test before the reboot) as
# [volumes] data, and the emulator on fixed ports so that the URLs in the tokens still hold after a
# reboot.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"
. "$top_srcdir/tests/vm/guest/online-lib.sh"
. "$top_srcdir/tests/daemon/daemon-lib.sh"
set +o pipefail

WORK=/mnt/persist
LOOPS=(/dev/vdb /dev/vdc)
HTTPS_PORT=8443
HTTP_PORT=8080
EXT4_MNT=$WORK/data-ext4
# aded with debug messages in $WORK/aded.log, which the state disk keeps for a post-mortem.
printf '#!/bin/sh\nexec %s --log-level debug "$@"\n' "$ADED" >/tmp/aded-debug
chmod +x /tmp/aded-debug
ADED=/tmp/aded-debug

# The emulator reuses its CA and reloads its vault from the state file when they exist.
start_emulator_fixed() {
        rm -f "$WORK/emu/ready.json"
        mkdir -p "$WORK/emu"
        printf '{"keyvault":{"resource":"%s"}}' "$EMULATOR_KEYVAULT_RESOURCE" >"$WORK/emu/overlay.json"
        "$EMULATOR" --dir "$WORK/emu" --state "$WORK/emu/vault-state.json" --config "$WORK/emu/overlay.json" \
                --https-port $HTTPS_PORT --http-port $HTTP_PORT >>"$WORK/emulator.log" 2>&1 &
        EMU_PID=$!
        local i
        for i in $(seq 1 1200); do
                [ -s "$WORK/emu/ready.json" ] && return 0
                kill -0 "$EMU_PID" 2>/dev/null || { sed 's/^/#   /' "$WORK/emulator.log"; return 1; }
                sleep 0.1
        done
        return 1
}

# mounted_nowhere DEV: no mount in this namespace has DEV (any name of it) as its device.
mounted_nowhere() {
        local dev
        dev=$(printf '%d:%d' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")") || return 1
        ! awk -v d="$dev" '$3 == d { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# mounted_from MOUNT DEV: MOUNT is a mount point whose device is DEV.
mounted_from() {
        local dev
        dev=$(printf '%d:%d' "0x$(stat -L -c %t "$2")" "0x$(stat -L -c %T "$2")") || return 1
        awk -v d="$dev" -v m="$1" '$3 == d && $5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

stop_all() {
        stop_aded
        [ -z "$EMU_PID" ] || { kill "$EMU_PID"; wait "$EMU_PID"; }
        EMU_PID=
        cd /
        sync
        umount "$WORK"
}
