"""Secrets: passwords and OAuth tokens never appear in stdout or stderr (with --trace and
--json, on success and on failure), in no encoding (raw, base64 at any alignment, the
SASL messages that carry them), nor in smtpc's memory once AUTH is over; and without
--insecure-auth no AUTH command (so no credential) is ever sent over plaintext or
unverified TLS (the fake server records every client byte)."""

import base64
import os
import re
import time

from harness import (GREET, add, check, client_bytes, delivered, ehlo, expect, one_json,
                     send_args, server_clean, session)
import harness

USER = "alice@example.org"
# Long and distinctive, so that a hit is never a coincidence.
PASSWORD = "Pw-7f3c9e2a-hostile-SECRET-91b4"
TOKEN = "ya29.TOKEN-5d8e1f0b7c2a4e6d-oauth-SECRET"
ESC = "ENHANCEDSTATUSCODES"


def forms(secret, *carriers):
    """Byte strings that must never show up: the secret, its base64 at each of the three
    alignments, its hex, and the base64 of each SASL message carrying it."""
    s = secret.encode()
    out = {"raw": s, "hex": s.hex().encode()}
    for j in range(3):
        part = s[j:j + 3 * ((len(s) - j) // 3)]
        out["base64@%d" % j] = base64.b64encode(part)
    for i, c in enumerate(carriers):
        out["sasl message %d (base64)" % i] = base64.b64encode(c)
    return out


def leaks(data, secret_forms):
    return [name for name, f in secret_forms.items() if f in data]


PLAIN_MSG = b"\0" + USER.encode() + b"\0" + PASSWORD.encode()
XOAUTH2_MSG = ("user=%s\x01auth=Bearer %s\x01\x01" % (USER, TOKEN)).encode()
PW_FORMS = forms(PASSWORD, PLAIN_MSG)
TOKEN_FORMS = forms(TOKEN, XOAUTH2_MSG)
FILES = {"pw": (PASSWORD + "\n").encode(), "token": (TOKEN + "\n").encode()}

TLS_EHLO_AFTER = "\n".join(["C: EHLO client.smtpc.test", "S: 250-mx.smtpc.test",
                            "S: 250-PIPELINING", "S: 250-8BITMIME", "S: 250-" + ESC,
                            "S: 250 AUTH %s"])
TRANSACTION = "\n".join(["C: MAIL FROM:<sender@example.org> BODY=7BIT",
                         "C: RCPT TO:<rcpt@example.net>", "C: DATA", "S: 250 2.1.0 Ok",
                         "S: 250 2.1.5 Ok", "S: 354 go", "BODY b", "S: 250 2.0.0 queued",
                         "QUIT"])

# mechanism -> (fake server step, smtpc options, forms that must not leak)
MECHS = {
    "PLAIN": ("AUTH-PLAIN user=%s pass=%s" % (USER, PASSWORD),
              ["--user", USER, "--password-file", "${file:pw}"], PW_FORMS),
    "LOGIN": ("AUTH-LOGIN user=%s pass=%s" % (USER, PASSWORD),
              ["--user", USER, "--password-file", "${file:pw}"], PW_FORMS),
    "CRAM-MD5": ("AUTH-CRAM user=%s pass=%s" % (USER, PASSWORD),
                 ["--user", USER, "--password-file", "${file:pw}"], PW_FORMS),
    "SCRAM-SHA-1": ("AUTH-SCRAM mech=SCRAM-SHA-1 user=%s pass=%s" % (USER, PASSWORD),
                    ["--user", USER, "--password-file", "${file:pw}"], PW_FORMS),
    "SCRAM-SHA-256": ("AUTH-SCRAM mech=SCRAM-SHA-256 user=%s pass=%s" % (USER, PASSWORD),
                      ["--user", USER, "--password-file", "${file:pw}"], PW_FORMS),
    "XOAUTH2": ("AUTH-XOAUTH2 user=%s token=%s" % (USER, TOKEN),
                ["--user", USER, "--oauth-token-file", "${file:token}"], TOKEN_FORMS),
    "OAUTHBEARER": ("AUTH-OAUTHBEARER user=%s token=%s" % (USER, TOKEN),
                    ["--user", USER, "--oauth-token-file", "${file:token}"], TOKEN_FORMS),
}


def no_leak(r, secret_forms, what="stdout/stderr"):
    found = leaks(r.out + r.err, secret_forms)
    check(not found, "%s contains the secret as: %s\n%s" % (what, ", ".join(found),
                                                           r.describe()))


def auth_script(mech, outcome, env_pw=False):
    step = MECHS[mech][0]
    s = [GREET, ehlo("STARTTLS", "PIPELINING", "8BITMIME", ESC), "C: STARTTLS",
         "S: 220 2.0.0 go", "TLS cert=valid", TLS_EHLO_AFTER % mech, step]
    if outcome == "ok":
        s += ["S: 235 2.7.0 Authentication successful", TRANSACTION]
    else:
        s += ["S: 535 5.7.8 Authentication credentials invalid", "QUIT?"]
    return "\n".join(s)


def traced_auth(mech, outcome, via_env=False):
    name = "secret-%s-%s%s-trace-json" % (mech.lower(), outcome, "-env" if via_env else "")

    def fn():
        _, opts, fs = MECHS[mech]
        opts = list(opts)
        env = {}
        if via_env:
            i = opts.index("--password-file")
            del opts[i:i + 2]
            env["SMTPC_PASSWORD"] = PASSWORD
        r = session(auth_script(mech, outcome),
                    send_args(tls="starttls", extra=["--auth", mech, "--trace"] + opts),
                    files=FILES, env=env, name=name)
        one_json(r)
        server_clean(r)
        if outcome == "ok":
            delivered(r)
        else:
            expect(r, 77, "top", "auth", command="auth", permanent=True, code=535)
        check(b"AUTH " + mech.encode() in r.err, "the trace does not show the AUTH command"
              "\n" + r.describe())
        no_leak(r, fs)
        return "%d bytes of output checked for %d forms" % (len(r.out + r.err), len(fs))
    add(name, fn)


for _m in MECHS:
    for _o in ("ok", "535"):
        traced_auth(_m, _o)
traced_auth("PLAIN", "ok", via_env=True)
traced_auth("LOGIN", "535", via_env=True)


# ---------------------------------------------------------------- AUTH withheld

def withheld(name, mech, script, mode, extra=(), opts=None):
    """The server offers AUTH; without --insecure-auth smtpc must not send it (exit 77,
    kind auth), and no form of the credential may reach the server."""
    def fn():
        o = opts if opts is not None else MECHS[mech][1]
        r = session(script, send_args(tls=mode, extra=["--auth", mech] + list(o) +
                                      list(extra)), files=FILES, name=name)
        err = expect(r, 77, "top", "auth", command="auth")
        server_clean(r)
        sent = client_bytes(r.srv)
        check(not re.search(rb"(?m)^AUTH\b", sent), "AUTH was sent\n" + r.describe())
        fs = dict(PW_FORMS)
        fs.update(TOKEN_FORMS)
        found = leaks(sent, fs)
        check(not found, "the server received the secret as %s" % found)
        no_leak(r, fs)
        return err.get("message")
    add(name, fn)


PLAIN_EHLO = ehlo("AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER SCRAM-SHA-256", "8BITMIME", ESC)


def tls_then(cert):
    return "\n".join([GREET, ehlo("STARTTLS", "8BITMIME", ESC), "C: STARTTLS",
                      "S: 220 2.0.0 go", "TLS cert=%s" % cert,
                      TLS_EHLO_AFTER % "PLAIN LOGIN XOAUTH2 OAUTHBEARER SCRAM-SHA-256",
                      "QUIT?"])


for _mech in ("PLAIN", "LOGIN", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER", "auto"):
    _opts = MECHS.get(_mech, MECHS["PLAIN"])[1]
    _low = _mech.lower()
    withheld("secret-withheld-%s-tls-none" % _low, _mech, "\n".join([GREET, PLAIN_EHLO,
                                                                     "QUIT?"]),
             "none", opts=_opts)
    withheld("secret-withheld-%s-opportunistic-no-starttls" % _low, _mech,
             "\n".join([GREET, PLAIN_EHLO, "QUIT?"]), "opportunistic", opts=_opts)
    withheld("secret-withheld-%s-tls-verify-none" % _low, _mech, tls_then("selfsigned"),
             "starttls", extra=["--tls-verify", "none"], opts=_opts)
    withheld("secret-withheld-%s-ignore-tls-errors" % _low, _mech, tls_then("expired"),
             "starttls", extra=["--ignore-tls-errors"], opts=_opts)
    withheld("secret-withheld-%s-opportunistic-unverified" % _low, _mech,
             tls_then("untrusted"), "opportunistic", extra=["--tls-verify", "none"],
             opts=_opts)
withheld("secret-withheld-plain-immediate-verify-none", "PLAIN",
         "\n".join(["TLS cert=wrongname", GREET,
                    ehlo("AUTH PLAIN LOGIN", "8BITMIME", ESC), "QUIT?"]), "immediate",
         extra=["--tls-verify", "none"], opts=MECHS["PLAIN"][1])


@harness.case("secret-insecure-auth-control: with --insecure-auth the same plaintext "
              "session sends AUTH (the withheld cases can fail)")
def insecure_control():
    r = session("\n".join([GREET, ehlo("AUTH PLAIN", "PIPELINING", "8BITMIME", ESC),
                           MECHS["PLAIN"][0], "S: 235 2.7.0 ok", TRANSACTION]),
                send_args(extra=["--auth", "PLAIN", "--insecure-auth", "--trace"] +
                          MECHS["PLAIN"][1]), files=FILES, name="insecure-control")
    delivered(r)
    server_clean(r)
    check(leaks(client_bytes(r.srv), PW_FORMS), "the control session sent no credential?")
    no_leak(r, PW_FORMS)


# ---------------------------------------------------------------- memory

def scan_memory(pid, secret_forms):
    """Searches the writable mappings of a live process for the secret forms."""
    hits = []
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for ln in maps:
            parts = ln.split()
            if len(parts) < 2 or "w" not in parts[1]:
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if hi - lo > 256 * 1024 * 1024:
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            for name, f in secret_forms.items():
                if f in data:
                    hits.append("%s in %s" % (name, parts[5] if len(parts) > 5 else
                                              "[anonymous]"))
    return hits


def memory_case(mech):
    name = "secret-memory-wiped-after-auth-%s" % mech.lower()

    def fn():
        if os.geteuid() != 0:
            raise harness.Skip("needs root to read /proc/PID/mem")
        if harness.CTX.asan:
            # ASan's heap lives in terabyte-sized reservations the scan cannot read.
            raise harness.Skip("AddressSanitizer build: its heap is not scanned")
        _, opts, fs = MECHS[mech]
        fs = {k: v for k, v in fs.items() if not k.startswith("sasl") and k != "hex"}
        # After AUTH the server goes quiet on MAIL: smtpc waits, we read its memory.
        script = "\n".join([GREET, ehlo("STARTTLS", "8BITMIME", ESC), "C: STARTTLS",
                            "S: 220 2.0.0 go", "TLS cert=valid",
                            TLS_EHLO_AFTER.replace("S: 250-PIPELINING\n", "") % mech,
                            MECHS[mech][0], "S: 235 2.7.0 ok",
                            "C: MAIL FROM:<sender@example.org> BODY=7BIT", "SLEEP 6",
                            "END"])
        found = {}

        def watcher(pid):
            time.sleep(0.8)
            try:
                found["hits"] = scan_memory(pid, fs)
            except OSError as e:
                found["error"] = str(e)
        r = session(script, send_args(tls="starttls", timeout=3,
                                      extra=["--auth", mech] + opts),
                    files=FILES, name=name, spy=watcher)
        server_clean(r)
        check("error" not in found, "cannot read smtpc's memory: %s" % found.get("error"))
        check("hits" in found, "the memory scan did not run")
        check(not found["hits"], "the secret is still in smtpc's memory after AUTH: %s\n%s"
              % (", ".join(found["hits"]), r.describe(transcript=False)))
        return "no trace of the secret in smtpc's writable memory while it waits for MAIL"
    add(name, fn)


for _m in ("PLAIN", "LOGIN", "SCRAM-SHA-256", "XOAUTH2"):
    memory_case(_m)
