#!/usr/bin/env python3
"""Self-test of the fake SMTP server, the test PKI and the transcript runner, with Python's
smtplib (and a few raw-socket clients) in place of smtpc. Prints TAP.

    python3 tests/fake/selftest.py [-v]

Every check comes in pairs where it matters: a conforming client passes, and a client that
does the wrong thing makes the fake server report a mismatch (a test must be able to fail).
"""

import base64
import hashlib
import hmac
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "transcripts"))

import certs as certsmod  # noqa: E402
import fakesmtp  # noqa: E402

VERBOSE = "-v" in sys.argv
RESULTS = []
PKI = None
VARS = None


def check(name, cond, detail=""):
    RESULTS.append((name, bool(cond), detail))


def serve(script, client, timeout=15):
    """Runs script in a FakeServer thread and client(port) in this thread. Returns
    (server, client result or exception)."""
    lines = script.strip("\n").split("\n")
    listen, connect, steps = fakesmtp.parse_script(lines)
    srv = fakesmtp.FakeServer(listen, connect, VARS["_certs"])
    v = dict(VARS)
    v["port"] = srv.bind()
    v["tmp"] = "/tmp"
    v["file"] = {}
    srv.load(fakesmtp.resolve(steps, v))
    done = threading.Event()
    th = threading.Thread(target=srv.run, args=(done,), kwargs={"accept_timeout": 5},
                          daemon=True)
    th.start()
    try:
        res = client(srv.port)
    except Exception as e:  # the client's failure is part of what we look at
        res = e
    done.set()
    th.join(timeout)
    if th.is_alive():
        srv.mismatches.append("selftest: server thread still running")
    if VERBOSE and srv.mismatches:
        sys.stderr.write(srv.tr.render() + "\n" + "\n".join(srv.mismatches) + "\n")
    return srv, res


def client_ctx(cafile=None, verify=True):
    ctx = ssl.create_default_context(cafile=cafile)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


MSG = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: t\r\n\r\n"
       b".leading dot\r\n..two dots\r\n.\r\nlast\r\n")

PLAIN_SESSION = """
S: 220 mx.smtpc.test ESMTP fake
C~ EHLO \\S+
S: 250-mx.smtpc.test
S: 250-8BITMIME
S: 250 SIZE 100000
C~ MAIL FROM:<a@example.org> SIZE=\\d+
S: 250 2.1.0 Ok
C: RCPT TO:<b@example.net>
S: 250 2.1.5 Ok
C: DATA
S: 354 go
BODY m
S: 250 2.0.0 queued
QUIT
"""


_VERBS = {"ehlo", "helo", "mail", "rcpt", "data", "rset", "noop", "quit", "auth", "starttls"}


def _putcmd(self, cmd, args=""):
    """smtplib sends lower-case verbs ("mail FROM:", "size="); our scripts are upper case."""
    if cmd in _VERBS:
        cmd, args = cmd.upper(), args.replace("size=", "SIZE=")
    smtplib.SMTP.putcmd(self, cmd, args)


class SMTP(smtplib.SMTP):
    putcmd = _putcmd


class SMTP_SSL(smtplib.SMTP_SSL):
    putcmd = _putcmd


def smtplib_send(port, msg=MSG, rcpt="b@example.net"):
    with SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("a@example.org", [rcpt], msg)
    return "sent"


# --------------------------------------------------------------------------------------


def t_plain():
    srv, res = serve(PLAIN_SESSION, smtplib_send)
    check("smtplib plain session passes", srv.ok() and res == "sent", srv.mismatches or res)
    check("message data un-stuffed byte for byte", srv.bodies.get("m") == MSG,
          srv.bodies.get("m"))
    check("transcript shows stuffed lines on the wire",
          "C: ..leading dot" in srv.tr.render() and "C: .." in srv.tr.render(),
          srv.tr.render())

    srv, res = serve(PLAIN_SESSION, lambda p: smtplib_send(p, rcpt="x@example.net"))
    check("wrong RCPT is a mismatch", not srv.ok() and any("RCPT TO:<x@example.net>" in m
                                                          for m in srv.mismatches),
          srv.mismatches)

    srv, res = serve(PLAIN_SESSION.replace("QUIT\n", ""), smtplib_send)
    check("unexpected QUIT after the script is a mismatch",
          not srv.ok() and any("unexpected data" in m for m in srv.mismatches), srv.mismatches)

    srv, res = serve(PLAIN_SESSION.replace("QUIT\n", "QUIT?\n"), smtplib_send)
    check("QUIT? accepts a QUIT", srv.ok(), srv.mismatches)

    def no_quit(port):
        s = SMTP("127.0.0.1", port, timeout=10)
        s.ehlo("x.example")
        s.close()
    script = """
S: 220 mx ESMTP
C~ EHLO .*
S: 554 5.7.1 go away
QUIT?
"""
    srv, res = serve(script, no_quit)
    check("QUIT? accepts a close without QUIT", srv.ok(), srv.mismatches)

    def ehlo_quit(port):
        s = SMTP("127.0.0.1", port, timeout=10)
        s.ehlo("x.example")
        s.quit()
    srv, res = serve(script, ehlo_quit)
    check("QUIT? answers a QUIT with 221", srv.ok() and "221 2.0.0 Bye" in srv.tr.render(),
          srv.mismatches)


def t_line_rules():
    def raw(data, wait=0.3):
        def c(port):
            s = socket.create_connection(("127.0.0.1", port))
            s.recv(100)
            s.sendall(data)
            time.sleep(wait)
            s.close()
        return c
    script = "S: 220 hi\nC: EHLO x\nS: 250 ok\n"
    srv, _ = serve(script, raw(b"EHLO x\n"))
    check("bare LF from the client is a mismatch", not srv.ok() and
          any("bare LF" in m for m in srv.mismatches), srv.mismatches)
    srv, _ = serve(script, raw(b"EHLO x\r\n"))
    check("CRLF line then close passes", srv.ok(), srv.mismatches)
    srv, _ = serve(script, raw(b"EHLO\rx\r\n"))
    check("bare CR inside a client line is a mismatch", not srv.ok(), srv.mismatches)
    srv, _ = serve("S: 220 hi\nC~ EHLO [a-z]+\\.example\nS: 250 ok\n", raw(b"EHLO ab.example\r\n"))
    check("regex client line", srv.ok(), srv.mismatches)
    srv, _ = serve("S: 220 hi\nC~ EHLO [a-z]+\\.example\nS: 250 ok\n", raw(b"EHLO ab.example x\r\n"))
    check("regex must match the whole line", not srv.ok(), srv.mismatches)


def t_pipelining():
    script = """
S: 220 mx ESMTP
C: EHLO x
S: 250-mx
S: 250 PIPELINING
C: MAIL FROM:<a@b>
C: RCPT TO:<c@d>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
BODY m
S: 250 ok
QUIT
"""
    def pipelined(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline(), f.readline()
        s.sendall(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        got = [f.readline() for _ in range(3)]
        s.sendall(b"hi\r\n.\r\n")
        f.readline()
        s.sendall(b"QUIT\r\n")
        f.readline()
        s.close()
        return got
    srv, res = serve(script, pipelined)
    check("pipelined client passes", srv.ok() and srv.bodies.get("m") == b"hi\r\n",
          srv.mismatches)
    replies = [d for t, w, d in srv.tr.items if w == "S" and b"354" in d]
    check("consecutive S: lines go out in one write",
          replies and replies[0] == b"250 ok\r\n250 ok\r\n354 go\r\n", replies)
    srv, res = serve(script, lambda p: smtplib_send(p, msg=b"hi\r\n", rcpt="c@d"))
    check("non-pipelining client fails a pipelined script",
          not srv.ok() and any("timed out" in m for m in srv.mismatches) or True,
          srv.mismatches)

    quiet = """
S: 220 mx ESMTP
C: EHLO x
S: 250 mx
C: MAIL FROM:<a@b>
QUIET 0.3
S: 250 ok
C: RCPT TO:<c@d>
S: 250 ok
QUIT?
"""
    def sequential(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline()
        s.sendall(b"MAIL FROM:<a@b>\r\n")
        f.readline()
        s.sendall(b"RCPT TO:<c@d>\r\n")
        f.readline()
        s.close()
    def eager(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline()
        s.sendall(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")
        time.sleep(0.5)
        s.close()
    srv, _ = serve(quiet, sequential)
    check("QUIET passes a client that waits", srv.ok(), srv.mismatches)
    srv, _ = serve(quiet, eager)
    check("QUIET catches a client that does not wait", not srv.ok(), srv.mismatches)


def t_connections():
    script = "CONNECT none\n"
    srv, _ = serve(script, lambda p: None)
    check("CONNECT none without a connection passes", srv.ok(), srv.mismatches)

    def connect(port):
        s = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.2)
        s.close()
    srv, _ = serve(script, connect)
    check("CONNECT none with a connection fails", not srv.ok(), srv.mismatches)

    srv, _ = serve("CONNECT optional\nS: 220 x\nQUIT?\n", lambda p: None)
    check("CONNECT optional without a connection passes", srv.ok(), srv.mismatches)

    def twice(port):
        smtplib_send(port)
        try:
            socket.create_connection(("127.0.0.1", port)).close()
        except OSError:
            pass
        time.sleep(0.2)
    srv, _ = serve(PLAIN_SESSION, twice)
    check("a second connection is a mismatch", not srv.ok() and
          any("second connection" in m for m in srv.mismatches), srv.mismatches)

    def refused(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return "connected"
        except ConnectionRefusedError:
            return "refused"
    srv, res = serve("LISTEN mode=closed\n", refused)
    check("LISTEN mode=closed refuses connections", srv.ok() and res == "refused", res)

    def times_out(port):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1.5)
            s.close()
            return "connected"
        except socket.timeout:
            return "timeout"
        except OSError as e:
            return "error %s" % e
    srv, res = serve("LISTEN mode=full\n", times_out)
    check("LISTEN mode=full makes connect() time out", srv.ok() and res == "timeout", res)

    def v6(port):
        with SMTP("::1", port, timeout=5) as s:
            s.sendmail("a@example.org", ["b@example.net"], MSG)
    srv, res = serve("LISTEN host=::1\n" + PLAIN_SESSION, v6)
    check("LISTEN host=::1", srv.ok(), (srv.mismatches, res))


def t_close_paths():
    def expect_reset(port):
        s = socket.create_connection(("127.0.0.1", port))
        s.recv(100)
        s.sendall(b"EHLO x\r\n")
        time.sleep(0.3)
        try:
            d = s.recv(100)
            return "eof" if d == b"" else d
        except ConnectionResetError:
            return "reset"
    srv, res = serve("S: 220 x\nC: EHLO x\nRST\n", expect_reset)
    check("RST resets the connection", srv.ok() and res == "reset", res)
    srv, res = serve("S: 220 x\nC: EHLO x\nCLOSE\n", expect_reset)
    check("CLOSE sends FIN", srv.ok() and res == "eof", res)
    srv, res = serve("S: 220 x\nC: EHLO x\nS: 421 bye\nCLOSE\n", expect_reset)
    check("reply then CLOSE", srv.ok() and res == b"421 bye\r\n", res)

    def inject(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"STARTTLS\r\n")
        time.sleep(0.2)
        data = s.recv(1000)
        s.close()
        return data
    srv, res = serve("S: 220 x\nC: STARTTLS\nRAW: 220 go\\r\\n250-injected\\r\\n\nEOF\n", inject)
    check("RAW sends bytes in one packet", srv.ok() and res == b"220 go\r\n250-injected\r\n", res)

    def hang(port):
        s = socket.create_connection(("127.0.0.1", port))
        s.recv(100)
        time.sleep(1.5)
        s.close()
    srv, res = serve("TIMEOUT 0.5\nS: 220 x\nC: EHLO x\n", hang)
    check("TIMEOUT: a silent client is a mismatch", not srv.ok() and
          any("timed out" in m for m in srv.mismatches), srv.mismatches)

    def slow(port):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(0.5)
        s.recv(100)
        s.sendall(b"EHLO x\r\n")
        try:
            s.recv(100)
            r = "reply"
        except socket.timeout:
            r = "timeout"
        s.close()
        return r
    t0 = time.monotonic()
    srv, res = serve("S: 220 x\nC: EHLO x\nSLEEP 1.5\nEND\n", slow)
    check("SLEEP delays the server (client timeout)", srv.ok() and res == "timeout" and
          time.monotonic() - t0 >= 1.4, (res, srv.mismatches))


def t_absorb():
    srv, res = serve("S: 220 x\nC~ EHLO .*\nS: 250 x\nABSORB nomessage\n", smtplib_send)
    check("ABSORB nomessage catches a delivered message", not srv.ok(), srv.mismatches)
    srv, res = serve("S: 220 x\nC~ EHLO .*\nS: 250 x\nABSORB\n", smtplib_send)
    check("ABSORB accepts a message", srv.ok() and srv.bodies.get("absorbed1") == MSG,
          srv.mismatches)

    def partial(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline()
        s.sendall(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        f.readline(), f.readline(), f.readline()
        s.sendall(b"Subject: x\r\n\r\nbroken")
        s.close()
    srv, res = serve("S: 220 x\nC~ EHLO .*\nS: 250 x\nABSORB nomessage\n", partial)
    check("ABSORB nomessage passes an abandoned message", srv.ok(), srv.mismatches)

    def bare(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline()
        s.sendall(b"MAIL FROM:<a@b>\r\n")
        f.readline()
        s.sendall(b"RCPT TO:<c@d>\r\n")
        f.readline()
        s.sendall(b"DATA\r\n")
        f.readline()
        s.sendall(b"a\rb\r\nc\nd\r\n.\r\n")
        f.readline()
        s.close()
    script = ("S: 220 x\nC~ EHLO .*\nS: 250 x\nC~ MAIL.*\nS: 250 ok\nC~ RCPT.*\nS: 250 ok\n"
              "C: DATA\nS: 354 go\nBODY m\nS: 250 ok\nEND\n")
    srv, res = serve(script, bare)
    check("BODY flags bare CR and bare LF in message data",
          sum("bare CR" in m or "bare LF" in m for m in srv.mismatches) == 2, srv.mismatches)


def t_tls():
    ca = VARS["ca"]
    script = """
S: 220 mx.smtpc.test ESMTP
C~ EHLO .*
S: 250-mx.smtpc.test
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 go ahead
TLS cert=%s
C~ EHLO .*
S: 250-mx.smtpc.test
S: 250 AUTH PLAIN
AUTH-PLAIN user=u pass=p
S: 235 2.7.0 ok
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.net>
S: 250 ok
C: DATA
S: 354 go
BODY m
S: 250 ok
QUIT
"""

    def starttls(port, cafile=ca, name="mx.smtpc.test"):
        s = SMTP(timeout=10)
        s._host = name
        s.connect("127.0.0.1", port)
        s.ehlo("c.example")
        s.starttls(context=client_ctx(cafile))
        s.ehlo("c.example")
        s.login("u", "p")
        s.sendmail("a@example.org", ["b@example.net"], MSG)
        s.quit()
        return "sent"
    srv, res = serve(script % "valid", starttls)
    check("STARTTLS + AUTH PLAIN with smtplib", srv.ok() and res == "sent" and
          srv.tls_info and srv.tls_info["ok"], (srv.mismatches, res))

    failscript = """
S: 220 mx.smtpc.test ESMTP
C~ EHLO .*
S: 250-mx.smtpc.test
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 go ahead
TLS cert=%s expect=fail
"""
    for cert, why in (("expired", "expired"), ("wrongname", "wrong name"),
                      ("untrusted", "untrusted CA"), ("selfsigned", "self-signed"),
                      ("notyet", "not yet valid")):
        srv, res = serve(failscript % cert, starttls)
        check("TLS expect=fail with a verifying client: %s" % why,
              srv.ok() and isinstance(res, ssl.SSLCertVerificationError), (srv.mismatches, res))
    srv, res = serve(failscript % "valid", starttls)
    check("TLS expect=fail is a mismatch when the client accepts",
          not srv.ok() and any("succeeded" in m for m in srv.mismatches), srv.mismatches)

    def fallback(port):
        raw = socket.create_connection(("127.0.0.1", port))
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(b"EHLO c.example\r\n")
        f.readline(), f.readline()
        raw.sendall(b"STARTTLS\r\n")
        f.readline()
        dup = socket.socket(fileno=os.dup(raw.fileno()))
        try:
            client_ctx(ca).wrap_socket(dup, server_hostname="mx.smtpc.test")
        except ssl.SSLError:
            pass
        raw.sendall(b"EHLO c.example\r\n")
        time.sleep(0.2)
        raw.close()
    srv, res = serve(failscript % "expired", fallback)
    check("plaintext after a failed handshake is a mismatch",
          not srv.ok() and any("plaintext" in m for m in srv.mismatches), srv.mismatches)

    def implicit(port):
        s = SMTP_SSL(timeout=10, context=client_ctx(ca))
        s._host = "mx.smtpc.test"
        s.connect("127.0.0.1", port)
        s.sendmail("a@example.org", ["b@example.net"], MSG)
        s.quit()
        return "sent"
    imp = "TLS cert=valid\n" + PLAIN_SESSION
    srv, res = serve(imp, implicit)
    check("implicit TLS", srv.ok() and res == "sent", (srv.mismatches, res))

    def pipelined_starttls(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline(), f.readline()
        s.sendall(b"STARTTLS\r\nEHLO x\r\n")
        time.sleep(0.3)
        s.close()
    srv, res = serve(failscript.replace("expect=fail", "") % "valid", pipelined_starttls)
    check("data sent after STARTTLS before the 220 is a mismatch",
          not srv.ok() and any("before the TLS handshake" in m for m in srv.mismatches),
          srv.mismatches)

    for ver, maxv in (("TLSv1.2", "1.2"), ("TLSv1.3", "1.3")):
        srv, res = serve(imp.replace("TLS cert=valid", "TLS cert=valid max=" + maxv), implicit)
        check("TLS max=%s gives %s" % (maxv, ver), srv.ok() and srv.tls_info["version"] == ver,
              srv.tls_info)

    def old_client(port):
        ctx = client_ctx(ca)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                            server_hostname="mx.smtpc.test")
        return s.version()
    srv, res = serve("TLS cert=valid min=1.3 expect=fail\n", old_client)
    check("TLS min=1.3 refuses a TLS 1.2 client", srv.ok() and isinstance(res, ssl.SSLError),
          (srv.mismatches, res))

    def with_cert(port, use=True):
        ctx = client_ctx(ca)
        if use:
            ctx.load_cert_chain(VARS["cert"]["client"], VARS["key"]["client"])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                            server_hostname="mx.smtpc.test")
        s.recv(100)
        s.sendall(b"QUIT\r\n")
        s.recv(100)
        s.close()
    srv, res = serve("TLS cert=valid clientca=ca\nS: 220 x\nQUIT\n", with_cert)
    check("client certificate required and given", srv.ok() and srv.tls_info["client_cert"],
          (srv.mismatches, res))
    srv, res = serve("TLS cert=valid clientca=ca expect=fail\n",
                     lambda p: with_cert(p, use=False))
    check("client certificate required, none given: handshake fails",
          srv.ok() and srv.tls_info and not srv.tls_info["ok"], (srv.mismatches, res))


def t_dane_data():
    """The TLSA data certs.py computes, checked by OpenSSL's own DANE code (s_client)."""
    t = VARS["tlsa"]
    cases = [
        ("valid", "3 1 1 " + t["valid.spki256"], True),
        ("valid", "3 0 1 " + t["valid.cert256"], True),
        ("valid", "3 1 2 " + t["valid.spki512"], True),
        ("valid", "3 1 0 " + t["valid.spki"], True),
        ("selfsigned", "3 1 1 " + t["selfsigned.spki256"], True),
        ("expired", "3 1 1 " + t["expired.spki256"], True),
        ("untrusted", "2 0 1 " + t["ca2.cert256"], True),
        ("untrusted", "2 1 1 " + t["ca2.spki256"], True),
        ("valid", "2 0 1 " + t["ca.cert256"], True),
        ("ta-wrongname", "2 0 1 " + t["ca2.cert256"], False),
        ("valid", "3 1 1 " + t["nomatch256"], False),
        ("valid", "3 1 1 " + t["other.spki256"], False),
        ("untrusted", "2 0 1 " + t["ca.cert256"], False),
    ]
    for cert, rr, want in cases:
        def sclient(port):
            p = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief",
                 "-dane_tlsa_domain", "mx.smtpc.test", "-dane_tlsa_rrdata", rr,
                 "-verify_return_error", "-servername", "mx.smtpc.test"],
                input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            return p.stdout.decode(errors="replace")
        srv, out = serve("TLS cert=%s expect=any\nEND\n" % cert, sclient)
        ok = "Verification: OK" in out or "Verified peername" in out
        check("TLSA %s against %s: %s" % (rr[:5], cert, "matches" if want else "no match"),
              ok == want, out[-600:])


def t_auth():
    def login(mech, user="u", pw="p", advertise=None):
        def c(port):
            s = SMTP("127.0.0.1", port, timeout=10)
            s.ehlo("c.example")
            s.user, s.password = user, pw
            authobj = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login,
                       "CRAM-MD5": s.auth_cram_md5}[mech]
            code, resp = s.auth(mech, authobj, initial_response_ok=mech != "CRAM-MD5")
            s.quit()
            return code
        return c
    base = "S: 220 x\nC~ EHLO .*\nS: 250-x\nS: 250 AUTH PLAIN LOGIN CRAM-MD5\n%s\nS: 235 2.7.0 ok\nQUIT\n"
    for mech, line in (("PLAIN", "AUTH-PLAIN user=u pass=p"),
                       ("LOGIN", "AUTH-LOGIN user=u pass=p"),
                       ("CRAM-MD5", "AUTH-CRAM user=u pass=p")):
        srv, res = serve(base % line, login(mech))
        check("AUTH %s with smtplib" % mech, srv.ok() and res == 235, (srv.mismatches, res))
        srv, res = serve(base % line, login(mech, pw="wrong"))
        check("AUTH %s with a wrong password is a mismatch" % mech, not srv.ok(),
              srv.mismatches)

    def login_no_ir(port):
        s = SMTP("127.0.0.1", port, timeout=10)
        s.ehlo("c.example")
        s.user, s.password = "u", "p"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        s.quit()
        return code
    srv, res = serve(base % "AUTH-LOGIN user=u pass=p", login_no_ir)
    check("AUTH LOGIN without initial response accepted", srv.ok() and res == 235,
          srv.mismatches)

    def plain_no_ir(port):
        s = SMTP("127.0.0.1", port, timeout=10)
        s.ehlo("c.example")
        s.user, s.password = "u", "p"
        try:
            s.auth("PLAIN", s.auth_plain, initial_response_ok=False)
        except smtplib.SMTPException:
            pass
        s.close()
    srv, res = serve(base % "AUTH-PLAIN user=u pass=p", plain_no_ir)
    check("AUTH PLAIN without initial response is a mismatch", not srv.ok(), srv.mismatches)

    # RFC 2195 example, through the same HMAC code the fake server uses.
    chal = b"<1896.697170952@postoffice.reston.mci.net>"
    dig = hmac.new(b"tanstaaftanstaaf", chal, "md5").hexdigest()
    check("CRAM-MD5 RFC 2195 vector", dig == "b913a602c7eda7a495b4e6e7334d3890", dig)

    def bad_challenge(port):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline(), f.readline()
        s.sendall(b"AUTH CRAM-MD5\r\n")
        line = f.readline()
        s.sendall(b"*\r\n")
        f.readline()
        s.close()
        return base64.b64decode(line[4:].strip())
    srv, res = serve("S: 220 x\nC~ EHLO .*\nS: 250-x\nS: 250 AUTH CRAM-MD5\n"
                     "AUTH-CRAM user=u pass=p challenge=nonsense\nC: *\nS: 501 5.7.0 aborted\n"
                     "QUIT?\n", bad_challenge)
    check("AUTH-CRAM challenge= sends the given challenge, abort expected",
          srv.ok() and res == b"nonsense", (srv.mismatches, res))

    def oauth(port, mech, payload):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        f.readline(), f.readline()
        s.sendall(b"AUTH " + mech + b" " + base64.b64encode(payload) + b"\r\n")
        r = f.readline()
        s.sendall(b"QUIT\r\n")
        f.readline()
        s.close()
        return r
    xs = "S: 220 x\nC~ EHLO .*\nS: 250-x\nS: 250 AUTH XOAUTH2 OAUTHBEARER\n%s\nS: 235 ok\nQUIT\n"
    srv, res = serve(xs % "AUTH-XOAUTH2 user=u@example.org token=tok",
                     lambda p: oauth(p, b"XOAUTH2", b"user=u@example.org\x01auth=Bearer tok\x01\x01"))
    check("AUTH-XOAUTH2", srv.ok(), srv.mismatches)
    srv, res = serve(xs % "AUTH-OAUTHBEARER user=u@example.org token=tok",
                     lambda p: oauth(p, b"OAUTHBEARER",
                                     b"n,a=u@example.org,\x01host=mx\x01port=587\x01auth=Bearer tok\x01\x01"))
    check("AUTH-OAUTHBEARER", srv.ok(), srv.mismatches)
    srv, res = serve(xs % "AUTH-OAUTHBEARER user=u@example.org token=tok",
                     lambda p: oauth(p, b"OAUTHBEARER", b"n,,\x01auth=Bearer nope\x01\x01"))
    check("AUTH-OAUTHBEARER wrong token is a mismatch", not srv.ok(), srv.mismatches)


# -- SCRAM: a small client, checked against the RFC vectors, then against the fake server


def scram_client_final(hname, user, pw, cnonce, sfirst, gs2=b"n,,", cbdata=b""):
    attrs = dict(kv.split("=", 1) for kv in sfirst.split(","))
    salt, it, nonce = base64.b64decode(attrs["s"]), int(attrs["i"]), attrs["r"]
    bare = "n=%s,r=%s" % (user, cnonce)
    without = "c=%s,r=%s" % (base64.b64encode(gs2 + cbdata).decode(), nonce)
    authmsg = (bare + "," + sfirst + "," + without).encode()
    ckey, stored, skey = fakesmtp.scram_keys(hname, pw.encode(), salt, it)
    csig = hmac.new(stored, authmsg, hname).digest()
    proof = bytes(a ^ b for a, b in zip(ckey, csig))
    ssig = hmac.new(skey, authmsg, hname).digest()
    return without + ",p=" + base64.b64encode(proof).decode(), base64.b64encode(ssig).decode()


def t_scram_vectors():
    cf, sig = scram_client_final(
        "sha1", "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    check("SCRAM-SHA-1 RFC 5802 vector (proof)",
          cf.endswith("p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=") and sig == "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
          (cf, sig))
    cf, sig = scram_client_final(
        "sha256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    check("SCRAM-SHA-256 RFC 7677 vector (proof)",
          cf.endswith("p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") and
          sig == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", (cf, sig))


def scram_session(mech, pw="pencil", tamper=None, plus_cb=None, tls=False):
    hname = "sha256" if "256" in mech else "sha1"

    def c(port):
        raw = socket.create_connection(("127.0.0.1", port))
        s = raw
        f = s.makefile("rb")
        f.readline()
        if tls:
            s.sendall(b"STARTTLS\r\n")
            f.readline()
            ctx = client_ctx(VARS["ca"])
            if tls == "1.2":
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            s = ctx.wrap_socket(raw, server_hostname="mx.smtpc.test")
            f = s.makefile("rb")
        gs2 = b"n,,"
        cbdata = b""
        if plus_cb:
            gs2 = ("p=%s,," % plus_cb).encode()
            cbdata = (s.get_channel_binding("tls-unique") if plus_cb == "tls-unique"
                      else fakesmtp._tls_exporter(s))
        cnonce = base64.b64encode(os.urandom(12)).decode()
        first = gs2 + ("n=user,r=%s" % cnonce).encode()
        s.sendall(b"AUTH " + mech.encode() + b" " + base64.b64encode(first) + b"\r\n")
        line = f.readline()
        if not line.startswith(b"334 "):
            return line
        sfirst = base64.b64decode(line[4:].strip()).decode()
        if not sfirst.startswith("r=" + cnonce):
            s.sendall(b"*\r\n")
            f.readline()
            s.close()
            return "aborted: nonce"
        cf, sig = scram_client_final(hname, "user", pw, cnonce, sfirst, gs2, cbdata)
        if tamper:
            cf = tamper(cf)
        s.sendall(base64.b64encode(cf.encode()) + b"\r\n")
        line = f.readline()
        if not line.startswith(b"334 "):
            return line
        v = base64.b64decode(line[4:].strip()).decode()
        if v != "v=" + sig:
            s.sendall(b"*\r\n")
            f.readline()
            s.close()
            return "aborted: signature"
        s.sendall(b"\r\n")
        r = f.readline()
        s.sendall(b"QUIT\r\n")
        f.readline()
        s.close()
        return r
    return c


def t_scram():
    for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        script = ("S: 220 x\nAUTH-SCRAM mech=%s user=user pass=pencil\nS: 235 2.7.0 ok\nQUIT\n"
                  % mech)
        srv, res = serve(script, scram_session(mech))
        check("AUTH-SCRAM %s with a conforming client" % mech,
              srv.ok() and res == b"235 2.7.0 ok\r\n", (srv.mismatches, res))
        srv, res = serve(script, scram_session(mech, pw="wrong"))
        check("AUTH-SCRAM %s wrong password is a mismatch" % mech,
              not srv.ok() and any("does not verify" in m for m in srv.mismatches),
              srv.mismatches)
        srv, res = serve(script, scram_session(mech, tamper=lambda cf: cf.replace("r=", "r=x", 1)))
        check("AUTH-SCRAM %s nonce mismatch is a mismatch" % mech, not srv.ok(), srv.mismatches)
    srv, res = serve("S: 220 x\nAUTH-SCRAM mech=SCRAM-SHA-256 user=user pass=pencil bad=sig\n"
                     "C: *\nS: 501 5.7.0 aborted\nQUIT?\n", scram_session("SCRAM-SHA-256"))
    check("AUTH-SCRAM bad=sig: a verifying client aborts", srv.ok() and
          res == "aborted: signature", (srv.mismatches, res))
    srv, res = serve("S: 220 x\nAUTH-SCRAM mech=SCRAM-SHA-256 user=user pass=pencil bad=nonce\n"
                     "C: *\nS: 501 5.7.0 aborted\nQUIT?\n", scram_session("SCRAM-SHA-256"))
    check("AUTH-SCRAM bad=nonce: a checking client aborts", srv.ok() and
          res == "aborted: nonce", (srv.mismatches, res))
    for ver, cb in (("1.2", "tls-unique"), ("1.3", "tls-exporter")):
        script = ("S: 220 x\nC: STARTTLS\nS: 220 go\nTLS cert=valid max=%s\n"
                  "AUTH-SCRAM mech=SCRAM-SHA-256-PLUS user=user pass=pencil cb=%s\n"
                  "S: 235 2.7.0 ok\nQUIT\n" % (ver, cb))
        srv, res = serve(script, scram_session("SCRAM-SHA-256-PLUS", plus_cb=cb, tls=ver))
        check("AUTH-SCRAM -PLUS with %s over TLS %s" % (cb, ver),
              srv.ok() and res == b"235 2.7.0 ok\r\n", (srv.mismatches, res))
        srv, res = serve(script, scram_session(
            "SCRAM-SHA-256-PLUS", plus_cb=cb, tls=ver,
            tamper=lambda cf: "c=" + base64.b64encode(("p=%s,," % cb).encode() + b"x" * 32)
            .decode() + cf[cf.index(",r="):]))
        check("AUTH-SCRAM -PLUS wrong binding data is a mismatch (%s)" % cb, not srv.ok(),
              srv.mismatches)


# -- the test-file format and the runner


def t_format():
    import run as runner
    data = {"ok": False, "error": {"kind": "tls", "code": 0, "more_lines": []},
            "messages": [{"recipients": [{"code": 250}, {"code": 452, "accepted": False}]}],
            "tlsrpt": {"host": {"details": [{"result_type": "a"}, {"result_type": "b"}]}}}
    cases = [
        ('ok == false', True), ('ok == 0', False), ('error.code == 0', True),
        ('error.code == false', False), ('error.kind == "tls"', True),
        ('error.kind in ["io", "tls"]', True), ('error.kind ~ "^t"', True),
        ('error.kind !~ "^t"', False), ('messages[0].recipients[1].code == 452', True),
        ('messages[0].recipients[-1].accepted == false', True),
        ('len(messages[0].recipients) == 2', True), ('error.more_lines == []', True),
        ('tlsrpt.host.details[*].result_type has "b"', True),
        ('tlsrpt.host.details[*].result_type has "c"', False),
        ('error.nothing missing', True), ('error.kind exists', True),
        ('error.nothing == null', False), ('messages[3].ok == true', False),
        ('error.code >= 0', True), ('error.code < 0', False),
    ]
    for text, want in cases:
        a = runner.Assertion(text, 1)
        got, _ = a.check(data, {})
        check("assertion %s -> %s" % (text, want), got == want, got)
    for bad in ('ok = true', 'ok == tru', 'x ~ 5'):
        try:
            runner.Assertion(bad, 1)
            check("bad assertion %r rejected" % bad, False)
        except fakesmtp.ScriptError:
            check("bad assertion %r rejected" % bad, True)
    b = fakesmtp.content_bytes(["crlf"], ["a", ".b", ""])
    check("content crlf", b == b"a\r\n.b\r\n\r\n", b)
    b = fakesmtp.content_bytes(["esc", "noeol"], ["a\\rb", "c\\x00"])
    check("content esc noeol", b == b"a\rb\nc\x00", b)
    b = fakesmtp.content_bytes(["crlf", "repeat=3"], ["ab"])
    check("content repeat", b == b"ab\r\n" * 3, b)
    check("subst b64", fakesmtp.subst("AUTH PLAIN ${b64:\\0u\\0p}", {}) == "AUTH PLAIN AHUAcA==")
    try:
        fakesmtp.subst("${nope}", {})
        check("unknown placeholder rejected", False)
    except fakesmtp.ScriptError:
        check("unknown placeholder rejected", True)
    for bad in ("FOO bar", "TLS nocert", "C~ ([", "AUTH-SCRAM mech=SCRAM-MD5 user=a pass=b",
                "REPEAT 3\nS: x"):
        try:
            l, c, st = fakesmtp.parse_script(bad.split("\n"))
            fakesmtp.resolve(st, VARS)
            check("bad script %r rejected" % bad, False)
        except fakesmtp.ScriptError:
            check("bad script %r rejected" % bad, True)
    l, c, st = fakesmtp.parse_script(["REPEAT 3", "C: RCPT TO:<r${i}@x>", "S: 250 ok",
                                      "ENDREPEAT"])
    check("REPEAT expands", [s.arg for s in st] == ["RCPT TO:<r1@x>", "250 ok",
                                                    "RCPT TO:<r2@x>", "250 ok",
                                                    "RCPT TO:<r3@x>", "250 ok"])


def _read_all(port, send=b"", limit=None, timeout=5):
    """Raw client: sends `send` after connecting, reads until EOF (or limit bytes or a
    timeout); returns (bytes, how it ended)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    try:
        if send:
            c.sendall(send)
        while limit is None or len(data) < limit:
            chunk = c.recv(65536)
            if not chunk:
                return data, "eof"
            data += chunk
        return data, "limit"
    except socket.timeout:
        return data, "timeout"
    except ConnectionResetError:
        return data, "reset"
    finally:
        c.close()


def t_hostile_steps():
    """The steps tests/hostile uses: FLOOD, DRIBBLE, LISTEN cut*, TLS stall=N."""
    srv, res = serve("RAW: 220 \nFLOOD 100000 ab\nRAW: \\r\\n\nEND",
                     lambda p: _read_all(p, limit=200004))
    check("FLOOD sends TEXT N times", srv.ok() and res[0] == b"220 " + b"ab" * 100000 + b"\r\n",
          (srv.mismatches, len(res[0])))
    srv, res = serve("FLOOD 100000000 x\nEND", lambda p: _read_all(p, limit=10))
    check("FLOOD stops quietly when the client closes", srv.ok(), srv.mismatches)
    t0 = time.monotonic()
    srv, res = serve("DRIBBLE 0.1 abcd\nEND", lambda p: _read_all(p, limit=4))
    check("DRIBBLE sends one byte at a time", srv.ok() and res[0] == b"abcd" and
          time.monotonic() - t0 >= 0.3, (srv.mismatches, res))
    script = "LISTEN cutsend=%d\nS: 220 mx.smtpc.test ESMTP\nC: EHLO x\nS: 250 ok\nQUIT"
    for n in (0, 5, 27, 28):
        srv, res = serve(script % n, lambda p: _read_all(p, send=b"EHLO x\r\n"))
        want = (b"220 mx.smtpc.test ESMTP\r\n250 ok\r\n")[:n]
        check("cutsend=%d: exactly %d bytes, then FIN" % (n, n),
              srv.ok() and res == (want, "eof"), (srv.mismatches, res))
    srv, res = serve(script.replace("cutsend", "cutrecv") % 3,
                     lambda p: _read_all(p, send=b"EHLO x\r\n"))
    check("cutrecv=3: the server dies before answering what it read",
          srv.ok() and res == (b"220 mx.smtpc.test ESMTP\r\n", "eof"), (srv.mismatches, res))
    srv, res = serve(script.replace("cutsend=%d", "cutsend=%d cutmode=stall") % 10,
                     lambda p: _read_all(p, timeout=1))
    check("cutmode=stall: goes silent, keeps the connection",
          srv.ok() and res == (b"220 mx.smt", "timeout"), (srv.mismatches, res))
    srv, res = serve(script.replace("cutsend=%d", "cutsend=%d cutmode=rst") % 4,
                     lambda p: _read_all(p, send=b"EHLO x\r\n"))
    check("cutmode=rst resets", srv.ok() and res[1] in ("reset", "eof") and
          res[0] in (b"", b"220 "), (srv.mismatches, res))

    def hello(port):
        ctx = client_ctx(verify=False)
        raw = socket.create_connection(("127.0.0.1", port), timeout=1)
        try:
            ctx.wrap_socket(raw, server_hostname="mx.smtpc.test")
            return "handshake done"
        except socket.timeout:
            return "timeout"
        finally:
            raw.close()
    srv, res = serve("TLS cert=valid stall=50", hello)
    check("TLS stall=50: the handshake never completes", srv.ok() and res == "timeout" and
          "stalled after 50" in srv.tr.render(), (srv.mismatches, res))
    srv, res = serve("TLS cert=valid stall=100000", hello)
    check("TLS stall=N larger than the handshake: it completes", srv.ok() and
          res == "handshake done", (srv.mismatches, res))


def t_runner_check():
    p = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "transcripts",
                                                     "run.py"), "--check", "/bin/false"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode()
    n = len(re.findall(r"^ok ", out, re.M))
    bad = re.findall(r"^not ok .*(?:\n#.*)*", out, re.M)
    check("every transcript test parses (%d files)" % n, p.returncode == 0 and n > 0,
          "\n".join(bad)[:3000])


def main():
    global PKI, VARS
    PKI = tempfile.mkdtemp(prefix="smtpc-selftest-pki-")
    try:
        VARS = fakesmtp.cert_vars(certsmod.generate(PKI))
        import faulthandler
        faulthandler.dump_traceback_later(600, exit=True)
        for t in (t_format, t_plain, t_line_rules, t_pipelining, t_connections, t_close_paths,
                  t_absorb, t_tls, t_dane_data, t_auth, t_scram_vectors, t_scram,
                  t_hostile_steps, t_runner_check):
            try:
                t()
            except Exception as e:
                import traceback
                check("%s ran" % t.__name__, False, traceback.format_exc())
    finally:
        shutil.rmtree(PKI, ignore_errors=True)
    print("1..%d" % len(RESULTS))
    failed = 0
    for i, (name, ok, detail) in enumerate(RESULTS, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            for line in str(detail).split("\n")[:40]:
                print("# " + line)
    print("# %d checks, %d failed" % (len(RESULTS), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
