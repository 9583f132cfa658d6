# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by shell tests that need the Azure emulator. emu_start DIR [OVERLAY]: starts $emulator
# on loopback with --dir DIR (and --config OVERLAY), its output in DIR.log, sets emu_pid (the caller
# stops it), and waits for DIR/ready.json (written atomically) for up to 120 s. Returns 1, with the
# log, when it dies or is not ready by then.
emu_start() {
        local dir=$1 overlay=${2:-}
        mkdir -p "$dir"
        "$emulator" --dir "$dir" ${overlay:+--config "$overlay"} --listen 127.0.0.1 >"$dir.log" 2>&1 &
        emu_pid=$!
        for _ in $(seq 1200); do
                [ -s "$dir/ready.json" ] && return 0
                if ! kill -0 "$emu_pid" 2>/dev/null; then
                        cat "$dir.log"
                        echo "the emulator exited before it was ready"
                        return 1
                fi
                sleep 0.1
        done
        echo "the emulator did not write $dir/ready.json within 120 s"
        return 1
}
