"""Hostile-server cases against the scripted fake server: stalls, huge inputs,
STARTTLS injection, early closes, error replies at every stage, the TLS matrix."""

from harness import (GREET, Fail, add, baseline_rss, case, check, client_bytes, delivered,
                     ehlo, eq, expect, get, one_json, rcpt, rss_small, send_args,
                     server_clean, session, starttls, within)

T = 1            # --timeout for the stall cases
BOUND = T + 3.0  # wall-clock bound for them (one stage timeout plus slack)
MB = 1024 * 1024

ESC = "ENHANCEDSTATUSCODES"
NP = ehlo("8BITMIME", ESC)                       # no PIPELINING
PIPE = ehlo("PIPELINING", "8BITMIME", ESC)
TLSEHLO = ehlo("STARTTLS", "PIPELINING", "8BITMIME", ESC)
MAIL = "C: MAIL FROM:<sender@example.org> BODY=7BIT"
R1, R2 = "r1@example.net", "r2@example.net"
RCPT1, RCPT2 = "C: RCPT TO:<%s>" % R1, "C: RCPT TO:<%s>" % R2
TWO = (R1, R2)


def lines(*parts):
    return "\n".join(p for p in parts if p)


# ================================================================ stalls

def stall_case(name, script, where, command, tls="none", rcpts=("rcpt@example.net",),
               extra=(), files=None, bound=BOUND, rc=75, env=None):
    def fn():
        r = session(script, send_args(tls=tls, rcpts=rcpts, timeout=T, extra=extra),
                    files=files, name=name, timeout=60, env=env)
        expect(r, rc, where, "timeout", command=command, permanent=False, code=0)
        within(r, bound)
        return "timed out after %.2f s (--timeout %d)" % (r.elapsed, T)
    add(name, fn)


SLEEP = "SLEEP 8\nEND"

stall_case("stall-greeting-silent", SLEEP, "top", "greeting")
stall_case("stall-greeting-mid-line", "RAW: 220 mx.smtpc.te\n" + SLEEP, "top", "greeting")
stall_case("stall-greeting-mid-multiline",
           "S: 220-mx.smtpc.test ESMTP\nS: 220-still going\n" + SLEEP, "top", "greeting")
stall_case("stall-ehlo-silent", lines(GREET, "C: EHLO client.smtpc.test", SLEEP),
           "top", "ehlo")
stall_case("stall-ehlo-mid-reply",
           lines(GREET, "C: EHLO client.smtpc.test", "S: 250-mx.smtpc.test",
                 "S: 250-PIPELINING", SLEEP), "top", "ehlo")
stall_case("stall-ehlo-mid-line",
           lines(GREET, "C: EHLO client.smtpc.test",
                 "RAW: 250-mx.smtpc.test\\r\\n250-PIPEL", SLEEP), "top", "ehlo")
stall_case("stall-starttls-reply",
           lines(GREET, TLSEHLO, "C: STARTTLS", "RAW: 220 2.0.0 Rea", SLEEP), "top",
           "starttls", tls="starttls")
stall_case("stall-ehlo-after-tls",
           lines(GREET, TLSEHLO, starttls(), "C: EHLO client.smtpc.test",
                 "S: 250-mx.smtpc.test", SLEEP), "top", "ehlo", tls="starttls")
stall_case("stall-mail-mid-line",
           lines(GREET, NP, MAIL, "RAW: 250 2.1", SLEEP), 0, "mailfrom")
stall_case("stall-rcpt-second",
           lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", RCPT1, "S: 250 2.1.5 Ok", RCPT2,
                 "RAW: 25", SLEEP), 0, "rcptto", rcpts=TWO)
stall_case("stall-pipelined-after-mail-reply",
           lines(GREET, PIPE, MAIL, RCPT1, RCPT2, "C: DATA", "S: 250 2.1.0 Ok", SLEEP), 0,
           "rcptto", rcpts=TWO)
stall_case("stall-pipelined-before-354",
           lines(GREET, PIPE, MAIL, RCPT1, RCPT2, "C: DATA", "S: 250 2.1.0 Ok",
                 "S: 250 2.1.5 Ok", "S: 250 2.1.5 Ok", SLEEP), 0, "data", rcpts=TWO)
stall_case("stall-data-reply",
           lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", RCPT1, "S: 250 2.1.5 Ok", "C: DATA",
                 "RAW: 354 go on", SLEEP), 0, "data", rcpts=(R1,))
# After the 354 the server stops reading: 8 MB of body cannot be written in time.
stall_case("stall-after-354-not-reading",
           lines("LISTEN rcvbuf=4096", GREET, NP, MAIL, "S: 250 2.1.0 Ok", RCPT1,
                 "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go ahead", SLEEP), 0, "data",
           rcpts=(R1,), files={"msg": b"Subject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * 100000})
stall_case("stall-mid-body-reading-slowly",
           lines("LISTEN rcvbuf=4096", GREET, NP, MAIL, "S: 250 2.1.0 Ok", RCPT1,
                 "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go ahead", "SLEEP 0.3",
                 "C~ .*", "SLEEP 8", "END"), 0, "data",
           rcpts=(R1,), files={"msg": b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 100000})
stall_case("stall-before-final-reply",
           lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", RCPT1, "S: 250 2.1.5 Ok", "C: DATA",
                 "S: 354 go ahead", "BODY b", SLEEP), 0, "data", rcpts=(R1,))
# A final reply cut short is no reply: the message is not delivered.
stall_case("stall-mid-final-reply",
           lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", RCPT1, "S: 250 2.1.5 Ok", "C: DATA",
                 "S: 354 go ahead", "BODY b", "RAW: 250 2.0.0 Ok: queued as 1", SLEEP), 0,
           "data", rcpts=(R1,))
stall_case("stall-mid-final-multiline",
           lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", RCPT1, "S: 250 2.1.5 Ok", "C: DATA",
                 "S: 354 go ahead", "BODY b", "S: 250-2.0.0 Ok", SLEEP), 0, "data",
           rcpts=(R1,))
stall_case("stall-auth-reply",
           lines(GREET, ehlo("AUTH PLAIN", ESC), "C~ AUTH PLAIN .*", SLEEP), "top", "auth",
           extra=["--auth", "PLAIN", "--user", "u", "--insecure-auth"], rc=75,
           env={"SMTPC_PASSWORD": "secret-pw"})
stall_case("stall-rset-reply",
           lines(GREET, NP, MAIL, "S: 550 5.7.1 no", "C: RSET", "RAW: 250", SLEEP), 1,
           "rset", extra=["-m", "${file:msg}"], rc=69)


@case("stall-quit-reply: delivered, the missing 221 costs at most one timeout")
def stall_quit():
    r = session(lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", "C: RCPT TO:<rcpt@example.net>",
                      "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go", "BODY b",
                      "S: 250 2.0.0 queued", "C: QUIT", SLEEP),
                send_args(timeout=T), name="stall-quit")
    delivered(r)
    within(r, BOUND)


# Mid-TLS-handshake: the server sends only the first N bytes of its handshake records.
def tls_stall(mode, n, maxver=None):
    name = "stall-tls-%s-handshake-after-%s-bytes%s" % (
        mode, n if n < 10 ** 6 else "all", "-tls12" if maxver else "")
    opts = "stall=%d" % n + (" max=%s" % maxver if maxver else "")
    complete = n >= 10 ** 6
    if mode == "immediate":
        script = "TLS cert=valid " + opts
        where_cmd = "greeting" if complete else "tls"
    else:
        script = lines(GREET, TLSEHLO, "C: STARTTLS", "S: 220 2.0.0 go ahead",
                       "TLS cert=valid " + opts)
        where_cmd = "ehlo" if complete else "starttls"

    def fn():
        r = session(script, send_args(tls=mode, timeout=T), name=name)
        err = expect(r, 75, "top", "timeout", command=where_cmd, permanent=False, code=0)
        within(r, BOUND)
        j = r.j
        if not complete:
            eq(get(j, "tls"), None, "tls")
            for res in ("recipient_domain", "host"):
                eq(get(j, "tlsrpt", res, "failure"), 1, "tlsrpt.%s.failure" % res)
                eq(get(j, "tlsrpt", res, "success"), 0, "tlsrpt.%s.success" % res)
            d = get(j, "tlsrpt", "recipient_domain", "details") or []
            check([(x.get("result_type"), x.get("failure_reason_code")) for x in d] ==
                  [("validation-failure", "io-timeout-during-handshake")],
                  "tlsrpt.recipient_domain.details %r\n%s" % (d, r.describe()))
        return "%s after %.2f s" % (err.get("message"), r.elapsed)
    add(name, fn)


for _mode in ("immediate", "starttls"):
    for _n in (0, 1, 5, 60, 300, 10 ** 7):
        tls_stall(_mode, _n)
    for _n in (40, 700):
        tls_stall(_mode, _n, maxver="1.2")


# A slow loris: one byte every 0.25 s. A timeout that restarts on every read would wait
# for the whole text (tens of seconds); a stage deadline fires after --timeout.
def dribble(name, script, where, command, tls="none", rcpts=("rcpt@example.net",),
            timeout=2):
    def fn():
        r = session(script, send_args(tls=tls, rcpts=rcpts, timeout=timeout), name=name,
                    timeout=90)
        expect(r, 75, where, "timeout", command=command, permanent=False)
        within(r, timeout + 3.0)
        return "timed out after %.2f s (--timeout %d)" % (r.elapsed, timeout)
    add(name, fn)


LORIS_GREETING = "220 mx.smtpc.test ESMTP " + "slowly " * 30 + "\\r\\n"
LORIS_EHLO = "".join("250-X-SLOW-%d\\r\\n" % i for i in range(40)) + "250 8BITMIME\\r\\n"
dribble("stall-loris-greeting", "DRIBBLE 0.25 " + LORIS_GREETING + "\nEND", "top",
        "greeting")
dribble("stall-loris-ehlo-lines",
        lines(GREET, "C: EHLO client.smtpc.test", "DRIBBLE 0.25 " + LORIS_EHLO, "END"),
        "top", "ehlo")
dribble("stall-loris-final-reply",
        lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", "C: RCPT TO:<rcpt@example.net>",
              "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go", "BODY b",
              "DRIBBLE 0.25 250 2.0.0 Ok: queued as " + "1" * 80 + "\\r\\n", "END"),
        0, "data")
dribble("stall-loris-tls-ehlo",
        lines(GREET, TLSEHLO, starttls(), "C: EHLO client.smtpc.test",
              "DRIBBLE 0.25 " + LORIS_EHLO, "END"), "top", "ehlo", tls="starttls")


# ================================================================ huge inputs

def huge(name, script, where, command, extra=(), tls="none", rc=75, kinds=("protocol",),
         bound=30.0, env=None):
    def fn():
        r = session(script, send_args(tls=tls, extra=extra), name=name, timeout=120,
                    env=env)
        expect(r, rc, where, kinds if len(kinds) > 1 else kinds[0], command=command,
               permanent=False)
        base = baseline_rss("starttls" if tls != "none" else "none")
        rss_small(r, base=base)
        within(r, bound)
        return "peak RSS %d KiB (an ordinary session: %d KiB), %.2f s" % (r.maxrss_kb, base,
                                                                          r.elapsed)
    add(name, fn)


BIGLINE = "FLOOD %d x" % (10 * MB)
huge("huge-greeting-line-10mb", lines("RAW: 220 ", BIGLINE, "RAW: \\r\\n", "END"), "top",
     "greeting")
huge("huge-greeting-endless-no-newline-100mb", lines("RAW: 220 ", "FLOOD %d y" % (100 * MB),
                                                     "END"), "top", "greeting")
huge("huge-ehlo-line-10mb",
     lines(GREET, "C: EHLO client.smtpc.test", "RAW: 250-", BIGLINE, "RAW: \\r\\n250 OK\\r\\n",
           "END"), "top", "ehlo")
huge("huge-ehlo-100000-lines",
     lines(GREET, "C: EHLO client.smtpc.test", "FLOOD 100000 250-X-LINE\\r\\n",
           "RAW: 250 8BITMIME\\r\\n", "END"), "top", "ehlo")
huge("huge-ehlo-10000-keywords",
     lines(GREET, "C: EHLO client.smtpc.test", "S: 250-mx.smtpc.test",
           "REPEAT 10000", "S: 250-X-KEYWORD-${i} PARAM-${i}", "ENDREPEAT",
           "S: 250 8BITMIME", "END"), "top", "ehlo")
huge("huge-mail-reply-100000-lines",
     lines(GREET, NP, MAIL, "FLOOD 100000 250-2.1.0 more\\r\\n", "RAW: 250 2.1.0 Ok\\r\\n",
           "END"), 0, "mailfrom")
huge("huge-final-reply-line-10mb",
     lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", "C: RCPT TO:<rcpt@example.net>",
           "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go", "BODY b", "RAW: 250 ", BIGLINE,
           "RAW: \\r\\n", "END"), 0, "data")
huge("huge-final-reply-100000-lines",
     lines(GREET, NP, MAIL, "S: 250 2.1.0 Ok", "C: RCPT TO:<rcpt@example.net>",
           "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go", "BODY b",
           "FLOOD 100000 250-2.0.0 queued\\r\\n", "RAW: 250 2.0.0 queued\\r\\n", "END"),
     0, "data")
huge("huge-tls-ehlo-100000-lines",
     lines(GREET, TLSEHLO, starttls(), "C: EHLO client.smtpc.test",
           "FLOOD 100000 250-X-LINE\\r\\n", "RAW: 250 8BITMIME\\r\\n", "END"), "top", "ehlo",
     tls="starttls")
AUTH_ARGS = ["--auth", "LOGIN", "--user", "u", "--password-file", "${file:pw}",
             "--insecure-auth"]


def huge_sasl(name, mech, script_tail, extra=()):
    def fn():
        r = session(lines(GREET, ehlo("AUTH %s" % mech, ESC), script_tail),
                    send_args(extra=["--auth", mech, "--user", "u", "--password-file",
                                     "${file:pw}", "--insecure-auth"] + list(extra)),
                    files={"pw": b"secret-pw\n"}, name=name, timeout=120)
        err = expect(r, 75, "top", "protocol", command="auth", permanent=False)
        rss_small(r)
        within(r, 30)
        check(b"secret-pw" not in r.out + r.err, "password in the output")
        return "peak RSS %d KiB, %.2f s: %s" % (r.maxrss_kb, r.elapsed,
                                                 err.get("message")[:100])
    add(name, fn)


huge_sasl("huge-sasl-login-challenge-10mb", "LOGIN",
          lines("C~ AUTH LOGIN.*", "RAW: 334 ", "FLOOD %d QUFB" % (10 * MB // 4),
                "RAW: \\r\\n", "END"))
huge_sasl("huge-sasl-scram-server-first-10mb", "SCRAM-SHA-256",
          lines("C~ AUTH SCRAM-SHA-256 .*", "RAW: 334 ", "FLOOD %d QUFB" % (10 * MB // 4),
                "RAW: \\r\\n", "END"))
huge_sasl("huge-sasl-challenge-100000-lines", "LOGIN",
          lines("C~ AUTH LOGIN.*", "FLOOD 100000 334-VXNlcm5hbWU6\\r\\n",
                "RAW: 334 VXNlcm5hbWU6\\r\\n", "END"))


@case("huge-ehlo-500-keywords: many keywords within the limits are fine; delivered")
def huge_ehlo_ok():
    r = session(lines(GREET, "C: EHLO client.smtpc.test", "S: 250-mx.smtpc.test",
                      "REPEAT 500", "S: 250-X-KEYWORD-${i} " + "P" * 100, "ENDREPEAT",
                      "S: 250 ENHANCEDSTATUSCODES", MAIL.replace(" BODY=7BIT", ""),
                      "S: 250 2.1.0 Ok", "C: RCPT TO:<rcpt@example.net>",
                      "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go", "BODY b",
                      "S: 250 2.0.0 queued", "QUIT"),
                send_args(), name="huge-ehlo-500")
    delivered(r)
    server_clean(r)
    rss_small(r)
    eq(len(get(r.j, "server", "extensions") or []), 501, "number of extensions")
    return "peak RSS %d KiB" % r.maxrss_kb


@case("huge-auth-mechanism-list: 300 mechanisms on one AUTH line (under the line limit), "
      "no AUTH requested; delivered")
def huge_auth_list():
    mechs = " ".join("M%d" % i for i in range(300))
    r = session(lines(GREET, ehlo("AUTH " + mechs, ESC), MAIL.replace(" BODY=7BIT", ""),
                      "S: 250 2.1.0 Ok", "C: RCPT TO:<rcpt@example.net>", "S: 250 2.1.5 Ok",
                      "C: DATA", "S: 354 go", "BODY b", "S: 250 2.0.0 queued", "QUIT"),
                send_args(), name="huge-auth-list")
    delivered(r)
    server_clean(r)
    return "peak RSS %d KiB" % r.maxrss_kb


# ================================================================ STARTTLS injection

def inject(name, payload, mode="starttls", multiline_220=False):
    reply = "220-2.0.0 Ready\\r\\n220 2.0.0 go\\r\\n" if multiline_220 else \
        "220 2.0.0 Ready to start TLS\\r\\n"

    def fn():
        r = session(lines(GREET, TLSEHLO, "C: STARTTLS", "RAW: " + reply + payload, "END"),
                    send_args(tls=mode), name=name)
        expect(r, 75, "top", "protocol", command="starttls", permanent=False)
        eq(r.j.get("tls"), None, "tls")
        after = client_bytes(r.srv).split(b"STARTTLS\r\n", 1)[1]
        check(not after.startswith(b"\x16"), "the client started a TLS handshake (ClientHello"
              " after the injected bytes)\n" + r.describe())
        for cmd in (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"AUTH", b"DATA"):
            check(cmd not in after, "the client sent %s after STARTTLS\n%s" % (cmd, r.describe()))
        return "client sent after the 220: %r" % after[:40]
    add(name, fn)


inject("inject-starttls-reply-lines", "250-mx.smtpc.test injected\\r\\n250 AUTH PLAIN\\r\\n")
inject("inject-starttls-partial-line", "250 inj")
inject("inject-starttls-one-byte", "X")
inject("inject-starttls-crlf", "\\r\\n")
inject("inject-starttls-tls-record-bytes", "\\x16\\x03\\x01\\x00\\x05hello")
inject("inject-starttls-after-multiline-220", "250 injected\\r\\n", multiline_220=True)
inject("inject-opportunistic-reply-lines",
       "250-mx.smtpc.test injected\\r\\n250 AUTH PLAIN\\r\\n", mode="opportunistic")
inject("inject-opportunistic-one-byte", "X", mode="opportunistic")


# ================================================================ early closes

def closing(name, body, where, command, rcpt_codes, how="CLOSE", pipelined=False,
            files=None, listen=None, ext=None):
    """The server closes (FIN) or resets (RST) after `body`. rcpt_codes: the code each of
    the two recipients must show (0: no reply, so unknown), or None."""
    if ext is None:
        ext = PIPE if pipelined else NP

    def fn():
        r = session(lines(listen, GREET, ext, body, how), send_args(rcpts=TWO),
                    files=files, name=name)
        expect(r, 75, where, "io", command=command, permanent=False, code=0)
        server_clean(r)
        if rcpt_codes is not None:
            for i, c in enumerate(rcpt_codes):
                rcpt(r, i, c == 250, c, permanent=False)
        return "unknown recipients: %s" % [x["address"] for x in
                                           get(r.j, "messages", 0, "recipients") or []
                                           if x.get("code") == 0]
    add(name, fn)


OK_MAIL, OK_RCPT = "S: 250 2.1.0 Ok", "S: 250 2.1.5 Ok"
NP_TO_354 = lines(MAIL, OK_MAIL, RCPT1, OK_RCPT, RCPT2, OK_RCPT, "C: DATA", "S: 354 go")
PIPED = lines(MAIL, RCPT1, RCPT2, "C: DATA")
BIG = {"msg": b"Subject: big\r\n\r\n" + (b"z" * 78 + b"\r\n") * 50000}
for how in ("CLOSE", "RST"):
    h = how.lower()
    closing("close-%s-before-ehlo-reply" % h, "", "top", "ehlo", None, how=how,
            ext="C: EHLO client.smtpc.test")
    closing("close-%s-after-mail" % h, MAIL, 0, "mailfrom", [0, 0], how=how)
    closing("close-%s-after-rcpt1" % h, lines(MAIL, OK_MAIL, RCPT1), 0, "rcptto", [0, 0],
            how=how)
    closing("close-%s-after-rcpt2" % h, lines(MAIL, OK_MAIL, RCPT1, OK_RCPT, RCPT2), 0,
            "rcptto", [250, 0], how=how)
    closing("close-%s-after-data" % h,
            lines(MAIL, OK_MAIL, RCPT1, OK_RCPT, RCPT2, OK_RCPT, "C: DATA"), 0, "data",
            [250, 250], how=how)
    closing("close-%s-after-354" % h, NP_TO_354, 0, "data", [250, 250], how=how)
    closing("close-%s-mid-body" % h, lines(NP_TO_354, "C~ Subject: .*"), 0, "data",
            [250, 250], how=how, files=BIG, listen="LISTEN rcvbuf=8192")
    closing("close-%s-after-dot" % h, lines(NP_TO_354, "BODY b"), 0, "data", [250, 250],
            how=how)
    # A final reply without its CRLF is no reply.
    closing("close-%s-after-dot-partial-250" % h,
            lines(NP_TO_354, "BODY b", "RAW: 250 2.0.0 Ok: queued"), 0, "data", [250, 250],
            how=how)
    closing("close-%s-after-dot-partial-multiline-250" % h,
            lines(NP_TO_354, "BODY b", "S: 250-2.0.0 Ok: queued"), 0, "data", [250, 250],
            how=how)
    # Pipelined: MAIL, both RCPTs and DATA in one write; the server stops replying.
    closing("close-%s-pipelined-no-reply" % h, PIPED, 0, "mailfrom", [0, 0], how=how,
            pipelined=True)
    closing("close-%s-pipelined-after-mail-reply" % h, lines(PIPED, OK_MAIL), 0, "rcptto",
            [0, 0], how=how, pipelined=True)
    closing("close-%s-pipelined-after-rcpt1-reply" % h, lines(PIPED, OK_MAIL, OK_RCPT), 0,
            "rcptto", [250, 0], how=how, pipelined=True)
    closing("close-%s-pipelined-after-rcpt2-reply" % h,
            lines(PIPED, OK_MAIL, OK_RCPT, OK_RCPT), 0, "data", [250, 250], how=how,
            pipelined=True)
    closing("close-%s-pipelined-after-354" % h,
            lines(PIPED, OK_MAIL, OK_RCPT, OK_RCPT, "S: 354 go"), 0, "data", [250, 250],
            how=how, pipelined=True)
    closing("close-%s-pipelined-after-dot" % h,
            lines(PIPED, OK_MAIL, OK_RCPT, OK_RCPT, "S: 354 go", "BODY b"), 0, "data",
            [250, 250], how=how, pipelined=True)


# ================================================================ replies at every stage

# Every stage of a session with STARTTLS, AUTH, two recipients and three messages (the
# second refused at MAIL so that the third needs RSET); the server answers `code` at one
# stage, and closes after a 421 (RFC 5321 3.8). After a refused transaction it goes on
# permissively (ABSORB): the later messages must still be delivered.
def stage_script(stage, code, pipelined):
    text = {"4": "4.3.0 try again later", "5": "5.7.1 refused"}[str(code)[0]]
    if code == 421:
        text = "4.3.2 Service shutting down"
    bad = "S: %d %s" % (code, text)
    after_top = "CLOSE" if code == 421 else "QUIT?"
    after_msg = "CLOSE" if code == 421 else "ABSORB"
    ext = ["STARTTLS"] + (["PIPELINING"] if pipelined else []) + ["8BITMIME", ESC]
    if stage == "greeting":
        return lines("S: %d mx.smtpc.test %s" % (code, text), after_top)
    if stage == "ehlo":
        return lines(GREET, "C: EHLO client.smtpc.test", bad, after_top)
    s = [GREET, ehlo(*ext), "C: STARTTLS"]
    if stage == "starttls":
        return lines(*s, bad, after_top)
    s += ["S: 220 2.0.0 go", "TLS cert=valid", "C: EHLO client.smtpc.test"]
    if stage == "ehlo-tls":
        return lines(*s, bad, after_top)
    s += ["S: 250-mx.smtpc.test", "S: 250-AUTH PLAIN"] + \
         ["S: 250-" + e for e in ext[1:-1]] + ["S: 250 " + ESC]
    s.append("AUTH-PLAIN user=u pass=secret-pw")
    if stage == "auth":
        return lines(*s, bad, after_top)
    s.append("S: 235 2.7.0 ok")
    ok = {"mail": "S: 250 2.1.0 Ok", "rcpt1": "S: 250 2.1.5 Ok", "rcpt2": "S: 250 2.1.5 Ok",
          "data": "S: 354 go"}
    cmds = {"mail": MAIL, "rcpt1": RCPT1, "rcpt2": RCPT2, "data": "C: DATA"}
    seq = ["mail", "rcpt1", "rcpt2", "data"]
    if pipelined:
        s += [cmds[st] for st in seq]
        failed = False
        for st in seq:
            if st == stage:
                s.append(bad)
                failed = True
                if code == 421:
                    return lines(*s, "CLOSE")
            elif failed and stage == "mail":
                s.append("S: 503 5.5.1 Bad sequence of commands")
            else:
                s.append(ok[st])
        if stage in ("mail", "data"):
            return lines(*s, after_msg)
    else:
        for st in seq:
            s.append(cmds[st])
            if st == stage:
                s.append(bad)
                if code == 421 or st in ("mail", "data"):
                    return lines(*s, after_msg)
            else:
                s.append(ok[st])
    s.append("BODY b")
    if stage == "dot":
        return lines(*s, bad, after_msg)
    s.append("S: 250 2.0.0 queued as 1")

    def refused(what):
        if pipelined:
            return [MAIL, RCPT1, RCPT2, "C: DATA", "S: 550 5.7.1 no %s message" % what] + \
                ["S: 503 5.5.1 Bad sequence of commands"] * 3
        return [MAIL, "S: 550 5.7.1 no %s message" % what]
    s += refused("second")
    s.append("C: RSET")
    if stage == "rset":
        return lines(*s, bad, after_top)
    s.append("S: 250 2.0.0 ok")
    s += refused("third")
    s.append("C: QUIT")
    if stage == "quit":
        return lines(*s, bad, "END")
    return lines(*s, "S: 221 bye")


STAGES = ["greeting", "ehlo", "starttls", "ehlo-tls", "auth", "mail", "rcpt1", "rcpt2",
          "data", "dot", "rset", "quit"]
TOP_STAGES = {"greeting": "greeting", "ehlo": "ehlo", "starttls": "starttls",
              "ehlo-tls": "ehlo", "auth": "auth"}
MSG_CMD = {"mail": "mailfrom", "rcpt1": "rcptto", "rcpt2": "rcptto", "data": "data",
           "dot": "data", "rset": "rset"}


def reply_case(stage, code, pipelined):
    name = "reply-%d-to-%s%s" % (code, stage, "-pipelined" if pipelined else "")
    perm = code >= 500

    def fn():
        script = stage_script(stage, code, pipelined)
        args = send_args(tls="starttls", rcpts=TWO,
                         extra=["--auth", "PLAIN", "--user", "u", "--password-file",
                                "${file:pw}", "-m", "${file:msg}", "-m", "${file:msg}"])
        r = session(script, args, files={"pw": b"secret-pw\n"}, name=name)
        j = one_json(r)
        server_clean(r)
        try:
            return judge(r, j)
        except Fail as e:
            raise Fail("%s\n%s" % (e, r.describe()))

    def judge(r, j):
        msgs = j.get("messages") or []
        if stage in TOP_STAGES:
            kind = {"starttls": "tls", "auth": "auth"}.get(stage, "status")
            rc = 77 if stage == "auth" else (69 if perm else 75)
            err = expect(r, rc, "top", kind, command=TOP_STAGES[stage], permanent=perm,
                         code=code)
            return "%s: %s" % (err["kind"], err["line"])
        if stage in ("rset", "quit"):
            eq(r.rc, 69, "exit status (messages 2 and 3 refused with 550)")
            eq(get(msgs, 0, "ok"), True, "messages[0].ok")
            eq(get(msgs, 1, "error", "command"), "mailfrom", "messages[1].error.command")
            if stage == "quit":
                eq(get(msgs, 2, "error", "code"), 550, "messages[2].error.code")
                return "QUIT answered %d: outcome unchanged" % code
            err = get(msgs, 2, "error") or {}
            eq((err.get("kind"), err.get("command"), err.get("code"), err.get("permanent")),
               ("status", "rset", code, perm), "messages[2].error (kind, command, code, "
               "permanent)")
            return "RSET: %s" % err.get("line")
        eq(len(msgs), 3, "number of messages")
        m0 = msgs[0]
        eq(m0.get("ok"), False, "messages[0].ok")
        err = m0.get("error") or {}
        if stage in ("rcpt1", "rcpt2") and code != 421:
            # One recipient refused, the other accepted: the message went to that one.
            i = 0 if stage == "rcpt1" else 1
            # The refusal is in the recipient's result; the transaction itself did not
            # fail (error null), yet the message is not ok: not every recipient has it.
            rcpt(r, i, False, code, permanent=perm)
            rcpt(r, 1 - i, True, 250)
            eq(m0.get("error"), None, "messages[0].error")
            eq(r.rc, 69, "exit status (messages 2 and 3 refused with 550)")
            return "partial delivery, %s" % get(m0, "recipients", i, "line")
        want = ("status", MSG_CMD[stage], code, perm)
        if code == 421 and pipelined and stage in ("rcpt1", "rcpt2"):
            # The group's last command got no reply (spec 9.13.3/4): io, transient; the
            # 421 is the recipient's.
            want = ("io", MSG_CMD[stage] if stage == "rcpt1" else "data", 0, False)
            i = 0 if stage == "rcpt1" else 1
            rcpt(r, i, False, 421, permanent=False)
        eq((err.get("kind"), err.get("command"), err.get("code"), err.get("permanent")),
           want, "messages[0].error (kind, command, code, permanent)")
        for x in m0.get("recipients") or []:
            if x.get("code") in (0, code):
                eq(x.get("permanent"), perm, "recipient %s permanent" % x.get("address"))
            else:
                eq(x.get("code"), 250, "recipient %s code" % x.get("address"))
        if code == 421:
            # The server is gone: every later message fails, transiently.
            eq(r.rc, 75, "exit status")
            for i, m in enumerate(msgs[1:], 1):
                eq(m.get("ok"), False, "messages[%d].ok" % i)
                eq(get(m, "error", "permanent"), False, "messages[%d].error.permanent" % i)
            return "%s: %s; later messages: %s" % (err["command"], err["line"],
                                                   get(msgs, 1, "error", "kind"))
        eq(r.rc, 69 if perm else 75, "exit status")
        eq([m.get("ok") for m in msgs[1:]], [True, True], "messages[1:].ok (after RSET)")
        return "%s: %s; later messages delivered" % (err["command"], err["line"])
    add(name, fn)


for _stage in STAGES:
    for _code in (421, 451, 554):
        for _p in (False, True):
            if _p and _stage in ("greeting", "ehlo", "starttls", "ehlo-tls", "auth"):
                continue
            reply_case(_stage, _code, _p)


def helo_case(code):
    """EHLO refused with 502: HELO fallback (RFC 5321 4.1.4), whose reply is `code`."""
    name = "reply-%d-to-helo" % code
    perm = code >= 500

    def fn():
        text = {421: "4.3.2 Service shutting down", 451: "4.3.0 try again later",
                554: "5.7.1 refused"}[code]
        r = session(lines(GREET, "C: EHLO client.smtpc.test", "S: 502 5.5.1 no EHLO",
                          "C: HELO client.smtpc.test", "S: %d %s" % (code, text),
                          "CLOSE" if code == 421 else "QUIT?"),
                    send_args(), name=name)
        err = expect(r, 69 if perm else 75, "top", "status", command="helo", permanent=perm,
                     code=code)
        server_clean(r)
        return err.get("line")
    add(name, fn)


for _code in (421, 451, 554):
    helo_case(_code)


# ================================================================ TLS matrix

# (certificate, server options) -> (TLSRPT result type, failure reason) of the problem.
TLS_PROBLEMS = {
    "expired": ("expired", "", "certificate-expired", ""),
    "wrongname": ("wrongname", "", "certificate-host-mismatch", ""),
    "selfsigned": ("selfsigned", "", "certificate-not-trusted", ""),
    "untrusted-ca": ("untrusted", "", "certificate-not-trusted", ""),
    "tls10-only": ("valid", "max=1.0 min=1.0", "validation-failure",
                   "tls-remote-alert-70-protocol-version-not-supported"),
    "alert-after-handshake": ("valid", "clientca=ca min=1.3", "validation-failure",
                              "tls-remote-alert-116-certificate-required"),
}
VERIFY = {"pkix": [], "none": ["--tls-verify", "none"], "ignore": ["--ignore-tls-errors"]}


def tls_case(problem, mode, verify):
    cert, opts, rtype, reason = TLS_PROBLEMS[problem]
    name = "tls-%s-%s-verify-%s" % (problem, mode, verify)
    verification = problem not in ("tls10-only", "alert-after-handshake")
    fails = not verification or verify == "pkix"
    cmd = "tls" if mode == "immediate" else "starttls"

    def fn():
        s = [] if mode == "immediate" else [GREET, TLSEHLO, "C: STARTTLS",
                                            "S: 220 2.0.0 go ahead"]
        if fails:
            s.append("TLS cert=%s %s expect=%s" % (cert, opts, "any" if not verification
                                                   else "fail"))
        else:
            if mode == "immediate":
                s += ["TLS cert=%s %s" % (cert, opts), GREET]
            else:
                s.append("TLS cert=%s %s" % (cert, opts))
            s += [PIPE, MAIL, "C: RCPT TO:<rcpt@example.net>", "C: DATA",
                  "S: 250 2.1.0 Ok", "S: 250 2.1.5 Ok", "S: 354 go", "BODY b",
                  "S: 250 2.0.0 queued", "QUIT"]
        if problem == "alert-after-handshake":
            s.append("END")
        r = session(lines(*s), send_args(tls=mode, extra=VERIFY[verify]), name=name)
        j = one_json(r)
        rd = get(j, "tlsrpt", "recipient_domain") or {}
        host = get(j, "tlsrpt", "host") or {}
        details = [(d.get("result_type"), d.get("failure_reason_code"),
                    d.get("failed_session_count")) for d in rd.get("details") or []]
        hdetails = [(d.get("result_type"), d.get("failure_reason_code"))
                    for d in host.get("details") or []]
        try:
            if fails:
                if problem == "alert-after-handshake":
                    # TLS 1.3: the client finished its handshake (tls is set); the alert
                    # arrives on the first read, of the greeting or of the EHLO reply.
                    err = expect(r, 75, "top", "io", permanent=False, code=0,
                                 command="greeting" if mode == "immediate" else "ehlo")
                    eq(get(j, "tls", "version"), "TLSv1.3", "tls.version")
                else:
                    err = expect(r, 75, "top", "tls", command=cmd, permanent=False, code=0)
                    eq(j.get("tls"), None, "tls")
                eq((rd.get("success"), rd.get("failure")), (0, 1),
                   "recipient_domain (success, failure)")
                eq((host.get("success"), host.get("failure")), (0, 1),
                   "host (success, failure)")
                eq(details, [(rtype, reason, 1)], "recipient_domain details")
                want_host = [(rtype, reason)] if not verification else []
                eq(hdetails, want_host, "host details")
                if verification:
                    server_clean(r)
                return "%s/%s: %s" % (err.get("kind"), err.get("command"), rtype +
                                      (" " + reason if reason else ""))
            delivered(r)
            server_clean(r)
            eq(get(j, "tls", "pkix_verified"), False, "tls.pkix_verified")
            eq((rd.get("success"), rd.get("failure")), (1, 0),
               "recipient_domain (success, failure)")
            eq((host.get("success"), host.get("failure")), (1, 0), "host (success, failure)")
            eq(details, [(rtype, reason, 1)], "recipient_domain details")
            eq(hdetails, [], "host details")
            return "delivered, recorded %s" % rtype
        except Fail as e:
            raise Fail("%s\n%s" % (e, r.describe()))
    add(name, fn)


for _problem in TLS_PROBLEMS:
    for _mode in ("immediate", "starttls", "opportunistic"):
        for _verify in VERIFY:
            tls_case(_problem, _mode, _verify)


@case("tls-opportunistic-starttls-stripped: plaintext, starttls-not-supported recorded")
def tls_stripped_opportunistic():
    r = session(lines(GREET, PIPE, MAIL, "C: RCPT TO:<rcpt@example.net>", "C: DATA",
                      "S: 250 2.1.0 Ok", "S: 250 2.1.5 Ok", "S: 354 go", "BODY b",
                      "S: 250 2.0.0 queued", "QUIT"),
                send_args(tls="opportunistic"), name="stripped-opp")
    delivered(r)
    j = r.j
    for res in ("recipient_domain", "host"):
        d = [(x.get("result_type"), x.get("failure_reason_code"))
             for x in get(j, "tlsrpt", res, "details") or []]
        eq(d, [("starttls-not-supported", "")], "tlsrpt.%s.details" % res)
        eq((get(j, "tlsrpt", res, "success"), get(j, "tlsrpt", res, "failure")), (0, 0),
           "tlsrpt.%s counts" % res)


@case("tls-starttls-stripped-required: --tls starttls sends STARTTLS anyway, 502: no "
      "plaintext")
def tls_stripped_required():
    r = session(lines(GREET, PIPE, "C: STARTTLS", "S: 502 5.5.1 not supported", "QUIT?"),
                send_args(tls="starttls"), name="stripped-req")
    expect(r, 69, "top", "tls", command="starttls", permanent=True, code=502)
    server_clean(r)
    check(b"MAIL" not in client_bytes(r.srv), "MAIL sent in plaintext")
    d = [(x.get("result_type"), x.get("failure_reason_code"))
         for x in get(r.j, "tlsrpt", "recipient_domain", "details") or []]
    eq(d, [("starttls-not-supported", "smtp-starttls-reply-code-502")],
       "tlsrpt.recipient_domain.details")
