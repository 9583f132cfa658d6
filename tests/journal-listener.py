# SPDX-License-Identifier: LGPL-2.1-or-later
# A stand-in journald for the tests: binds /run/systemd/journal/socket (run it where that path is
# the test's own: a private mount namespace), touches READY, then writes each datagram as one JSON
# object per line to OUT (journald's native protocol, both the KEY=VALUE and the binary form), until
# a datagram with ADE_TEST_END arrives.
#
#   journal-listener.py OUT READY [SOCKET]    (SOCKET: /run/systemd/journal/socket unless given)
import json, os, socket, sys

out, ready = sys.argv[1], sys.argv[2]
path = sys.argv[3] if len(sys.argv) > 3 else "/run/systemd/journal/socket"
os.makedirs(os.path.dirname(path), exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(ready, "w").close()

def fields(d):
    f, i = {}, 0
    while i < len(d):
        nl = d.index(b"\n", i)
        line = d[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k, n = line, int.from_bytes(d[nl + 1:nl + 9], "little")
            v = d[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        f[k.decode()] = v.decode(errors="replace")
    return f

with open(out, "w") as o:
    while True:
        f = fields(s.recv(1 << 20))
        if "ADE_TEST_END" in f:
            break
        o.write(json.dumps(f) + "\n")
        o.flush()
