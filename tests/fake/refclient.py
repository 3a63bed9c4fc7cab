#!/usr/bin/env python3
"""A model of the `smtpc send` contract (issue 2), in Python, used ONLY to validate the
transcript scenarios before (and alongside) the C client:

    python3 tests/transcripts/run.py tests/fake/refclient.py

It is deliberately small and is not a product: no DANE (scenarios with --dane exit 78
with "not modelled"), PKIX through Python's ssl module and `openssl verify`, SASL
mechanisms written out by hand. Where it and a scenario disagree, one of them misreads
the contract; the C client is the one that ships.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import select
import socket
import ssl
import subprocess
import sys
import time
import unicodedata

EX_USAGE, EX_CONFIG, EX_AUTH, EX_MSG, EX_PERM, EX_TEMP = 64, 78, 77, 65, 69, 75
MAX_LINE = 2048
MAX_LINES = 1000
DEFAULT_TIMEOUTS = {"connect": 30, "tls": 60, "greeting": 300, "command": 300, "mail": 300,
                    "rcpt": 300, "data": 120, "body": 180, "dataend": 600, "quit": 5, "write": 300}


class Err(Exception):
    def __init__(self, kind, command="", permanent=False, code=0, ecode="", line="", more=None,
                 message=""):
        super().__init__(message or kind)
        self.kind, self.command, self.permanent = kind, command, permanent
        self.code, self.ecode, self.line, self.more = code, ecode, line, more or []
        self.message = message or kind

    def json(self):
        return {"kind": self.kind, "permanent": self.permanent, "code": self.code,
                "enhanced_code": self.ecode, "command": self.command, "line": self.line,
                "more_lines": self.more, "message": self.message}


class Reply:
    def __init__(self, code, lines, texts):
        self.code, self.lines, self.texts = code, lines, texts
        self.ecode = ""

    def err(self, kind, command, msg=""):
        return Err(kind, command, self.code // 100 == 5, self.code, self.ecode, self.lines[0],
                   self.lines[1:], msg or "unexpected reply: " + self.lines[0])


# ------------------------------------------------------------------------------------
# TLSRPT results (spec 6)


class Rpt:
    def __init__(self):
        self.success, self.failure, self.details = 0, 0, []

    def add(self, s, f, rtype=None, reason="", host="", ip=""):
        self.success = max(0, self.success + s)
        self.failure = max(0, self.failure + f)
        if rtype:
            for d in self.details:
                if (d["result_type"], d["failure_reason_code"], d["receiving_mx_hostname"],
                        d["receiving_ip"]) == (rtype, reason, host, ip):
                    d["failed_session_count"] += 1
                    return
            self.details.append({"result_type": rtype, "failure_reason_code": reason,
                                 "receiving_mx_hostname": host, "receiving_ip": ip,
                                 "failed_session_count": 1})

    def json(self):
        return {"success": self.success, "failure": self.failure, "details": self.details}


ALERTS = {0: "close notify", 10: "unexpected message", 20: "bad record MAC", 21: "decryption failed",
          22: "record overflow", 30: "decompression failure", 40: "handshake failure",
          42: "bad certificate", 43: "unsupported certificate", 44: "revoked certificate",
          45: "expired certificate", 46: "unknown certificate", 47: "illegal parameter",
          48: "unknown certificate authority", 49: "access denied", 50: "error decoding message",
          51: "error decrypting message", 70: "protocol version not supported",
          71: "insufficient security level", 80: "internal error", 86: "inappropriate fallback",
          90: "user canceled", 100: "no renegotiation", 109: "missing extension",
          110: "unsupported extension", 112: "unrecognized name", 116: "certificate required",
          120: "no application protocol"}
ALERT_REASONS = {"HANDSHAKE_FAILURE": 40, "PROTOCOL_VERSION": 70, "CERTIFICATE_REQUIRED": 116,
                 "BAD_CERTIFICATE": 42, "UNKNOWN_CA": 48, "CERTIFICATE_EXPIRED": 45,
                 "ILLEGAL_PARAMETER": 47, "INTERNAL_ERROR": 80, "DECODE_ERROR": 50,
                 "INSUFFICIENT_SECURITY": 71, "ACCESS_DENIED": 49, "UNRECOGNIZED_NAME": 112}


def alert_name(n):
    t = ALERTS.get(n)
    return "alert-%d" % n + ("-" + t.replace(" ", "-") if t else "")


def x509_to_tlsrpt(code):
    if code in (9, 10):
        return "certificate-expired", ""
    if code == 62:
        return "certificate-host-mismatch", ""
    if code in (18, 19, 20, 21, 27, 2):
        return "certificate-not-trusted", ""
    return "certificate-not-trusted", "x509-error-%d" % code


def classify_tls_error(e):
    """(kind, result type, reason) of a failed handshake (spec 23.6)."""
    if isinstance(e, ssl.SSLCertVerificationError):
        t, r = x509_to_tlsrpt(e.verify_code)
        return "tls", t, r
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timeout", "validation-failure", "io-timeout-during-handshake"
    if isinstance(e, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError, EOFError)) or \
            "EOF" in str(e):
        return "io", "validation-failure", "connection-closed-during-handshake"
    if isinstance(e, ssl.SSLError):
        reason = getattr(e, "reason", "") or ""
        m = re.match(r"(?:SSLV3|TLSV1|TLSV13|TLSV1_\d)_ALERT_(.*)", reason)
        if m:
            n = ALERT_REASONS.get(m.group(1))
            return "tls", "validation-failure", "tls-remote-" + (alert_name(n) if n is not None
                                                                  else "error")
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return "tls", "validation-failure", "tls-record-header-error"
        if reason in ("UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE"):
            return "tls", "validation-failure", "tls-local-" + alert_name(70)
        return "tls", "validation-failure", ""
    return "io", "validation-failure", "connection-closed-during-handshake"


# ------------------------------------------------------------------------------------
# DANE through OpenSSL's own API, reached with ctypes from Python's SSLSocket (CPython 3.11
# keeps SSL_CTX* right after the object header of _ssl._SSLContext and SSL* after the
# header and one pointer in _ssl._SSLSocket).


def _libssl():
    import ctypes
    lib = ctypes.CDLL("libssl.so.3")
    P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    lib.SSL_CTX_dane_enable.argtypes = [P]
    lib.SSL_dane_enable.argtypes = [P, ctypes.c_char_p]
    lib.SSL_dane_set_flags.argtypes = [P, ctypes.c_ulong]
    lib.SSL_dane_set_flags.restype = ctypes.c_ulong
    lib.SSL_add1_host.argtypes = [P, ctypes.c_char_p]
    lib.SSL_dane_tlsa_add.argtypes = [P, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint8,
                                      ctypes.c_char_p, S]
    lib.SSL_get0_dane_tlsa.argtypes = [P, ctypes.POINTER(ctypes.c_uint8),
                                       ctypes.POINTER(ctypes.c_uint8),
                                       ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(P),
                                       ctypes.POINTER(S)]
    return lib, ctypes


def _ptr(obj, slot):
    import ctypes
    return ctypes.c_void_p.from_address(id(obj) + slot * ctypes.sizeof(ctypes.c_void_p)).value


def dane_setup(ctx, sslsock, base, more, records):
    """Returns the number of usable records added (PKIX-TA/EE are not usable, RFC 7672)."""
    lib, ct = _libssl()
    if lib.SSL_CTX_dane_enable(_ptr(ctx, 2)) <= 0:
        raise RuntimeError("SSL_CTX_dane_enable")
    ssl_ptr = _ptr(sslsock._sslobj, 3)
    if lib.SSL_dane_enable(ssl_ptr, base.encode()) <= 0:
        raise RuntimeError("SSL_dane_enable")
    lib.SSL_dane_set_flags(ssl_ptr, 1)        # DANE_FLAG_NO_DANE_EE_NAMECHECKS
    for n in more:
        lib.SSL_add1_host(ssl_ptr, n.encode())
    usable = 0
    for u, sel, mt, data in records:
        if u not in (2, 3):
            continue
        if lib.SSL_dane_tlsa_add(ssl_ptr, u, sel, mt, data, len(data)) > 0:
            usable += 1
    return usable


_KEEP = []


def require_pkix_too(ctx, name):
    """With --dane and an explicit --tls-verify pkix both must pass: a certificate verify
    callback runs OpenSSL's (DANE) verification, then a separate PKIX one."""
    lib, ct = _libssl()
    cr = ct.CDLL("libcrypto.so.3")
    P = ct.c_void_p
    for f, a, r in (("X509_verify_cert", [P], ct.c_int), ("X509_STORE_CTX_new", [], P),
                    ("X509_STORE_CTX_init", [P, P, P, P], ct.c_int),
                    ("X509_STORE_CTX_get0_cert", [P], P),
                    ("X509_STORE_CTX_get0_untrusted", [P], P),
                    ("X509_STORE_CTX_get0_param", [P], P),
                    ("X509_VERIFY_PARAM_set1_host", [P, ct.c_char_p, ct.c_size_t], ct.c_int),
                    ("X509_VERIFY_PARAM_set_purpose", [P, ct.c_int], ct.c_int),
                    ("X509_STORE_CTX_get_error", [P], ct.c_int),
                    ("X509_STORE_CTX_set_error", [P, ct.c_int], None),
                    ("X509_STORE_CTX_free", [P], None)):
        getattr(cr, f).argtypes, getattr(cr, f).restype = a, r
    lib.SSL_CTX_get_cert_store.argtypes, lib.SSL_CTX_get_cert_store.restype = [P], P
    lib.SSL_CTX_set_cert_verify_callback.argtypes = [P, P, P]
    sslctx = _ptr(ctx, 2)
    CB = ct.CFUNCTYPE(ct.c_int, P, P)

    def cb(sctx, arg):
        if cr.X509_verify_cert(sctx) <= 0:
            return 0
        p = cr.X509_STORE_CTX_new()
        cr.X509_STORE_CTX_init(p, lib.SSL_CTX_get_cert_store(sslctx),
                               cr.X509_STORE_CTX_get0_cert(sctx),
                               cr.X509_STORE_CTX_get0_untrusted(sctx))
        param = cr.X509_STORE_CTX_get0_param(p)
        cr.X509_VERIFY_PARAM_set_purpose(param, 2)     # X509_PURPOSE_SSL_SERVER
        if name:
            cr.X509_VERIFY_PARAM_set1_host(param, name.encode(), len(name))
        ok = cr.X509_verify_cert(p)
        err = cr.X509_STORE_CTX_get_error(p)
        cr.X509_STORE_CTX_free(p)
        if ok <= 0:
            cr.X509_STORE_CTX_set_error(sctx, err)
            return 0
        return 1
    f = CB(cb)
    _KEEP.append(f)
    lib.SSL_CTX_set_cert_verify_callback(sslctx, ct.cast(f, P), None)


def dane_matched(sslsock):
    lib, ct = _libssl()
    u, s, m = ct.c_uint8(), ct.c_uint8(), ct.c_uint8()
    data, dlen = ct.c_void_p(), ct.c_size_t()
    if lib.SSL_get0_dane_tlsa(_ptr(sslsock._sslobj, 3), ct.byref(u), ct.byref(s), ct.byref(m),
                              ct.byref(data), ct.byref(dlen)) < 0:
        return None
    raw = ct.string_at(data, dlen.value)
    return "%d %d %d %s" % (u.value, s.value, m.value, raw.hex())


# ------------------------------------------------------------------------------------
# The wire: non-blocking socket (plain or TLS) with bounded reply reading


class Wire:
    def __init__(self, sock, trace):
        self.sock = sock
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.out = bytearray()
        self.trace = trace
        self.eof = False
        self.first_read_after_tls = False
        self.on_first_read_alert = None

    def _recv(self):
        try:
            d = self.sock.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except ssl.SSLError as e:
            if self.first_read_after_tls and self.on_first_read_alert:
                self.on_first_read_alert(e)
            raise Err("io", message="read: %s" % e)
        except OSError as e:
            raise Err("io", message="read: %s" % e)
        if not d:
            self.eof = True
        self.first_read_after_tls = False
        self.buf += d
        return True

    def _send_some(self):
        try:
            n = self.sock.send(self.out[:262144])
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError as e:
            raise Err("io", message="write: %s" % e)
        del self.out[:n]

    def _wait(self, deadline, want_write, command):
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True, False
        left = deadline - time.monotonic()
        if left <= 0:
            raise Err("timeout", command, message="timed out")
        r, w, _ = select.select([self.sock], [self.sock] if want_write else [], [], left)
        if not r and not w:
            raise Err("timeout", command, message="timed out")
        return bool(r), bool(w)

    def write(self, data, deadline, command):
        self.out += data
        while self.out:
            r, w = self._wait(deadline, True, command)
            if r and not self.eof:
                self._recv()       # keep reading while writing (never deadlock)
            if w:
                self._send_some()

    def queue(self, data):
        self.out += data

    def readline(self, deadline, command):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                if i + 1 > MAX_LINE:
                    raise Err("protocol", command, message="reply line too long")
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line.rstrip(b"\n").rstrip(b"\r") if line.endswith(b"\r\n") else line[:-1]
            if len(self.buf) > MAX_LINE:
                raise Err("protocol", command, message="reply line too long")
            if self.eof:
                raise Err("io", command, message="connection closed")
            r, w = self._wait(deadline, bool(self.out), command)
            if w and self.out:
                self._send_some()
            if r:
                try:
                    self._recv()
                except Err as e:
                    e.command = command
                    raise

    def reply(self, deadline, command, ecodes=False):
        lines, texts, code = [], [], None
        while True:
            if len(lines) >= MAX_LINES:
                raise Err("protocol", command, message="too many reply lines")
            raw = self.readline(deadline, command)
            try:
                s = raw.decode("utf-8")
            except UnicodeDecodeError:
                s = raw.decode("latin-1")
            if self.trace:
                self.trace("S: " + s)
            if len(s) < 3 or not s[:3].isdigit() or (len(s) > 3 and s[3].isdigit()):
                raise Err("protocol", command, line=s, message="malformed reply: %r" % s)
            c = int(s[:3])
            if code is not None and c != code:
                lines.append(s)
                raise Err("protocol", command, line=lines[0], more=lines[1:],
                          message="reply code changed")
            code = c
            lines.append(s)
            if len(s) == 3:
                texts.append("")
                break
            if s[3] not in " -":
                raise Err("protocol", command, line=s, message="bad separator")
            texts.append(s[4:])
            if s[3] == " ":
                break
        rep = Reply(code, lines, texts)
        if ecodes:
            m = re.match(r"(\d)\.(\d+)\.(\d+)(?: |$)", texts[-1])
            if m and m.group(1) == str(code)[0]:
                rep.ecode = "%s.%s.%s" % m.groups()
        return rep


# ------------------------------------------------------------------------------------


def usage_error(msg, code=EX_USAGE):
    kind = "usage" if code == EX_USAGE else "config"
    raise Err(kind, "", True, message=msg)


VALUED = {"--server", "--tls", "--tls-verify", "--ca-file", "--tls-name", "--client-cert",
          "--client-key", "--dane", "--dane-name", "--ehlo", "--auth", "--user",
          "--password-file", "--oauth-token-file", "--from", "--to", "-m", "--message",
          "--timeout"}
FLAGS = {"--ignore-tls-errors", "--insecure-auth", "--require-8bitmime", "--require-smtputf8",
         "--requiretls", "--no-pipelining", "--trace", "--json"}
REPEAT = {"--to", "-m", "--message", "--dane", "--dane-name"}


def parse_args(argv):
    o = {"--to": [], "-m": [], "--dane": [], "--dane-name": []}
    if not argv or argv[0] != "send":
        usage_error("usage: smtpc send OPTIONS")
    i = 1
    errors = []
    while i < len(argv):
        a = argv[i]
        val = None
        if a.startswith("--") and "=" in a:
            a, val = a.split("=", 1)
        if a in FLAGS:
            o[a] = True
        elif a in VALUED:
            if val is None:
                if i + 1 >= len(argv):
                    errors.append((EX_USAGE, "%s needs a value" % a))
                    break
                i += 1
                val = argv[i]
            key = "-m" if a == "--message" else a
            if key in REPEAT:
                o[key].append(val)
            else:
                o[key] = val
        else:
            errors.append((EX_USAGE, "unknown option %s" % a))
        i += 1
    return o, errors


def check_addr(a, what):
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in a) or "<" in a or ">" in a:
        usage_error("invalid characters in %s address" % what)


def read_file(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        usage_error("cannot read %s %s: %s" % (what, path, e), EX_CONFIG)


def prepare_message(data):
    """LF -> CRLF, final CRLF, bare CR -> invalid. Returns (bytes, eightbit, utf8hdr) or
    raises Err(message)."""
    if re.search(rb"\r(?!\n)", data):
        raise Err("message", "data", True, message="message contains a bare CR")
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    eight = any(b >= 0x80 for b in data)
    hdr = data.split(b"\r\n\r\n", 1)[0]
    return data, eight, any(b >= 0x80 for b in hdr)


def dot_stuff(data):
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


# ------------------------------------------------------------------------------------
# SASL


def scram_client(mech, user, pw, cb_data=None, cb_name=None):
    hname = "sha256" if "256" in mech else "sha1"
    plus = mech.endswith("-PLUS")
    gs2 = ("p=%s,," % cb_name) if plus else ("y,," if cb_data is not None else "n,,")
    cnonce = base64.b64encode(os.urandom(12)).decode()
    u = unicodedata.normalize("NFC", user).replace("=", "=3D").replace(",", "=2C")
    bare = "n=%s,r=%s" % (u, cnonce)
    sfirst = yield (gs2 + bare).encode()
    s = sfirst.decode()
    if s.startswith("m="):
        raise ValueError("mandatory extension")
    attrs = dict(kv.split("=", 1) for kv in s.split(",") if "=" in kv)
    nonce, salt, it = attrs.get("r", ""), base64.b64decode(attrs.get("s", "")), int(attrs.get("i", "0"))
    if not nonce.startswith(cnonce) or len(nonce) < len(cnonce) + 8:
        raise ValueError("bad server nonce")
    if len(salt) < 8 or it < 2048:
        raise ValueError("weak SCRAM parameters")
    cbind = base64.b64encode(gs2.encode() + (cb_data if plus else b"")).decode()
    without = "c=%s,r=%s" % (cbind, nonce)
    salted = hashlib.pbkdf2_hmac(hname, pw.encode(), salt, it)
    ckey = hmac.new(salted, b"Client Key", hname).digest()
    stored = hashlib.new(hname, ckey).digest()
    am = (bare + "," + s + "," + without).encode()
    proof = bytes(a ^ b for a, b in zip(ckey, hmac.new(stored, am, hname).digest()))
    sfinal = yield (without + ",p=" + base64.b64encode(proof).decode()).encode()
    skey = hmac.new(salted, b"Server Key", hname).digest()
    want = "v=" + base64.b64encode(hmac.new(skey, am, hname).digest()).decode()
    if sfinal.decode() != want:
        raise ValueError("server signature does not verify")
    yield None       # final: empty response


# ------------------------------------------------------------------------------------


class Session:
    def __init__(self, o):
        self.o = o
        self.json_mode = o.get("--json", False)
        self.trace_on = o.get("--trace", False)
        self.rd, self.host = Rpt(), Rpt()
        self.greeting = ""
        self.ext = []
        self.flags = set()
        self.size = 0
        self.auth = []
        self.limits = {}
        self.tls = None
        self.wire = None
        self.need_rset = False
        self.botched = False
        t = o.get("--timeout")
        self.tmo = {k: (float(t) if t else v) for k, v in DEFAULT_TIMEOUTS.items()}

    def trace(self, s):
        if self.trace_on:
            sys.stderr.write(s + "\n")

    def dl(self, stage):
        return time.monotonic() + self.tmo[stage]

    def send(self, line, command, stage="write", secret=False):
        self.trace("C: " + ("<redacted>" if secret else line))
        self.write(line.encode("utf-8") + b"\r\n", stage, command)

    def write(self, data, stage, command):
        try:
            self.wire.write(data, self.dl(stage), command)
        except Err as e:
            self.botched = True
            e.command = e.command or command
            raise

    def reply(self, command, stage="command", ecodes=None):
        if ecodes is None:
            ecodes = "ENHANCEDSTATUSCODES" in self.flags
        try:
            return self.wire.reply(self.dl(stage), command, ecodes)
        except Err as e:
            e.command = e.command or command
            if e.kind in ("io", "protocol", "timeout"):
                self.botched = True
            raise

    # -- connect, TLS

    def connect(self):
        srv = self.o.get("--server")
        if not srv:
            usage_error("--server is required")
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", srv)
        if not m:
            usage_error("bad --server", EX_CONFIG)
        host = m.group(1) or m.group(3)
        port = int(m.group(2) or m.group(4) or (465 if self.o.get("--tls") == "immediate" else 587))
        self.server_host = host
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            is_ip = True
        except OSError:
            is_ip = False
        self.tls_name = self.o.get("--tls-name") or ("" if is_ip else host)
        try:
            s = socket.create_connection((host, port), timeout=self.tmo["connect"])
        except socket.timeout:
            raise Err("timeout", "connect", message="connect timed out")
        except OSError as e:
            raise Err("connect", "connect", message="connect: %s" % e)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer_ip = s.getpeername()[0]
        self.raw = s
        self.wire = Wire(s, self.trace if self.trace_on else None)

    def tls_context(self, enforce):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if enforce:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.check_hostname = bool(self.tls_name)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.o.get("--ca-file"):
            ctx.load_verify_locations(self.o["--ca-file"])
        else:
            ctx.load_default_certs()
        if self.o.get("--client-cert"):
            ctx.load_cert_chain(self.o["--client-cert"], self.o.get("--client-key"))
        return ctx

    def pkix_check(self, der):
        pem = ssl.DER_cert_to_PEM_cert(der)
        cmd = ["openssl", "verify", "-purpose", "sslserver"]
        if self.o.get("--ca-file"):
            cmd += ["-CAfile", self.o["--ca-file"]]
        if self.tls_name:
            cmd += ["-verify_hostname", self.tls_name]
        p = subprocess.run(cmd, input=pem.encode(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode(errors="replace")
        if p.returncode == 0 and ": OK" in out:
            return None
        m = re.search(r"error (\d+) at", out)
        return int(m.group(1)) if m else 1

    def handshake(self, command):
        verify = self.o.get("--tls-verify")
        ignore = self.o.get("--ignore-tls-errors", False)
        dane = bool(self.o["--dane"])
        both = dane and verify == "pkix" and not ignore
        enforce = (verify or "pkix") == "pkix" and not ignore and not dane
        try:
            ctx = self.tls_context(enforce)
            if dane and not ignore:
                ctx.verify_mode = ssl.CERT_REQUIRED
            if both:
                require_pkix_too(ctx, self.tls_name)
        except (OSError, ssl.SSLError) as e:
            usage_error("TLS configuration: %s" % e, EX_CONFIG)
        self.raw.setblocking(True)
        self.raw.settimeout(self.tmo["tls"])
        rec = lambda s, f, t=None, r="": (self.rd.add(s, f, t, r, self.tls_name, self.peer_ip),
                                          self.host.add(s, f, t, r, self.tls_name, self.peer_ip))
        try:
            s = ctx.wrap_socket(self.raw, server_hostname=self.tls_name or None,
                                do_handshake_on_connect=False)
            if dane:
                recs = [(int(a), int(b), int(c), bytes.fromhex(d)) for a, b, c, d in
                        (r.split() for r in self.o["--dane"])]
                usable = dane_setup(ctx, s, self.tls_name, self.o["--dane-name"], recs)
                if not usable:
                    self.host.add(0, 0, "validation-failure", "dane-no-match+errors",
                                  self.tls_name, self.peer_ip)
                    if not ignore:
                        rec(0, 1)
                        raise Err("tls", command, message="no usable TLSA records")
            s.do_handshake()
        except Err:
            self.botched = True
            raise
        except Exception as e:
            kind, rtype, reason = classify_tls_error(e)
            if both and isinstance(e, ssl.SSLCertVerificationError) and e.verify_code != 65:
                self.rd.add(0, 0, rtype, reason, self.tls_name, self.peer_ip)
                rec(0, 1)
            elif dane and isinstance(e, ssl.SSLCertVerificationError):
                self.host.add(0, 0, "validation-failure", "dane-no-match", self.tls_name,
                              self.peer_ip)
                rec(0, 1)
            elif isinstance(e, ssl.SSLCertVerificationError):
                self.rd.add(0, 0, rtype, reason, self.tls_name, self.peer_ip)
                rec(0, 1)
            else:
                rec(0, 1, rtype, reason)
            self.botched = True
            raise Err(kind, command, message="TLS handshake: %s" % e)
        der = s.getpeercert(binary_form=True)
        fail = self.pkix_check(der)
        pkix_ok = fail is None
        if not pkix_ok and not enforce:
            t, r = x509_to_tlsrpt(fail)
            self.rd.add(0, 0, t, r, self.tls_name, self.peer_ip)
        matched = dane_matched(s) if dane else None
        if dane and matched is None:
            self.host.add(0, 0, "validation-failure", "dane-no-match", self.tls_name, self.peer_ip)
        rec(1, 0)
        self.tls = {"version": s.version(), "cipher": s.cipher()[0], "pkix_verified": pkix_ok,
                    "dane_record": matched}
        self.sslsock = s
        w = Wire(s, self.wire.trace)
        w.first_read_after_tls = True

        def alert(e):
            kind, rtype, reason = classify_tls_error(e)
            rec(-1, 1, rtype, reason)
        w.on_first_read_alert = alert
        self.wire = w

    # -- session setup

    def ehlo_parse(self, rep):
        self.ext, self.flags, self.size, self.auth, self.limits = [], set(), 0, [], {}
        for t in rep.texts[1:]:
            t = t.strip()
            if not t:
                continue
            kw, _, params = t.partition(" ")
            kw = kw.upper()
            self.ext.append(kw + (" " + params if params else ""))
            if kw in ("STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME", "PIPELINING", "REQUIRETLS",
                      "SMTPUTF8") and (not params or kw == "SMTPUTF8"):
                self.flags.add(kw)
            elif kw == "SIZE":
                self.flags.add("SIZE")
                if params.isdigit():
                    self.size = int(params)
            elif kw == "AUTH":
                self.auth = [m.upper() for m in params.split(" ")]
            elif kw == "LIMITS":
                self.limits = parse_limits(" " + params)

    def open(self):
        mode = self.o.get("--tls", "starttls")
        self.connect()
        if mode == "immediate":
            self.handshake("tls")
        rep = self.reply("greeting", "greeting", ecodes=False)
        self.greeting = rep.lines[0]
        if rep.code != 220:
            raise rep.err("status", "greeting")
        ehlo_name = self.o.get("--ehlo") or socket.gethostname() or "localhost"
        self.send("EHLO " + ehlo_name, "ehlo")
        rep = self.reply("ehlo", ecodes=False)
        helo = False
        if rep.code in (500, 501, 502, 503, 504):
            self.send("HELO " + ehlo_name, "helo")
            r2 = self.reply("helo", ecodes=False)
            if r2.code != 250:
                raise r2.err("status", "helo")
            helo = True
            self.ext = []
        elif rep.code != 250:
            raise rep.err("status", "ehlo")
        else:
            self.ehlo_parse(rep)
        if mode == "starttls" or (mode == "opportunistic" and "STARTTLS" in self.flags):
            self.send("STARTTLS", "starttls")
            rep = self.reply("starttls")
            if rep.code != 220:
                for r in (self.rd, self.host):
                    r.add(0, 1, "starttls-not-supported", "smtp-starttls-reply-code-%d" % rep.code,
                          self.tls_name, self.peer_ip)
                raise rep.err("tls", "starttls")
            if self.wire.buf:
                self.botched = True
                raise Err("protocol", "starttls", message="data after STARTTLS 220 (injection)")
            self.handshake("starttls")
            self.send("EHLO " + ehlo_name, "ehlo")
            rep = self.reply("ehlo", ecodes=False)
            if rep.code in (500, 501, 502, 503, 504):
                raise Err("protocol", "ehlo", True, rep.code, "", rep.lines[0], rep.lines[1:],
                          "remote claims ehlo is not supported")
            if rep.code != 250:
                raise rep.err("status", "ehlo")
            self.ehlo_parse(rep)
        elif mode == "opportunistic":
            for r in (self.rd, self.host):
                r.add(0, 0, "starttls-not-supported", "", self.tls_name, self.peer_ip)
        if self.o.get("--auth"):
            self.authenticate()

    # -- AUTH (spec 7)

    def authenticate(self):
        o = self.o
        mech = o["--auth"].upper()
        secure = self.tls is not None and (self.tls["pkix_verified"] or self.tls["dane_record"])
        if not secure and not o.get("--insecure-auth"):
            raise Err("auth", "auth", True, message="credentials withheld: connection not verified")
        have = self.auth
        token = o.get("_token")
        if mech == "AUTO":
            prefs = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
                     "CRAM-MD5", "PLAIN", "LOGIN"]
            if token:
                prefs = ["OAUTHBEARER", "XOAUTH2"]
            if self.tls is None:
                prefs = [p for p in prefs if not p.endswith("-PLUS")]
            cands = [p for p in prefs if p in have]
            if not cands:
                raise Err("auth", "auth", True, message="no shared mechanism")
            mech = cands[0]
        elif mech not in have:
            raise Err("auth", "auth", True, message="no shared mechanism")
        user, pw = o.get("--user", ""), o.get("_password", "")
        steps = self.sasl(mech, user, pw, token)
        try:
            ir = next(steps)
        except ValueError as e:
            raise Err("auth", "auth", True, message=str(e))
        oauth = mech in ("XOAUTH2", "OAUTHBEARER")
        final = mech == "PLAIN" or oauth
        if ir is None:
            self.send("AUTH " + mech, "auth")
        else:
            self.send("AUTH %s %s" % (mech, base64.b64encode(ir).decode() if ir else "="), "auth",
                      secret=True)
        while True:
            rep = self.reply("auth", ecodes="ENHANCEDSTATUSCODES" in self.flags)
            if rep.code == 235:
                if not final:
                    raise Err("auth", "auth", False, rep.code, rep.ecode, rep.lines[0], [],
                              "server completed authentication early")
                return
            if rep.code != 334:
                raise rep.err("auth", "auth")
            if oauth:
                # Error challenge (RFC 7628 3.2.3): answer, then the server fails us.
                self.send("" if mech == "XOAUTH2" else "AQ==", "auth")
                oauth, final = False, True
                continue
            if final:
                raise Err("auth", "auth", False, rep.code, "", rep.lines[0], [],
                          "unexpected continuation")
            data = None
            if len(rep.lines) == 1:
                try:
                    data = base64.b64decode(rep.texts[0].encode(), validate=True)
                except ValueError:
                    data = None
            if data is None:
                self.abort("malformed continuation")
            try:
                resp = steps.send(data)
            except (ValueError, StopIteration) as e:
                self.abort(str(e) or "sasl error")
            if resp is None:
                final = True
                resp = b""
            if mech in ("LOGIN", "CRAM-MD5") and not final:
                final = True
            self.send(base64.b64encode(resp).decode(), "auth", secret=True)

    def abort(self, why):
        self.send("*", "auth")
        rep = self.reply("auth")
        if rep.code != 501:
            self.botched = True
        raise Err("auth", "auth", False, rep.code, rep.ecode, rep.lines[0], rep.lines[1:],
                  "authentication aborted: " + why)

    def sasl(self, mech, user, pw, token):
        if mech == "PLAIN":
            yield ("\0%s\0%s" % (user, pw)).encode()
        elif mech == "LOGIN":
            yield user.encode()
            yield pw.encode()
        elif mech == "CRAM-MD5":
            chal = yield None
            if not re.fullmatch(rb"<[^.]+\..*@.+>", chal or b""):
                raise ValueError("invalid challenge")
            key = pw.encode()
            if len(key) > 64:
                key = hashlib.md5(key).digest()
            yield user.encode() + b" " + hmac.new(key, chal, "md5").hexdigest().encode()
        elif mech == "XOAUTH2":
            yield ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()
        elif mech == "OAUTHBEARER":
            yield ("n,a=%s,\x01auth=Bearer %s\x01\x01" % (user, token)).encode()
        elif mech.startswith("SCRAM-"):
            cb, name = None, None
            if self.tls is not None:
                if self.tls["version"] == "TLSv1.3":
                    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
                    import fakesmtp
                    cb, name = fakesmtp._tls_exporter(self.sslsock), "tls-exporter"
                else:
                    cb, name = self.sslsock.get_channel_binding("tls-unique"), "tls-unique"
            g = scram_client(mech, user, pw, cb, name)
            msg = next(g)
            data = yield msg
            while True:
                out = g.send(data)
                data = yield out
                if out is None:
                    return
        else:
            raise ValueError("unsupported mechanism %s" % mech)

    # -- transactions (spec 9)

    def deliver(self, msg, res):
        o = self.o
        data, eight, utf8hdr = msg["data"], msg["eight"], msg["utf8hdr"]
        rcpts = o["--to"]
        if self.botched:
            raise Err("botched", message="session is botched")
        if self.need_rset:
            self.send("RSET", "rset")
            rep = self.reply("rset")
            if rep.code != 250:
                raise rep.err("status", "rset")
            self.need_rset = False
        smtputf8 = o.get("--require-smtputf8") or utf8hdr or any(
            any(ord(c) > 127 for c in a) for a in [o["--from"]] + rcpts)
        need8 = o.get("--require-8bitmime") or eight
        if need8 and "8BITMIME" not in self.flags:
            raise Err("8bitmime", permanent=True, message="server lacks 8BITMIME")
        if smtputf8 and "SMTPUTF8" not in self.flags:
            raise Err("smtputf8", permanent=False, message="server lacks SMTPUTF8")
        if o.get("--requiretls") and "REQUIRETLS" not in self.flags:
            raise Err("requiretls", permanent=False, message="server lacks REQUIRETLS")
        if "SIZE" in self.flags and self.size > 0 and len(data) > self.size:
            raise Err("size", permanent=True, message="message too large")
        mail = "MAIL FROM:<%s>" % o["--from"]
        if "SIZE" in self.flags:
            mail += " SIZE=%d" % len(data)
        if "8BITMIME" in self.flags:
            mail += " BODY=8BITMIME" if need8 else " BODY=7BIT"
        if smtputf8:
            mail += " SMTPUTF8"
        if o.get("--requiretls"):
            mail += " REQUIRETLS"
        self.need_rset = True
        if "PIPELINING" in self.flags and not o.get("--no-pipelining"):
            self.tx_pipelined(mail, rcpts, data, res)
        else:
            self.tx_plain(mail, rcpts, data, res)

    def rcpt_result(self, addr, rep, perm):
        return {"address": addr, "accepted": rep.code == 250, "permanent": perm, "code": rep.code,
                "enhanced_code": rep.ecode, "line": rep.lines[0]}

    def tx_plain(self, mail, rcpts, data, res):
        self.send(mail, "mailfrom")
        rep = self.reply("mailfrom", "mail")
        if rep.code != 250:
            raise rep.err("status", "mailfrom")
        out = res["recipients"]
        accepted = 0
        for i, r in enumerate(rcpts):
            self.send("RCPT TO:<%s>" % r, "rcptto")
            rep = self.reply("rcptto", "rcpt")
            if i > 0 and rep.code in (452, 552):
                for r2 in rcpts[i:]:
                    out.append(self.rcpt_result(r2, rep, False))
                break
            out.append(self.rcpt_result(r, rep, rep.code // 100 == 5))
            accepted += rep.code == 250
        if not accepted:
            if len(rcpts) == 1:
                raise rep.err("status", "rcptto")
            raise Err("no-recipients", "rcptto", message="no recipients accepted")
        self.send("DATA", "data")
        rep = self.reply("data", "data")
        if rep.code != 354:
            raise rep.err("status", "data")
        self.body(data)

    def tx_pipelined(self, mail, rcpts, data, res):
        buf = [mail] + ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]
        for l in buf:
            self.trace("C: " + l)
        self.wire.queue("".join(l + "\r\n" for l in buf).encode("utf-8"))
        mrep = self.reply("mailfrom", "mail")
        out = res["recipients"]
        reps, rerr = [], None
        try:
            for r in rcpts:
                reps.append(self.reply("rcptto", "rcpt"))
            drep = self.reply("data", "data")
        except Err as e:
            rerr, drep = e, None
        if mrep.code != 250:
            raise mrep.err("status", "mailfrom")
        for r, rep in zip(rcpts, reps):
            out.append(self.rcpt_result(r, rep, rep.code // 100 == 5 and rep.code != 552))
        accepted = sum(rep.code == 250 for rep in reps)
        if rerr is not None:
            if reps and not accepted and rerr.kind == "io":
                last = reps[-1]
                raise Err("status", "data", last.code // 100 == 5 and last.code != 552, last.code,
                          last.ecode, last.lines[0], last.lines[1:],
                          "server closed the connection before the DATA reply")
            raise rerr
        if not accepted:
            if drep.code == 354:
                self.trace("C: .")
                self.write(b".\r\n", "write", "data")
                self.reply("data", "dataend")
            if len(rcpts) == 1:
                e = reps[0].err("status", "rcptto")
                e.permanent = reps[0].code // 100 == 5 and reps[0].code != 552
                raise e
            raise Err("no-recipients", "rcptto", message="no recipients accepted")
        if drep.code != 354:
            raise drep.err("status", "data")
        self.body(data)

    def body(self, data):
        self.write(dot_stuff(data), "body", "data")
        rep = self.reply("data", "dataend")
        if rep.code != 250:
            raise rep.err("status", "data")
        self.need_rset = False

    def quit(self):
        if self.wire is None or self.botched:
            return
        try:
            self.send("QUIT", "quit")
            self.wire.reply(self.dl("quit"), "quit", False)
        except Err:
            pass


def parse_limits(s):
    items = {}
    while s:
        m = re.match(r" ([A-Za-z0-9_-]+)=([\x21-\x3a\x3c-\x7e]+)", s)
        if not m:
            return {}
        name = m.group(1).upper()
        if name in items:
            return {}
        items[name] = m.group(2)
        s = s[m.end():]
    return items


def exit_code(top, msgs, auth_failed):
    errs = ([top] if top else []) + [m["_err"] for m in msgs if m.get("_err")]
    rcpt_fail = [r for m in msgs for r in m["recipients"] if not r["accepted"]]
    if auth_failed:
        return EX_AUTH
    if any(e.kind == "message" for e in errs):
        return EX_MSG
    if any(e.permanent for e in errs) or any(r["permanent"] for r in rcpt_fail):
        return EX_PERM
    if errs or rcpt_fail:
        return EX_TEMP
    return 0


def main(argv):
    json_mode = "--json" in argv
    sess = None
    top = None
    msgs = []
    try:
        o, errors = parse_args(argv)
        if errors:
            raise Err("usage", "", True, message=errors[0][1])
        for a in [o.get("--from")] + o["--to"]:
            if a is None:
                usage_error("--from and --to are required")
            check_addr(a, "an")
        if not o["--to"]:
            usage_error("at least one --to is required")
        if o.get("--tls", "starttls") not in ("immediate", "starttls", "opportunistic", "none"):
            usage_error("bad --tls value", EX_CONFIG)
        if o.get("--tls-verify", "pkix") not in ("pkix", "none"):
            usage_error("bad --tls-verify value", EX_CONFIG)
        if o.get("--timeout") is not None:
            try:
                if float(o["--timeout"]) <= 0:
                    raise ValueError
            except ValueError:
                usage_error("bad --timeout value", EX_CONFIG)
        for d in o["--dane"]:
            if not re.fullmatch(r"\d+ \d+ \d+ [0-9A-Fa-f]+", d):
                usage_error("bad --dane value", EX_CONFIG)
        for k in ("--ca-file", "--client-cert", "--client-key"):
            if o.get(k):
                read_file(o[k], k)
        if o.get("--auth"):
            if o.get("--password-file"):
                pw = read_file(o["--password-file"], "password file").decode("utf-8")
                o["_password"] = pw[:-1] if pw.endswith("\n") else pw
            else:
                o["_password"] = os.environ.get("SMTPC_PASSWORD", "")
            if o.get("--oauth-token-file"):
                t = read_file(o["--oauth-token-file"], "token file").decode("utf-8")
                o["_token"] = t.strip()
        sources = o["-m"] or ["-"]
        raw_msgs = [sys.stdin.buffer.read() if p == "-" else read_file(p, "message") for p in sources]
        sess = Session(o)
        sess.open()
        for raw in raw_msgs:
            res = {"ok": False, "error": None, "recipients": []}
            msgs.append(res)
            try:
                data, eight, utf8hdr = prepare_message(raw)
                sess.deliver({"data": data, "eight": eight, "utf8hdr": utf8hdr}, res)
                res["ok"] = all(r["accepted"] for r in res["recipients"])
            except Err as e:
                res["_err"] = e
                res["error"] = e.json()
        sess.quit()
    except Err as e:
        top = e
        if sess is not None and sess.wire is not None and not sess.botched and e.kind not in (
                "usage", "config", "io", "timeout", "protocol", "tls"):
            sess.quit()
    auth_failed = top is not None and top.kind == "auth"
    if top is not None and top.kind in ("usage", "config"):
        code = EX_USAGE if top.kind == "usage" else EX_CONFIG
    else:
        code = exit_code(top, msgs, auth_failed)
    ok = top is None and bool(msgs) and all(m["ok"] for m in msgs)
    if json_mode:
        out = {"ok": ok, "error": top.json() if top else None,
               "server": {"greeting": sess.greeting if sess else "",
                          "name": (sess.greeting[4:].split(" ")[0] if sess and len(sess.greeting) > 4
                                   else ""),
                          "extensions": sess.ext if sess else [], "size": sess.size if sess else 0,
                          "auth": sess.auth if sess else [], "limits": sess.limits if sess else {}},
               "tls": sess.tls if sess else None,
               "tlsrpt": {"recipient_domain": (sess.rd if sess else Rpt()).json(),
                          "host": (sess.host if sess else Rpt()).json()},
               "messages": [{k: v for k, v in m.items() if not k.startswith("_")} for m in msgs]}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    else:
        for m in msgs:
            for r in m["recipients"]:
                print("%s %s: %s" % ("ok" if r["accepted"] else "FAILED", r["address"], r["line"]))
            if m["error"]:
                print("message failed: %s %s" % (m["error"]["kind"], m["error"]["line"]))
        if top:
            sys.stderr.write("smtpc: %s: %s %s\n" % (top.kind, top.message, top.line))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
