#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmark of the volume engine against stock cryptsetup (a script run by hand as root, not a test):
#
#   tests/bench/engine-bench.sh [RUNS] [BUILDDIR]
#
# A 1 GiB ext4 image, half filled with random files and already shrunk by 32 MiB (so the shrink is
# excluded on both sides), is encrypted in place, alternately, by the engine and by
#   cryptsetup reencrypt --encrypt --reduce-device-size 32M --pbkdf pbkdf2 --pbkdf-force-iterations 1000
# on identical copies, with a dd conv=notrunc,fsync read-and-write pass over the same image for
# scale. Then the detached-header path against cryptsetup reencrypt --encrypt --header FILE (the
# CLI's default resilience and hotzone) and the engine with several hotzone sizes and resiliences
# (checksum, journal; never none). The page cache is dropped before every timed run. Medians are
# printed; the engine's time is measured after its read-only checks (resize2fs -P), the CLI's over the
# whole command. The datashift runs change order every round. BENCH_ONLY=datashift skips the rest.
set -euo pipefail
shopt -s inherit_errexit

RUNS=${1:-5}
BUILD=${2:-$(cd "$(dirname "$0")/../.." && pwd)/build}
TOOL="$BUILD/tests/integration/ade-engine-tool"
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }
[ -x "$TOOL" ] || { echo "build $TOOL first (make check_PROGRAMS or make check)" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/ade-bench.XXXXXX)
# attach runs inside $(...): the loop devices are listed in a file the cleanup reads.
: > "$WORK/.loops"
cleanup() {
        set +e
        umount "$WORK/mnt" 2>/dev/null
        for l in $(cat "$WORK/.loops"); do
                losetup "$l" 2>/dev/null | grep -qF "$WORK/" && losetup -d "$l"
        done
        rm -rf "$WORK"
}
trap cleanup EXIT
attach() { local l; l=$(losetup -f --show "$1"); echo "$l" >> "$WORK/.loops"; echo "$l"; }

head -c 127 /dev/urandom | base64 -w0 > "$WORK/key"

echo "preparing a 1 GiB ext4 image, half filled..." >&2
truncate -s 1G "$WORK/master.img"
l=$(attach "$WORK/master.img")
mkfs.ext4 -q -F "$l"
mkdir -p "$WORK/mnt"; mount "$l" "$WORK/mnt"; mkdir "$WORK/mnt/d"
i=0; total=0
while [ $total -lt $((512 * 1024)) ]; do
        kib=$(( (RANDOM % 8192) + 64 ))
        head -c $((kib * 1024)) /dev/urandom > "$WORK/mnt/d/f$i"
        total=$((total + kib)); i=$((i + 1))
done
umount "$WORK/mnt"
e2fsck -f -p "$l" >/dev/null
resize2fs "$l" $(( (1024 - 32) * 1024 ))K >/dev/null 2>&1   # the shrink, done once, excluded
losetup -d "$l"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# fresh: copy the master, attach, drop caches; prints the loop device
fresh() {
        cp --sparse=always "$WORK/master.img" "$WORK/run.img"
        rm -rf "$WORK/headers" "$WORK/cli.hdr"
        local l; l=$(attach "$WORK/run.img")
        sync; echo 3 > /proc/sys/vm/drop_caches; sleep 1
        echo "$l"
}
done_with() { losetup -d "$1"; rm -f "$WORK/run.img"; }

run_dd() {
        local l t0 t1; l=$(fresh)
        t0=$(now); dd if="$l" of="$l" bs=4M conv=notrunc,fsync status=none; t1=$(now)
        done_with "$l"; echo "$t1 - $t0" | bc
}
run_cli_shift() {
        local l t0 t1; l=$(fresh)
        t0=$(now)
        (cd "$WORK" && cryptsetup reencrypt --encrypt --batch-mode --reduce-device-size 32M --pbkdf pbkdf2 \
                --pbkdf-force-iterations 1000 --key-file "$WORK/key" "$l" >/dev/null)
        t1=$(now); done_with "$l"; echo "$t1 - $t0" | bc
}
run_ade() { # extra tool options...
        local l s; l=$(fresh)
        s=$("$TOOL" --quiet --header-dir "$WORK/headers" --run-dir "$WORK/run" "$@" encrypt "$l" "$WORK/key" |
                sed -n 's/^seconds_after_plan=//p')
        done_with "$l"; [ -n "$s" ] || { echo "engine run failed" >&2; exit 1; }; echo "$s"
}
run_cli_detached() { # extra cryptsetup options...
        local l t0 t1; l=$(fresh)
        t0=$(now)
        cryptsetup reencrypt --encrypt --batch-mode --header "$WORK/cli.hdr" --pbkdf pbkdf2 \
                --pbkdf-force-iterations 1000 --key-file "$WORK/key" "$@" "$l" >/dev/null
        t1=$(now); done_with "$l"; echo "$t1 - $t0" | bc
}

declare -A T
# The order turns every round: a run that follows the 1 GiB dd pass meets the host still writing it
# back, and a fixed order would put that cost on one side only.
order=(ade_shift cli_shift dd)
for ((r = 1; r <= RUNS; r++)); do
        echo "datashift round $r/$RUNS" >&2
        for ((k = 0; k < 3; k++)); do
                case ${order[$(((r + k) % 3))]} in
                ade_shift) T[ade_shift]+="$(run_ade) " ;;
                cli_shift) T[cli_shift]+="$(run_cli_shift) " ;;
                dd) T[dd]+="$(run_dd) " ;;
                esac
        done
done
[ "${BENCH_ONLY:-}" = datashift ] && RUNS_DETACHED=0 || RUNS_DETACHED=$RUNS
for ((r = 1; r <= RUNS_DETACHED; r++)); do
        echo "detached round $r/$RUNS" >&2
        T[cli_det]+="$(run_cli_detached) "
        T[ade_det_default]+="$(run_ade --detached) "
        T[ade_det_64M]+="$(run_ade --detached --hotzone $((64 << 20))) "
        T[ade_det_256M]+="$(run_ade --detached --hotzone $((256 << 20))) "
        T[ade_det_journal_64M]+="$(run_ade --detached --resilience journal --hotzone $((64 << 20))) "
done

med() { tr ' ' '\n' <<<"${T[$1]}" | grep . | median; }
printf '%-22s %8s   %s\n' case median runs
for k in dd cli_shift ade_shift cli_det ade_det_default ade_det_64M ade_det_256M ade_det_journal_64M; do
        [ -n "${T[$k]:-}" ] && printf '%-22s %8.3f   %s\n' "$k" "$(med $k)" "${T[$k]}"
done
cs=$(med cli_shift); as=$(med ade_shift); dd=$(med dd)
echo
printf 'datashift: engine throughput / cryptsetup = %.3f (target >= 0.95)\n' "$(echo "$cs / $as" | bc -l)"
printf 'datashift: engine time / dd pass = %.2f ; cryptsetup time / dd pass = %.2f\n' \
        "$(echo "$as / $dd" | bc -l)" "$(echo "$cs / $dd" | bc -l)"
[ "$RUNS_DETACHED" -gt 0 ] || exit 0
cd=$(med cli_det)
for k in ade_det_default ade_det_64M ade_det_256M ade_det_journal_64M; do
        printf 'detached %-20s gain over cryptsetup --header = %.3f x\n' "$k" "$(echo "$cd / $(med $k)" | bc -l)"
done
