#!/usr/bin/env python3
"""HTTPS server for the MTA-STS fetch tests (tests/unit/test_mtasts.c).

Serves /.well-known/mta-sts.txt on 127.0.0.1 with the given certificate. What
it answers is read from MODE_FILE at every request, so one server covers every
case: the test writes the mode, then fetches. Prints the port it listens on
(random) as the first line of stdout.

Modes:
  ok        200, a valid enforce policy (mx: mx1.example.test, *.mx.example.test)
  exact     200, a valid policy padded to exactly 65536 bytes
  oversize  200, 65537 bytes
  bad       200, a body that is not a policy
  404       404
  500       500
  redirect  301 to another https URL
  slow      sleeps 5 s before answering
"""

import argparse
import http.server
import ssl
import sys
import time

POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.mx.example.test\r\nmax_age: 86400\r\n"
LIMIT = 65536


def padded(total):
    head = b"version: STSv1\nmode: testing\nmx: mx1.example.test\nmax_age: 3600\npad: "
    return head + b"x" * (total - len(head) - 1) + b"\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep the test output clean
        pass

    def send_body(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(self.server.mode_file) as f:
            mode = f.read().strip()
        if self.path != "/.well-known/mta-sts.txt":
            self.send_body(400, b"wrong path\n")
        elif mode == "ok":
            self.send_body(200, POLICY)
        elif mode == "exact":
            self.send_body(200, padded(LIMIT))
        elif mode == "oversize":
            self.send_body(200, padded(LIMIT + 1))
        elif mode == "bad":
            self.send_body(200, b"this is not a policy\n")
        elif mode == "404":
            self.send_body(404, b"not found\n")
        elif mode == "500":
            self.send_body(500, b"oops\n")
        elif mode == "redirect":
            self.send_body(301, b"moved\n",
                           [("Location", "https://elsewhere.example.test/.well-known/mta-sts.txt")])
        elif mode == "slow":
            time.sleep(5)
            self.send_body(200, POLICY)
        else:
            self.send_body(500, b"unknown mode\n")


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # failed handshakes and clients that hung up are expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--mode-file", required=True)
    args = ap.parse_args()

    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.mode_file = args.mode_file
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    # The handshake runs in the handler thread (on its first read), so a
    # client that rejects our certificate does not hold up the others.
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
