#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A key-socket client speaking systemd-cryptsetup's protocol (crypttab(5), "AF_UNIX KEY FILES"):
bind to the abstract address "\\0<random hex>/cryptsetup/<volume>", connect, read to EOF.

keysocket-client.py SOCKET VOLUME [--out FILE] [--garbage] [--unnamed] [--close-early] [--time]
Exit 0 with the key written to FILE (or counted on stdout) when a key came, 2 when the server
closed without a byte, 1 on a connection error. --time prints the seconds from connect to EOF
instead of the key's length."""
import argparse
import os
import socket
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("socket")
p.add_argument("volume")
p.add_argument("--out")
p.add_argument("--garbage", action="store_true", help="send bytes the protocol has none of")
p.add_argument("--unnamed", action="store_true", help="connect without binding a name")
p.add_argument("--close-early", action="store_true", help="close right after connecting")
p.add_argument("--time", action="store_true", help="print the seconds from connect to EOF")
a = p.parse_args()

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if not a.unnamed:
    s.bind("\0%x/cryptsetup/%s" % (int.from_bytes(os.urandom(8), "big"), a.volume))
start = time.monotonic()
try:
    s.connect(a.socket)
except OSError as e:
    print("connect: %s" % e, file=sys.stderr)
    sys.exit(1)
if a.close_early:
    s.close()
    sys.exit(0)
if a.garbage:
    try:
        s.sendall(b"\x00GET /key HTTP/1.1\r\n\r\n" + os.urandom(4096))
    except OSError:
        pass
key = b""
while True:
    try:
        chunk = s.recv(65536)
    except OSError as e:
        print("recv: %s" % e, file=sys.stderr)
        sys.exit(1)
    if not chunk:
        break
    key += chunk
if not key:
    sys.exit(2)
if a.out:
    with open(a.out, "wb") as f:
        f.write(key)
print("%.4f" % (time.monotonic() - start) if a.time else len(key))
