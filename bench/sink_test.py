#!/usr/bin/env python3
"""Checks bench/sink: pipelining, the end-of-data dot split across reads,
byte-by-byte input, overlong lines, the message count.

Usage: bench/sink_test.py PATH/TO/sink
Exits 0 when every check passes, 1 otherwise.
"""
import socket
import subprocess
import sys
import time


def start(sink):
    p = subprocess.Popen([sink, "-v", "0"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("listening 127.0.0.1:"), line
    return p, int(line.rsplit(":", 1)[1])


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def read_until(self, n_lines, timeout=5.0):
        """Returns the first n_lines complete reply lines."""
        self.s.settimeout(timeout)
        while self.buf.count(b"\r\n") < n_lines:
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buf += chunk
        lines = self.buf.split(b"\r\n")
        out, self.buf = lines[:n_lines], b"\r\n".join(lines[n_lines:])
        return [x.decode() for x in out]

    def send(self, data, bytewise=False):
        if not bytewise:
            self.s.sendall(data)
            return
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            self.s.sendall(data[i:i + 1])
            time.sleep(0.0005)


FAILS = []


def check(name, got, want):
    if got != want:
        FAILS.append(name)
        print(f"FAIL {name}: got {got!r}, want {want!r}")
    else:
        print(f"ok   {name}")


def session_checks(port):
    c = Conn(port)
    check("greeting", c.read_until(1), ["220 sink ESMTP"])
    c.send(b"EHLO x\r\n")
    check("ehlo", c.read_until(5), ["250-sink", "250-PIPELINING", "250-8BITMIME",
                                    "250-SIZE 104857600", "250 ENHANCEDSTATUSCODES"])
    # Pipelined group: all three replies come back together.
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
    check("pipelined", c.read_until(3), ["250 2.1.0 ok", "250 2.1.5 ok",
                                         "354 end with <CRLF>.<CRLF>"])
    # Data with a stuffed dot line and the end split across two writes.
    c.send(b"Subject: x\r\n\r\n..not the end\r\n.x\r\nbody\r\n.")
    time.sleep(0.05)
    c.send(b"\r\n")
    check("split dot", c.read_until(1), ["250 2.0.0 queued"])
    # A whole transaction plus RSET, byte by byte.
    c.send(b"MAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\nRSET\r\n", bytewise=True)
    check("bytewise", c.read_until(5), ["250 2.1.0 ok", "250 2.1.5 ok",
                                        "354 end with <CRLF>.<CRLF>",
                                        "250 2.0.0 queued", "250 2.0.0 ok"])
    # Data and the next transaction in one write (pipelined after the dot).
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
    c.read_until(3)
    c.send(b"a\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nb\r\n.\r\n")
    check("after dot", c.read_until(4), ["250 2.0.0 queued", "250 2.1.0 ok",
                                         "250 2.1.5 ok", "354 end with <CRLF>.<CRLF>"])
    check("second", c.read_until(1), ["250 2.0.0 queued"])
    check("order", (c.send(b"DATA\r\nRCPT TO:<x@y>\r\n"), c.read_until(2))[1],
          ["503 5.5.1 RCPT first", "503 5.5.1 MAIL first"])
    c.send(b"X" * 5000 + b"\r\nNOOP\r\n")
    check("long line", c.read_until(2), ["500 5.5.2 line too long", "250 2.0.0 ok"])
    c.send(b"QUIT\r\n")
    check("quit", c.read_until(1), ["221 2.0.0 bye"])
    c.s.settimeout(5)
    check("closed", c.s.recv(10), b"")


def many(port, n=300):
    """Many pipelined transactions in one write: output buffer back-pressure."""
    c = Conn(port)
    c.read_until(1)
    one = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n"
    c.send(b"EHLO x\r\n" + one * n + b"QUIT\r\n")
    lines = c.read_until(5 + 4 * n + 1, timeout=10)
    check("many replies", lines.count("250 2.0.0 queued"), n)
    check("many quit", lines[-1], "221 2.0.0 bye")


def main():
    p, port = start(sys.argv[1])
    try:
        session_checks(port)
        many(port)
    finally:
        time.sleep(0.1)
        p.terminate()
        out = p.communicate(timeout=5)[0]
    check("session lines", out.count("session messages="), 2)
    check("total", out.strip().splitlines()[-1], "messages 304")
    print(f"{'FAILED: ' + ', '.join(FAILS) if FAILS else 'all passed'}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
