#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmark (not a test): aded's Show latency and memory.
#   - 1000 sequential Show calls over one connection, idle and while an encryption runs: median, p99;
#   - aded's memory idle and while encrypting: VmRSS, PSS, private anonymous (smaps_rollup).
# Targets (issue 5): p99 <= 5 ms during a job; idle private anonymous memory <= 8 MiB.
# Run as root from the source tree after a build: tests/bench/bench-show.sh [BUILDDIR]
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
export top_builddir=${1:-${top_builddir:-$top_srcdir/build}}
. "$top_srcdir/tests/daemon/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "no python3"
CALLS=${BENCH_CALLS:-1000}

latency() {
        python3 - "$SOCKET" "$CALLS" <<'EOF'
import json, socket, statistics, sys, time
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
msg = json.dumps({"method": "io.ade.DiskEncryption.Show"}).encode() + b"\0"
lat, states = [], set()
for _ in range(n):
    t0 = time.perf_counter()
    s.sendall(msg)
    buf = b""
    while not buf.endswith(b"\0"):
        buf += s.recv(65536)
    lat.append((time.perf_counter() - t0) * 1000.0)
    for v in json.loads(buf[:-1])["parameters"]["volumes"]:
        states.add(v["state"])
lat.sort()
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
print(f"{n} calls: median {statistics.median(lat):.3f} ms, p99 {p99:.3f} ms, max {lat[-1]:.3f} ms; states seen: {', '.join(sorted(states))}")
EOF
}

memory() {
        local pid=$1 rss pss anon pss_anon
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
        anon=$(awk '/^Anonymous:/ {print $2}' "/proc/$pid/smaps_rollup")
        pss_anon=$(awk '/^Pss_Anon:/ {print $2}' "/proc/$pid/smaps_rollup")
        printf 'VmRSS %.1f MiB, PSS %.1f MiB, private anonymous %.1f MiB (Pss_Anon %.1f MiB)\n' \
                "$(echo "$rss / 1024" | bc -l)" "$(echo "$pss / 1024" | bc -l)" \
                "$(echo "$anon / 1024" | bc -l)" "$(echo "$pss_anon / 1024" | bc -l)"
}

make_volume "${BENCH_VOLUME_MIB:-3072}"
start_emulator
write_config
start_aded
sleep 1

echo "== aded idle"
echo "memory:  $(memory "$ADED_PID")"
echo "latency: $(latency)"
echo "memory after the calls: $(memory "$ADED_PID")"

echo "== aded while encrypting $(( ${BENCH_VOLUME_MIB:-3072} )) MiB"
adectl enable --volume-type DATA --no-wait >/dev/null || fail "enable failed"
wait_for_progress "$VOLUME"
echo "latency: $(latency)"
echo "memory:  $(memory "$ADED_PID")"
[ "$(volume_field "$VOLUME" state)" = EncryptionInProgress ] ||
        echo "note: the job ended during the measurement; set BENCH_VOLUME_MIB higher"
wait_for_state "$VOLUME" Encrypted 600
echo "== aded idle again"
echo "memory:  $(memory "$ADED_PID")"
