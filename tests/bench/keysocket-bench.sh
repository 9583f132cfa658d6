#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmark of the key socket at boot (a script run by hand as root, not a test):
#
#   tests/bench/keysocket-bench.sh [VOLUMES] [ROUNDS] [BUILDDIR]
#
# VOLUMES (default 16) loop devices are encrypted by aded against the Azure emulator, which then
# adds 20 ms to every request (as a distant Key Vault would). Each round restarts aded (its token,
# challenge and connections start cold, as at boot) and has VOLUMES clients speaking
# systemd-cryptsetup's protocol ask for their keys at once; each client times its request from
# connect to EOF. It prints, over all rounds, the distribution of the per-request times and, per
# round, the time until the last key was delivered.
set -euo pipefail
N=${1:-16}
ROUNDS=${2:-5}
BUILD=${3:-$(cd "$(dirname "$0")/../.." && pwd)/build}
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }
export top_builddir=$BUILD
. "$(dirname "$0")/../daemon/daemon-lib.sh"
set -e
daemon_workdir
for _ in $(seq 1 "$N"); do make_volume 160 >/dev/null; done
start_emulator
write_config
start_aded
adectl enable --volume-type DATA >/dev/null
names=()
for l in "${LOOPS[@]}"; do names+=("ade-$(cryptsetup luksUUID "$l")"); done
emulator_fault '{"route": "*", "latency_ms": 20, "seconds": 3600}'
# One process, one thread per volume, all started before the first connects.
cat >"$WORK/burst.py" <<'PY'
import os, socket, sys, threading, time
path, names = sys.argv[1], sys.argv[2:]
times, go = [None] * len(names), threading.Barrier(len(names) + 1)
def ask(i, name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0%x/cryptsetup/%s" % (int.from_bytes(os.urandom(8), "big"), name))
    go.wait()
    t = time.monotonic()
    s.connect(path)
    key = b""
    while chunk := s.recv(4096):
        key += chunk
    times[i] = time.monotonic() - t if key else None
threads = [threading.Thread(target=ask, args=(i, n)) for i, n in enumerate(names)]
for t in threads:
    t.start()
go.wait()
start = time.monotonic()
for t in threads:
    t.join()
print("all %.4f" % (time.monotonic() - start))
for t in times:
    print("req %s" % ("%.4f" % t if t is not None else "none"))
PY
: >"$WORK/times"
for round in $(seq 1 "$ROUNDS"); do
        stop_aded
        start_aded
        python3 "$WORK/burst.py" "$WORK/run/key.socket" "${names[@]}" >"$WORK/round"
        grep -q "req none" "$WORK/round" && fail "round $round: a request got no key"
        echo "round $round: all $N keys delivered in $(sed -n 's/^all //p' "$WORK/round") s"
        sed -n 's/^req //p' "$WORK/round" >>"$WORK/times"
done
sort -n "$WORK/times" | awk '{ t[NR] = $1 } END {
        printf "requests %d: min %.3f s, median %.3f s, p90 %.3f s, max %.3f s\n", NR, t[1], t[int((NR + 1) / 2)],
                t[int(NR * 0.9 + 0.5)], t[NR] }'
pass
