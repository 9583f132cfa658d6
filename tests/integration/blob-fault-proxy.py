#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A fault-injecting HTTPS proxy in front of Azurite, for the header backup tests: Azurite itself
never fails. It listens on 127.0.0.1 (an ephemeral port, printed as "port N" on stdout), terminates
TLS with CERT/KEY and forwards each request to UPSTREAM (https://127.0.0.1:PORT, trusted with CA).

Before each request it reads MODE_FILE:
  pass      forward it;
  fail      answer 503 ServerBusy with Retry-After: 1;
  503-once  answer that 503 once, then behave as "pass" (the file is rewritten);
  drop      close the connection without an answer;
  expired-once  answer once as Storage does to an expired bearer token (401 InvalidAuthenticationInfo,
            "Lifetime validation failed. The token is expired."), then behave as "pass".
Each request is logged to LOG as "METHOD PATH STATUS" ("-" for a dropped one).

Usage: blob-fault-proxy.py UPSTREAM CA CERT KEY MODE_FILE LOG"""
import http.client
import http.server
import ssl
import sys
import threading
import urllib.parse

upstream, ca, cert, key, mode_file, log_file = sys.argv[1:7]
up = urllib.parse.urlsplit(upstream)
lock = threading.Lock()
HOP = {"connection", "keep-alive", "transfer-encoding", "host", "proxy-connection"}


def take_mode():
    with lock:
        try:
            with open(mode_file) as f:
                mode = f.read().strip()
        except FileNotFoundError:
            mode = "pass"
        if mode in ("503-once", "expired-once"):
            with open(mode_file, "w") as f:
                f.write("pass\n")
            return "fail" if mode == "503-once" else "expired"
        return mode


# The answers of the faults: status, headers, Storage's XML error body.
ANSWERS = {
    "fail": (503, {"Retry-After": "1", "x-ms-error-code": "ServerBusy"},
             b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
             b"<Message>The fault proxy is busy.</Message></Error>"),
    "expired": (401, {"WWW-Authenticate": "Bearer authorization_uri=https://login.microsoftonline.com/"
                                          "72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize "
                                          "resource_id=https://storage.azure.com",
                      "x-ms-error-code": "InvalidAuthenticationInfo"},
                b'<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidAuthenticationInfo</Code>'
                b"<Message>Server failed to authenticate the request. Please refer to the information in "
                b"the www-authenticate header.\nRequestId:00000000-0000-0000-0000-000000000000\n"
                b"Time:2026-12-07T00:00:00.0000000Z</Message><AuthenticationErrorDetail>Lifetime validation "
                b"failed. The token is expired.</AuthenticationErrorDetail></Error>"),
}


def log(method, path, status):
    with lock, open(log_file, "a") as f:
        f.write(f"{method} {path} {status}\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        mode = take_mode()
        path = urllib.parse.urlsplit(self.path).path
        if mode == "drop":
            log(self.command, path, "-")
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if mode in ANSWERS:
            status, headers, msg = ANSWERS[mode]
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            log(self.command, path, status)
            return
        ctx = ssl.create_default_context(cafile=ca)
        conn = http.client.HTTPSConnection(up.hostname, up.port, context=ctx, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Host"] = up.netloc
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()
        log(self.command, path, resp.status)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = relay


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
server.socket = tls.wrap_socket(server.socket, server_side=True)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
