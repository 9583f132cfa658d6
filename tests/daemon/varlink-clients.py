#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Raw varlink clients for aded's tests: many concurrent callers, and hostile ones.

  varlink-clients.py concurrent SOCKET N     N clients call Show at once; all must be answered
  varlink-clients.py hostile SOCKET          each hostile client gets an error or is dropped, while a
                                             well-behaved client on its own connection keeps getting
                                             answers and aded stays up
  varlink-clients.py flood SOCKET IDLE LARGE opens LARGE connections that each send almost 16 MiB
                                             without the NUL that would end the message, then IDLE
                                             that send nothing; prints "ready" once all are open
                                             (or refused), then holds them until stdin closes
  varlink-clients.py call SOCKET METHOD      one call without parameters on a connection of its own;
                                             prints the reply
  varlink-clients.py watch SOCKET N          opens N connections that each call Watch (so none of them
                                             is idle) and read its first reply; prints "ready N" with
                                             the number that got one, then holds them until stdin
                                             closes

Prints one line per check and exits 1 on the first failure. Only the standard library: this is a
judge independent of ade's own varlink code."""

import json
import socket
import sys
import threading

SHOW = "io.ade.DiskEncryption.Show"
TIMEOUT = 60.0


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    return s


def send(s, obj):
    s.sendall(json.dumps(obj).encode() + b"\0")


def recv_message(s, buf):
    """Returns (message or None when the peer closed, remaining buffer)."""
    while b"\0" not in buf:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return None, b""
        if not chunk:
            return None, b""
        buf += chunk
    msg, _, rest = buf.partition(b"\0")
    return json.loads(msg), rest


def call(s, method, parameters=None):
    send(s, {"method": method, "parameters": parameters or {}})
    msg, _ = recv_message(s, b"")
    return msg


def fail(what):
    print("FAIL:", what)
    sys.exit(1)


def ok(what):
    print("ok:", what)


class Healthy:
    """A well-behaved client holding one connection for the whole run."""

    def __init__(self, path):
        self.s = connect(path)

    def check(self, after):
        reply = call(self.s, SHOW)
        if not reply or "error" in reply or "volumes" not in reply.get("parameters", {}):
            fail(f"the well-behaved client got no proper Show reply after {after}: {reply!r}")
        # A fresh connection too: the listening socket still accepts.
        with connect(self.path) as s2:
            reply = call(s2, SHOW)
            if not reply or "error" in reply:
                fail(f"a new client got no Show reply after {after}: {reply!r}")


def error_or_dropped(s, what, expect_error=None):
    msg, _ = recv_message(s, b"")
    if msg is None:
        ok(f"{what}: dropped")
        return
    if "error" not in msg:
        fail(f"{what}: got a non-error reply {msg!r}")
    if expect_error and msg["error"] != expect_error:
        fail(f"{what}: error {msg['error']}, expected {expect_error}")
    ok(f"{what}: {msg['error']}")


def hostile(path):
    h = Healthy(path)
    h.path = path
    h.check("start")

    # 1. A message without its NUL: aded waits for the rest and must not block anyone meanwhile.
    s = connect(path)
    s.sendall(json.dumps({"method": SHOW}).encode())
    h.check("a message without NUL")
    s.close()
    ok("no NUL: others unaffected")

    # 2. 20 MiB without a NUL, over the 16 MiB cap: dropped.
    s = connect(path)
    dropped = False
    chunk = b'{"method":"' + b"a" * (1024 * 1024)
    try:
        for _ in range(20):
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        dropped = True
    if not dropped:
        msg, _ = recv_message(s, b"")
        if msg is not None:
            fail(f"20 MiB message: got a reply {msg!r} instead of being dropped")
    s.close()
    ok("20 MiB message: dropped")
    h.check("a 20 MiB message")

    # 3. Invalid JSON.
    s = connect(path)
    s.sendall(b"{this is not json\0")
    error_or_dropped(s, "invalid JSON")
    s.close()
    h.check("invalid JSON")

    # 4. An unknown method.
    s = connect(path)
    send(s, {"method": "io.ade.DiskEncryption.Nope"})
    error_or_dropped(s, "unknown method", "org.varlink.service.MethodNotFound")
    s.close()
    h.check("an unknown method")

    # 5. Wrong parameter types.
    for params in ({"volumeType": 5}, {"volumeType": ["Data"]}, {"volumeType": "Floppy"}, {"bogus": True}):
        s = connect(path)
        send(s, {"method": SHOW, "parameters": params})
        error_or_dropped(s, f"Show{json.dumps(params)}", "org.varlink.service.InvalidParameter")
        s.close()
    s = connect(path)
    send(s, {"method": "io.ade.DiskEncryption.Enable", "parameters": {"volumeType": "Data", "dryRun": "yes"}})
    error_or_dropped(s, "Enable with dryRun as a string", "org.varlink.service.InvalidParameter")
    s.close()
    s = connect(path)
    send(s, {"method": SHOW, "parameters": "not an object"})
    error_or_dropped(s, "parameters not an object")
    s.close()
    h.check("wrong parameter types")

    # 6. Half-closed: the call is sent, then the write side shut; the reply still comes (or a drop).
    s = connect(path)
    send(s, {"method": SHOW})
    s.shutdown(socket.SHUT_WR)
    msg, _ = recv_message(s, b"")
    if msg is not None and ("error" in msg or "volumes" not in msg.get("parameters", {})):
        fail(f"half-closed: unexpected reply {msg!r}")
    ok("half-closed: " + ("answered" if msg else "dropped"))
    s.close()
    h.check("a half-closed connection")

    # 7. A client that never reads: thousands of pipelined calls, replies piling up unread.
    s = connect(path)
    s.settimeout(5.0)
    try:
        line = json.dumps({"method": SHOW}).encode() + b"\0"
        for _ in range(20000):
            s.sendall(line)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    h.check("a client that never reads")
    s.close()
    ok("never reading: others unaffected")

    h.check("the end")
    print("PASS: hostile clients")


def concurrent(path, n):
    barrier = threading.Barrier(n)
    results = [None] * n

    def one(i):
        try:
            s = connect(path)
            barrier.wait(timeout=TIMEOUT)
            results[i] = call(s, SHOW)
            s.close()
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = {"exception": repr(e)}

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [r for r in results if not r or "error" in r or "exception" in r or "volumes" not in r.get("parameters", {})]
    if bad:
        fail(f"{len(bad)} of {n} clients got no proper answer, e.g. {bad[0]!r}")
    states = sorted({v["state"] for r in results for v in r["parameters"]["volumes"]})
    print(f"PASS: {n} concurrent Show calls answered; states seen: {', '.join(states)}")


def flood(path, idle, large):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    body = b'{"method":"' + b"a" * (16 * 1024 * 1024 - 64 * 1024)

    def send_large():
        try:
            s = connect(path)
            held.append(s)
            s.sendall(body)
        except OSError:
            pass  # dropped: what aded should do once its budget for us is spent

    threads = [threading.Thread(target=send_large) for _ in range(large)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(idle):
        try:
            held.append(connect(path))
        except OSError:
            pass
    print("ready", flush=True)
    sys.stdin.read()


def watch(path, n):
    held = []
    for _ in range(n):
        try:
            s = connect(path)
            send(s, {"method": "io.ade.DiskEncryption.Watch", "more": True})
            msg, _ = recv_message(s, b"")
        except OSError:
            continue  # refused: aded's cap for this uid
        if msg is not None and "error" not in msg:
            held.append(s)
    print("ready", len(held), flush=True)
    sys.stdin.read()


def one_call(path, method):
    try:
        reply = call(connect(path), method)
    except socket.timeout:
        fail("%s was not answered within %d s" % (method, TIMEOUT))
    if reply is None or "error" in reply:
        fail("%s: %s" % (method, reply))
    print(json.dumps(reply))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "call":
        one_call(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "hostile":
        hostile(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "flood":
        flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "watch":
        watch(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "concurrent":
        concurrent(sys.argv[2], int(sys.argv[3]))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
