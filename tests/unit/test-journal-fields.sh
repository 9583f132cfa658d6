#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded's journal sink sends every message with PRIORITY=, SYSLOG_IDENTIFIER=aded and the location of
# the ade_log_*() call that made it (CODE_FILE=, CODE_LINE=, CODE_FUNC=): a library message's own
# location as well as the daemon's, never the sink's. journald is stood in for by a listener on
# /run/systemd/journal/socket inside a private mount namespace, so the host's /run is not touched.
# Needs root (unshare -m); exits 77 otherwise or with ADE_HEAVY_TESTS=no.
set -uo pipefail

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
ADED=$top_builddir/daemon/aded

skip() {
        echo "SKIP: $*"
        exit 77
}
fail() {
        echo "FAIL: $*"
        exit 1
}

[ "${ADE_HEAVY_TESTS:-yes}" = no ] && skip "ADE_HEAVY_TESTS=no"
[ "$(id -u)" = 0 ] || skip "needs root for a private mount namespace (unshare -m)"
for c in unshare python3 mount; do
        command -v "$c" >/dev/null || skip "$c is not installed"
done
[ -x "$ADED" ] || skip "aded is not built ($ADED)"

WORK=$(mktemp -d /tmp/ade-journal.XXXXXX) || fail "mktemp"
trap 'rm -rf "$WORK"' EXIT

# A state file aded cannot read: it logs the library's reason at debug level, then its own error, and
# runs read-only.
mkdir -p "$WORK/state"
printf '{"version": 1, "volumes": [' >"$WORK/state/state.json"
cat >"$WORK/ade.conf" <<EOF
[volumes]
header-dir = $WORK/headers
[daemon]
socket = $WORK/run/sock
state-dir = $WORK/state
key-socket = $WORK/run/key.socket
crypttab = $WORK/crypttab
fstab = $WORK/fstab
EOF

cat >"$WORK/run.sh" <<'EOF'
set -u
work=$1 aded=$2 listener=$3
mount --make-rprivate / && mount -t tmpfs tmpfs /run || exit 90
python3 "$listener" "$work/journal.jsonl" "$work/ready" &
listener=$!
for _ in $(seq 1 200); do
        [ -e "$work/ready" ] && break
        kill -0 $listener 2>/dev/null || exit 91
        sleep 0.05
done
[ -e "$work/ready" ] || exit 92
# aded runs on, read-only, over a state file it cannot read: once its error is in the journal, it is
# stopped as systemd would (SIGTERM), and whether it was still running is recorded.
INVOCATION_ID=ade-test "$aded" --log-level debug --config "$work/ade.conf" >"$work/stderr" 2>&1 &
aded=$!
for _ in $(seq 1 600); do
        grep -q '"PRIORITY": "3"' "$work/journal.jsonl" 2>/dev/null && break
        kill -0 $aded 2>/dev/null || break
        sleep 0.05
done
if kill -0 $aded 2>/dev/null; then echo running >"$work/aded.alive"; else echo exited >"$work/aded.alive"; fi
kill -TERM $aded 2>/dev/null
wait $aded
# Datagrams queue in order: the end marker arrives after everything aded sent.
python3 -c 'import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"ADE_TEST_END=1\n", "/run/systemd/journal/socket")'
wait $listener
EOF

unshare -m bash "$WORK/run.sh" "$WORK" "$ADED" "$top_srcdir/tests/journal-listener.py"
rc=$?
[ $rc = 0 ] || fail "the namespace with the stand-in journald did not work (exit $rc)"
[ "$(cat "$WORK/aded.alive")" = running ] ||
        fail "aded exited on a corrupt state file instead of running read-only; stderr: $(cat "$WORK/stderr")"
[ -s "$WORK/journal.jsonl" ] || fail "nothing reached the journal socket; stderr: $(cat "$WORK/stderr")"

python3 - "$WORK/journal.jsonl" "$top_srcdir" <<'EOF' || fail "journal fields are wrong (above)"
import json, os, re, sys

records = [json.loads(l) for l in open(sys.argv[1])]
top = sys.argv[2]
bad = []

def source(path):
    while path.startswith("../") or path.startswith("./"):
        path = path.split("/", 1)[1]
    return path if os.path.isabs(path) else os.path.join(top, path)

for r in records:
    where = "%s:%s %s() %r" % (r.get("CODE_FILE"), r.get("CODE_LINE"), r.get("CODE_FUNC"), r.get("MESSAGE"))
    if r.get("SYSLOG_IDENTIFIER") != "aded":
        bad.append("no SYSLOG_IDENTIFIER=aded: " + where)
    if not re.fullmatch(r"[0-7]", r.get("PRIORITY", "")):
        bad.append("no syslog PRIORITY: " + where)
    if not all(k in r for k in ("CODE_FILE", "CODE_LINE", "CODE_FUNC")):
        bad.append("CODE_* missing: " + where)
        continue
    if r["CODE_FUNC"] == "log_to_journal_or_stderr":
        bad.append("the sink's own location, not the caller's: " + where)
        continue
    path = source(r["CODE_FILE"])
    if not os.path.isfile(path):
        bad.append("CODE_FILE is not a source file: " + where)
        continue
    lines = open(path).read().split("\n")
    n = int(r["CODE_LINE"])
    if not (0 < n <= len(lines) and "ade_log" in lines[n - 1]):
        bad.append("CODE_LINE is not an ade_log call: " + where)
        continue
    # The call lies in the function CODE_FUNC names: the nearest definition above it.
    defs = [i for i in range(n) if re.match(r"^[A-Za-z_].*\b%s\(" % re.escape(r["CODE_FUNC"]), lines[i])]
    if not defs:
        bad.append("CODE_FUNC is not the function around CODE_LINE: " + where)

def has(pred):
    return any(pred(r) for r in records)

# The library's debug message about the state file, with its own location.
if not has(lambda r: r.get("PRIORITY") == "7" and r.get("CODE_FILE", "").endswith("lib/ade-state.c")
           and "state.json" in r.get("MESSAGE", "")):
    bad.append("no debug message located in lib/ade-state.c naming state.json")
# The daemon's error, located in the daemon.
if not has(lambda r: r.get("PRIORITY") == "3" and "/daemon/aded" in "/" + r.get("CODE_FILE", "")):
    bad.append("no error message located in daemon/")

for b in bad:
    print(b)
print("%d journal records checked" % len(records))
sys.exit(1 if bad else 0)
EOF
echo "PASS: $(wc -l <"$WORK/journal.jsonl") journal records carry PRIORITY, SYSLOG_IDENTIFIER and the caller's CODE_*"
