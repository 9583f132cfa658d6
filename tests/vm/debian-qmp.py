#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One QMP command to a running QEMU, for tests/vm/debian-lib.sh.

    debian-qmp.py SOCKET COMMAND [ARGUMENTS-JSON] [--wait-event NAME[:DEVICE]] [--timeout SECONDS]

Prints the command's "return" as JSON and exits 0; prints QEMU's error and exits 1. With
--wait-event it then waits for that event (for DEVICE_DELETED, the one naming DEVICE: device_del
only asks the guest, which lets go of the device later) and exits 1 if it does not come in time.
"""
import json
import socket
import sys
import time


def read_message(f):
    line = f.readline()
    if not line:
        raise EOFError("QEMU closed the monitor connection")
    return json.loads(line)


def reply(f, events):
    while True:
        msg = read_message(f)
        if "event" in msg:
            events.append(msg)
            continue
        return msg


def main(argv):
    args = list(argv)
    wait = None
    timeout = 60.0
    if "--wait-event" in args:
        i = args.index("--wait-event")
        wait = args[i + 1]
        del args[i : i + 2]
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i : i + 2]
    if len(args) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    path, command = args[0], args[1]
    arguments = json.loads(args[2]) if len(args) == 3 else None

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    f = s.makefile("rw")
    read_message(f)  # the greeting
    events = []
    for msg in ({"execute": "qmp_capabilities"}, {"execute": command}):
        if msg["execute"] == command and arguments is not None:
            msg["arguments"] = arguments
        f.write(json.dumps(msg) + "\n")
        f.flush()
        r = reply(f, events)
        if "error" in r:
            print("qmp %s: %s: %s" % (msg["execute"], r["error"].get("class"), r["error"].get("desc")),
                  file=sys.stderr)
            return 1
    print(json.dumps(r.get("return")))

    if wait:
        name, _, device = wait.partition(":")
        deadline = time.monotonic() + timeout

        def matches(ev):
            return ev["event"] == name and (not device or ev.get("data", {}).get("device") == device)

        while not any(matches(ev) for ev in events):
            left = deadline - time.monotonic()
            if left <= 0:
                print("qmp: no %s event within %g s" % (wait, timeout), file=sys.stderr)
                return 1
            s.settimeout(left)
            try:
                msg = read_message(f)
            except (socket.timeout, TimeoutError):
                continue
            if "event" in msg:
                events.append(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
