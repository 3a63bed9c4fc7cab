#!/usr/bin/env python3
"""Scripted fake SMTP server for the smtpc transcript tests (Python 3 standard library only).

It listens on 127.0.0.1 (or ::1), port 0, accepts one connection and plays a script: lines
to send, lines the client must send, TLS, raw bytes, message data, sleeps, abrupt closes.
It records the whole client transcript and every mismatch; standalone it exits 1 on any
mismatch or if the client sent anything the script did not expect.

    fakesmtp.py [--certdir DIR] [--bodies DIR] [--port-file F] SCRIPT
        SCRIPT is a .test file (its "%% server" section is played) or a bare script.
        Prints "PORT <n>" on standard output once listening.

Script lines (one step per line; blank lines and lines starting with '#' are ignored;
${...} placeholders are substituted, see subst()):

  LISTEN [host=127.0.0.1|::1] [sndbuf=N] [rcvbuf=N] [mode=closed|full]
      [cutsend=N] [cutrecv=N] [cutmode=close|rst|stall]
                       must come first. mode=closed: nothing listens on the port
                       (connection refused); mode=full: the accept queue is kept full so
                       the client's connect never completes (connect timeout).
                       cutsend=N: the server "dies" once it has sent N bytes of SMTP data
                       (a write that crosses N is cut at N); cutrecv=N: once it has read N
                       bytes from the client. Bytes are counted above TLS (the SMTP
                       stream, decrypted after STARTTLS). cutmode=close (default): FIN
                       right there; rst: reset; stall: go silent and keep the connection
                       open. After the cut nothing more is sent, the script stops (later
                       mismatches are only notes) and the client's further bytes are read
                       and discarded until it closes (tests/hostile "kill at every byte").
  CONNECT required|optional|none
                       whether the client must connect (default required). With
                       "none" a connection is a mismatch (usage errors must not connect).
  TIMEOUT SECS         how long to wait for each client line from now on (default 10)

  S: TEXT              send TEXT + CRLF. Consecutive S:/S?:/RAW: lines go out in ONE write.
  S?: TEXT             like S:, only when the last optional client line (C?) matched
  RAW: TEXT            send TEXT with escapes (\\r \\n \\t \\0 \\\\ \\xHH) decoded, nothing added
  FLUSH                send what is buffered now; following lines go in a new write
  C: TEXT              the next client line must be exactly TEXT (the client must end it
                       with CRLF; a bare LF is a mismatch)
  C~ REGEX             the next client line must match REGEX (Python re, whole line)
  C? TEXT / C?~ REGEX  optional client line: consumed if the next line matches, otherwise
                       left for the next step; the client closing instead is fine too
  QUIT                 C: QUIT  then  S: 221 2.0.0 Bye
  QUIT?                C? QUIT  then  S?: 221 2.0.0 Bye   (QUIT optional, e.g. after errors)
  QUIET SECS           the client must send nothing (and not close) for SECS: it waits for
                       a reply (used to prove a command was NOT pipelined)
  SLEEP SECS           do nothing for SECS (client timeouts)
  FLOOD N TEXT         send the escape-decoded TEXT N times, streamed in 64 KiB writes (a
                       10 MB reply line, 100 000 reply lines); stops quietly when the client
                       closes. The transcript records only the size.
  DRIBBLE SECS TEXT    send the escape-decoded TEXT one byte at a time, SECS apart (a
                       slow-loris server: a per-read timeout never fires); stops quietly
                       when the client closes.
  TLS cert=NAME [chain=yes|no] [min=1.2|1.3] [max=1.1|1.2|1.3] [clientca=NAME]
      [clientcert=required|optional] [expect=ok|fail|any] [timeout=SECS]
                       server-side TLS handshake on the connection with certificate NAME
                       (from certs.py). At the start of a script = implicit TLS; after
                       "S: 220 ..." = STARTTLS. Client bytes already received and not yet
                       consumed are a mismatch (the client must wait for the 220).
                       expect=fail: the handshake must fail (the client rejects the
                       certificate); the script ends there and the client must not fall
                       back to plaintext (EHLO/HELO/MAIL/RCPT/AUTH seen afterwards: mismatch).
                       stall=N: send only the first N bytes of the server's handshake
                       records, then go silent (the client's handshake timeout must fire);
                       the script ends there.
  BODY NAME            read message data up to the final "." line, un-stuff it, keep it as
                       body NAME (compared with "%% body NAME" by run.py). Lines must end
                       with CRLF; a bare CR or LF in the data is a mismatch.
  ABSORB [nomessage]   from here on act as a permissive server until the client closes:
                       250 to MAIL/RCPT/RSET/NOOP, 354 to DATA (then read the data),
                       221 to QUIT, 500 otherwise. Bare CR/LF in message data is a
                       mismatch; with nomessage any completed message (final dot) is.
  AUTH-PLAIN user=U pass=P [authzid=Z]
                       the client line must be "AUTH PLAIN <base64 of Z\\0U\\0P>"
  AUTH-LOGIN user=U pass=P
                       "AUTH LOGIN <b64 U>" or "AUTH LOGIN" + 334 VXNlcm5hbWU6 + <b64 U>;
                       then 334 UGFzc3dvcmQ6 and <b64 P>
  AUTH-CRAM user=U pass=P [challenge=TEXT]
                       "AUTH CRAM-MD5", 334 <b64 challenge>, "<b64 U hex(HMAC-MD5)>" checked.
                       With challenge= the challenge is sent and the step ends (for
                       malformed challenges the client must abort: follow with "C: *").
  AUTH-SCRAM mech=SCRAM-SHA-1|SCRAM-SHA-256[-PLUS] user=U pass=P [iter=N] [salt=HEX]
      [bad=nonce|salt|iter|ext|sig] [cb=tls-unique|tls-exporter]
                       a real SCRAM server (RFC 5802/7677): "AUTH <mech> <client-first>"
                       (initial response required), 334 server-first, client-final with the
                       proof verified (and the channel binding for -PLUS), 334 server-final,
                       then an empty client line. The script then sends 235 (or 535).
                       bad=nonce|salt|iter|ext: send an invalid server-first and stop (the
                       client must abort: "C: *"). bad=sig: send a wrong server signature
                       and stop (again "C: *" follows).
  AUTH-XOAUTH2 user=U token=T
                       "AUTH XOAUTH2 <b64 user=U^Aauth=Bearer T^A^A>"
  AUTH-OAUTHBEARER user=U token=T
                       "AUTH OAUTHBEARER <b64 gs2-header ^A... auth=Bearer T ^A^A>" (RFC 7628)
  CLOSE                close our sending side now (FIN); then read (and ignore) until the
                       client closes. Ends the script.
  RST                  reset the connection now (SO_LINGER 0). Ends the script.
  EOF                  the client must close the connection now
  END                  stop checking: read until the client closes, ignore what it sends

At the end of the script the client must close the connection without sending anything
more. A second connection is a mismatch (smtpc send never reconnects).
"""

import base64
import hashlib
import hmac
import json
import os
import re
import select
import shlex
import socket
import ssl
import struct
import sys
import threading
import time

DEFAULT_TIMEOUT = 10.0
HOST = "mx.smtpc.test"


class ScriptError(Exception):
    """A syntax error in a test or script file."""


# --------------------------------------------------------------------------------------
# Escapes and placeholders


_ESC = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\", b"e": b"\x1b",
        b"$": b"$"}
_ESC_RX = re.compile(rb"\\(x[0-9a-fA-F]{2}|.|$)", re.S)


def unescape(text):
    """Decodes \\r \\n \\t \\0 \\\\ \\e \\$ \\xHH; everything else is UTF-8. Returns bytes."""

    def one(m):
        e = m.group(1)
        if e.startswith(b"x") and len(e) == 3:
            return bytes([int(e[1:], 16)])
        if e in _ESC:
            return _ESC[e]
        raise ScriptError("bad escape \\%s in %r" % (e.decode("utf-8", "replace"), text[:80]))

    return _ESC_RX.sub(one, text.encode("utf-8"))


_PH = re.compile(r"\$\{([a-z0-9_-]+)(?::((?:[^}\\]|\\.)*))?\}")


def subst(text, vars):
    """Replaces ${port}, ${host}, ${tmp}, ${ca}, ${cert:N}, ${key:N}, ${chain:N},
    ${tlsa:KEY}, ${file:NAME}, ${b64:TEXT} (base64 of the escape-decoded TEXT),
    ${hex:TEXT}, ${esc:TEXT} (the escape-decoded TEXT itself, e.g. a CR in an argument),
    ${rep:N:TEXT} (TEXT N times) and any other name present in vars. ${i} is the REPEAT
    counter (replaced when REPEAT blocks are expanded)."""

    def one(m):
        name, arg = m.group(1), m.group(2)
        if name == "rep":
            n, _, what = (arg or "").partition(":")
            if not n.isdigit():
                raise ScriptError("${rep:N:TEXT} needs a count")
            return what * int(n)
        if name == "esc":
            return unescape(arg or "").decode("utf-8", "surrogateescape")
        if name == "b64":
            return base64.b64encode(unescape(arg or "")).decode()
        if name == "hex":
            return unescape(arg or "").hex()
        if arg is None:
            if name in vars:
                return str(vars[name])
            raise ScriptError("unknown placeholder ${%s}" % name)
        table = vars.get(name)
        if not isinstance(table, dict) or arg not in table:
            raise ScriptError("unknown placeholder ${%s:%s}" % (name, arg))
        return str(table[arg])

    return _PH.sub(one, text)


def cert_vars(index):
    """Placeholder tables from a certs.py index (or dummies when index is None)."""
    if index is None:
        names = ["ca", "ca2", "valid", "expired", "notyet", "wrongname", "untrusted",
                 "ta-wrongname", "client", "selfsigned", "other"]
        certs = {n: {"crt": "/nonexistent/%s.crt" % n, "key": "/nonexistent/%s.key" % n,
                     "chain": "/nonexistent/%s.chain" % n} for n in names}
        tlsa = {}
        for n in names:
            for k in ("spki256", "cert256", "spki512", "cert512", "spki", "cert"):
                tlsa["%s.%s" % (n, k)] = "00" * 32
        tlsa["nomatch256"] = "00" * 32
        index = {"certs": certs, "tlsa": tlsa, "host": HOST}
    c = index["certs"]
    return {
        "cert": {n: v["crt"] for n, v in c.items()},
        "key": {n: v["key"] for n, v in c.items()},
        "chain": {n: v["chain"] for n, v in c.items()},
        "tlsa": dict(index["tlsa"], **{k + ".uc": v.upper() for k, v in index["tlsa"].items()}),
        "ca": c["ca"]["crt"],
        "host": index.get("host", HOST),
        "_certs": c,
    }


# --------------------------------------------------------------------------------------
# Test files: "%% NAME ARGS" section headers, content lines until the next header.


class TestFile:
    def __init__(self, path, sections):
        self.path = path
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.sections = sections          # list of (name, [args], [lines], lineno)

    def get(self, name):
        for s in self.sections:
            if s[0] == name:
                return s
        return None

    def all(self, name):
        return [s for s in self.sections if s[0] == name]


def parse_test_file(path, text=None):
    if text is None:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    sections = []
    cur = None
    for n, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            raise ScriptError("%s:%d: test files use LF line endings" % (path, n))
        if line.startswith("%%"):
            words = line[2:].split()
            if not words:
                raise ScriptError("%s:%d: empty section header" % (path, n))
            cur = (words[0], words[1:], [], n)
            sections.append(cur)
        elif cur is None:
            if line.strip() and not line.startswith("#"):
                raise ScriptError("%s:%d: text before the first %%%% section" % (path, n))
        else:
            cur[2].append(line)
    for s in sections:
        while s[2] and s[2][-1].strip() == "":
            s[2].pop()
    return TestFile(path, sections)


def _content_rep(m):
    if m.group(1) != "rep":
        raise ScriptError("only ${rep:N:TEXT} is expanded in content sections")
    n, _, what = (m.group(2) or "").partition(":")
    return what * int(n)


def content_bytes(args, lines, default_eol="lf"):
    """Bytes of a content section. Options: lf|crlf (line terminator), noeol (none after
    the last line), esc (decode escapes and ${rep:N:TEXT} per line), repeat=N (whole
    content N times), empty (the content is empty)."""
    eol = default_eol
    noeol = esc = empty = False
    repeat = 1
    for a in args:
        if a in ("lf", "crlf"):
            eol = a
        elif a == "noeol":
            noeol = True
        elif a == "esc":
            esc = True
        elif a == "empty":
            empty = True
        elif a.startswith("repeat="):
            repeat = int(a[7:])
        elif "=" in a or a.startswith("same-as"):
            continue
        else:
            raise ScriptError("unknown content option %r" % a)
    if empty:
        if lines:
            raise ScriptError("'empty' section with content")
        return b""
    term = b"\r\n" if eol == "crlf" else b"\n"
    parts = []
    for i, line in enumerate(lines):
        if esc:
            line = _PH.sub(lambda m: _content_rep(m), line)
        b = unescape(line) if esc else line.encode("utf-8")
        parts.append(b)
        if not (noeol and i == len(lines) - 1):
            parts.append(term)
    return b"".join(parts) * repeat


# --------------------------------------------------------------------------------------
# Script parsing


def _kv(words, where):
    d = {}
    for w in words:
        if "=" not in w:
            raise ScriptError("%s: expected key=value, got %r" % (where, w))
        k, v = w.split("=", 1)
        d[k] = v
    return d


def _num(s, where):
    try:
        return float(s)
    except ValueError:
        raise ScriptError("%s: expected a number, got %r" % (where, s))


class Step:
    __slots__ = ("op", "arg", "opts", "lineno", "rx")

    def __init__(self, op, arg="", opts=None, lineno=0):
        self.op, self.arg, self.opts, self.lineno, self.rx = op, arg, opts or {}, lineno, None

    def __repr__(self):
        return "line %d: %s %s" % (self.lineno, self.op, self.arg)


_PREFIX_OPS = [("S?:", "S?"), ("S:", "S"), ("RAW:", "RAW"), ("C?~", "C?~"), ("C?", "C?"),
               ("C~", "C~"), ("C:", "C")]
_WORD_OPS = {"QUIT", "QUIT?", "QUIET", "SLEEP", "TIMEOUT", "TLS", "BODY", "ABSORB",
             "AUTH-PLAIN", "AUTH-LOGIN", "AUTH-CRAM", "AUTH-SCRAM", "AUTH-XOAUTH2",
             "AUTH-OAUTHBEARER", "CLOSE", "RST", "EOF", "END", "FLUSH", "LISTEN", "CONNECT",
             "REPEAT", "ENDREPEAT", "FLOOD", "DRIBBLE"}
_SCRAM_MECHS = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256",
                "SCRAM-SHA-1-PLUS": "sha1", "SCRAM-SHA-256-PLUS": "sha256"}


def _expand_repeat(lines):
    """REPEAT N ... ENDREPEAT blocks (not nested); ${i} is 1..N inside."""
    out = []
    i = 0
    while i < len(lines):
        n, line = lines[i]
        s = line.strip()
        if s.startswith("REPEAT "):
            count = int(s.split()[1])
            j = i + 1
            body = []
            while j < len(lines) and lines[j][1].strip() != "ENDREPEAT":
                body.append(lines[j])
                j += 1
            if j >= len(lines):
                raise ScriptError("line %d: REPEAT without ENDREPEAT" % n)
            for k in range(1, count + 1):
                out.extend((bn, bl.replace("${i}", str(k))) for bn, bl in body)
            i = j + 1
            continue
        out.append((n, line))
        i += 1
    return out


def parse_script(lines, first_lineno=1):
    """Parses script lines into (listen options, connect mode, [Step]). No substitution
    yet: see resolve()."""
    numbered = [(first_lineno + k, l) for k, l in enumerate(lines)]
    numbered = _expand_repeat(numbered)
    steps = []
    listen = {}
    connect = "required"
    for n, raw in numbered:
        line = raw.rstrip("\n")
        s = line.lstrip()
        if not s.strip() or s.startswith("#"):
            continue
        where = "line %d" % n
        for prefix, op in _PREFIX_OPS:
            if s.startswith(prefix):
                text = s[len(prefix):]
                if text.startswith(" "):
                    text = text[1:]
                steps.append(Step(op, text, lineno=n))
                break
        else:
            words = s.split()
            op = words[0]
            s = s.strip()
            if op not in _WORD_OPS:
                raise ScriptError("%s: unknown script step %r" % (where, op))
            rest = words[1:]
            if op == "LISTEN":
                if steps:
                    raise ScriptError("%s: LISTEN must come first" % where)
                listen = _kv(rest, where)
                for k in ("cutsend", "cutrecv"):
                    if k in listen and not listen[k].isdigit():
                        raise ScriptError("%s: %s=N (bytes)" % (where, k))
                if listen.get("cutmode", "close") not in ("close", "rst", "stall"):
                    raise ScriptError("%s: cutmode=close|rst|stall" % where)
                continue
            if op == "CONNECT":
                if len(rest) != 1 or rest[0] not in ("required", "optional", "none"):
                    raise ScriptError("%s: CONNECT required|optional|none" % where)
                connect = rest[0]
                continue
            if op in ("FLOOD", "DRIBBLE"):
                parts = s.split(None, 2)
                if len(parts) != 3:
                    raise ScriptError("%s: %s %s TEXT" % (where, op,
                                                           "N" if op == "FLOOD" else "SECS"))
                num = _num(parts[1], where)
                if op == "FLOOD" and (num != int(num) or num < 0):
                    raise ScriptError("%s: FLOOD needs a whole count" % where)
                steps.append(Step(op, (int(num) if op == "FLOOD" else num, parts[2]),
                                  lineno=n))
            elif op in ("QUIET", "SLEEP", "TIMEOUT"):
                if len(rest) != 1:
                    raise ScriptError("%s: %s SECS" % (where, op))
                steps.append(Step(op, _num(rest[0], where), lineno=n))
            elif op == "BODY":
                if len(rest) != 1:
                    raise ScriptError("%s: BODY NAME" % where)
                steps.append(Step(op, rest[0], lineno=n))
            elif op == "ABSORB":
                if rest not in ([], ["nomessage"]):
                    raise ScriptError("%s: ABSORB [nomessage]" % where)
                steps.append(Step(op, " ".join(rest), lineno=n))
            elif op in ("TLS",) or op.startswith("AUTH-"):
                steps.append(Step(op, "", _kv(rest, where), lineno=n))
            else:
                if rest:
                    raise ScriptError("%s: %s takes no arguments" % (where, op))
                steps.append(Step(op, lineno=n))
    return listen, connect, steps


def resolve(steps, vars):
    """Substitutes placeholders and checks every step; returns new Steps."""
    out = []
    for st in steps:
        where = "line %d" % st.lineno
        try:
            arg = subst(st.arg, vars) if isinstance(st.arg, str) else st.arg
            if st.op in ("FLOOD", "DRIBBLE"):
                arg = (st.arg[0], unescape(subst(st.arg[1], vars)))
                if not arg[1]:
                    raise ScriptError("%s needs a non-empty TEXT" % st.op)
            opts = {k: subst(v, vars) for k, v in st.opts.items()}
            if st.op.startswith("AUTH-"):
                opts = {k: unescape(v).decode("utf-8") for k, v in opts.items()}
        except ScriptError as e:
            raise ScriptError("%s: %s" % (where, e))
        r = Step(st.op, arg, opts, st.lineno)
        if st.op in ("C~", "C?~"):
            try:
                r.rx = re.compile(arg, re.S)
            except re.error as e:
                raise ScriptError("%s: bad regex %r: %s" % (where, arg, e))
        if st.op == "RAW":
            r.arg = unescape(arg)
        if st.op == "TLS":
            _check_tls_opts(opts, vars, where)
        if st.op.startswith("AUTH-"):
            _check_auth_opts(st.op, opts, where)
        out.append(r)
    return out


def _check_tls_opts(o, vars, where):
    known = {"cert", "chain", "min", "max", "clientca", "clientcert", "expect", "timeout",
             "tickets", "stall"}
    for k in o:
        if k not in known:
            raise ScriptError("%s: unknown TLS option %r" % (where, k))
    if "cert" not in o:
        raise ScriptError("%s: TLS needs cert=NAME" % where)
    certs = vars.get("_certs", {})
    for k in ("cert", "clientca"):
        if k in o and o[k] not in certs:
            raise ScriptError("%s: unknown certificate %r" % (where, o[k]))
    for k in ("min", "max"):
        if k in o and o[k] not in ("1.0", "1.1", "1.2", "1.3"):
            raise ScriptError("%s: %s must be 1.0..1.3" % (where, k))
    if o.get("expect", "ok") not in ("ok", "fail", "any"):
        raise ScriptError("%s: expect=ok|fail|any" % where)
    if o.get("clientcert", "required") not in ("required", "optional"):
        raise ScriptError("%s: clientcert=required|optional" % where)
    if "stall" in o and not o["stall"].isdigit():
        raise ScriptError("%s: stall=N (bytes)" % where)


def _check_auth_opts(op, o, where):
    need = {"AUTH-PLAIN": ("user", "pass"), "AUTH-LOGIN": ("user", "pass"),
            "AUTH-CRAM": ("user", "pass"), "AUTH-SCRAM": ("mech", "user", "pass"),
            "AUTH-XOAUTH2": ("user", "token"), "AUTH-OAUTHBEARER": ("user", "token")}[op]
    for k in need:
        if k not in o:
            raise ScriptError("%s: %s needs %s=" % (where, op, k))
    if op == "AUTH-SCRAM":
        if o["mech"] not in _SCRAM_MECHS:
            raise ScriptError("%s: unknown SCRAM mechanism %r" % (where, o["mech"]))
        if o.get("bad", "") not in ("", "nonce", "salt", "iter", "ext", "sig"):
            raise ScriptError("%s: bad=nonce|salt|iter|ext|sig" % where)
        if o["mech"].endswith("-PLUS") and o.get("cb") not in ("tls-unique", "tls-exporter"):
            raise ScriptError("%s: -PLUS needs cb=tls-unique|tls-exporter" % where)


# --------------------------------------------------------------------------------------
# The connection: a socket (plain or TLS) with a read buffer and a transcript.


class Transcript:
    def __init__(self):
        self.items = []          # (t, who, bytes|str); who: "S", "C", "*"
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def add(self, who, data):
        with self.lock:
            self.items.append((time.monotonic() - self.t0, who, data))

    def render(self, limit=200, width=200):
        """Human-readable transcript: one line per protocol line, escapes for controls."""
        out = []
        with self.lock:
            items = list(self.items)
        for t, who, data in items:
            if who == "*":
                out.append("%7.3f * %s" % (t, data))
                continue
            for seg in _split_keep(data):
                out.append("%7.3f %s: %s" % (t, who, _show(seg, width)))
        if len(out) > limit:
            half = limit // 2
            out = out[:half] + ["... %d lines left out ..." % (len(out) - limit)] + out[-half:]
        return "\n".join(out)


def _split_keep(data):
    parts = data.split(b"\n")
    segs = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        segs.append(parts[-1])
    return segs


def _show(seg, width):
    end = ""
    if seg.endswith(b"\r\n"):
        seg = seg[:-2]
    elif seg.endswith(b"\n"):
        seg, end = seg[:-1], " [bare LF]"
    else:
        end = " [no line end]"
    s = seg.decode("utf-8", "backslashreplace")
    s = "".join(c if c.isprintable() or c == " " else "\\x%02x" % ord(c) for c in s)
    if len(s) > width:
        s = s[:width] + "...(%d chars)" % len(s)
    return s + end


class Closed(Exception):
    pass


class Conn:
    def __init__(self, sock, transcript):
        self.sock = sock
        self.raw = sock
        self.tls = None
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.eof_reason = ""
        self.quiet = False
        self.tr = transcript
        # The "server dies after N bytes" mode (LISTEN cutsend/cutrecv/cutmode).
        self.limit_send = None
        self.limit_recv = None
        self.cutmode = "close"
        self.sent = 0
        self.received = 0
        self.cut = False

    def set_cut(self, send=None, recv=None, mode="close"):
        self.limit_send = None if send is None else int(send)
        self.limit_recv = None if recv is None else int(recv)
        self.cutmode = mode

    def _do_cut(self, why):
        """The server dies here: nothing more is sent; the script sees the end."""
        self.cut = True
        self.eof, self.eof_reason = True, "cut"
        self.tr.add("*", "server cut (%s): %s" % (self.cutmode, why))
        try:
            if self.cutmode == "close":
                self.sock.shutdown(socket.SHUT_WR)       # FIN (no TLS close_notify)
            elif self.cutmode == "rst":
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
                self.sock.close()
        except OSError:
            pass

    def drain_after_cut(self, client_done, timeout):
        """Reads and discards what the client still sends, until it closes (or gives up:
        client_done set, timeout)."""
        if self.cutmode == "rst":
            return
        try:
            fd = socket.socket(fileno=os.dup(self.sock.fileno()))
        except OSError:
            return
        n = 0
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if client_done is not None and client_done.is_set():
                    break
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                try:
                    chunk = fd.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                n += len(chunk)
        finally:
            fd.close()
        self.tr.add("*", "after the cut: discarded %d bytes, client %s" % (
            n, "closed" if time.monotonic() < deadline else "still open"))

    def pending(self):
        return len(self.buf) - self.pos

    def _compact(self):
        if self.pos > 65536 and self.pos > len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0

    def fill(self, timeout):
        """Reads once. Returns False on timeout, True when data or EOF arrived."""
        if self.eof:
            return True
        if timeout <= 0:
            return False
        want = 262144
        if self.limit_recv is not None:
            want = min(want, self.limit_recv - self.received)
            if want <= 0:
                self._do_cut("read %d bytes" % self.received)
                return True
        try:
            if not (self.tls is not None and self.tls.pending()):
                r, _, _ = select.select([self.sock], [], [], timeout)
                if not r:
                    return False
            self.sock.settimeout(max(timeout, 0.01))
            data = self.sock.recv(want)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except ssl.SSLError as e:
            self.eof, self.eof_reason = True, "TLS error: %s" % e
            self.tr.add("*", "read: TLS error: %s" % e)
            return True
        except OSError as e:
            self.eof, self.eof_reason = True, "%s" % e
            self.tr.add("*", "read: %s" % e)
            return True
        if not data:
            self.eof, self.eof_reason = True, "EOF"
            self.tr.add("*", "client closed the connection")
            return True
        if self.quiet:
            self.tr.add("*", "client sent %d bytes (not decoded)" % len(data))
        else:
            self.tr.add("C", data)
        self.buf += data
        self.received += len(data)
        if self.limit_recv is not None and self.received >= self.limit_recv:
            self._do_cut("read %d bytes" % self.received)
        return True

    def readline(self, timeout):
        """Returns the next line including its terminator, None at EOF; raises
        TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i + 1])
                self.pos = i + 1
                self._compact()
                return line
            if self.eof:
                if self.pending():
                    line = bytes(self.buf[self.pos:])
                    self.pos = len(self.buf)
                    return line
                return None
            if not self.fill(deadline - time.monotonic()):
                raise TimeoutError()

    def unread(self, line):
        self.buf[self.pos:self.pos] = line

    def send(self, data, record=True):
        """Sends data (cut at the LISTEN cutsend limit); returns None or an error text."""
        if self.cut:
            self.tr.add("*", "not sent, the connection is cut: %d bytes" % len(data))
            return "cut"
        whole = len(data)
        if self.limit_send is not None and self.sent + len(data) >= self.limit_send:
            data = data[:self.limit_send - self.sent]
        if record:
            self.tr.add("S", data)
        try:
            self.sock.settimeout(DEFAULT_TIMEOUT)
            self.sock.sendall(data)
            self.sent += len(data)
        except (OSError, ssl.SSLError) as e:
            self.tr.add("*", "send failed: %s" % e)
            return str(e)
        if self.limit_send is not None and self.sent >= self.limit_send:
            self._do_cut("sent %d bytes" % self.sent)
            return None if len(data) == whole else "cut"
        return None


# --------------------------------------------------------------------------------------
# SASL helpers


def _b64d(text):
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None


def _tls_exporter(sslsock):
    """RFC 9266 tls-exporter of a Python SSLSocket, via libssl (CPython keeps the SSL* right
    after the object header and the socket weakref in _ssl._SSLSocket)."""
    import ctypes
    lib = ctypes.CDLL("libssl.so.3")
    f = lib.SSL_export_keying_material
    f.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                  ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    f.restype = ctypes.c_int
    obj = sslsock._sslobj
    ptr = ctypes.c_void_p.from_address(id(obj) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    out = ctypes.create_string_buffer(32)
    label = b"EXPORTER-Channel-Binding"
    if f(ptr, out, 32, label, len(label), None, 0, 1) != 1:
        raise RuntimeError("SSL_export_keying_material failed")
    return out.raw


def scram_keys(hname, password, salt, iters):
    salted = hashlib.pbkdf2_hmac(hname, password, salt, iters)
    ckey = hmac.new(salted, b"Client Key", hname).digest()
    skey = hmac.new(salted, b"Server Key", hname).digest()
    return ckey, hashlib.new(hname, ckey).digest(), skey


def scram_unescape_user(s):
    return s.replace("=2C", ",").replace("=3D", "=")


# --------------------------------------------------------------------------------------
# The server


class FakeServer:
    def __init__(self, listen_opts=None, connect="required", certs=None):
        self.listen_opts = listen_opts or {}
        self.connect_mode = connect
        self.certs = certs or {}
        self.mismatches = []
        self.notes = []
        self.tr = Transcript()
        self.bodies = {}
        self.body_order = []
        self.connected = False
        self.conn = None
        self.timeout = DEFAULT_TIMEOUT
        self.outbuf = bytearray()
        self.opt_matched = False
        self.ended = False
        self.steps = []
        self.fillers = []
        self.lsock = None
        self.port = None
        self.tls_info = None

    # -- setup

    def bind(self):
        o = self.listen_opts
        host = o.get("host", "127.0.0.1")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if "sndbuf" in o:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(o["sndbuf"]))
        if "rcvbuf" in o:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(o["rcvbuf"]))
        s.bind((host, 0))
        self.port = s.getsockname()[1]
        mode = o.get("mode", "")
        if mode == "closed":
            s.close()
            self.connect_mode = "none"
            return self.port
        if mode == "full":
            s.listen(0)
            # Fill the accept queue: further SYNs are dropped, connect() never completes.
            for _ in range(3):
                c = socket.socket(fam, socket.SOCK_STREAM)
                c.setblocking(False)
                try:
                    c.connect((host, self.port))
                except (BlockingIOError, OSError):
                    pass
                self.fillers.append(c)
            time.sleep(0.2)
            self.lsock = s
            self.connect_mode = "none"
            return self.port
        s.listen(8)
        self.lsock = s
        return self.port

    def load(self, steps):
        self.steps = steps

    # -- results

    def fail(self, step, msg):
        where = ("script line %d: " % step.lineno) if step is not None else ""
        if self.conn is not None and self.conn.cut:
            self.note("after the cut (not a mismatch): " + where + msg)
            return
        self.mismatches.append(where + msg)
        self.tr.add("*", "MISMATCH: " + where + msg)

    def note(self, msg):
        self.notes.append(msg)
        self.tr.add("*", msg)

    def ok(self):
        return not self.mismatches

    # -- main loop

    def run(self, client_done=None, accept_timeout=20.0, linger=0.3):
        self.client_done = client_done
        try:
            self._run(client_done, accept_timeout, linger)
        except Exception as e:  # a bug in the fake itself must show, not hang the suite
            import traceback
            self.fail(None, "fake server error: %s\n%s" % (e, traceback.format_exc()))
        finally:
            for c in self.fillers:
                c.close()
            if self.conn is not None:
                try:
                    self.conn.sock.close()
                except OSError:
                    pass
            if self.lsock is not None:
                self.lsock.close()

    def _wait_accept(self, client_done, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.lsock is None:
                return None
            r, _, _ = select.select([self.lsock], [], [], 0.05)
            if r:
                c, addr = self.lsock.accept()
                return c
            if client_done is not None and client_done.is_set():
                # One more look: the connection may be queued just now.
                r, _, _ = select.select([self.lsock], [], [], 0.05)
                if r:
                    c, addr = self.lsock.accept()
                    return c
                return None
            if time.monotonic() > deadline:
                return None

    def _run(self, client_done, accept_timeout, linger):
        if self.listen_opts.get("mode") == "full":
            # Keep the queue full (and the socket open) until the client has given up.
            end = time.monotonic() + (accept_timeout if client_done is None else 600)
            while time.monotonic() < end and not (client_done and client_done.is_set()):
                time.sleep(0.05)
            return
        if self.connect_mode == "none":
            c = self._wait_accept(client_done, accept_timeout if client_done is None else 600)
            if c is not None and self.listen_opts.get("mode") != "full":
                self.connected = True
                self.tr.add("*", "client connected")
                self.fail(None, "the client connected but must not (CONNECT none)")
                self.conn = Conn(c, self.tr)
                self._drain(2.0)
            return
        c = self._wait_accept(client_done, accept_timeout)
        if c is None:
            if self.connect_mode == "required":
                self.fail(None, "the client never connected")
            return
        self.connected = True
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tr.add("*", "client connected from %s" % (c.getpeername()[0],))
        self.conn = Conn(c, self.tr)
        o = self.listen_opts
        if "cutsend" in o or "cutrecv" in o:
            self.conn.set_cut(o.get("cutsend"), o.get("cutrecv"), o.get("cutmode", "close"))
        self._play()
        try:
            self.conn.sock.close()
        except OSError:
            pass
        # The client must never open a second connection.
        end = time.monotonic() + (600 if client_done is not None else linger)
        while time.monotonic() < end:
            if client_done is not None and client_done.is_set():
                break
            r, _, _ = select.select([self.lsock], [], [], 0.05)
            if r:
                c2, _ = self.lsock.accept()
                self.fail(None, "the client opened a second connection")
                c2.close()
                break

    def _play(self):
        for step in self.steps:
            if step.op not in ("S", "S?", "RAW"):
                self._flush()
            handler = getattr(self, "_op_" + step.op.replace("?", "_opt").replace(
                "~", "_re").replace("-", "_"))
            cont = handler(step)
            if cont is False or self.mismatches or self.conn.cut:
                break
        self._flush()
        if self.conn.cut:
            self.conn.drain_after_cut(self.client_done, 120.0 if self.client_done else 30.0)
            return
        if self.mismatches:
            self._drain(3.0)
            return
        if not self.ended:
            self._final_eof()

    # -- helpers

    def _flush(self):
        if self.outbuf:
            data = bytes(self.outbuf)
            self.outbuf.clear()
            self.conn.send(data)

    def _readline(self, step, what):
        """Next client line without CRLF; None at EOF (mismatch recorded unless optional)."""
        try:
            line = self.conn.readline(self.timeout)
        except TimeoutError:
            self.fail(step, "timed out after %gs waiting for the client to send %s"
                      % (self.timeout, what))
            return False
        if line is None:
            return None
        if not line.endswith(b"\n"):
            self.fail(step, "client line not terminated (connection closed mid-line): %r"
                      % line)
            return False
        if not line.endswith(b"\r\n"):
            self.fail(step, "client line ends with a bare LF: %r" % line)
            return False
        body = line[:-2]
        if b"\r" in body:
            self.fail(step, "client line contains a bare CR: %r" % line)
            return False
        return body.decode("utf-8", "surrogateescape")

    def _match(self, step, line):
        if step.op in ("C", "C?"):
            return line == step.arg
        return step.rx.fullmatch(line) is not None

    # -- steps

    def _op_S(self, step):
        self.outbuf += step.arg.encode("utf-8") + b"\r\n"

    def _op_S_opt(self, step):
        if self.opt_matched:
            self.outbuf += step.arg.encode("utf-8") + b"\r\n"

    def _op_RAW(self, step):
        self.outbuf += step.arg

    def _op_FLUSH(self, step):
        self._flush()

    def _expect(self, step):
        line = self._readline(step, repr(step.arg))
        if line is False:
            return False
        if line is None:
            self.fail(step, "client closed the connection; expected %r" % step.arg)
            return False
        if not self._match(step, line):
            self.fail(step, "client sent %r, expected %s%r"
                      % (line, "a match for " if step.rx else "", step.arg))
            return False
        return True

    def _op_C(self, step):
        return self._expect(step)

    _op_C_re = _op_C

    def _op_C_opt(self, step):
        self.opt_matched = False
        try:
            raw = self.conn.readline(self.timeout)
        except TimeoutError:
            self.fail(step, "timed out after %gs waiting for optional %r or the close"
                      % (self.timeout, step.arg))
            return False
        if raw is None:
            return True
        text = raw[:-2].decode("utf-8", "surrogateescape") if raw.endswith(b"\r\n") else None
        if text is not None and b"\r" not in raw[:-2] and self._match(step, text):
            self.opt_matched = True
            return True
        self.conn.unread(raw)
        return True

    _op_C_opt_re = _op_C_opt

    def _op_QUIT(self, step):
        if not self._expect(Step("C", "QUIT", lineno=step.lineno)):
            return False
        self.outbuf += b"221 2.0.0 Bye\r\n"

    def _op_QUIT_opt(self, step):
        r = self._op_C_opt(Step("C?", "QUIT", lineno=step.lineno))
        if r is False:
            return False
        if self.opt_matched:
            self.outbuf += b"221 2.0.0 Bye\r\n"

    def _op_TIMEOUT(self, step):
        self.timeout = step.arg

    def _op_SLEEP(self, step):
        time.sleep(step.arg)

    def _op_FLOOD(self, step):
        count, text = step.arg
        total = count * len(text)
        chunk = text * max(1, 65536 // len(text))
        sent = 0
        self.tr.add("*", "flood: %d x %r (%d bytes)" % (count, text[:40], total))
        while sent < total:
            part = chunk[:total - sent]
            if self.conn.send(part, record=False) is not None:
                self.tr.add("*", "flood stopped after %d bytes" % sent)
                return True
            sent += len(part)
        return True

    def _op_DRIBBLE(self, step):
        gap, text = step.arg
        self.tr.add("*", "dribble: %d bytes, one every %gs" % (len(text), gap))
        for i in range(len(text)):
            if self.conn.send(text[i:i + 1], record=False) is not None:
                self.tr.add("*", "dribble stopped after %d bytes" % i)
                return True
            if self.conn.eof or self._client_gone(gap):
                self.tr.add("*", "dribble: the client closed after %d bytes" % (i + 1))
                return True
        return True

    def _client_gone(self, secs):
        """Waits secs; True when the client closed meanwhile (its data is kept)."""
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            self.conn.fill(deadline - time.monotonic())
            if self.conn.eof:
                return True
        return False

    def _op_QUIET(self, step):
        if self.conn.pending():
            self.fail(step, "client sent %r without waiting for the reply"
                      % bytes(self.conn.buf[self.conn.pos:])[:200])
            return False
        deadline = time.monotonic() + step.arg
        while time.monotonic() < deadline:
            if not self.conn.fill(deadline - time.monotonic()):
                break
            if self.conn.pending():
                self.fail(step, "client sent %r without waiting for the reply"
                          % bytes(self.conn.buf[self.conn.pos:])[:200])
                return False
            if self.conn.eof:
                self.fail(step, "client closed the connection instead of waiting for a reply")
                return False
        return True

    def _op_CLOSE(self, step):
        self.tr.add("*", "server closes (FIN)")
        self.conn.quiet = self.conn.tls is not None   # what follows is ciphertext
        try:
            self.conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.ended = True
        self._drain(5.0)
        return False

    def _op_RST(self, step):
        self.tr.add("*", "server resets the connection (RST)")
        s = self.conn.sock
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            s.close()           # no close_notify: SSLSocket.close() does not send one
        except OSError:
            pass
        self.ended = True
        return False

    def _op_EOF(self, step):
        line = self._readline(step, "nothing (the close)")
        if line is False:
            return False
        if line is not None:
            self.fail(step, "client sent %r; expected it to close the connection" % line)
            return False
        self.ended = True
        return False

    def _op_END(self, step):
        self.ended = True
        self._drain(self.timeout)
        return False

    def _drain(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.conn.eof and time.monotonic() < deadline:
            self.conn.fill(deadline - time.monotonic())
        self.conn.pos = len(self.conn.buf)

    def _final_eof(self):
        deadline = time.monotonic() + self.timeout
        while not self.conn.eof and not self.conn.pending():
            if not self.conn.fill(deadline - time.monotonic()):
                self.fail(None, "end of script: the client did not close the connection "
                          "within %gs" % self.timeout)
                return
        if self.conn.pending():
            start = self.conn.pos
            self._drain(0.3)          # a little more of the transcript for the diagnostic
            extra = bytes(self.conn.buf[start:])
            self.fail(None, "end of script: the client sent unexpected data: %r" % extra[:300])

    # -- TLS

    def _op_TLS(self, step):
        o = step.opts
        if self.conn.pending():
            self.fail(step, "client sent %r before the TLS handshake (after STARTTLS it must"
                      " wait for the 220)" % bytes(self.conn.buf[self.conn.pos:])[:200])
            return False
        cert = self.certs[o["cert"]]
        chainfile = cert["chain"] if o.get("chain", "yes") == "yes" else cert["crt"]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        versions = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
                    "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
        if o.get("max") in ("1.0", "1.1") or o.get("min") in ("1.0", "1.1"):
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        if "min" in o:
            ctx.minimum_version = versions[o["min"]]
        if "max" in o:
            ctx.maximum_version = versions[o["max"]]
        ctx.load_cert_chain(chainfile, cert["key"])
        if "tickets" in o:
            ctx.num_tickets = int(o["tickets"])
        if "clientca" in o:
            ctx.verify_mode = (ssl.CERT_REQUIRED if o.get("clientcert", "required") ==
                               "required" else ssl.CERT_OPTIONAL)
            ctx.load_verify_locations(self.certs[o["clientca"]]["crt"])
        expect = o.get("expect", "ok")
        raw = self.conn.sock
        if "stall" in o:
            self._stalled_handshake(ctx, int(o["stall"]), float(o.get("timeout", 120)))
            return False
        s = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        s.settimeout(float(o.get("timeout", self.timeout)))
        try:
            s.do_handshake()
        except (ssl.SSLError, OSError, socket.timeout) as e:
            self.tr.add("*", "TLS handshake failed (server side): %s" % e)
            self.tls_info = {"ok": False, "error": str(e)}
            self.conn.sock = s
            if expect == "ok":
                self.fail(step, "TLS handshake failed: %s" % e)
                return False
            self.ended = True
            self._after_failed_handshake(step, s)
            return False
        self.conn.sock = s
        self.conn.tls = s
        peer = s.getpeercert()
        self.tls_info = {"ok": True, "version": s.version(), "cipher": s.cipher()[0],
                         "client_cert": bool(peer)}
        self.tr.add("*", "TLS handshake done: %s %s%s" % (
            s.version(), s.cipher()[0], ", client certificate %s" % (
                dict(x[0] for x in peer.get("subject", ())).get("commonName"),) if peer
            else ""))
        if expect == "fail":
            self.fail(step, "TLS handshake succeeded, but the client should have rejected "
                      "the server (certificate %s)" % o["cert"])
            return False
        return True

    def _stalled_handshake(self, ctx, limit, timeout):
        """Runs the server side of the handshake through memory BIOs, sends only the first
        `limit` bytes of its records, then goes silent until the client closes."""
        sock = self.conn.sock
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_side=True)
        self.ended = True
        sent = got = 0
        deadline = time.monotonic() + timeout
        state = "stalled"
        while time.monotonic() < deadline:
            if self.client_done is not None and self.client_done.is_set():
                state = "client finished"
                break
            done = state == "handshake complete"
            if not done and sent < limit:
                try:
                    obj.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as e:
                    state = "handshake error: %s" % e
                    break
            data = out.read()
            if data and sent < limit:
                part = data[:limit - sent]
                try:
                    sock.sendall(part)
                except OSError as e:
                    state = "send failed: %s" % e
                    break
                sent += len(part)
            if done:
                state = "handshake complete"
            r, _, _ = select.select([sock], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = sock.recv(65536)
            except OSError as e:
                state = "read failed: %s" % e
                break
            if not chunk:
                state = "client closed"
                break
            got += len(chunk)
            if sent < limit:
                inc.write(chunk)
        self.tr.add("*", "TLS handshake stalled after %d of the server's bytes (client sent "
                    "%d): %s" % (sent, got, state))

    def _after_failed_handshake(self, step, s):
        """Reads until the client closes; plaintext SMTP commands mean a fallback."""
        try:
            fd = socket.socket(fileno=os.dup(s.fileno()))
        except OSError:
            return
        data = bytearray()
        deadline = time.monotonic() + 5.0
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], deadline - time.monotonic())
                if not r:
                    break
                try:
                    chunk = fd.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            fd.close()
        if data:
            self.tr.add("*", "client sent %d more bytes after the failed handshake" % len(data))
        if re.search(rb"(?m)^(EHLO|HELO|MAIL FROM|RCPT TO|AUTH|DATA)\b", bytes(data)):
            self.tr.add("C", bytes(data))
            self.fail(step, "the client went on in plaintext after the failed TLS handshake")

    # -- message data

    def _read_data(self, step):
        """Reads message data to the final dot. Returns (unstuffed bytes, problems) or None
        when the client closed first."""
        conn = self.conn
        out = bytearray()
        problems = []
        deadline_step = self.timeout
        while True:
            try:
                line = conn.readline(deadline_step)
            except TimeoutError:
                self.fail(step, "timed out after %gs in message data (%d bytes so far)"
                          % (self.timeout, len(out)))
                return False
            if line is None:
                return None
            if line == b".\r\n":
                return bytes(out), problems
            if not line.endswith(b"\n"):
                return None          # closed mid-line
            if not line.endswith(b"\r\n"):
                problems.append("bare LF in message data after %d bytes" % len(out))
            elif b"\r" in line[:-2]:
                problems.append("bare CR in message data after %d bytes" % len(out))
            if line.startswith(b"."):
                line = line[1:]
            out += line

    def _op_BODY(self, step):
        r = self._read_data(step)
        if r is False:
            return False
        if r is None:
            self.fail(step, "client closed the connection before the final dot")
            return False
        data, problems = r
        for p in problems:
            self.fail(step, p)
        self.bodies[step.arg] = data
        self.body_order.append(step.arg)
        self.tr.add("*", "message data %s: %d bytes" % (step.arg, len(data)))
        return not problems

    def _op_ABSORB(self, step):
        nomessage = step.arg == "nomessage"
        self.ended = True
        n = 0
        while True:
            self._flush()
            try:
                raw = self.conn.readline(self.timeout)
            except TimeoutError:
                self.fail(step, "ABSORB: timed out waiting for the client")
                return False
            if raw is None:
                return False
            cmd = raw.rstrip(b"\r\n").upper()
            if cmd.startswith((b"MAIL", b"RCPT", b"RSET", b"NOOP")):
                self.outbuf += b"250 2.0.0 Ok\r\n"
            elif cmd == b"DATA":
                self.conn.send(bytes(self.outbuf) + b"354 Go ahead\r\n")
                self.outbuf.clear()
                r = self._read_data(step)
                if r is False:
                    return False
                if r is None:
                    return False
                n += 1
                self.bodies["absorbed%d" % n] = r[0]
                for p in r[1]:
                    self.fail(step, p)
                if r[1]:
                    return False
                if nomessage:
                    self.fail(step, "a complete message was transferred (final dot received)")
                    return False
                self.outbuf += b"250 2.0.0 Ok: queued\r\n"
            elif cmd == b"QUIT":
                self.outbuf += b"221 2.0.0 Bye\r\n"
            else:
                self.outbuf += b"500 5.5.2 Unknown command\r\n"

    # -- AUTH

    def _auth_line(self, step, mech, want_ir):
        """Reads "AUTH MECH [IR]"; returns the decoded IR bytes, b"" for "=", None when
        absent, False on mismatch."""
        line = self._readline(step, "AUTH " + mech)
        if line is False:
            return False
        if line is None:
            self.fail(step, "client closed the connection; expected AUTH %s" % mech)
            return False
        parts = line.split(" ")
        if len(parts) < 2 or parts[0].upper() != "AUTH" or parts[1].upper() != mech:
            self.fail(step, "client sent %r, expected AUTH %s" % (line, mech))
            return False
        if parts[1] != mech:
            self.note("mechanism name not upper case: %r" % parts[1])
        if len(parts) == 2:
            if want_ir == "required":
                self.fail(step, "AUTH %s without the initial response (RFC 4954 4, spec 7.3)"
                          % mech)
                return False
            return None
        if len(parts) != 3:
            self.fail(step, "malformed AUTH line %r" % line)
            return False
        if want_ir == "none":
            self.fail(step, "AUTH %s must not carry an initial response: %r" % (mech, line))
            return False
        if parts[2] == "=":
            return b""
        d = _b64d(parts[2])
        if d is None:
            self.fail(step, "initial response is not valid base64: %r" % parts[2])
            return False
        return d

    def _auth_resp(self, step, what):
        line = self._readline(step, what)
        if line is False:
            return False
        if line is None:
            self.fail(step, "client closed the connection; expected %s" % what)
            return False
        if line == "*":
            self.fail(step, "client aborted the authentication; expected %s" % what)
            return False
        d = _b64d(line)
        if d is None:
            self.fail(step, "%s is not valid base64: %r" % (what, line))
            return False
        return d

    def _op_AUTH_PLAIN(self, step):
        o = step.opts
        ir = self._auth_line(step, "PLAIN", "required")
        if ir is False:
            return False
        want = (o.get("authzid", "") + "\0" + o["user"] + "\0" + o["pass"]).encode("utf-8")
        if ir != want:
            self.fail(step, "PLAIN response %r, expected %r" % (ir, want))
            return False
        return True

    def _op_AUTH_LOGIN(self, step):
        o = step.opts
        ir = self._auth_line(step, "LOGIN", "optional")
        if ir is False:
            return False
        if ir is None:
            self.conn.send(b"334 VXNlcm5hbWU6\r\n")
            ir = self._auth_resp(step, "the LOGIN user name")
            if ir is False:
                return False
        if ir != o["user"].encode("utf-8"):
            self.fail(step, "LOGIN user name %r, expected %r" % (ir, o["user"]))
            return False
        self.conn.send(b"334 UGFzc3dvcmQ6\r\n")
        pw = self._auth_resp(step, "the LOGIN password")
        if pw is False:
            return False
        if pw != o["pass"].encode("utf-8"):
            self.fail(step, "LOGIN password %r, expected %r" % (pw, o["pass"]))
            return False
        return True

    def _op_AUTH_CRAM(self, step):
        o = step.opts
        if self._auth_line(step, "CRAM-MD5", "none") is False:
            return False
        if "challenge" in o:
            self.conn.send(b"334 " + base64.b64encode(unescape(o["challenge"])) + b"\r\n")
            return True
        chal = ("<%d.%d@%s>" % (int.from_bytes(os.urandom(4), "big"), int(time.time()),
                                HOST)).encode()
        self.conn.send(b"334 " + base64.b64encode(chal) + b"\r\n")
        resp = self._auth_resp(step, "the CRAM-MD5 response")
        if resp is False:
            return False
        key = o["pass"].encode("utf-8")
        if len(key) > 64:
            key = hashlib.md5(key).digest()
        want = o["user"].encode("utf-8") + b" " + hmac.new(key, chal, "md5").hexdigest().encode()
        if resp != want:
            self.fail(step, "CRAM-MD5 response %r, expected %r" % (resp, want))
            return False
        return True

    def _op_AUTH_XOAUTH2(self, step):
        o = step.opts
        ir = self._auth_line(step, "XOAUTH2", "required")
        if ir is False:
            return False
        want = ("user=%s\x01auth=Bearer %s\x01\x01" % (o["user"], o["token"])).encode()
        if ir != want:
            self.fail(step, "XOAUTH2 response %r, expected %r" % (ir, want))
            return False
        return True

    def _op_AUTH_OAUTHBEARER(self, step):
        o = step.opts
        ir = self._auth_line(step, "OAUTHBEARER", "required")
        if ir is False:
            return False
        # RFC 7628 3.1: gs2-header kvsep *(key=value kvsep) kvsep
        m = re.fullmatch(rb"([ny]),(a=[^,]*)?,\x01((?:[a-zA-Z]+=[^\x01]*\x01)*)\x01", ir)
        if not m:
            self.fail(step, "OAUTHBEARER message malformed: %r" % ir)
            return False
        kv = dict(p.split(b"=", 1) for p in m.group(3).split(b"\x01") if p)
        if kv.get(b"auth") != ("Bearer " + o["token"]).encode():
            self.fail(step, "OAUTHBEARER auth=%r, expected Bearer %s" % (kv.get(b"auth"),
                                                                        o["token"]))
            return False
        if m.group(2) and m.group(2)[2:] != o["user"].encode():
            self.fail(step, "OAUTHBEARER authzid %r, expected %r" % (m.group(2), o["user"]))
            return False
        return True

    def _op_AUTH_SCRAM(self, step):
        o = step.opts
        mech = o["mech"]
        hname = _SCRAM_MECHS[mech]
        plus = mech.endswith("-PLUS")
        ir = self._auth_line(step, mech, "required")
        if ir is False:
            return False
        try:
            cfirst = ir.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(step, "client-first is not UTF-8: %r" % ir)
            return False
        m = re.fullmatch(r"(n|y|p=[A-Za-z0-9.-]+),(a=[^,]*)?,(n=([^,]*),r=([^,]+)(,.*)?)",
                         cfirst)
        if not m:
            self.fail(step, "malformed client-first-message %r" % cfirst)
            return False
        cbflag, bare, user, cnonce = m.group(1), m.group(3), m.group(4), m.group(5)
        gs2 = cfirst[:len(cfirst) - len(bare)]
        if plus and cbflag != "p=" + o["cb"]:
            self.fail(step, "gs2 header %r, expected p=%s (mechanism %s)" % (cbflag, o["cb"],
                                                                            mech))
            return False
        if not plus and cbflag.startswith("p="):
            self.fail(step, "channel binding %r requested with non-PLUS %s" % (cbflag, mech))
            return False
        if scram_unescape_user(user) != o["user"]:
            self.fail(step, "SCRAM user %r, expected %r" % (user, o["user"]))
            return False
        bad = o.get("bad", "")
        salt = bytes.fromhex(o["salt"]) if "salt" in o else os.urandom(16)
        iters = int(o.get("iter", "4096"))
        snonce = base64.b64encode(os.urandom(18)).decode()
        nonce = cnonce + snonce
        if bad == "nonce":
            nonce = snonce + "AAAAAAAAAAAA"       # does not extend the client's nonce
        elif bad == "salt":
            salt = os.urandom(4)
        elif bad == "iter":
            iters = 1024
        sfirst = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(salt).decode(), iters)
        if bad == "ext":
            sfirst = "m=mandatory-extension," + sfirst
        self.conn.send(b"334 " + base64.b64encode(sfirst.encode()) + b"\r\n")
        if bad in ("nonce", "salt", "iter", "ext"):
            return True          # the client must abort: the script continues with "C: *"
        cfinal_b = self._auth_resp(step, "the SCRAM client-final-message")
        if cfinal_b is False:
            return False
        cfinal = cfinal_b.decode("utf-8", "replace")
        m2 = re.fullmatch(r"c=([^,]*),r=([^,]*)(,.*)?,p=([^,]*)", cfinal)
        if not m2:
            self.fail(step, "malformed client-final-message %r" % cfinal)
            return False
        cbind = _b64d(m2.group(1))
        if m2.group(2) != nonce:
            self.fail(step, "client-final nonce %r, expected %r" % (m2.group(2), nonce))
            return False
        cbdata = b""
        if plus:
            try:
                if o["cb"] == "tls-unique":
                    cbdata = self.conn.tls.get_channel_binding("tls-unique")
                else:
                    cbdata = _tls_exporter(self.conn.tls)
            except Exception as e:
                self.fail(step, "cannot compute channel binding %s: %s" % (o["cb"], e))
                return False
        if cbind != gs2.encode() + cbdata:
            self.fail(step, "channel binding attribute c= decodes to %r, expected %r"
                      % (cbind, gs2.encode() + cbdata))
            return False
        without_proof = cfinal[:cfinal.rindex(",p=")]
        authmsg = (bare + "," + sfirst + "," + without_proof).encode()
        ckey, stored, skey = scram_keys(hname, o["pass"].encode("utf-8"), salt, iters)
        proof = _b64d(m2.group(4))
        csig = hmac.new(stored, authmsg, hname).digest()
        if proof is None or len(proof) != len(csig):
            self.fail(step, "SCRAM proof malformed: %r" % m2.group(4))
            return False
        got_ckey = bytes(a ^ b for a, b in zip(proof, csig))
        if hashlib.new(hname, got_ckey).digest() != stored:
            self.fail(step, "SCRAM proof does not verify (wrong password or AuthMessage)")
            return False
        ssig = hmac.new(skey, authmsg, hname).digest()
        if bad == "sig":
            ssig = bytes(b ^ 0x55 for b in ssig)
        sfinal = "v=" + base64.b64encode(ssig).decode()
        self.conn.send(b"334 " + base64.b64encode(sfinal.encode()) + b"\r\n")
        if bad == "sig":
            return True          # the client must abort: "C: *"
        line = self._readline(step, "the empty response to server-final")
        if line is False:
            return False
        if line != "":
            self.fail(step, "after server-final the client sent %r, expected an empty line"
                      % line)
            return False
        return True


# --------------------------------------------------------------------------------------
# Standalone use


def load_script(path):
    """Returns (lines, first line number) of the server script in a .test or bare file."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    if any(l.startswith("%%") for l in text.split("\n")):
        t = parse_test_file(path, text)
        s = t.get("server")
        if s is None:
            raise ScriptError("%s: no %%%% server section" % path)
        return s[2], s[3] + 1
    return text.split("\n"), 1


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="scripted fake SMTP server")
    ap.add_argument("--certdir", help="directory made by certs.py (its index.json)")
    ap.add_argument("--bodies", help="directory to save received message data in")
    ap.add_argument("--port-file", help="also write the port number to this file")
    ap.add_argument("--check", action="store_true", help="only parse the script")
    ap.add_argument("script")
    a = ap.parse_args(argv)
    index = None
    if a.certdir:
        with open(os.path.join(a.certdir, "index.json")) as f:
            index = json.load(f)
    vars = cert_vars(index)
    vars.update({"tmp": "/tmp", "file": {}})
    lines, first = load_script(a.script)
    listen, connect, steps = parse_script(lines, first)
    srv = FakeServer(listen, connect, vars["_certs"])
    vars["port"] = 0 if a.check else srv.bind()
    steps = resolve(steps, vars)
    if a.check:
        print("ok: %d steps" % len(steps))
        return 0
    srv.load(steps)
    print("PORT %d" % srv.port, flush=True)
    if a.port_file:
        with open(a.port_file, "w") as f:
            f.write("%d\n" % srv.port)
    srv.run(None, accept_timeout=60.0, linger=1.0)
    if a.bodies:
        os.makedirs(a.bodies, exist_ok=True)
        for name, data in srv.bodies.items():
            with open(os.path.join(a.bodies, name), "wb") as f:
                f.write(data)
    sys.stderr.write(srv.tr.render() + "\n")
    for m in srv.mismatches:
        sys.stderr.write("MISMATCH: %s\n" % m)
    return 0 if srv.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
