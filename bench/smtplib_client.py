#!/usr/bin/env python3
"""Python smtplib counterpart of bench/client: one SMTP connection, COUNT
sendmail() calls of the same message bytes, timed with time.monotonic().

Usage: smtplib_client.py [-n COUNT] [-l BYTES] [HOST:]PORT
Output: smtplib messages=N seconds=S rate=R session_seconds=T
"""
import argparse
import smtplib
import sys
import time

HEADERS = (b"From: <bench@localhost>\r\n"
           b"To: <sink@localhost>\r\n"
           b"Date: Mon, 30 Nov 2026 00:00:00 +0000\r\n"
           b"Message-Id: <bench@localhost>\r\n"
           b"\r\n")


def build_message(payload):
    """Same bytes as build_message() in bench/client.c."""
    out = [HEADERS]
    left = payload
    while left >= 3:
        k = min(left - 2, 78)
        out.append(b"X" * k + b"\r\n")
        left -= k + 2
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("-l", type=int, default=1024)
    ap.add_argument("target")
    a = ap.parse_args()
    host, _, port = a.target.rpartition(":")
    msg = build_message(a.l)
    t0 = time.monotonic()
    s = smtplib.SMTP(host or "127.0.0.1", int(port), local_hostname="bench.localhost")
    s.ehlo()
    t1 = time.monotonic()
    for i in range(a.n):
        refused = s.sendmail("bench@localhost", ["sink@localhost"], msg)
        if refused:
            print(f"smtplib: message {i + 1}: {refused}", file=sys.stderr)
            return 1
    t2 = time.monotonic()
    s.quit()
    t3 = time.monotonic()
    print(f"smtplib messages={a.n} seconds={t2 - t1:.6f} rate={a.n / (t2 - t1):.1f} "
          f"session_seconds={t3 - t0:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
