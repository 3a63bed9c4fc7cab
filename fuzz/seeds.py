#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-* (stdlib only).

The outputs are committed; run again after changing this file. Seeds are
real protocol data: SMTP replies and EHLO responses, SASL exchanges from
the RFC examples (RFC 2195, 4616, 5802, 7677, 7628), MTA-STS records and
policies from RFC 8461, TLSRPT records from RFC 8460, TLSA records, DNS
answer packets, DATA bodies, command lines and whole session scripts in
the input formats the targets document. Other files in the corpus
directories (crash-*, regressions) are left alone.
"""

import base64
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- SMTP text

GREETING = "220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n"
EHLO = ("250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
        "250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 "
        "SCRAM-SHA-256-PLUS XOAUTH2 OAUTHBEARER\r\n250-AUTH=PLAIN LOGIN\r\n"
        "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
        "250-REQUIRETLS\r\n250-LIMITS RCPTMAX=20 MAILMAX=5\r\n250 CHUNKING\r\n")


def seeds_reply():
    streams = {
        "greeting": GREETING,
        "ehlo": EHLO,
        "pipelined": "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <x@y>: Recipient address "
                     "rejected: User unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                     "250 2.0.0 Ok: queued as 4Q1\r\n221 2.0.0 Bye\r\n",
        "bare-code": "250\r\n220 \r\n",
        "lf-only": "250-a\n250-b\n250 c\n",
        "cr-inside": "250 a\rb\r\r\n",
        "multi-554": "554-5.7.1 first\r\n554-5.7.1 second\r\n554 5.7.1 last\r\n",
        "mismatch": "250-a\r\n251 b\r\n",
        "syntax": "25 short\r\n",
        "bad-sep": "250xnope\r\n",
        "long-line": "250 " + "x" * 2100 + "\r\n",
        "max-line": "250 " + "y" * 2042 + "\r\n",
        "starttls-injection": "220 2.0.0 Ready to start TLS\r\n250 injected\r\n",
        "auth": "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n",
    }
    for name, s in streams.items():
        write("reply", name, b"\x00" + s.encode("latin-1"))
    # split variants: k chunk sizes (each + 1) then the stream
    write("reply", "split-1", b"\x01\x00" + EHLO.encode())
    write("reply", "split-mixed", b"\x04\x02\x06\x00\x1f" + streams["pipelined"].encode())
    write("reply", "split-long", b"\x02\xff\x10" + streams["long-line"].encode())


def seeds_ecode():
    def code_bytes(code):
        v = code + 50
        return bytes([v & 0xff, v >> 8])
    cases = [(550, "5.1.1 User unknown"), (250, "2.0.0 Ok: queued"), (421, "4.7.0 Try again"),
             (550, "5.7.1"), (550, "4.1.1 wrong class"), (554, "5.999.999 x"),
             (554, "5.1234.1 too many"), (250, "2.1 short"), (530, "5.7.0. dot"), (0, "0.0.0")]
    for i, (code, text) in enumerate(cases):
        write("ecode", "%02d" % i, code_bytes(code) + b"\x10" + text.encode())
    write("ecode", "small-out", code_bytes(550) + b"\x05" + b"5.1.1 x")


def seeds_ehlo():
    lines = EHLO.replace("\r\n", "\n").split("\n")
    texts = [l[4:] for l in lines if l]
    write("ehlo", "postfix", "\n".join(texts))
    write("ehlo", "exchange", "mx.outlook.com Hello [192.0.2.1]\nSIZE 157286400\nPIPELINING\n"
          "DSN\nENHANCEDSTATUSCODES\nAUTH LOGIN XOAUTH2\n8BITMIME\nBINARYMIME\nCHUNKING\nSMTPUTF8")
    write("ehlo", "gmail", "smtp.gmail.com at your service, [192.0.2.1]\nSIZE 35882577\n8BITMIME\n"
          "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\nENHANCEDSTATUSCODES\n"
          "PIPELINING\nCHUNKING\nSMTPUTF8")
    write("ehlo", "odd", "x\n  size   \t\nSIZE 99999999999999999999999\nauth\nAUTH  \t scram-sha-1"
          "  plain \nLIMITS  RCPTMAX=5\nLIMITS\nstarttls now\nSMTPUTF8 param")
    write("ehlo", "limits", "x\nLIMITS RCPTMAX=100 MAILMAX=1000 RCPTDOMAINMAX=10 X-OTHER=a;b")


def seeds_b64():
    for i, s in enumerate(["", "AHVzZXIAcGVuY2ls", "VXNlcm5hbWU6", "QQ==", "QUI=", "QR==",
                           "QUJ=", "Q===", "=QQ=", "QQ", "cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0w=",
                           "a b=", "++//"]):
        write("b64", "%02d" % i, s)


def seeds_limits():
    for i, s in enumerate([" RCPTMAX=20 MAILMAX=5", " MAILMAX=1000 RCPTMAX=100 RCPTDOMAINMAX=10",
                           " X-FOO=bar", "", " RCPTMAX=1234567", " rcptmax=3 RCPTMAX=4",
                           " RCPTMAX=", "  RCPTMAX=1", " A=1 B=2 C=3 D=4", " RCPTMAX=+5",
                           " NAME=v;x"]):
        write("limits", "%02d" % i, s)


# ---------------------------------------------------------------- SASL

def sasl_input(flags, challenges, creds=None):
    out = bytes([flags])
    if creds is not None:
        for c in creds:
            out += bytes([len(c)]) + c
    for ch in challenges:
        if isinstance(ch, str):
            ch = ch.encode()
        out += struct.pack("<H", len(ch)) + ch
    return out


SCRAM1_FIRST = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
SCRAM1_FINAL = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
SCRAM256_FIRST = ("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                  "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
SCRAM256_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def seeds_sasl():
    write("sasl_plain", "initial", sasl_input(0, []))
    write("sasl_plain", "challenge", sasl_input(0, [""]))
    write("sasl_plain", "creds", sasl_input(8, ["x"], [b"tim", b"tanstaaftanstaaf", b""]))
    write("sasl_login", "rfc", sasl_input(0, ["Username:", "Password:"]))
    write("sasl_login", "extra", sasl_input(0, ["Username:", "Password:", "More?"]))
    write("sasl_login", "creds", sasl_input(8, ["User Name", "Password"],
                                            [b"\xc3\x80dmin", b"p\xe2\x80\x8bw", b""]))
    # RFC 2195 2
    write("sasl_cram_md5", "rfc2195",
          sasl_input(8, ["<1896.697170952@postoffice.reston.mci.net>"],
                     [b"tim", b"tanstaaftanstaaf", b""]))
    write("sasl_cram_md5", "empty", sasl_input(0, [""]))
    write("sasl_cram_md5", "twice", sasl_input(0, ["<1.2@x>", "<3.4@x>"]))
    # RFC 5802 5 and RFC 7677 3 (flags 4: no channel binding, so c=biws)
    for t, first, final in (("sasl_scram_sha_1", SCRAM1_FIRST, SCRAM1_FINAL),
                            ("sasl_scram_sha_1_plus", SCRAM1_FIRST, SCRAM1_FINAL),
                            ("sasl_scram_sha_256", SCRAM256_FIRST, SCRAM256_FINAL),
                            ("sasl_scram_sha_256_plus", SCRAM256_FIRST, SCRAM256_FINAL)):
        write(t, "rfc", sasl_input(4, [first, final]))
        write(t, "rfc-cb", sasl_input(0, [first, final]))
        write(t, "rfc-plus", sasl_input(1, [first, final]))
        write(t, "rfc-unique", sasl_input(3, [first, final]))
        write(t, "server-error", sasl_input(4, [first, "e=invalid-proof"]))
        write(t, "mandatory-ext", sasl_input(4, ["m=ext," + first]))
        write(t, "low-iter", sasl_input(4, [first.replace("i=4096", "i=1024")]))
        write(t, "short-salt", sasl_input(4, [first.split(",s=")[0] + ",s=QSXCRw==,i=4096"]))
        write(t, "extension", sasl_input(4, [first + ",x=ext", final + ",y=z", "extra"]))
        write(t, "creds", sasl_input(12, [first, final], [b"us,er=1", b"pencil", b""]))
    # RFC 7628 3.2.2 error, and Google's XOAUTH2 error
    oauth_err = ('{"status":"invalid_token","scope":"example_scope",'
                 '"openid-configuration":"https://example.com/.well-known/openid-configuration"}')
    write("sasl_oauthbearer", "rfc7628-error", sasl_input(0, [oauth_err, ""]))
    write("sasl_oauthbearer", "initial", sasl_input(0, []))
    write("sasl_oauthbearer", "creds", sasl_input(8, [oauth_err], [b"u=,x", b"", b"tok"]))
    write("sasl_xoauth2", "google-error",
          sasl_input(0, ['{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}',
                         ""]))
    write("sasl_xoauth2", "initial", sasl_input(0, []))
    write("sasl_xoauth2", "creds", sasl_input(8, ["{}"], [b"someone@example.com", b"", b"ya29.x"]))


# ---------------------------------------------------------------- policies

def seeds_mtasts():
    recs = ["v=STSv1; id=20160831085700Z;", "v=STSv1; id=20190429T010101;",
            "v=STSv1;id=a", "v=STSv1; id=a; ext=1", "v=STSv1 \t;id=abc ;", "v=STSv1",
            "v=spf1 -all", "v=STSv1; id=a; id=b", "v=STSv1; id=0123456789abcdefghijABCDEFGHIJ012"]
    for i, r in enumerate(recs):
        write("mtasts_record", "%02d" % i, r)
    pols = [
        # RFC 8461 3.2
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
        "mx: backupmx.example.com\nmax_age: 604800\n",
        "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 86400\r\n",
        "version: STSv1\nmode: none\nmax_age: 86400",
        "version:STSv1\nmode:\tenforce\nmx:  *.example.com \nmax_age: 31557601\next: v a l",
        "version: STSv1\nmode: enforce\nmx: xn--bcher-kva.example\nmax_age: 0000000001\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",
        "mode: testing\nversion: STSv1\nmx: a\nmax_age: 2147483648\n",
    ]
    for i, p in enumerate(pols):
        write("mtasts_policy", "%02d" % i, p)
    rpts = ["v=TLSRPTv1;rua=mailto:reports@example.com",
            "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
            "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/x ; ext=1",
            "v=TLSRPTv1; rua=mailto:a%40b@example.com!10m", "v=TLSRPTv1;", "v=TLSRPTv1; rua=",
            "v=TLSRPTv1; rua=nope", "v=STSv1; id=a"]
    for i, r in enumerate(rpts):
        write("tlsrpt_record", "%02d" % i, r)


SPKI_HEX = ("3059301306072a8648ce3d020106082a8648ce3d03010703420004010c4fd41afaa5d09291ea5bfaaf6f"
            "c46fd97d4898e5921cea31cc84b16875d43dd3e5c05bf21aa59c1cf9a8cf11c0d1dfb881c00d738ca9e2"
            "198271c069394a")
SHA256 = "2bb183af1d2de2fca0a1c3b7e3d8f2c7d5b7a8f0a3e7f3d8c1b2a39484756601"


def seeds_tlsa():
    for i, t in enumerate(["3 1 1 " + SHA256, "2 0 1 " + SHA256.upper(), "3 1 2 " + "ab" * 64,
                           "3 1 0 " + SPKI_HEX, "2 1 0 " + SPKI_HEX[:40] + " " + SPKI_HEX[40:],
                           "3 0 0 3082", "1 1 1 " + SHA256, "3 1 1 abc", "256 1 1 ab",
                           "3  1\t1 ab cd"]):
        write("tlsa_text", "%02d" % i, t)


# ---------------------------------------------------------------- DNS

def dname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def rr(owner, rtype, rdata, ttl=300, cls=1):
    return owner + struct.pack(">HHIH", rtype, cls, ttl, len(rdata)) + rdata


def packet(qname, qtype, answers=(), rcode=0, ad=False, additional=(), authority=()):
    flags = 0x8180 | rcode | (0x0020 if ad else 0)
    head = struct.pack(">HHHHHH", 0x1234, flags, 1, len(answers), len(authority),
                       len(additional))
    q = dname(qname) + struct.pack(">HH", qtype, 1)
    return head + q + b"".join(answers) + b"".join(authority) + b"".join(additional)


PTR = b"\xc0\x0c"  # compression pointer to the question name


def opt_ede(code, text):
    opt = struct.pack(">HH", 15, 2 + len(text)) + struct.pack(">H", code) + text.encode()
    return b"\x00" + struct.pack(">HHIH", 41, 1232, 0x8000, len(opt)) + opt


def txt(*strings):
    return b"".join(bytes([len(s)]) + s.encode() for s in strings)


def seeds_dns():
    name = "example.com."
    write("dns_wire", "a", packet(name, 1, [rr(PTR, 1, bytes([192, 0, 2, 1]))], ad=True))
    write("dns_wire", "aaaa", packet(name, 28, [rr(PTR, 28, bytes.fromhex(
        "20010db8000000000000000000000001"))]))
    mx = [rr(PTR, 15, struct.pack(">H", 10) + dname("mx1.example.com")),
          rr(PTR, 15, struct.pack(">H", 20) + b"\x03mx2" + PTR)]
    write("dns_wire", "mx", packet(name, 15, mx, ad=True))
    write("dns_wire", "null-mx", packet(name, 15, [rr(PTR, 15, b"\x00\x00\x00")]))
    write("dns_wire", "txt-mtasts", packet("_mta-sts." + name, 16, [
        rr(PTR, 16, txt("v=STSv1; id=2016", "0831085700Z;")),
        rr(PTR, 16, txt("v=spf1 -all"))]))
    write("dns_wire", "txt-tlsrpt", packet("_smtp._tls." + name, 16, [
        rr(PTR, 16, txt("v=TLSRPTv1;rua=mailto:reports@example.com"))]))
    write("dns_wire", "tlsa", packet("_25._tcp.mx1." + name, 52, [
        rr(PTR, 52, bytes([3, 1, 1]) + bytes.fromhex(SHA256)),
        rr(PTR, 52, bytes([2, 0, 0]) + bytes.fromhex(SPKI_HEX))], ad=True))
    cname_chain = [rr(PTR, 5, dname("alias.example.net")),
                   rr(dname("alias.example.net"), 5, dname("mx.example.org")),
                   rr(dname("mx.example.org"), 1, bytes([198, 51, 100, 7]))]
    write("dns_wire", "cname-chain", packet("www." + name, 1, cname_chain))
    write("dns_wire", "cname", packet("www." + name, 5, cname_chain[:1]))
    loop = [rr(PTR, 5, dname("b.example")), rr(dname("b.example"), 5, dname("www.example.com"))]
    write("dns_wire", "cname-loop", packet("www." + name, 1, loop))
    write("dns_wire", "nxdomain-ad", packet("nope." + name, 1, rcode=3, ad=True))
    write("dns_wire", "nodata", packet(name, 52))
    write("dns_wire", "servfail-ede", packet(name, 52, rcode=2,
                                             additional=[opt_ede(6, "signature invalid")]))
    write("dns_wire", "refused", packet(name, 1, rcode=5, additional=[opt_ede(18, "")]))
    write("dns_wire", "truncated", packet(name, 15, mx)[:-5])
    write("dns_wire", "bad-a-len", packet(name, 1, [rr(PTR, 1, b"\x01\x02\x03")]))


# ---------------------------------------------------------------- DATA

def seeds_dotstuff():
    msgs = {
        "simple": "Subject: hi\r\n\r\nhello\r\n",
        "dots": ".\r\n..\r\n.x\r\n\r\n.\r\n",
        "empty": "",
        "bare-lf": "a\nb\n",
        "bare-cr": "a\rb\r\n",
        "cr-end": "a\r\n\r",
        "no-final": "no crlf at the end",
        "smuggle": "a\r\n\n.\n\r\n.\r\nb\r\n",
        "8bit": "caf\xc3\xa9\r\n",
    }
    for name, m in msgs.items():
        write("dotstuff", name, b"\x00\x00" + m.encode("latin-1"))
        write("dotstuff", name + "-norm", b"\x01\x00" + m.encode("latin-1"))
    write("dotstuff", "split", b"\x00\x04\x00\x01\x05\x00" + msgs["dots"].encode())
    write("dotstuff", "split-norm", b"\x01\x03\x00\x00\x02" + msgs["smuggle"].encode())


# ---------------------------------------------------------------- CLI

def seeds_cli():
    def argv(cmd, *args):
        return bytes([cmd]) + b"\x00".join(a.encode("latin-1") for a in args)
    write("cli_opts", "send", argv(0, "--server", "mx.example.com:587", "--from", "a@example.com",
                                   "--to", "b@example.net", "--to", "c@example.net", "-m", "msg.eml",
                                   "--tls", "starttls", "--auth", "SCRAM-SHA-256", "--user", "a",
                                   "--password-file", "/dev/null", "--timeout", "2.5", "--json"))
    write("cli_opts", "send-ipv6", argv(0, "--server", "[2001:db8::1]:465", "--tls", "immediate",
                                        "--from", "", "--to", "x@[192.0.2.1]", "--dane",
                                        "3 1 1 " + SHA256, "--dane-name", "mx.example"))
    write("cli_opts", "deliver", argv(1, "--from", "a@example.com", "--to", "b@example.net",
                                      "--dns", "127.0.0.1:5353", "--dns", "[::1]:53",
                                      "--dnssec", "validate", "--port", "2525",
                                      "--local-ip", "192.0.2.1", "--requiretls", "--json"))
    write("cli_opts", "probe", argv(2, "--dns", "192.0.2.53", "--json", "example.com"))
    write("cli_opts", "bad-ctl", argv(0, "--server", "h", "--from", "a\r\nRCPT TO:<x>", "--to",
                                      "b", "--json"))
    write("cli_opts", "unknown", argv(0, "--nope", "--json"))
    write("cli_opts", "missing-arg", argv(0, "--server"))
    write("cli_opts", "help", argv(2, "--help"))
    write("cli_opts", "raw-cmd", argv(3, "bogus", "--json", "--", "--server"))
    write("cli_opts", "bad-timeout", argv(0, "--server", "h:99999", "--timeout", "nan", "--json"))


# ---------------------------------------------------------------- session

# action bytes (fuzz_session.c)
OPEN, SEND, RSET, QUIT = 0x00, 0x01, 0x02, 0x03
AUTO = 0xf8
LINE = 0x7f          # the next line arrives and is fed
WRITE_ALL = 0x8f     # write up to 32 KiB
TLS_UP = 0xc3
TLS_UP_UNVERIFIED = 0xc4
TLS_FAIL = 0xc6
EOF = 0xc0
TIMEOUT = 0xc2
WRITE_FAIL = 0x9f


def session(c0, c1, c2, c3, actions, stream):
    return bytes([c0, c1, c2, c3, len(actions)]) + bytes(actions) + stream.encode("latin-1")


NONE, STARTTLS, OPPORTUNISTIC, IMMEDIATE = 3, 1, 2, 0
PIPE, INSECURE = 4, 8
EHLO_PIPE = ("250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
             "250-SMTPUTF8\r\n250 SIZE 1000000\r\n")
EHLO_PLAIN = "250-mx.test\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
EHLO_TLS = "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
EHLO_AUTH = ("250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
             "250 AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-256-PLUS XOAUTH2 "
             "OAUTHBEARER\r\n")
G = "220 mx.test ESMTP\r\n"
TX2 = "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"
OK = "250 2.0.0 queued\r\n"
BYE = "221 2.0.0 bye\r\n"
STD = [OPEN, AUTO, SEND, AUTO, QUIT, AUTO]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def seeds_session():
    s = {}
    s["pipelined"] = session(NONE | PIPE, 0, 1 << 5, 2, STD, G + EHLO_PIPE + TX2 + OK + BYE)
    s["nonpipelined-452"] = session(NONE, 0, 2 << 5, 3, STD,
                                    G + EHLO_PLAIN + "250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n"
                                    "354 go\r\n" + OK + BYE)
    s["starttls-plain"] = session(STARTTLS | PIPE, 2, 1 << 5, 1, STD,
                                  G + EHLO_TLS + "220 2.0.0 ready\r\n" + EHLO_AUTH +
                                  "235 2.7.0 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n" + OK + BYE)
    s["immediate-login"] = session(IMMEDIATE, 3, 7 << 5, 1, STD,
                                   G + EHLO_AUTH + "334 UGFzc3dvcmQ6\r\n"
                                   "235 2.7.0 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n" + OK + BYE)
    s["cram-insecure"] = session(NONE | INSECURE, 4, 1 << 5, 1, STD,
                                 G + EHLO_AUTH + "334 " + b64("<1896.697170952@postoffice.reston."
                                                              "mci.net>") +
                                 "\r\n235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n" + OK + BYE)
    s["scram-plus"] = session(IMMEDIATE, 8, 1 << 5, 1, STD,
                              G + EHLO_AUTH + "334 " + b64(SCRAM256_FIRST) +
                              "\r\n535 5.7.8 no\r\n")
    s["xoauth2-error"] = session(IMMEDIATE, 9, 1 << 5, 1, STD,
                                 G + EHLO_AUTH + "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"
                                 "535 5.7.8 token rejected\r\n")
    s["oauthbearer"] = session(IMMEDIATE, 10, 1 << 5, 1, STD,
                               G + EHLO_AUTH + "235 2.7.0 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n" +
                               OK + BYE)
    s["helo-fallback"] = session(NONE, 0, 1 << 5, 1, STD,
                                 G + "502 5.5.1 no EHLO\r\n250 old.test\r\n250 ok\r\n250 ok\r\n"
                                 "354 go\r\n" + OK + BYE)
    s["opportunistic-no-tls"] = session(OPPORTUNISTIC | PIPE, 0, (7 << 5) | 1 | 4, 2, STD,
                                        G + EHLO_PIPE + TX2 + OK + BYE)
    s["rset-resend"] = session(NONE | PIPE, 0, 1 << 5, 1,
                               [OPEN, AUTO, SEND, AUTO, SEND, AUTO, RSET, AUTO, QUIT, AUTO],
                               G + EHLO_PIPE + "451 4.3.0 later\r\n250 ok\r\n354 go\r\n" +
                               "250 2.0.0 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n" + OK +
                               "250 ok\r\n" + BYE)
    s["bare-cr-reader"] = session(NONE | 16 | 32, 0, 4 << 5, 1, STD,
                                  G + EHLO_PLAIN + "250 ok\r\n250 ok\r\n354 go\r\n" + BYE)
    s["large-reader"] = session(NONE | PIPE | 16 | 32, 0, 6 << 5, 2 | (3 << 3), STD,
                                G + EHLO_PIPE + TX2 + OK + BYE)
    s["large-reader-fails"] = session(NONE | PIPE | 16 | 64, 0, 6 << 5, 1, STD,
                                      G + EHLO_PIPE + "250 ok\r\n250 ok\r\n354 go\r\n")
    s["normalize-lf"] = session(NONE | PIPE, 0, (3 << 5) | 16, 1, STD,
                                G + EHLO_PIPE + "250 ok\r\n250 ok\r\n354 go\r\n" + OK + BYE)
    s["mid-data-550"] = session(NONE, 0, 6 << 5, 1,
                                [OPEN, AUTO, SEND, WRITE_ALL, LINE, WRITE_ALL, LINE, WRITE_ALL,
                                 LINE, WRITE_ALL, 0x80, LINE, AUTO],
                                G + EHLO_PLAIN + "250 ok\r\n250 ok\r\n354 go\r\n"
                                "550 5.7.1 content rejected\r\n")
    s["injection"] = session(STARTTLS, 0, 1 << 5, 1,
                             [OPEN, LINE, WRITE_ALL, LINE, LINE, LINE, WRITE_ALL, 0x40 | 40, AUTO],
                             G + EHLO_TLS + "220 2.0.0 go\r\n250-injected\r\n250 PIPELINING\r\n")
    s["dot-empty"] = session(NONE | PIPE, 0, 1 << 5, 2, STD,
                             G + EHLO_PIPE + "250 ok\r\n550 no\r\n550 no\r\n354 go\r\n"
                             "554 5.5.1 no valid recipients\r\n" + BYE)
    s["close-before-data"] = session(NONE | PIPE, 0, 1 << 5, 2, [OPEN, AUTO, SEND, AUTO],
                                     G + EHLO_PIPE + "250 ok\r\n450 4.2.0 later\r\n550 5.1.1 x\r\n")
    s["mail-421"] = session(NONE | PIPE, 0, 1 << 5, 3, STD,
                            G + EHLO_PIPE + "421 4.3.2 shutting down\r\n")
    s["tls-fail"] = session(STARTTLS, 0, 1 << 5, 1, [OPEN, LINE, WRITE_ALL, LINE, LINE, LINE,
                                                     WRITE_ALL, LINE, TLS_FAIL, SEND, AUTO],
                            G + EHLO_TLS + "220 go\r\n")
    s["unverified-auth"] = session(STARTTLS, 2, 1 << 5, 1,
                                   [OPEN, LINE, WRITE_ALL, LINE, LINE, LINE, WRITE_ALL, LINE,
                                    TLS_UP_UNVERIFIED, AUTO],
                                   G + EHLO_TLS + "220 go\r\n" + EHLO_AUTH)
    s["write-fail-pipelined"] = session(NONE | PIPE, 0, 1 << 5, 2,
                                        [OPEN, AUTO, SEND, 0x80 | 5, WRITE_FAIL, AUTO],
                                        G + EHLO_PIPE + TX2)
    s["timeout-eof"] = session(NONE, 0, 1 << 5, 1, [OPEN, LINE, TIMEOUT, SEND, EOF, AUTO],
                               G + EHLO_PLAIN)
    s["limits-size"] = session(NONE | PIPE, 0, 6 << 5, 1, STD,
                               G + "250-mx.test\r\n250-LIMITS RCPTMAX=1\r\n250 SIZE 100\r\n" + BYE)
    s["requiretls"] = session(NONE | PIPE, 0, (1 << 5) | 8, 1, STD,
                              G + "250-mx.test\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n"
                              "250 ok\r\n250 ok\r\n354 go\r\n" + OK + BYE)
    for name, data in s.items():
        write("session", name, data)


def io(c0, stream, sizes=b""):
    return bytes([c0, len(sizes)]) + sizes + stream.encode("latin-1")


def seeds_session_io():
    """fuzz_session_io: byte 0 TLS mode | 4 pipelining | 8 auth | rcpts << 4 | 0x80 greedy."""
    s = {
        "pipelined": io(NONE | PIPE | (2 << 4), G + EHLO_PIPE + TX2 + OK + BYE),
        "pipelined-chunks": io(NONE | PIPE | (2 << 4), G + EHLO_PIPE + TX2 + OK + BYE,
                               bytes([18, 0, 5, 100])),
        "plain-452": io(NONE | (3 << 4), G + EHLO_PLAIN + "250 ok\r\n250 ok\r\n452 4.5.3 no\r\n"
                        "354 go\r\n" + OK + BYE),
        "helo": io(NONE | (1 << 4), G + "500 no\r\n250 old\r\n250 ok\r\n250 ok\r\n354 go\r\n" +
                   OK + BYE),
        # STARTTLS accepted, then a TLS alert (handshake_failure) instead of a ServerHello
        "starttls-alert": io(STARTTLS | (1 << 4), G + EHLO_TLS + "220 go ahead\r\n" +
                             "\x15\x03\x03\x00\x02\x02\x28"),
        "starttls-plaintext": io(STARTTLS | (1 << 4), G + EHLO_TLS + "220 go ahead\r\n" +
                                 EHLO_AUTH + "250 ok\r\n"),
        "starttls-injection": io(STARTTLS | (1 << 4), G + EHLO_TLS +
                                 "220 go ahead\r\n250 injected\r\n", bytes([18, 42, 27])),
        "greedy": io(NONE | PIPE | (2 << 4) | 0x80, G + EHLO_PIPE + TX2 + OK + BYE),
        "starttls-refused": io(STARTTLS | (1 << 4), G + EHLO_TLS + "454 4.7.0 no TLS\r\n"),
        "immediate-garbage": io(IMMEDIATE | (1 << 4), G + EHLO_PIPE),
        "opportunistic": io(OPPORTUNISTIC | PIPE | (1 << 4), G + EHLO_PIPE +
                            "250 ok\r\n250 ok\r\n354 go\r\n" + OK + BYE),
        "auth-withheld": io(NONE | 8 | (1 << 4), G + EHLO_AUTH + "235 ok\r\n"),
        "close-mid-data": io(NONE | (1 << 4), G + EHLO_PLAIN + "250 ok\r\n250 ok\r\n354 go\r\n"),
    }
    for name, data in s.items():
        write("session_io", name, data)


def main():
    seeds_reply()
    seeds_ecode()
    seeds_ehlo()
    seeds_limits()
    seeds_b64()
    seeds_sasl()
    seeds_mtasts()
    seeds_tlsa()
    seeds_dns()
    seeds_dotstuff()
    seeds_cli()
    seeds_session()
    seeds_session_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
