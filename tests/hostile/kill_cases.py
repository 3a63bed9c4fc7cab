"""Kill at every byte offset: the fake server dies after it has sent N bytes to the client
(LISTEN cutsend=N) or read N bytes from it (cutrecv=N), for every N across a whole
session (greeting, EHLO, [STARTTLS,] MAIL, two RCPT, DATA, body, final reply, QUIT).

The rule checked for every N: the message is reported delivered (exit 0, ok true) if and
only if the server's 250 to the final dot went out complete (its CRLF included); otherwise
nothing is reported delivered, every failure is transient, exit 75, and no recipient is
"accepted" without a 250 of its own. Bytes are counted at the SMTP level (decrypted
after STARTTLS)."""

import concurrent.futures
import os

from harness import (GREET, Fail, add, check, ehlo, eq, get, one_json, send_args,
                     server_bytes, session)

FINAL = b"250 2.0.0 Ok: queued as KILLTEST\r\n"
BODY = (b"From: sender@example.org\r\nTo: r1@example.net, r2@example.net\r\n"
        b"Subject: kill at every byte\r\n\r\nline one\r\n.a line that gets dot-stuffed\r\n"
        b"last line\r\n")
R1, R2 = "r1@example.net", "r2@example.net"
JOBS = int(os.environ.get("SMTPC_HOSTILE_KILL_JOBS", "4"))


def script(variant, listen):
    tls = variant.startswith("starttls")
    pipelined = "pipelined" in variant
    ext = (["STARTTLS"] if tls else []) + (["PIPELINING"] if pipelined else []) + \
        ["8BITMIME", "ENHANCEDSTATUSCODES"]
    s = [listen, GREET, ehlo(*ext)]
    if tls:
        s += ["C: STARTTLS", "S: 220 2.0.0 Ready to start TLS", "TLS cert=valid",
              ehlo(*ext[1:])]
    mail = "C: MAIL FROM:<sender@example.org> BODY=7BIT"
    if pipelined:
        s += [mail, "C: RCPT TO:<%s>" % R1, "C: RCPT TO:<%s>" % R2, "C: DATA",
              "S: 250 2.1.0 Ok", "S: 250 2.1.5 Ok", "S: 250 2.1.5 Ok", "S: 354 go ahead"]
    else:
        s += [mail, "S: 250 2.1.0 Ok", "C: RCPT TO:<%s>" % R1, "S: 250 2.1.5 Ok",
              "C: RCPT TO:<%s>" % R2, "S: 250 2.1.5 Ok", "C: DATA", "S: 354 go ahead"]
    s += ["BODY b", "S: " + FINAL.decode().rstrip("\r\n"), "QUIT"]
    return "\n".join(x for x in s if x)


def args(variant, timeout):
    return send_args(tls="starttls" if variant.startswith("starttls") else "none",
                     rcpts=(R1, R2), timeout=timeout)


def one(variant, direction, n, mode, timeout=10):
    listen = "LISTEN %s=%d cutmode=%s" % (direction, n, mode) if n is not None else ""
    r = session(script(variant, listen), args(variant, timeout), files={"msg": BODY},
                name="kill-%s-%s-%s" % (variant, direction, n), timeout=60)
    return r


def judge(r, mode):
    """Checks the rule on one run; returns 'delivered' or 'failed'."""
    j = one_json(r)
    full = FINAL in server_bytes(r.srv)
    check(not r.srv.mismatches, "server mismatches before the cut: %s" % r.srv.mismatches)
    if full:
        eq(r.rc, 0, "exit status (the final 250 was sent complete)")
        eq(j.get("ok"), True, "ok")
        eq(get(j, "messages", 0, "ok"), True, "messages[0].ok")
        eq(get(j, "messages", 0, "error"), None, "messages[0].error")
        return "delivered"
    eq(r.rc, 75, "exit status (no complete final 250)")
    eq(j.get("ok"), False, "ok")
    errs = []
    if j.get("error") is not None:
        errs.append(j["error"])
    for i, m in enumerate(j.get("messages") or []):
        eq(m.get("ok"), False, "messages[%d].ok" % i)
        if m.get("error") is not None:
            errs.append(m["error"])
        for x in m.get("recipients") or []:
            eq(x.get("permanent"), False, "recipient %s permanent" % x.get("address"))
            eq(x.get("accepted"), x.get("code") == 250, "recipient %s accepted vs code %s"
               % (x.get("address"), x.get("code")))
    check(errs, "no error reported although nothing was delivered")
    want = {"close": ("io",), "rst": ("io",), "stall": ("timeout",)}[mode]
    for e in errs:
        eq(e.get("permanent"), False, "error.permanent")
        check(e.get("kind") in want, "error.kind %r, expected one of %r" % (e.get("kind"),
                                                                          want))
        check(e.get("command"), "error.command is empty")
    return "failed"


def every_offset(variant, direction, mode="close", step=1):
    name = "kill-%s-%s-every-byte%s" % (
        variant, "after-sending" if direction == "cutsend" else "after-reading",
        "" if mode == "close" else "-" + mode)

    def fn():
        ref = one(variant, direction, None, mode)
        check(ref.rc == 0 and not ref.srv.mismatches, "the uncut session failed\n" +
              ref.describe())
        sent = server_bytes(ref.srv)
        total = len(sent) if direction == "cutsend" else len(
            b"".join(d for _, w, d in ref.srv.tr.items if w == "C"))
        final_end = sent.index(FINAL) + len(FINAL)
        offsets = list(range(0, total + 1, step))
        if step > 1 and total not in offsets:
            offsets.append(total)
        counts = {"delivered": 0, "failed": 0}
        bad = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=JOBS) as ex:
            futs = {n: ex.submit(one, variant, direction, n, mode) for n in offsets}
            for n in offsets:
                r = futs[n].result()
                try:
                    outcome = judge(r, mode)
                    counts[outcome] += 1
                    if direction == "cutsend":
                        eq(outcome == "delivered", n >= final_end,
                           "delivered, for N=%d (the final 250 ends at byte %d)"
                           % (n, final_end))
                    check(r.elapsed < 8, "took %.1f s" % r.elapsed)
                except Fail as e:
                    bad.append("N=%d: %s" % (n, str(e).split("\n")[0]))
                    if len(bad) <= 2:
                        bad.append(r.describe())
        if bad:
            raise Fail("%d of %d offsets broke the rule:\n%s"
                       % (sum(1 for b in bad if b.startswith("N=")), len(offsets),
                          "\n".join(bad[:40])))
        return ("%d offsets (0..%d): %d delivered, %d failed transiently; final 250 ends at "
                "byte %d of %d sent" % (len(offsets), total, counts["delivered"],
                                         counts["failed"], final_end, len(sent)))
    add(name, fn)


for _v in ("plain", "pipelined", "starttls-pipelined"):
    for _d in ("cutsend", "cutrecv"):
        every_offset(_v, _d)
every_offset("plain", "cutsend", mode="rst")
every_offset("pipelined", "cutrecv", mode="rst")


def stall_offsets(variant):
    """The server goes silent (no close) after N bytes, at each line boundary and in the
    middle of each line: the client must time out (--timeout 1), never report delivery
    without the complete 250."""
    name = "kill-%s-stall-at-line-boundaries" % variant

    def fn():
        ref = one(variant, "cutsend", None, "close")
        sent = server_bytes(ref.srv)
        final_end = sent.index(FINAL) + len(FINAL)
        offsets = set()
        pos = 0
        for line in sent.split(b"\r\n")[:-1]:
            for n in (pos, pos + len(line) // 2, pos + len(line), pos + len(line) + 1):
                offsets.add(n)
            pos += len(line) + 2
        offsets = sorted(o for o in offsets if o <= len(sent))
        bad = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(JOBS, 8)) as ex:
            futs = {n: ex.submit(one, variant, "cutsend", n, "stall", 1) for n in offsets}
            for n in offsets:
                r = futs[n].result()
                try:
                    outcome = judge(r, "stall")
                    eq(outcome == "delivered", n >= final_end, "delivered, for N=%d" % n)
                    check(r.elapsed < 4.5, "took %.1f s with --timeout 1" % r.elapsed)
                except Fail as e:
                    bad.append("N=%d: %s" % (n, str(e).split("\n")[0]))
                    if len(bad) <= 2:
                        bad.append(r.describe())
        if bad:
            raise Fail("\n".join(bad[:40]))
        return "%d offsets, each bounded by --timeout 1" % len(offsets)
    add(name, fn)


for _v in ("plain", "pipelined", "starttls-pipelined"):
    stall_offsets(_v)
