#!/usr/bin/env python3
"""Real-server tests: `smtpc send` against Postfix (+ Dovecot SASL) and smtp-sink.

Usage: run.py PATH/TO/smtpc [SUBSTRING...]
Starts the servers of servers.py in a fresh temporary directory, runs every
case (or those whose name contains one of the SUBSTRINGs), stops the servers
and prints TAP ("ok N - name").  Must run as root (Postfix's master needs it);
otherwise every case is skipped.  Set SMTPC_REAL_KEEP=1 to keep the server
directory (logs, captured mail) after the run; it is kept anyway on failure.
Python 3 standard library only.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import servers  # noqa: E402

SMTPC = None
S = None  # the running servers.Servers
CASES = []


class Fail(Exception):
    pass


def case(name):
    def deco(fn):
        CASES.append((name, fn))
        return fn
    return deco


# ---------------------------------------------------------------- helpers

class Result:
    def __init__(self, args, rc, out, err, elapsed):
        self.args, self.rc, self.out, self.err, self.elapsed = args, rc, out, err, elapsed
        self.j = None
        text = out.decode(errors="replace").strip()
        try:
            self.j = json.loads(text)
        except ValueError:
            pass

    def get(self, *path):
        v = self.j
        for p in path:
            try:
                v = v[p]
            except (KeyError, IndexError, TypeError):
                return None
        return v

    def describe(self):
        lines = ["command: smtpc " + " ".join(repr(a) if " " in a or not a else a
                                              for a in self.args),
                 "exit status: %s (%.2f s)" % (self.rc, self.elapsed),
                 "stdout: " + self.out.decode(errors="replace").strip()[:3000]]
        err = self.err.decode(errors="replace").strip().splitlines()
        lines += ["stderr: " + ln for ln in err[-60:]]
        return "\n".join(lines)


def smtpc(*args, stdin=b"", env=None, json_out=True, timeout=90):
    argv = ["send"] + (["--json"] if json_out else []) + list(args)
    e = dict(os.environ)
    e.pop("SMTPC_PASSWORD", None)
    if env:
        e.update(env)
    t = time.time()
    try:
        p = subprocess.run([SMTPC] + argv, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=e, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as ex:
        rc, out, err = "timeout", ex.stdout or b"", ex.stderr or b""
    r = Result(argv, rc, out, err, time.time() - t)
    CURRENT_RESULTS.append(r)
    if b"runtime error:" in err or b"Sanitizer" in err:
        raise Fail("sanitizer report on stderr")
    if json_out and r.j is None:
        raise Fail("stdout is not exactly one JSON object")
    return r


CURRENT_RESULTS = []


def check(cond, what):
    if not cond:
        raise Fail(what)


def eq(actual, expected, what):
    if actual != expected:
        raise Fail("%s: got %r, expected %r" % (what, actual, expected))


def rc_is(r, expected):
    eq(r.rc, expected, "exit status")


def write_tmp(name, data):
    path = os.path.join(S.state["dir"], "msgs", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


SEQ = [0]


def marker():
    SEQ[0] += 1
    return "smtpc-real-%d-%s" % (SEQ[0], os.urandom(4).hex())


TRICKY_BODY = (b".\r\n..\r\n.leading dot\r\n... three dots\r\n \r\n\ttab line \t\r\n"
               b"trailing spaces   \r\nUTF-8: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\r\n"
               b"From the start of a line\r\n" + b"x" * 900 + b"\r\n"
               b"a line\r\n.\r\nafter a lone dot (smuggling attempt)\r\n\r\n\r\nend\r\n")


def message(mark, body=b"Hello from smtpc.\r\n", to=b"rcpt@example.test"):
    return (b"From: Tester <tester@smtpc.test>\r\n"
            b"To: " + to + b"\r\n"
            b"Subject: smtpc real-server test " + mark.encode() + b"\r\n"
            b"Message-ID: <" + mark.encode() + b"@smtpc.test>\r\n"
            b"Date: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n" + body)


def strip_received(data):
    """Remove the Received: header Postfix prepends (with its continuation lines)."""
    check(data.startswith(b"Received: "), "delivered message does not start with "
          "Postfix's Received: header: %r" % data[:80])
    pos = data.index(b"\r\n") + 2
    while data[pos:pos + 1] in (b" ", b"\t"):
        pos = data.index(b"\r\n", pos) + 2
    return data[pos:]


def delivered(mark, count=1, timeout=30):
    """Captured (envelope, message-without-Received) pairs carrying the marker."""
    needle = mark.encode()
    deadline = time.time() + timeout
    while True:
        got = [(env, data) for env, data in S.captured() if needle in data]
        if len(got) >= count or time.time() > deadline:
            return [(env, strip_received(data)) for env, data in got]
        time.sleep(0.1)


def same_bytes(actual, expected, what="delivered message"):
    if actual == expected:
        return
    i = next((k for k in range(min(len(actual), len(expected)))
              if actual[k] != expected[k]), min(len(actual), len(expected)))
    raise Fail("%s differs at byte %d (lengths %d vs %d): got %r, expected %r"
               % (what, i, len(actual), len(expected), actual[max(0, i - 20):i + 40],
                  expected[max(0, i - 20):i + 40]))


def not_delivered(mark, wait=1.5):
    time.sleep(wait)
    got = [d for _, d in S.captured() if mark.encode() in d]
    eq(len(got), 0, "messages delivered although they must not be")


def rcpts(env):
    return sorted(r.split(">")[0].split("<", 1)[1] for r in env["rcpt"])


def log_wait(offset, pattern, timeout=10):
    deadline = time.time() + timeout
    while True:
        text = S.log_since(offset)
        if pattern in text or time.time() > deadline:
            return text
        time.sleep(0.1)


def sasl_method_logged(offset, mech):
    text = log_wait(offset, "sasl_method=" + mech + ",")
    check("sasl_method=" + mech + "," in text,
          "Postfix did not log sasl_method=%s; log:\n%s" % (mech, text[-2000:]))


def session_disconnect(offset, service):
    """The 'disconnect from' line of the last session on a Postfix service."""
    tag = "postfix/%s/smtpd[" % service
    deadline = time.time() + 10
    while True:
        lines = [ln for ln in S.log_since(offset).splitlines()
                 if tag in ln and "disconnect from" in ln]
        if lines or time.time() > deadline:
            return lines[-1] if lines else ""
        time.sleep(0.1)


# ---------------------------------------------------------------- option sets

def st(key):
    return S.state[key]


def submission(*extra, port=None, tls="starttls", user=None, pwfile=None):
    port = port or servers.SUBMISSION_PORT
    return ["--server", "127.0.0.1:%d" % port, "--tls", tls,
            "--tls-name", st("tls_name"), "--ca-file", st("ca_file"),
            "--user", user or st("user"), "--password-file", pwfile or st("password_file"),
            "--timeout", "30"] + list(extra)


def smtps(*extra):
    return submission(*extra, port=servers.SMTPS_PORT, tls="immediate")


def sink(name, *extra):
    return ["--server", "127.0.0.1:%d" % st("ports")["sinks"][name], "--tls", "none",
            "--timeout", "20"] + list(extra)


def sink_files(name):
    d = st("sink_dirs")[name]
    return set(os.listdir(d))


def sink_new_dumps(name, before, count, timeout=10):
    d = st("sink_dirs")[name]
    deadline = time.time() + timeout
    while True:
        new = sorted(sink_files(name) - before, key=lambda f: os.path.getmtime(
            os.path.join(d, f)))
        if len(new) >= count or time.time() > deadline:
            out = []
            for f in new:
                with open(os.path.join(d, f), "rb") as fh:
                    out.append(fh.read())
            return out
        time.sleep(0.1)


# ---------------------------------------------------------------- SCRAM (sanity)

def b64(b):
    return base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()


def python_scram(conn, user, password, mech="SCRAM-SHA-256", h="sha256"):
    """RFC 5802 client, only to prove the bench offers working SCRAM."""
    nonce = b64(os.urandom(18))
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)
    code, resp = conn.docmd("AUTH", mech + " " + b64("n,," + bare))
    eq(code, 334, "reply to AUTH " + mech)
    first = base64.b64decode(resp).decode()
    attrs = dict(kv.split("=", 1) for kv in first.split(","))
    check(attrs["r"].startswith(nonce), "server nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", h).digest()
    final = "c=biws,r=" + attrs["r"]
    authmsg = ",".join([bare, first, final]).encode()
    sig = hmac.new(hashlib.new(h, ckey).digest(), authmsg, h).digest()
    proof = bytes(a ^ b for a, b in zip(ckey, sig))
    code, resp = conn.docmd(b64(final + ",p=" + b64(proof)))
    eq(code, 334, "reply to the SCRAM client-final message")
    skey = hmac.new(salted, b"Server Key", h).digest()
    eq(base64.b64decode(resp).decode(), "v=" + b64(hmac.new(skey, authmsg, h).digest()),
       "server signature")
    code, resp = conn.docmd("")
    eq(code, 235, "final AUTH reply")


# ================================================================ cases

@case("bench: Postfix+Dovecot accept SCRAM-SHA-256 after verified STARTTLS (Python client)")
def t_bench():
    ctx = ssl.create_default_context(cafile=st("ca_file"))
    c = smtplib.SMTP("127.0.0.1", servers.SUBMISSION_PORT, timeout=20)
    c._host = st("tls_name")  # name checked by starttls()
    try:
        c.ehlo("bench.smtpc.test")
        check("auth" not in c.esmtp_features, "AUTH offered before TLS")
        c.starttls(context=ctx)
        c.ehlo("bench.smtpc.test")
        mechs = c.esmtp_features.get("auth", "").split()
        for m in ("PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "CRAM-MD5"):
            check(m in mechs, "%s not offered (AUTH %s)" % (m, " ".join(mechs)))
        python_scram(c, st("user"), st("password"))
    finally:
        c.close()


@case("587 STARTTLS verified, AUTH SCRAM-SHA-256, message delivered byte for byte")
def t_submission_scram():
    mark = marker()
    msg = message(mark, TRICKY_BODY)
    off = S.log_size()
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m", write_tmp(mark, msg)))
    rc_is(r, 0)
    eq(r.get("ok"), True, "ok")
    eq(r.get("error"), None, "error")
    eq(r.get("server", "name"), "mail.smtpc.test", "server.name")
    check("SCRAM-SHA-256" in (r.get("server", "auth") or []), "server.auth lacks SCRAM-SHA-256")
    eq(r.get("tls", "pkix_verified"), True, "tls.pkix_verified")
    check(str(r.get("tls", "version")).startswith("TLSv1."), "tls.version")
    eq(r.get("messages", 0, "recipients", 0, "accepted"), True, "recipient accepted")
    eq(r.get("messages", 0, "recipients", 0, "code"), 250, "recipient code")
    sasl_method_logged(off, "SCRAM-SHA-256")
    got = delivered(mark)
    eq(len(got), 1, "messages delivered")
    env, data = got[0]
    check(env["mail"].startswith("FROM:<tester@smtpc.test>"), "envelope sender " + env["mail"])
    eq(rcpts(env), ["rcpt@example.test"], "envelope recipients")
    same_bytes(data, msg)


@case("465 implicit TLS, AUTH PLAIN, delivered byte for byte")
def t_smtps_plain():
    mark = marker()
    msg = message(mark, TRICKY_BODY)
    off = S.log_size()
    r = smtpc(*smtps("--auth", "PLAIN", "--from", "tester@smtpc.test",
                     "--to", "rcpt@example.test", "-m", write_tmp(mark, msg)))
    rc_is(r, 0)
    eq(r.get("ok"), True, "ok")
    eq(r.get("tls", "pkix_verified"), True, "tls.pkix_verified")
    sasl_method_logged(off, "PLAIN")
    got = delivered(mark)
    eq(len(got), 1, "messages delivered")
    same_bytes(got[0][1], msg)


def mech_case(mech):
    @case("465 AUTH %s succeeds" % mech)
    def t():
        mark = marker()
        off = S.log_size()
        r = smtpc(*smtps("--auth", mech, "--from", "tester@smtpc.test",
                         "--to", "rcpt@example.test", "-m", write_tmp(mark, message(mark))))
        rc_is(r, 0)
        sasl_method_logged(off, mech)
        eq(len(delivered(mark)), 1, "messages delivered")


for _m in ("LOGIN", "CRAM-MD5", "SCRAM-SHA-1"):
    mech_case(_m)


@case("--auth auto picks SCRAM-SHA-256 from Dovecot's list")
def t_auth_auto():
    mark = marker()
    off = S.log_size()
    r = smtpc(*submission("--auth", "auto", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m", write_tmp(mark, message(mark))))
    rc_is(r, 0)
    sasl_method_logged(off, "SCRAM-SHA-256")
    eq(len(delivered(mark)), 1, "messages delivered")


@case("SCRAM-SHA-256 with a user name that needs =2C/=3D escaping")
def t_scram_escaping():
    mark = marker()
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m", write_tmp(mark, message(mark)),
                          user=st("user2"), pwfile=st("password_file2")))
    rc_is(r, 0)
    eq(len(delivered(mark)), 1, "messages delivered")


@case("password from SMTPC_PASSWORD")
def t_password_env():
    mark = marker()
    args = [a for a in submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                                  "--to", "rcpt@example.test",
                                  "-m", write_tmp(mark, message(mark)))]
    i = args.index("--password-file")
    del args[i:i + 2]
    r = smtpc(*args, env={"SMTPC_PASSWORD": st("password")})
    rc_is(r, 0)
    eq(len(delivered(mark)), 1, "messages delivered")


@case("wrong password: exit 77, error kind auth, 535 5.7.8, nothing delivered")
def t_wrong_password():
    mark = marker()
    bad = write_tmp("bad-password", b"not-the-password\n")
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m", write_tmp(mark, message(mark)),
                          pwfile=bad))
    rc_is(r, 77)
    eq(r.get("ok"), False, "ok")
    eq(r.get("error", "kind"), "auth", "error.kind")
    eq(r.get("error", "command"), "auth", "error.command")
    eq(r.get("error", "code"), 535, "error.code")
    eq(r.get("error", "enhanced_code"), "5.7.8", "error.enhanced_code")
    eq(r.get("error", "permanent"), True, "error.permanent")
    not_delivered(mark)


@case("wrong password with PLAIN over implicit TLS: exit 77")
def t_wrong_password_plain():
    bad = write_tmp("bad-password", b"not-the-password\n")
    r = smtpc(*submission("--auth", "PLAIN", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m",
                          write_tmp("wp.eml", message(marker())),
                          port=servers.SMTPS_PORT, tls="immediate", pwfile=bad))
    rc_is(r, 77)
    eq(r.get("error", "kind"), "auth", "error.kind")


@case("--tls none without --insecure-auth (Postfix offers AUTH): exit 77, AUTH never sent")
def t_withheld_postfix():
    mark = marker()
    off = S.log_size()
    r = smtpc(*submission("--auth", "PLAIN", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m", write_tmp(mark, message(mark)),
                          port=st("ports")["plain"], tls="none"))
    rc_is(r, 77)
    eq(r.get("error", "kind"), "auth", "error.kind")
    line = session_disconnect(off, "plain")
    check(line, "no Postfix disconnect line for the session")
    check(" auth=" not in line, "Postfix saw AUTH: " + line)
    check("sasl_method" not in S.log_since(off), "Postfix logged a SASL login")
    not_delivered(mark, 0.5)


@case("--tls none without --insecure-auth: the password never leaves (transcript)")
def t_withheld_transcript():
    logp = st("capture_auth_log")
    before = os.path.getsize(logp) if os.path.exists(logp) else 0
    for mech in ("PLAIN", "LOGIN", "auto"):
        r = smtpc("--server", "127.0.0.1:%d" % st("ports")["capture_auth"], "--tls", "none",
                  "--auth", mech, "--user", st("user"), "--password-file", st("password_file"),
                  "--from", "tester@smtpc.test", "--to", "rcpt@example.test",
                  "--timeout", "20", stdin=message(marker()))
        rc_is(r, 77)
        eq(r.get("error", "kind"), "auth", "error.kind (--auth %s)" % mech)
    time.sleep(0.3)
    with open(logp, "rb") as f:
        f.seek(before)
        seen = f.read()
    pw = st("password").encode()
    secrets = [pw, base64.b64encode(pw), base64.b64encode(b"\0" + st("user").encode() +
                                                          b"\0" + pw)]
    check(b"AUTH" not in seen.upper(), "AUTH was sent: %r" % seen[-500:])
    for s in secrets:
        check(s not in seen, "password material was sent")


@case("--tls none --insecure-auth: PLAIN over plaintext works when asked for")
def t_insecure_auth():
    mark = marker()
    off = S.log_size()
    r = smtpc(*submission("--auth", "PLAIN", "--insecure-auth", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m", write_tmp(mark, message(mark)),
                          port=st("ports")["plain"], tls="none"))
    rc_is(r, 0)
    eq(r.get("tls"), None, "tls")
    sasl_method_logged(off, "PLAIN")
    eq(len(delivered(mark)), 1, "messages delivered")


@case("wrong --tls-name: STARTTLS fails, no AUTH, no plaintext fallback")
def t_wrong_name():
    mark = marker()
    off = S.log_size()
    args = submission("--auth", "PLAIN", "--from", "tester@smtpc.test", "--to",
                      "rcpt@example.test", "-m", write_tmp(mark, message(mark)))
    args[args.index("--tls-name") + 1] = "wrong.smtpc.test"
    r = smtpc(*args)
    check(r.rc in (69, 75), "exit status %r, expected 69 or 75" % r.rc)
    eq(r.get("error", "kind"), "tls", "error.kind")
    eq(r.get("error", "command"), "starttls", "error.command")
    line = session_disconnect(off, "submission")
    check(" auth=" not in line and " mail=" not in line, "AUTH or MAIL after failed TLS: " + line)
    not_delivered(mark, 0.5)


@case("untrusted certificate (no --ca-file): implicit TLS fails, command tls")
def t_untrusted():
    args = smtps("--auth", "PLAIN", "--from", "tester@smtpc.test", "--to", "rcpt@example.test")
    i = args.index("--ca-file")
    del args[i:i + 2]
    r = smtpc(*args, stdin=message(marker()))
    check(r.rc in (69, 75), "exit status %r, expected 69 or 75" % r.rc)
    eq(r.get("error", "kind"), "tls", "error.kind")
    eq(r.get("error", "command"), "tls", "error.command")


@case("--ignore-tls-errors with a wrong name: verified-TLS rule withholds credentials (77)")
def t_ignore_errors_withheld():
    args = submission("--auth", "PLAIN", "--ignore-tls-errors", "--from", "tester@smtpc.test",
                      "--to", "rcpt@example.test")
    args[args.index("--tls-name") + 1] = "wrong.smtpc.test"
    off = S.log_size()
    r = smtpc(*args, stdin=message(marker()))
    rc_is(r, 77)
    eq(r.get("error", "kind"), "auth", "error.kind")
    line = session_disconnect(off, "submission")
    check(" auth=" not in line, "AUTH was sent: " + line)


@case("--ignore-tls-errors --insecure-auth with a wrong name: delivered, pkix_verified false")
def t_ignore_errors_insecure():
    mark = marker()
    args = submission("--auth", "PLAIN", "--ignore-tls-errors", "--insecure-auth",
                      "--from", "tester@smtpc.test", "--to", "rcpt@example.test",
                      "-m", write_tmp(mark, message(mark)))
    args[args.index("--tls-name") + 1] = "wrong.smtpc.test"
    r = smtpc(*args)
    rc_is(r, 0)
    eq(r.get("tls", "pkix_verified"), False, "tls.pkix_verified")
    # Spec 6.2: a PKIX failure is a recipient-domain detail; the handshake succeeded.
    types = [d.get("result_type") for d in r.get("tlsrpt", "recipient_domain", "details") or []]
    eq(types, ["certificate-host-mismatch"], "tlsrpt.recipient_domain result types")
    eq(r.get("tlsrpt", "host", "success"), 1, "tlsrpt.host.success")
    eq(len(delivered(mark)), 1, "messages delivered")


@case("several recipients in one transaction")
def t_several_rcpts():
    mark = marker()
    to = ["one@example.test", "two@example.org", "three@example.net"]
    args = ["--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
            "-m", write_tmp(mark, message(mark))]
    for t in to:
        args += ["--to", t]
    r = smtpc(*submission(*args))
    rc_is(r, 0)
    eq([x.get("address") for x in r.get("messages", 0, "recipients") or []], to,
       "recipient results")
    check(all(x.get("accepted") for x in r.get("messages", 0, "recipients")), "all accepted")
    got = delivered(mark)
    check(got, "nothing delivered")
    eq(sorted(sum((rcpts(e) for e, _ in got), [])), sorted(to), "delivered to")


@case("one of three recipients refused (550 5.1.1): exit 69, others delivered")
def t_partial_reject():
    mark = marker()
    to = ["one@example.test", st("reject_rcpt"), "two@example.test"]
    args = ["--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
            "-m", write_tmp(mark, message(mark))]
    for t in to:
        args += ["--to", t]
    r = smtpc(*submission(*args))
    rc_is(r, 69)
    eq(r.get("ok"), False, "ok")
    eq(r.get("messages", 0, "ok"), False, "messages[0].ok")
    rs = r.get("messages", 0, "recipients") or []
    eq([x.get("accepted") for x in rs], [True, False, True], "accepted flags")
    eq(rs[1].get("code"), 550, "refused recipient code")
    eq(rs[1].get("enhanced_code"), "5.1.1", "refused recipient enhanced_code")
    eq(rs[1].get("permanent"), True, "refused recipient permanent")
    check("No such user" in (rs[1].get("line") or ""), "refused recipient line")
    got = delivered(mark)
    eq(sorted(sum((rcpts(e) for e, _ in got), [])), ["one@example.test", "two@example.test"],
       "delivered to")


@case("a deferred recipient (450 4.2.1) as the only failure: exit 75")
def t_partial_defer():
    mark = marker()
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", "one@example.test", "--to", st("defer_rcpt"),
                          "-m", write_tmp(mark, message(mark))))
    rc_is(r, 75)
    rs = r.get("messages", 0, "recipients") or []
    eq([x.get("accepted") for x in rs], [True, False], "accepted flags")
    eq(rs[1].get("code"), 450, "deferred code")
    eq(rs[1].get("enhanced_code"), "4.2.1", "deferred enhanced_code")
    eq(rs[1].get("permanent"), False, "deferred permanent")
    eq(len(delivered(mark)), 1, "messages delivered")


@case("single recipient refused: message error kind status, command rcptto, exit 69")
def t_single_reject():
    mark = marker()
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", st("reject_rcpt"), "-m", write_tmp(mark, message(mark))))
    rc_is(r, 69)
    eq(r.get("error"), None, "top-level error (a transaction failure)")
    eq(r.get("messages", 0, "error", "kind"), "status", "messages[0].error.kind")
    eq(r.get("messages", 0, "error", "command"), "rcptto", "messages[0].error.command")
    eq(r.get("messages", 0, "error", "code"), 550, "messages[0].error.code")
    eq(r.get("messages", 0, "error", "enhanced_code"), "5.1.1", "enhanced_code")
    not_delivered(mark, 0.5)


@case("all recipients refused (550 + 450): kind no-recipients, exit 69")
def t_no_recipients():
    mark = marker()
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", st("reject_rcpt"), "--to", st("defer_rcpt"),
                          "-m", write_tmp(mark, message(mark))))
    rc_is(r, 69)
    eq(r.get("messages", 0, "error", "kind"), "no-recipients", "messages[0].error.kind")
    not_delivered(mark, 0.5)


@case("three -m messages over one session, each delivered byte for byte, in order")
def t_several_messages():
    marks = [marker() for _ in range(3)]
    msgs = [message(m, TRICKY_BODY if i == 1 else b"Message %d.\r\n" % i)
            for i, m in enumerate(marks)]
    args = ["--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test", "--to", "rcpt@example.test"]
    for m, data in zip(marks, msgs):
        args += ["-m", write_tmp(m, data)]
    off = S.log_size()
    r = smtpc(*submission(*args))
    rc_is(r, 0)
    eq(len(r.get("messages") or []), 3, "message results")
    check(all(m.get("ok") for m in r.get("messages")), "every message ok")
    for m, data in zip(marks, msgs):
        got = delivered(m)
        eq(len(got), 1, "copies of " + m)
        same_bytes(got[0][1], data, "message " + m)
    connects = [ln for ln in S.log_since(off).splitlines()
                if "postfix/submission/smtpd[" in ln and ": connect from" in ln]
    eq(len(connects), 1, "Postfix connections")
    ids = []
    for ln in S.log_since(off).splitlines():
        if "postfix/cleanup[" in ln and "message-id=<" in ln:
            ids.append(ln.split("message-id=<")[1].split("@")[0])
    eq(ids, marks, "order in which Postfix received the messages")


@case("Unix line endings become CRLF; a missing final newline is added")
def t_lf_file():
    mark = marker()
    crlf = message(mark, TRICKY_BODY + b"last line")
    lf = crlf.replace(b"\r\n", b"\n")
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test", "-m", write_tmp(mark, lf)))
    rc_is(r, 0)
    got = delivered(mark)
    eq(len(got), 1, "messages delivered")
    same_bytes(got[0][1], crlf + b"\r\n")


@case("message on standard input")
def t_stdin():
    mark = marker()
    msg = message(mark, TRICKY_BODY)
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test"), stdin=msg)
    rc_is(r, 0)
    got = delivered(mark)
    eq(len(got), 1, "messages delivered")
    same_bytes(got[0][1], msg)


@case("null reverse-path (--from '')")
def t_null_sender():
    mark = marker()
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "", "--to", "rcpt@example.test",
                          "-m", write_tmp(mark, message(mark))))
    rc_is(r, 0)
    got = delivered(mark)
    eq(len(got), 1, "messages delivered")
    check(got[0][0]["mail"].startswith("FROM:<>"), "envelope sender " + got[0][0]["mail"])


@case("a bare CR in the message: exit 65, kind message, nothing delivered")
def t_bare_cr():
    mark = marker()
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", "rcpt@example.test",
                          "-m", write_tmp(mark, message(mark, b"bare\rCR\r\n"))))
    rc_is(r, 65)
    eq(r.get("messages", 0, "error", "kind"), "message", "messages[0].error.kind")
    eq(r.get("messages", 0, "error", "permanent"), True, "messages[0].error.permanent")
    not_delivered(mark)


@case("SMTPUTF8: a non-ASCII recipient through Postfix")
def t_smtputf8():
    mark = marker()
    to = "j\u00fcrgen@b\u00fccher.example"
    r = smtpc(*submission("--auth", "SCRAM-SHA-256", "--from", "tester@smtpc.test",
                          "--to", to, "-m",
                          write_tmp(mark, message(mark, to=to.encode()))))
    rc_is(r, 0)
    got = delivered(mark)
    eq(len(got), 1, "messages delivered")
    eq(rcpts(got[0][0]), [to], "envelope recipient")
    check("SMTPUTF8" in got[0][0]["mail"].upper(), "Postfix relayed without SMTPUTF8")


# ---------------------------------------------------------------- smtp-sink

@case("sink: two messages, two recipients each, pipelined")
def t_sink_accept():
    before = sink_files("accept")
    m1, m2 = (write_tmp(marker(), message(marker())) for _ in range(2))
    r = smtpc(*sink("accept", "--from", "a@smtpc.test", "--to", "x@example.test",
                    "--to", "y@example.test", "-m", m1, "-m", m2))
    rc_is(r, 0)
    eq(r.get("server", "name"), "sink.smtpc.test", "server.name")
    check("PIPELINING" in (r.get("server", "extensions") or []), "PIPELINING not seen")
    dumps = sink_new_dumps("accept", before, 2)
    eq(len(dumps), 2, "transactions seen by smtp-sink")
    for d in dumps:
        eq(d.count(b"X-Rcpt-Args: "), 2, "recipients per transaction")


@case("sink: 500 recipients pipelined in one transaction (no deadlock)")
def t_sink_many():
    before = sink_files("accept")
    args = ["--from", "a@smtpc.test"]
    for i in range(500):
        args += ["--to", "user%03d-with-a-rather-long-local-part@example.test" % i]
    r = smtpc(*sink("accept", *args), stdin=message(marker()))
    rc_is(r, 0)
    eq(len(r.get("messages", 0, "recipients") or []), 500, "recipient results")
    dumps = sink_new_dumps("accept", before, 1)
    eq(len(dumps), 1, "transactions")
    eq(dumps[0].count(b"X-Rcpt-Args: "), 500, "recipients seen by smtp-sink")


@case("sink -p (no PIPELINING): delivered one command at a time")
def t_sink_nopipe():
    r = smtpc(*sink("no-pipe", "--from", "a@smtpc.test", "--to", "x@example.test",
                    "--to", "y@example.test"), stdin=message(marker()))
    rc_is(r, 0)
    check("PIPELINING" not in (r.get("server", "extensions") or []), "PIPELINING listed")


@case("sink -r RCPT: 450 4.3.0 per recipient, no-recipients, exit 75")
def t_sink_rcpt_soft():
    r = smtpc(*sink("rcpt-soft", "--from", "a@smtpc.test", "--to", "x@example.test",
                    "--to", "y@example.test"), stdin=message(marker()))
    rc_is(r, 75)
    rs = r.get("messages", 0, "recipients") or []
    eq(len(rs), 2, "recipient results")
    for x in rs:
        eq((x.get("accepted"), x.get("permanent"), x.get("code"), x.get("enhanced_code")),
           (False, False, 450, "4.3.0"), "recipient " + str(x.get("address")))
    eq(r.get("messages", 0, "error", "kind"), "no-recipients", "messages[0].error.kind")
    eq(r.get("messages", 0, "error", "permanent"), False, "messages[0].error.permanent")


@case("sink -f RCPT: 500 5.3.0 per recipient, exit 69")
def t_sink_rcpt_hard():
    r = smtpc(*sink("rcpt-hard", "--from", "a@smtpc.test", "--to", "x@example.test",
                    "--to", "y@example.test"), stdin=message(marker()))
    rc_is(r, 69)
    for x in r.get("messages", 0, "recipients") or [{}]:
        eq((x.get("accepted"), x.get("permanent"), x.get("code"), x.get("enhanced_code")),
           (False, True, 500, "5.3.0"), "recipient " + str(x.get("address")))
    eq(r.get("messages", 0, "error", "kind"), "no-recipients", "messages[0].error.kind")


@case("sink -f RCPT, one recipient: kind status, command rcptto, exit 69")
def t_sink_rcpt_hard_single():
    r = smtpc(*sink("rcpt-hard", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 69)
    e = r.get("messages", 0, "error") or {}
    eq((e.get("kind"), e.get("command"), e.get("code"), e.get("enhanced_code"),
        e.get("permanent")), ("status", "rcptto", 500, "5.3.0", True), "messages[0].error")


@case("sink -f MAIL: kind status, command mailfrom, 500, exit 69")
def t_sink_mail_hard():
    r = smtpc(*sink("mail-hard", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 69)
    e = r.get("messages", 0, "error") or {}
    eq((e.get("kind"), e.get("command"), e.get("code"), e.get("permanent")),
       ("status", "mailfrom", 500, True), "messages[0].error")


@case("sink -Q MAIL: 421 then disconnect is judged by the reply, exit 75")
def t_sink_mail_421():
    r = smtpc(*sink("mail-421", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 75)
    e = r.get("messages", 0, "error") or r.get("error") or {}
    eq((e.get("kind"), e.get("command"), e.get("code"), e.get("permanent")),
       ("status", "mailfrom", 421, False), "error")


@case("sink -f DATA: command data, 500, exit 69")
def t_sink_data_hard():
    r = smtpc(*sink("data-hard", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 69)
    e = r.get("messages", 0, "error") or {}
    eq((e.get("kind"), e.get("command"), e.get("code")), ("status", "data", 500),
       "messages[0].error")
    eq(r.get("messages", 0, "recipients", 0, "accepted"), True, "recipient accepted")


@case("sink -f '.': rejected after the final dot, exit 69; the next -m is still tried")
def t_sink_dot_hard():
    m1, m2 = (write_tmp(marker(), message(marker())) for _ in range(2))
    r = smtpc(*sink("dot-hard", "--from", "a@smtpc.test", "--to", "x@example.test",
                    "-m", m1, "-m", m2))
    rc_is(r, 69)
    ms = r.get("messages") or []
    eq(len(ms), 2, "message results")
    for m in ms:
        eq(m.get("ok"), False, "message ok")
        eq([x.get("accepted") for x in m.get("recipients") or []], [True],
           "recipient accepted (RCPT got 250)")
        e = m.get("error") or {}
        eq((e.get("kind"), e.get("command"), e.get("code"), e.get("permanent")),
           ("status", "data", 500, True), "message error")


@case("sink -r '.': 450 after the final dot, exit 75")
def t_sink_dot_soft():
    r = smtpc(*sink("dot-soft", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 75)
    e = r.get("messages", 0, "error") or {}
    eq((e.get("kind"), e.get("code"), e.get("enhanced_code"), e.get("permanent")),
       ("status", 450, "4.3.0", False), "messages[0].error")


@case("sink -q RCPT: connection dropped, kind io, exit 75")
def t_sink_rcpt_drop():
    r = smtpc(*sink("rcpt-drop", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 75)
    e = r.get("messages", 0, "error") or r.get("error") or {}
    eq((e.get("kind"), e.get("permanent")), ("io", False), "error")
    eq(r.get("ok"), False, "ok")


@case("sink -q '.': dropped before the final reply, kind io, exit 75")
def t_sink_dot_drop():
    r = smtpc(*sink("dot-drop", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 75)
    eq(r.get("messages", 0, "ok"), False, "messages[0].ok")
    e = r.get("messages", 0, "error") or r.get("error") or {}
    eq(e.get("kind"), "io", "error.kind")


@case("sink -q QUIT: a failed QUIT after success changes nothing, exit 0")
def t_sink_quit_drop():
    r = smtpc(*sink("quit-drop", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 0)
    eq(r.get("ok"), True, "ok")


@case("sink -Q CONNECT: 421 greeting, top-level error, command greeting, exit 75")
def t_sink_greet_421():
    r = smtpc(*sink("greet-421", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 75)
    e = r.get("error") or {}
    eq((e.get("kind"), e.get("command"), e.get("code"), e.get("permanent")),
       ("status", "greeting", 421, False), "error")


@case("sink -f CONNECT: 500 greeting, command greeting, exit 69")
def t_sink_greet_hard():
    r = smtpc(*sink("greet-hard", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 69)
    e = r.get("error") or {}
    eq((e.get("command"), e.get("code"), e.get("permanent")), ("greeting", 500, True), "error")


@case("sink -f EHLO: HELO fallback, delivered, no extensions")
def t_sink_ehlo_hard():
    before = sink_files("ehlo-hard")
    r = smtpc(*sink("ehlo-hard", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 0)
    eq(r.get("server", "extensions"), [], "server.extensions")
    eq(len(sink_new_dumps("ehlo-hard", before, 1)), 1, "transactions")


@case("sink -e (no ESMTP): HELO fallback, delivered")
def t_sink_no_esmtp():
    r = smtpc(*sink("no-esmtp", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 0)


@case("sink -8: an 8-bit message to a server without 8BITMIME fails permanently, unsent")
def t_sink_no_8bit():
    before = sink_files("no-8bit")
    r = smtpc(*sink("no-8bit", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker(), TRICKY_BODY))
    rc_is(r, 69)
    e = r.get("messages", 0, "error") or {}
    eq((e.get("kind"), e.get("permanent")), ("8bitmime", True), "messages[0].error")
    time.sleep(0.5)
    eq(sink_files("no-8bit") - before, set(), "transactions reaching DATA")


@case("sink -8: --require-8bitmime fails permanently even for ASCII")
def t_sink_require_8bit():
    r = smtpc(*sink("no-8bit", "--require-8bitmime", "--from", "a@smtpc.test",
                    "--to", "x@example.test"), stdin=message(marker()))
    rc_is(r, 69)
    eq(r.get("messages", 0, "error", "kind"), "8bitmime", "messages[0].error.kind")


@case("sink -8: a 7-bit message is delivered")
def t_sink_7bit():
    r = smtpc(*sink("no-8bit", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker()))
    rc_is(r, 0)


@case("sink -w 4, --timeout 2, --no-pipelining: kind timeout, command data, exit 75")
def t_sink_timeout():
    args = sink("slow-data", "--no-pipelining", "--from", "a@smtpc.test", "--to",
                "x@example.test")
    args[args.index("--timeout") + 1] = "2"
    r = smtpc(*args, stdin=message(marker()))
    rc_is(r, 75)
    e = r.get("messages", 0, "error") or r.get("error") or {}
    eq((e.get("kind"), e.get("command"), e.get("permanent")), ("timeout", "data", False),
       "error")
    check(r.elapsed < 15, "took %.1f s" % r.elapsed)


@case("sink -w 4, --timeout 2, pipelined: timeout on the first reply awaited (MAIL)")
def t_sink_timeout_pipelined():
    # smtp-sink holds back the MAIL and RCPT replies until it answers DATA.
    args = sink("slow-data", "--from", "a@smtpc.test", "--to", "x@example.test")
    args[args.index("--timeout") + 1] = "2"
    r = smtpc(*args, stdin=message(marker()))
    rc_is(r, 75)
    e = r.get("messages", 0, "error") or r.get("error") or {}
    eq((e.get("kind"), e.get("command"), e.get("permanent")), ("timeout", "mailfrom", False),
       "error")


@case("sink -A 0: 550 right after 354 then close: the message fails, command data")
def t_sink_abort_data():
    r = smtpc(*sink("abort-data", "--from", "a@smtpc.test", "--to", "x@example.test"),
              stdin=message(marker(), TRICKY_BODY * 50))
    check(r.rc in (69, 75), "exit status %r, expected 69 or 75" % r.rc)
    eq(r.get("messages", 0, "ok"), False, "messages[0].ok")
    e = r.get("messages", 0, "error") or {}
    # Read as the reply to the body (status 550) or as a broken session; either
    # way the step is DATA ("" is only for usage and configuration errors).
    eq(e.get("command"), "data", "messages[0].error.command")
    if e.get("kind") == "status":
        eq((e.get("code"), r.rc), (550, 69), "550 judged by the reply")


@case("sink without STARTTLS, --tls starttls: no plaintext fallback, nothing sent")
def t_sink_starttls_required():
    before = sink_files("accept")
    args = sink("accept", "--from", "a@smtpc.test", "--to", "x@example.test",
                "--ca-file", st("ca_file"))
    args[args.index("--tls") + 1] = "starttls"
    r = smtpc(*args, stdin=message(marker()))
    check(r.rc in (69, 75), "exit status %r, expected 69 or 75" % r.rc)
    eq(r.get("error", "command"), "starttls", "error.command")
    time.sleep(0.5)
    eq(sink_files("accept") - before, set(), "transactions")


@case("sink without STARTTLS, --tls opportunistic: delivered in plaintext")
def t_sink_opportunistic():
    args = sink("accept", "--from", "a@smtpc.test", "--to", "x@example.test")
    args[args.index("--tls") + 1] = "opportunistic"
    r = smtpc(*args, stdin=message(marker()))
    rc_is(r, 0)
    eq(r.get("tls"), None, "tls")


@case("sink, --tls immediate against plaintext: handshake fails, command tls")
def t_sink_immediate():
    args = sink("accept", "--from", "a@smtpc.test", "--to", "x@example.test")
    args[args.index("--tls") + 1] = "immediate"
    r = smtpc(*args, stdin=message(marker()))
    check(r.rc in (69, 75), "exit status %r, expected 69 or 75" % r.rc)
    eq(r.get("error", "command"), "tls", "error.command")


# ================================================================ runner

def skip_all(reason):
    print("1..0 # SKIP " + reason)
    return 0


def main():
    global SMTPC, S
    if len(sys.argv) < 2:
        print("usage: run.py PATH/TO/smtpc [SUBSTRING...]", file=sys.stderr)
        return 2
    SMTPC = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    cases = [c for c in CASES if not only or any(o in c[0] for o in only)]
    if os.geteuid() != 0:
        return skip_all("real-server tests need root (Postfix master)")
    for tool in ("postfix", "dovecot", "smtp-sink", "openssl"):
        if not shutil.which(tool):
            return skip_all(tool + " not installed (run scripts/deps)")
    if not os.access(SMTPC, os.X_OK):
        print("Bail out! %s is not executable" % SMTPC)
        return 1
    print("1..%d" % len(cases), flush=True)
    # The servers run in their own sessions: on SIGTERM (meson's timeout) or
    # SIGINT/SIGHUP unwind through the finally below so they are stopped.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    S = servers.Servers()
    try:
        # Ports 587/465 are fixed: wait for another run of this suite to finish.
        S.start(wait_busy=300)
    except Exception as e:  # noqa: BLE001 - report any start failure as a bail-out
        print("Bail out! servers did not start: %s" % str(e).replace("\n", " ")[:500])
        return 1
    failed = 0
    try:
        for n, (name, fn) in enumerate(cases, 1):
            del CURRENT_RESULTS[:]
            t = time.time()
            try:
                fn()
                print("ok %d - %s" % (n, name), flush=True)
            except Exception as e:  # noqa: BLE001 - any exception fails the case
                failed += 1
                print("not ok %d - %s" % (n, name))
                msg = "%s: %s" % (type(e).__name__, e) if not isinstance(e, Fail) else str(e)
                for ln in msg.splitlines():
                    print("# " + ln)
                for r in CURRENT_RESULTS:
                    for ln in r.describe().splitlines():
                        print("#   " + ln)
                sys.stdout.flush()
            if time.time() - t > 20:
                print("# slow case: %.1f s" % (time.time() - t))
    finally:
        keep = failed or os.environ.get("SMTPC_REAL_KEEP")
        S.stop(keep=bool(keep))
        if keep:
            print("# server files (logs, captured mail) kept in " + S.state["dir"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
