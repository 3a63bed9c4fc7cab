#!/usr/bin/env python3
"""A tiny SMTP server that stores every message it receives byte for byte.

Postfix relays all test mail here, so a test can compare what smtpc submitted
with what came out of the other end of a real MTA.  For each transaction it
writes DIR/NNNNNN.eml (the DATA payload, dot-unstuffed, CRLF kept, without
the final ".\\r\\n") and DIR/NNNNNN.json (envelope: helo, mail, rcpt).
Files appear atomically (written under a temporary name, then renamed).

With --log FILE every line received from any client is appended to FILE
(a transcript for tests that must prove something was *not* sent), and
--auth makes it advertise AUTH PLAIN LOGIN and accept any credentials.

Usage: capture.py --port N --dir DIR [--log FILE] [--auth]
Python standard library only.
"""

import argparse
import json
import os
import socketserver
import sys
import threading

MAX_LINE = 64 * 1024


class Store:
    """Numbered, atomic message files in one directory."""

    def __init__(self, directory, log_path):
        self.dir = directory
        self.log_path = log_path
        self.lock = threading.Lock()
        self.n = 0

    def save(self, envelope, data):
        with self.lock:
            self.n += 1
            base = os.path.join(self.dir, "%06d" % self.n)
        for ext, payload in ((".eml", data),
                             (".json", json.dumps(envelope).encode())):
            tmp = base + ext + ".tmp"
            with open(tmp, "wb") as f:
                f.write(payload)
            os.rename(tmp, base + ext)

    def log(self, peer, line):
        if not self.log_path:
            return
        with self.lock, open(self.log_path, "ab") as f:
            f.write(("%s:%d " % peer).encode() + line)


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(MAX_LINE)
        self.server.store.log(self.client_address, line)
        return line

    def ehlo_reply(self, arg):
        caps = ["capture.smtpc.test greets " + arg, "PIPELINING", "SIZE 104857600",
                "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]
        if self.server.auth:
            caps.append("AUTH PLAIN LOGIN")
        for c in caps[:-1]:
            self.wfile.write(("250-" + c + "\r\n").encode())
        self.reply("250 " + caps[-1])

    def read_data(self):
        """DATA payload up to the lone dot, unstuffed (RFC 5321 4.5.2)."""
        chunks = []
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return None
            if line == b".\r\n":
                return b"".join(chunks)
            if line.startswith(b"."):
                line = line[1:]
            chunks.append(line)

    def handle(self):
        try:
            self.session()
        except OSError:
            pass  # the client went away: nothing to store

    def session(self):
        env = {"helo": None, "mail": None, "rcpt": []}
        self.reply("220 capture.smtpc.test ESMTP capture")
        while True:
            line = self.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = cmd.split(" ", 1)[0].upper()
            arg = cmd[len(verb):].strip()
            if verb in ("EHLO", "HELO"):
                env = {"helo": arg, "mail": None, "rcpt": []}
                if verb == "EHLO":
                    self.ehlo_reply(arg)
                else:
                    self.reply("250 capture.smtpc.test")
            elif verb == "AUTH" and self.server.auth:
                self.auth(arg)
            elif verb == "MAIL":
                env["mail"] = arg
                env["rcpt"] = []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                env["rcpt"].append(arg)
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if not env["rcpt"]:
                    self.reply("503 5.5.1 Error: need RCPT command")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = self.read_data()
                if data is None:
                    return
                self.server.store.save(env, data)
                env = {"helo": env["helo"], "mail": None, "rcpt": []}
                self.reply("250 2.0.0 Ok: queued")
            elif verb == "RSET":
                env = {"helo": env["helo"], "mail": None, "rcpt": []}
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")

    def auth(self, arg):
        parts = arg.split()
        if len(parts) == 1:
            self.reply("334 ")
            self.readline()
        if parts and parts[0].upper() == "LOGIN" and len(parts) == 1:
            self.reply("334 UGFzc3dvcmQ6")
            self.readline()
        self.reply("235 2.7.0 Authentication successful")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--log")
    ap.add_argument("--auth", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    srv = Server((a.host, a.port), Handler)
    srv.store = Store(a.dir, a.log)
    srv.auth = a.auth
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
