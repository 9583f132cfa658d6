#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A volume's history in the journal: every message aded logs about a job carries ADE_VOLUME= (the
# device), ADE_JOB= (encrypt, decrypt, rotate, unlock) and, once the job has recorded a step,
# ADE_STEP= (the last step recorded, in the state file's names), so that "journalctl ADE_VOLUME=/dev/sdc" shows one
# volume's history; messages about nothing in particular carry none. aded runs as under systemd
# (INVOCATION_ID set, so it logs to the journal) in a mount namespace of its own where
# /run/systemd is a folder of the test's, with a stand-in journald (tests/journal-listener.py)
# listening on its socket.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v unshare >/dev/null || skip "no unshare"
make_volume 200
start_emulator
write_config

python3 "$top_srcdir/tests/journal-listener.py" "$WORK/journal.jsonl" "$WORK/listener.ready" \
        "$WORK/systemd/journal/socket" &
LISTENER=$!
for _ in $(seq 1 200); do [ -e "$WORK/listener.ready" ] && break; sleep 0.05; done
[ -e "$WORK/listener.ready" ] || fail "the stand-in journald did not start"
aded_unshared 'mount -t tmpfs tmpfs /run && mkdir /run/systemd && mount --bind "$0" /run/systemd' "$WORK/systemd"
INVOCATION_ID=ade-test ADED_LOG_LEVEL=debug start_aded

adectl enable --volume-type DATA >"$WORK/out" 2>&1 || fail "enable failed: $(cat "$WORK/out")"
adectl rotate >"$WORK/out" 2>&1 || fail "rotate failed: $(cat "$WORK/out")"
stop_aded || fail "aded did not stop"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"ADE_TEST_END=1\n", sys.argv[1])' \
        "$WORK/systemd/journal/socket"
wait $LISTENER

python3 - "$WORK/journal.jsonl" "$VOLUME" <<'PY' || fail "the volume's history is wrong (above)"
import json, sys

records = [json.loads(l) for l in open(sys.argv[1])]
volume = sys.argv[2]
bad = []
mine = [r for r in records if r.get("ADE_VOLUME") == volume]
jobs = {r.get("ADE_JOB") for r in mine}
steps = [r["ADE_STEP"] for r in mine if "ADE_STEP" in r and r.get("ADE_JOB") == "encrypt"]

if not records:
    bad.append("nothing reached the journal")
if {"encrypt", "rotate"} - jobs:
    bad.append("jobs in the volume's history: %s, expected encrypt and rotate" % sorted(j for j in jobs if j))
for r in mine:
    if r.get("ADE_JOB") not in ("encrypt", "decrypt", "rotate", "unlock"):
        bad.append("ADE_VOLUME without a known ADE_JOB: %r" % r)
# The encryption's steps, in the order the state file takes them.
order = ["preconditions", "keyfile", "wrap", "escrow", "shrink", "header", "reencrypt", "done"]
seen = [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s]
# Each message carries the last step recorded before it: those after the escrow say so.
if "escrow" not in seen:
    bad.append("encrypt's steps in the journal: %s" % seen)
if any(order.index(a) > order.index(b) for a, b in zip(seen, seen[1:]) if a in order and b in order):
    bad.append("encrypt's steps out of order: %s" % seen)
for text in ("started encryption job on %s" % volume, "job on %s finished" % volume):
    if not any(r.get("MESSAGE") == text and r.get("ADE_JOB") == "encrypt" for r in mine):
        bad.append("no %r with ADE_VOLUME and ADE_JOB=encrypt" % text)
# Messages about nothing in particular: no volume, no job.
general = [r for r in records if "ADE_VOLUME" not in r]
if not general:
    bad.append("every message names a volume: aded's own (start, stop) should not")
for r in general:
    if "ADE_JOB" in r or "ADE_STEP" in r:
        bad.append("ADE_JOB or ADE_STEP without ADE_VOLUME: %r" % r)
for b in bad:
    print(b)
print("%d messages, %d about %s (jobs %s, encrypt's steps %s)" % (len(records), len(mine), volume,
      sorted(j for j in jobs if j), seen))
sys.exit(1 if bad else 0)
PY
pass
