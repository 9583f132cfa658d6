#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmark of a whole Enable against the manual procedure (a script run by hand as root, not a test):
#
#   tests/bench/enable-bench.sh [RUNS] [BUILDDIR]
#   BENCH_BASELINE=OTHER_BUILDDIR tests/bench/enable-bench.sh ...   # the same Enable by another build too
#   BENCH_KEK=yes ...                                                # Enables with the emulator's KEK
#
# A 1 GiB ext4 image, half filled with random files, is encrypted in place on identical copies,
# RUNS times each (at least 5), the order turning every round, the page cache dropped before every
# timed run:
#   - ade: a fresh aded (so its caches and connections start cold, as at the first Enable after
#     boot) against the Azure emulator, `adectl enable --volume-type DATA` (the preconditions with
#     the snapshot check, escrow with read-back, shrink, header, reencryption), timed from the call
#     until adectl returns;
#   - manual: `e2fsck -f -p`, `resize2fs` to 32 MiB less, and
#     `cryptsetup reencrypt --encrypt --reduce-device-size 32M --pbkdf pbkdf2 --pbkdf-force-iterations 1000`.
# It prints medians of:
#   (a) the time from the Enable call to the first write, two ways: to the first writing step, when
#       aded logs "Reached step planned" (the engine's hook: read-only checks done, the shrink's
#       e2fsck -f -p next), stamped as aded writes it (its stderr runs through a stamper); and to
#       the first sector written, seen from outside: a poller reads the loop device's
#       sectors-written counter (/sys/block/loopN/stat) every 0.5 ms (a flush, which the read-only
#       e2fsck -fn and resize2fs -P issue, writes no sector and does not count). The second includes
#       e2fsck -f -p's pass, which writes only at its end, as the manual procedure's first step does;
#   (b) whole Enable / manual procedure;
# and, per Enable, the emulator's token requests (IMDS and Entra) and TLS connections.
# The machine should be otherwise idle: on a loaded one every figure swings by tens of percent.
set -euo pipefail
shopt -s inherit_errexit

RUNS=${1:-5}
BUILD=${2:-$(cd "$(dirname "$0")/../.." && pwd)/build}
BASELINE=${BENCH_BASELINE:-}
[ "$RUNS" -ge 5 ] || { echo "RUNS must be at least 5" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }
export top_builddir=$BUILD
. "$(dirname "$0")/../daemon/daemon-lib.sh"
set -e
for b in "$BUILD" ${BASELINE:+"$BASELINE"}; do
        [ -x "$b/daemon/aded" ] && [ -x "$b/tools/adectl" ] || { echo "build aded and adectl in $b first" >&2; exit 1; }
done
[ -x "$EMULATOR" ] || { echo "build the emulator first ($EMULATOR)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3 for the write poller" >&2; exit 1; }
daemon_workdir

# The images live on a disk, not in memory, so that dropping the page cache means something.
IMG=$(mktemp -d /var/tmp/ade-enable-bench.XXXXXX)
CLEANUPS+=("rm -rf '$IMG'")
head -c 127 /dev/urandom | base64 -w0 >"$IMG/key"

echo "preparing a 1 GiB ext4 image, half filled..." >&2
truncate -s 1G "$IMG/master.img"
l=$(losetup -f --show "$IMG/master.img")
mkfs.ext4 -q -F "$l"
mkdir -p "$IMG/mnt"
mount "$l" "$IMG/mnt"
mkdir "$IMG/mnt/d"
i=0 total=0
while [ $total -lt $((512 * 1024)) ]; do
        kib=$(((RANDOM % 8192) + 64))
        head -c $((kib * 1024)) /dev/urandom >"$IMG/mnt/d/f$i"
        total=$((total + kib)) i=$((i + 1))
done
umount "$IMG/mnt"
losetup -d "$l"

start_emulator
emu_log() { curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/requests"; }
emu_log_clear() { curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/requests" >/dev/null; }

# Stamps (CLOCK_REALTIME, like $EPOCHREALTIME) the first sector written to block device $1 into $2.
cat >"$IMG/first-write.py" <<'EOF'
import sys, time
dev, out = sys.argv[1], sys.argv[2]
def sectors_written():
    with open(f"/sys/block/{dev}/stat") as f:
        return int(f.read().split()[6])
base = sectors_written()
open(out + ".ready", "w").close()
while sectors_written() == base:
    time.sleep(0.0005)
t = time.time()
with open(out, "w") as f:
    f.write(f"{t:.6f}\n")
EOF
# Prefixes each line of stdin with the time it arrived.
cat >"$IMG/stamp.py" <<'EOF'
import sys, time
with open(sys.argv[1], "a", buffering=1) as out:
    for line in sys.stdin:
        out.write(f"{time.time():.6f} {line}")
EOF

# Sets L to a loop device over a fresh copy of the master image.
fresh() {
        cp --sparse=always "$IMG/master.img" "$IMG/run.img"
        L=$(losetup -f --show "$IMG/run.img")
        LOOPS=("$L")
}
drop_caches() {
        sync
        echo 3 >/proc/sys/vm/drop_caches
        sleep 1
}
done_with() {
        losetup -d "$L"
        LOOPS=()
        rm -f "$IMG/run.img"
}

declare -A T

# Adds the seconds of one manual procedure to T[manual].
run_manual() {
        local t0 t1
        fresh
        drop_caches
        t0=$EPOCHREALTIME
        e2fsck -f -p "$L" >/dev/null
        resize2fs "$L" $(((1024 - 32) * 1024))K >/dev/null 2>&1
        cryptsetup reencrypt --encrypt --batch-mode --reduce-device-size 32M --pbkdf pbkdf2 \
                --pbkdf-force-iterations 1000 --key-file "$IMG/key" "$L" >/dev/null
        t1=$EPOCHREALTIME
        done_with
        T[manual]+="$(echo "$t1 - $t0" | bc) "
}

# run_ade NAME BUILDDIR: one Enable by that build; adds to T[NAME.*].
run_ade() {
        local name=$1 build=$2 t0 t1 tw tp kek=() poller
        fresh
        VOLUME=$L
        rm -rf "$WORK/state" "$WORK/headers" "$WORK/run" "$WORK/aded.stamped"
        write_config
        # aded with its debug log stamped line by line as it is written.
        printf '#!/bin/bash\nexec "%s" "$@" 2> >(exec python3 -u "%s" "%s")\n' "$build/daemon/aded" "$IMG/stamp.py" \
                "$WORK/aded.stamped" >"$IMG/aded"
        chmod +x "$IMG/aded"
        ADED=$IMG/aded ADECTL=$build/tools/adectl ADED_LOG_LEVEL=debug start_aded
        [ "${BENCH_KEK:-no}" = yes ] && kek=(--kek-url "$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid' | tail -n1)")
        drop_caches
        emu_log_clear
        rm -f "$IMG/first-write" "$IMG/first-write.ready"
        python3 "$IMG/first-write.py" "${VOLUME#/dev/}" "$IMG/first-write" &
        poller=$!
        while [ ! -e "$IMG/first-write.ready" ]; do sleep 0.01; done
        t0=$EPOCHREALTIME
        "$build/tools/adectl" enable --volume-type DATA "${kek[@]}" >"$WORK/enable.out" 2>&1 || {
                cat "$WORK/enable.out" >&2
                kill $poller
                fail "enable failed ($build)"
        }
        t1=$EPOCHREALTIME
        wait $poller
        tw=$(cat "$IMG/first-write")
        tp=$(awk '/Reached step planned/ {print $1; exit}' "$WORK/aded.stamped")
        [ -n "$tp" ] || fail "aded logged no 'Reached step planned' ($build)"
        T[$name.tokens]+="$(emu_log | jq '[.requests[] | select(.route == "imds-token" or .route == "entra")] | length') "
        T[$name.conns]+="$(emu_log | jq '[.requests[] | select(.tls) | .connection] | unique | length') "
        stop_aded
        done_with
        T[$name.whole]+="$(echo "$t1 - $t0" | bc) "
        T[$name.first_sector]+="$(echo "$tw - $t0" | bc) "
        T[$name.first_step]+="$(echo "$tp - $t0" | bc) "
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
med() { median <<<"${T[$1]}"; }

arms=(ade manual)
[ -n "$BASELINE" ] && arms+=(baseline)
for ((r = 1; r <= RUNS; r++)); do
        echo "round $r/$RUNS" >&2
        for ((k = 0; k < ${#arms[@]}; k++)); do
                case ${arms[$(((r + k) % ${#arms[@]}))]} in
                ade) run_ade ade "$BUILD" ;;
                baseline) run_ade baseline "$BASELINE" ;;
                manual) run_manual ;;
                esac
        done
done

printf '%-44s %8s   %s\n' case median runs
for name in ade ${BASELINE:+baseline}; do
        printf '%s (%s)\n' "$name" "$([ "$name" = ade ] && echo "$BUILD" || echo "$BASELINE")"
        printf '  %-42s %8.3f   %s\n' "enable call -> first writing step (s)" "$(med $name.first_step)" "${T[$name.first_step]}"
        printf '  %-42s %8.3f   %s\n' "enable call -> first sector written (s)" "$(med $name.first_sector)" \
                "${T[$name.first_sector]}"
        printf '  %-42s %8.3f   %s\n' "whole enable (s)" "$(med $name.whole)" "${T[$name.whole]}"
        printf '  %-42s %8s   %s\n' "token requests per enable" "$(med $name.tokens)" "${T[$name.tokens]}"
        printf '  %-42s %8s   %s\n' "TLS connections per enable" "$(med $name.conns)" "${T[$name.conns]}"
        printf '  %-42s %8.3f\n' "whole enable / manual procedure (goal <= 1.10)" \
                "$(echo "$(med $name.whole) / $(med manual)" | bc -l)"
done
printf '%-44s %8.3f   %s\n' "manual procedure (s)" "$(med manual)" "${T[manual]}"
