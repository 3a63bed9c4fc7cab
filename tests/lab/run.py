#!/usr/bin/env python3
"""Direct-delivery lab tests: `smtpc deliver` and `smtpc probe` against real
DNSSEC (knot + unbound), DANE and MTA-STS (nginx) with Postfix MX hosts.

Usage: run.py PATH/TO/smtpc [SUBSTRING...]
Starts the lab of lab.py in a fresh temporary directory, runs every case (or
those whose name contains one of the SUBSTRINGs), stops the lab and prints
TAP.  First the lab checks itself (DNS answers, certificates with openssl
s_client, the HTTPS policies), then every smtpc case runs twice:

  trust-ad:  --dns <unbound>  (the AD bit of the validating recursor)
  validate:  --dnssec validate --trust-anchor <test. key> --dns <knot>
             (in-process validation; knot is authoritative and never
             validates, so a bogus zone is only caught by smtpc itself)

SMTPC_LAB_VALIDATE_DNS=unbound points validate mode at unbound instead.
Must run as root (ports 25/53/443, Postfix's master); otherwise `1..0 # SKIP`.
SMTPC_LAB_VERBOSE=1 prints the command and JSON of passing cases too.
SMTPC_LAB_KEEP=1 keeps the lab directory (logs, captured mail); it is kept
anyway when a case fails.  Python 3 standard library only.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lab  # noqa: E402

SMTPC = None
L = None        # the running lab.Lab
TMP = None      # per-run scratch directory (messages, state dirs)
CASES = []      # (name, fn, modes)
CURRENT_RESULTS = []
SEQ = [0]
SENDER = "lab-sender@client.test"


class Fail(Exception):
    pass


def case(name, modes=("trust-ad", "validate")):
    def deco(fn):
        CASES.append((name, fn, modes))
        return fn
    return deco


# ---------------------------------------------------------------- running smtpc

class Result:
    def __init__(self, args, rc, out, err, elapsed):
        self.args, self.rc, self.out, self.err, self.elapsed = args, rc, out, err, elapsed
        self.j = None
        try:
            self.j = json.loads(out.decode(errors="replace").strip())
        except ValueError:
            pass

    def describe(self):
        lines = ["command: smtpc " + " ".join(a if a and " " not in a else repr(a)
                                              for a in self.args),
                 "exit status: %s (%.2f s)" % (self.rc, self.elapsed)]
        if self.j is not None:
            lines += ["json:"] + json.dumps(self.j, indent=1).splitlines()[:400]
        else:
            lines.append("stdout: " + self.out.decode(errors="replace").strip()[:4000])
        lines += ["stderr: " + ln for ln in
                  self.err.decode(errors="replace").strip().splitlines()[-60:]]
        return "\n".join(lines)


def smtpc(*args, timeout=120):
    env = dict(os.environ)
    # Nothing may fall back to the real home: probe must not touch a cache.
    env["XDG_STATE_HOME"] = os.path.join(TMP, "xdg-state")
    t = time.time()
    try:
        p = subprocess.run([SMTPC] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as ex:
        rc, out, err = "timeout", ex.stdout or b"", ex.stderr or b""
    r = Result(list(args), rc, out, err, time.time() - t)
    CURRENT_RESULTS.append(r)
    if b"runtime error:" in err or b"Sanitizer" in err:
        raise Fail("sanitizer report on stderr")
    if r.j is None:
        raise Fail("stdout is not exactly one JSON object")
    return r


def dns_opts(mode):
    s = L.state
    if mode == "trust-ad":
        return ["--dnssec", "trust-ad", "--dns", s["dns"]["unbound"]]
    server = s["dns"][os.environ.get("SMTPC_LAB_VALIDATE_DNS", "knot")]
    return ["--dnssec", "validate", "--trust-anchor", s["trust_anchor"], "--dns", server]


def marker():
    SEQ[0] += 1
    return "smtpc-lab-%d-%s" % (SEQ[0], os.urandom(4).hex())


def message_file(mark, to):
    path = os.path.join(TMP, "msg", mark + ".eml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(("From: Lab <%s>\r\nTo: %s\r\nSubject: lab %s\r\n"
                 "Message-ID: <%s@client.test>\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
                 "\r\nDirect delivery test %s.\r\n" % (SENDER, ", ".join(to), mark, mark, mark))
                .encode())
    return path


class Delivery:
    """One `smtpc deliver` run; remembers the marker and MX log offsets."""

    def __init__(self, mode, domains, extra=(), state=None, dns=None):
        self.mark = marker()
        self.to = ["rcpt-%d@%s" % (i, d) for i, d in enumerate(domains)]
        self.state = state or os.path.join(TMP, "state", self.mark)
        os.makedirs(self.state, exist_ok=True)
        self.offsets = {tag: log_size(tag) for tag in L.state["mx"]}
        self.unbound_offset = L.unbound_log_size()
        args = ["deliver", "--json", "--from", SENDER]
        for t in self.to:
            args += ["--to", t]
        args += ["-m", message_file(self.mark, self.to), "--ca-file", L.state["ca_file"],
                 "--state", self.state, "--ehlo", "client.test", "--timeout", "20"]
        opts = dns if dns is not None else dns_opts(mode)
        self.r = smtpc(*(args + opts + list(extra)))
        self.j = self.r.j
        if L.state["dns"]["unbound"] not in opts:
            # No lookup goes to a resolver the user did not configure.
            time.sleep(0.2)
            eq(L.unbound_queries(self.unbound_offset), [],
               "queries smtpc sent to unbound, which it was not told to use")

    def queries(self):
        time.sleep(0.2)
        return L.unbound_queries(self.unbound_offset)

    def domain(self, name=None):
        doms = self.j.get("domains")
        check(isinstance(doms, list) and doms, "no \"domains\" in the JSON")
        if name is None:
            eq(len(doms), 1, "number of domains")
            return doms[0]
        got = [d for d in doms if d.get("domain") == name]
        check(got, "domain %s missing from the JSON" % name)
        return got[0]


# ---------------------------------------------------------------- MX evidence

def log_size(tag):
    try:
        return os.path.getsize(L.state["mx"][tag]["log"])
    except OSError:
        return 0


def log_since(tag, offset):
    try:
        with open(L.state["mx"][tag]["log"], "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def delivered_to(d, tag, tls=True, timeout=30):
    """The message reached MX `tag` (and no other), over TLS or not as said."""
    needle = d.mark.encode()
    deadline = time.time() + timeout
    while True:
        where = L.where(needle)
        if tag in where or time.time() > deadline:
            break
        time.sleep(0.1)
    eq(sorted(where), [tag], "MX hosts that received the message")
    eq(len(where[tag]), 1, "copies received")
    data = where[tag][0]
    head = data.split(b"\r\n\r\n", 1)[0]
    received = head.split(b"\r\nSubject:", 1)[0]
    check(received.startswith(b"Received: "), "no Received: header: %r" % data[:200])
    if tls is not None:
        eq(b"(using TLS" in received, tls, "message arrived over TLS (Received: %r)" % received)
    return data


def not_delivered(d, wait=2.0):
    time.sleep(wait)
    eq(sorted(L.where(d.mark.encode())), [], "MX hosts that received the message")


def sessions(d, tag):
    """Postfix's 'disconnect from' lines (command counts) since the run began."""
    return [ln for ln in log_since(tag, d.offsets[tag]).splitlines() if "disconnect from" in ln]


def never_mail(d, tags):
    """No session on these MX hosts got as far as MAIL: nothing went in
    plaintext (nor in TLS)."""
    for tag in tags:
        for ln in sessions(d, tag):
            check(" mail=" not in ln, "MX %s saw MAIL: %s" % (tag, ln))


def never_connected(d, tag):
    text = log_since(tag, d.offsets[tag])
    check("connect from" not in text, "MX %s was connected to:\n%s" % (tag, text[-1500:]))


def no_plaintext_attempt(dom):
    for a in dom.get("attempts") or []:
        check(a.get("tls_mode") != "none", "a plaintext attempt was made: %r" % a)


# ---------------------------------------------------------------- JSON checks

def check(cond, what):
    if not cond:
        raise Fail(what)


def eq(actual, expected, what):
    if actual != expected:
        raise Fail("%s: got %r, expected %r" % (what, actual, expected))


def get(obj, *path):
    for p in path:
        try:
            obj = obj[p]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def rc_is(d, expected):
    eq(d.r.rc, expected, "exit status")


def delivered_ok(d, dom):
    rc_is(d, 0)
    eq(d.j.get("ok"), True, "ok")
    eq(d.j.get("error"), None, "top-level error")
    eq(dom.get("ok"), True, "domain ok")
    eq(dom.get("error"), None, "domain error")
    rcpts = dom.get("recipients") or []
    eq(len(rcpts), 1, "number of recipients")
    eq(rcpts[0].get("accepted"), True, "recipient accepted")
    eq(rcpts[0].get("code"), 250, "recipient code")
    last = (dom.get("attempts") or [None])[-1]
    check(last is not None, "no attempts listed")
    eq(last.get("error"), None, "error of the last (successful) attempt")


def failed(d, dom, rc, kind=None, permanent=None, code=None, enhanced=None):
    """The domain failed as a whole; its error and its recipients say so."""
    rc_is(d, rc)
    eq(d.j.get("ok"), False, "ok")
    eq(dom.get("ok"), False, "domain ok")
    err = dom.get("error")
    check(isinstance(err, dict), "domain error missing: %r" % err)
    if kind is not None:
        if isinstance(kind, tuple):
            check(err.get("kind") in kind, "domain error kind %r not in %r"
                  % (err.get("kind"), kind))
        else:
            eq(err.get("kind"), kind, "domain error kind")
    if permanent is not None:
        eq(err.get("permanent"), permanent, "domain error permanent")
    if code is not None:
        eq(err.get("code"), code, "domain error code")
    if enhanced is not None:
        eq(err.get("enhanced_code"), enhanced, "domain error enhanced_code")
    if err.get("kind") in ("dns", "no-mail", "policy"):
        eq(err.get("command"), "", "domain error command (dns/no-mail/policy)")
    for r in dom.get("recipients") or []:
        eq(r.get("accepted"), False, "recipient %s accepted" % r.get("address"))
        if err.get("code"):
            eq(r.get("code"), err.get("code"), "recipient code = domain error code")
            eq(r.get("enhanced_code"), err.get("enhanced_code"), "recipient enhanced_code")
    check(dom.get("recipients"), "no recipients listed")
    return err


def attempt(dom, i, host=None, ip=False, tls_mode=None, dane=None):
    atts = dom.get("attempts") or []
    check(-len(atts) <= i < len(atts), "attempt %d missing (attempts: %r)" % (i, atts))
    a = atts[i]
    if host is not None:
        eq(a.get("host"), host, "attempts[%d].host" % i)
    if ip is not False:
        eq(a.get("ip"), ip, "attempts[%d].ip" % i)
    if tls_mode is not None:
        eq(a.get("tls_mode"), tls_mode, "attempts[%d].tls_mode" % i)
    if dane is not None:
        eq(a.get("dane"), dane, "attempts[%d].dane" % i)
    return a


def mtasts(dom, mode, policy_id=None, error=None):
    m = dom.get("mtasts")
    check(isinstance(m, dict), "mtasts object missing")
    eq(m.get("mode"), mode, "mtasts.mode")
    if policy_id is not None:
        eq(m.get("policy_id"), policy_id, "mtasts.policy_id")
    if error is not False:
        eq(m.get("error"), error, "mtasts.error")
    return m


def ip_of(tag):
    return L.state["mx"][tag]["ip"]


# ---------------------------------------------------------------- deliver: DANE

@case("DANE-EE: delivered, attempts[0].dane verified, STARTTLS required")
def dane_ee(mode):
    d = Delivery(mode, ["ee.dane.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    eq(len(dom["attempts"]), 1, "number of attempts")
    attempt(dom, 0, host="mx-ee.dane.test", ip=ip_of("ee"), tls_mode="starttls", dane="verified")
    mtasts(dom, None)
    hosts = get(dom, "tlsrpt", "hosts") or []
    check(any(h.get("policy_type") == "tlsa" and h.get("policy_domain") == "mx-ee.dane.test"
              for h in hosts), "no tlsa TLSRPT result for mx-ee.dane.test: %r" % hosts)
    delivered_to(d, "ee", tls=True)


@case("DANE-TA: delivered, 2 0 1 of the test CA verifies the chain")
def dane_ta(mode):
    d = Delivery(mode, ["ta.dane.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="mx-ta.dane.test", ip=ip_of("ta"), tls_mode="starttls", dane="verified")
    delivered_to(d, "ta", tls=True)


@case("DANE-EE with a self-signed certificate for another name: verified, no PKIX")
def dane_ee_selfsigned(mode):
    d = Delivery(mode, ["selfsigned.dane.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    a = attempt(dom, 0, host="mx-ss.dane.test", tls_mode="starttls", dane="verified")
    eq(a.get("pkix_verified"), False, "attempts[0].pkix_verified")
    delivered_to(d, "ss", tls=True)


@case("TLSA mismatch: not delivered, transient, never plaintext")
def dane_mismatch(mode):
    d = Delivery(mode, ["mismatch.dane.test"])
    dom = d.domain()
    failed(d, dom, 75, kind="tls", permanent=False)
    attempt(dom, 0, host="mx-bad.dane.test", ip=ip_of("bad"), tls_mode="starttls", dane="failed")
    no_plaintext_attempt(dom)
    not_delivered(d)
    never_mail(d, ["bad"])


# The contract (RFC 7672 2.2): a DANE host refusing STARTTLS is a transient failure.
@case("DANE MX without STARTTLS: not delivered, transient, never plaintext")
def dane_notls(mode):
    d = Delivery(mode, ["notls.dane.test"])
    dom = d.domain()
    failed(d, dom, 75, permanent=False)
    a = attempt(dom, 0, host="mx-notls.dane.test", tls_mode="starttls")
    check(a.get("dane") != "verified", "dane verified without TLS")
    no_plaintext_attempt(dom)
    not_delivered(d)
    never_mail(d, ["notls"])


@case("--port 2525: TLSA looked up at _2525._tcp (a mismatching one there): not delivered")
def dane_port(mode):
    d = Delivery(mode, ["ee.dane.test"], extra=["--port", "2525"])
    dom = d.domain()
    failed(d, dom, 75, permanent=False)
    attempt(dom, 0, host="mx-ee.dane.test", ip=ip_of("ee"), tls_mode="starttls", dane="failed")
    if mode == "trust-ad":
        names = [q[1] for q in d.queries() if q[2] == "TLSA"]
        check("_2525._tcp.mx-ee.dane.test" in names, "no TLSA query at _2525._tcp: %s" % names)
        check("_25._tcp.mx-ee.dane.test" not in names, "TLSA query at _25._tcp: %s" % names)
    no_plaintext_attempt(dom)
    not_delivered(d)
    never_mail(d, ["ee"])


@case("TLSA in an insecure zone: ignored (dane none), opportunistic, delivered")
def tlsa_insecure(mode):
    d = Delivery(mode, ["tlsa.insecure.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="mx.insecure.test", ip=ip_of("mx1"), tls_mode="opportunistic",
            dane="none")
    delivered_to(d, "mx1", tls=True)


@case("bogus zone: temporary failure, never plaintext, nothing sent")
def bogus_zone(mode):
    d = Delivery(mode, ["bogus.test"])
    dom = d.domain()
    failed(d, dom, 75, kind=("dns", "tls"), permanent=False)
    no_plaintext_attempt(dom)
    not_delivered(d)
    never_mail(d, ["mx1"])


@case("MX host in a bogus zone (secure MX record): transient, nothing sent")
def bogus_host(mode):
    d = Delivery(mode, ["bogushost.dane.test"])
    dom = d.domain()
    failed(d, dom, 75, permanent=False)
    attempt(dom, 0, host="mx.bogus.test")
    no_plaintext_attempt(dom)
    not_delivered(d)
    never_mail(d, ["mx1"])


@case("--dnssec off: TLSA never looked up, mismatching TLSA ignored", modes=("trust-ad",))
def dnssec_off(mode):
    d = Delivery(mode, ["mismatch.dane.test"],
                 dns=["--dnssec", "off", "--dns", L.state["dns"]["unbound"]])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="mx-bad.dane.test", tls_mode="opportunistic", dane="none")
    tlsa = [q for q in d.queries() if q[2] == "TLSA"]
    eq(tlsa, [], "TLSA queries with --dnssec off")
    delivered_to(d, "bad", tls=True)


@case("trust-ad against knot (never sets AD): nothing authentic, TLSA ignored",
      modes=("trust-ad",))
def trust_ad_no_ad(mode):
    d = Delivery(mode, ["mismatch.dane.test"],
                 dns=["--dnssec", "trust-ad", "--dns", L.state["dns"]["knot"]])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="mx-bad.dane.test", tls_mode="opportunistic", dane="none")
    delivered_to(d, "bad", tls=True)


@case("validate with the wrong trust anchor (the root key): transient dns failure",
      modes=("validate",))
def validate_wrong_anchor(mode):
    d = Delivery(mode, ["ee.dane.test"],
                 dns=["--dnssec", "validate", "--trust-anchor", "/usr/share/dns/root.key",
                      "--dns", L.state["dns"]["knot"]])
    dom = d.domain()
    failed(d, dom, 75, kind="dns", permanent=False)
    not_delivered(d)
    never_connected(d, "ee")


# ---------------------------------------------------------------- deliver: MTA-STS

@case("MTA-STS enforce, matching MX: delivered with PKIX, mode enforce")
def sts_enforce(mode):
    d = Delivery(mode, ["enforce.sts.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    mtasts(dom, "enforce", policy_id=L.state["sts"]["enforce.sts.test"]["id"])
    a = attempt(dom, 0, host="mx-sts.sts.test", ip=ip_of("sts"), tls_mode="starttls",
                dane="none")
    eq(a.get("pkix_verified"), True, "attempts[0].pkix_verified")
    rd = get(dom, "tlsrpt", "recipient_domain") or {}
    eq(rd.get("policy_type"), "sts", "tlsrpt.recipient_domain.policy_type")
    eq(rd.get("policy_domain"), "enforce.sts.test", "tlsrpt.recipient_domain.policy_domain")
    delivered_to(d, "sts", tls=True)


@case("MTA-STS enforce, no MX matches: policy error, transient, not delivered")
def sts_mismatch(mode):
    d = Delivery(mode, ["mismatch.sts.test"])
    dom = d.domain()
    mtasts(dom, "enforce", policy_id=L.state["sts"]["mismatch.sts.test"]["id"])
    failed(d, dom, 75, kind="policy", permanent=False, code=554, enhanced="5.7.30")
    a = attempt(dom, 0, host="mx-sts.sts.test", ip=None)
    eq(get(a, "error", "kind"), "policy", "attempts[0].error.kind")
    details = get(dom, "tlsrpt", "recipient_domain", "details") or []
    check(any(x.get("failure_reason_code") == "mtasts-policy-mx-mismatch" for x in details),
          "no mtasts-policy-mx-mismatch in tlsrpt.recipient_domain.details")
    not_delivered(d)
    never_connected(d, "sts")


@case("MTA-STS testing: mode testing, delivered although the MX has no STARTTLS")
def sts_testing(mode):
    d = Delivery(mode, ["testing.sts.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    mtasts(dom, "testing", policy_id=L.state["sts"]["testing.sts.test"]["id"])
    attempt(dom, 0, host="mx-notls.sts.test", ip=ip_of("notls"))
    delivered_to(d, "notls", tls=False)


# RFC 8461 5.1: a message that fails under an enforce policy must not fail
# permanently (before the policy is re-checked): deferred, exit 75.
@case("MTA-STS enforce, matching MX without STARTTLS: deferred, never plaintext")
def sts_downgrade(mode):
    d = Delivery(mode, ["downgrade.sts.test"])
    dom = d.domain()
    mtasts(dom, "enforce")
    failed(d, dom, 75, permanent=False)
    attempt(dom, 0, host="mx-notls.sts.test", tls_mode="starttls")
    no_plaintext_attempt(dom)
    not_delivered(d)
    never_mail(d, ["notls"])


@case("MTA-STS policy cached in --state: a second delivery fetches nothing")
def sts_cache(mode):
    state = os.path.join(TMP, "state", "cache-" + mode)
    host = "mta-sts.enforce.sts.test"
    before = L.https_hits(host)
    d1 = Delivery(mode, ["enforce.sts.test"], state=state)
    delivered_ok(d1, d1.domain())
    first = L.https_hits(host)
    eq(first - before, 1, "policy fetches by the first delivery")
    check(os.listdir(state), "the state directory is empty after a policy fetch")
    d2 = Delivery(mode, ["enforce.sts.test"], state=state)
    dom = d2.domain()
    delivered_ok(d2, dom)
    mtasts(dom, "enforce", policy_id=L.state["sts"]["enforce.sts.test"]["id"])
    eq(L.https_hits(host) - first, 0, "policy fetches by the second delivery")
    delivered_to(d2, "sts", tls=True)


# ---------------------------------------------------------------- deliver: routing

@case("null MX: no-mail, 556 5.1.10, permanent, exit 69")
def null_mx(mode):
    d = Delivery(mode, ["nullmx.test"])
    dom = d.domain()
    failed(d, dom, 69, kind="no-mail", permanent=True, code=556, enhanced="5.1.10")
    not_delivered(d, wait=0.5)


@case("implicit MX: the domain's own A record is the host")
def implicit_mx(mode):
    d = Delivery(mode, ["implicit.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="implicit.test", ip=ip_of("mx2"))
    delivered_to(d, "mx2", tls=True)


@case("CNAME chain: cname.test -> cname2 -> cname3 (MX mx1.test)")
def cname_chain(mode):
    d = Delivery(mode, ["cname.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="mx1.test", ip=ip_of("mx1"))
    delivered_to(d, "mx1", tls=True)


@case("MX target is a CNAME: alias.test -> mx1.test")
def mx_cname(mode):
    d = Delivery(mode, ["mxcname.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="alias.test", ip=ip_of("mx1"))
    delivered_to(d, "mx1", tls=True)


@case("dead first MX (connection refused): falls back to the second, two attempts")
def fallback(mode):
    d = Delivery(mode, ["fallback.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    eq(len(dom["attempts"]), 2, "number of attempts")
    a = attempt(dom, 0, host="dead.test", ip=L.state["dead_ip"])
    eq(get(a, "error", "kind"), "connect", "attempts[0].error.kind")
    attempt(dom, 1, host="mx2.test", ip=ip_of("mx2"))
    check(d.r.elapsed < 15, "fallback took %.1f s" % d.r.elapsed)
    delivered_to(d, "mx2", tls=True)


@case("Happy Eyeballs: the MX's first address hangs, the second is used at once")
def happy_eyeballs(mode):
    d = Delivery(mode, ["happy.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, -1, host="happy-mx.test", ip=ip_of("mx2"))
    check(d.r.elapsed < 5, "delivery took %.1f s (a connect timeout is 20 s)" % d.r.elapsed)
    delivered_to(d, "mx2", tls=True)
    return "delivered in %.2f s" % d.r.elapsed


@case("REQUIRETLS without DANE or MTA-STS: policy 554 5.7.30, permanent, exit 69")
def requiretls_plain(mode):
    d = Delivery(mode, ["plain.test"], extra=["--requiretls"])
    dom = d.domain()
    failed(d, dom, 69, kind="policy", permanent=True, code=554, enhanced="5.7.30")
    a = attempt(dom, 0, host="mx1.test", ip=None)
    eq(get(a, "error", "kind"), "policy", "attempts[0].error.kind")
    not_delivered(d)
    never_connected(d, "mx1")


@case("REQUIRETLS to a DANE MX that does not offer it: requiretls, 554 5.7.30, exit 69")
def requiretls_dane(mode):
    d = Delivery(mode, ["ee.dane.test"], extra=["--requiretls"])
    dom = d.domain()
    failed(d, dom, 69, permanent=True, code=554, enhanced="5.7.30")
    a = attempt(dom, 0, host="mx-ee.dane.test", tls_mode="starttls", dane="verified")
    eq(get(a, "error", "kind"), "requiretls", "attempts[0].error.kind")
    not_delivered(d)
    never_mail(d, ["ee"])


@case("without REQUIRETLS the same signed domain is delivered opportunistically")
def plain_ok(mode):
    d = Delivery(mode, ["plain.test"])
    dom = d.domain()
    delivered_ok(d, dom)
    attempt(dom, 0, host="mx1.test", ip=ip_of("mx1"), tls_mode="opportunistic", dane="none")
    mtasts(dom, None)
    delivered_to(d, "mx1", tls=True)


@case("two domains in one run: grouped per domain, both delivered")
def two_domains(mode):
    d = Delivery(mode, ["ee.dane.test", "enforce.sts.test"])
    rc_is(d, 0)
    eq(len(d.j.get("domains") or []), 2, "number of domains")
    delivered_ok(d, d.domain("ee.dane.test"))
    delivered_ok(d, d.domain("enforce.sts.test"))
    needle = d.mark.encode()
    deadline = time.time() + 30
    while sorted(L.where(needle)) != ["ee", "sts"] and time.time() < deadline:
        time.sleep(0.1)
    eq(sorted(L.where(needle)), ["ee", "sts"], "MX hosts that received the message")


@case("two domains, one null MX: the other delivered, exit 69")
def two_domains_one_fails(mode):
    d = Delivery(mode, ["ta.dane.test", "nullmx.test"])
    rc_is(d, 69)
    eq(d.j.get("ok"), False, "ok")
    delivered_ok_part = d.domain("ta.dane.test")
    eq(delivered_ok_part.get("ok"), True, "ta.dane.test ok")
    bad = d.domain("nullmx.test")
    eq(get(bad, "error", "kind"), "no-mail", "nullmx.test error kind")
    delivered_to(d, "ta", tls=True)


# ---------------------------------------------------------------- probe

class Probe:
    def __init__(self, mode, domain):
        self.offsets = {tag: log_size(tag) for tag in L.state["mx"]}
        self.r = smtpc("probe", "--json", domain, "--ca-file", L.state["ca_file"],
                       "--ehlo", "client.test", "--timeout", "20", *dns_opts(mode))
        self.j = self.r.j
        xdg = os.path.join(TMP, "xdg-state")
        if os.path.exists(xdg):
            check(not os.listdir(xdg), "probe wrote state under XDG_STATE_HOME: %s"
                  % os.listdir(xdg))

    def mx(self, n):
        mxs = self.j.get("mx")
        check(isinstance(mxs, list), "mx list missing")
        eq(len(mxs), n, "number of MX hosts")
        return mxs

    def no_mail(self):
        for tag in L.state["mx"]:
            for ln in log_since(tag, self.offsets[tag]).splitlines():
                if "disconnect from" in ln:
                    check(" mail=" not in ln, "probe sent MAIL to %s: %s" % (tag, ln))


def verdict(obj, what):
    v = obj.get("verdict")
    check(isinstance(v, str) and v.strip(), "%s verdict missing: %r" % (what, v))


@case("probe DANE domain: secure MX, 2 TLSA records (1 usable), DANE verified, exit 0")
def probe_dane(mode):
    p = Probe(mode, "ee.dane.test")
    eq(p.r.rc, 0, "exit status")
    eq(p.j.get("domain"), "ee.dane.test", "domain")
    verdict(p.j, "domain")
    m = p.mx(1)[0]
    eq(m.get("host"), "mx-ee.dane.test", "mx[0].host")
    eq(m.get("preference"), 10, "mx[0].preference")
    eq(m.get("dnssec"), "secure", "mx[0].dnssec")
    eq(m.get("addresses"), [ip_of("ee")], "mx[0].addresses")
    eq(sorted(get(m, "tlsa", "records") or []),
       sorted(L.state["tlsa"]["mx-ee.dane.test"]), "mx[0].tlsa.records")
    eq(get(m, "tlsa", "usable"), 1, "mx[0].tlsa.usable")
    eq(get(m, "tlsa", "dnssec"), "secure", "mx[0].tlsa.dnssec")
    eq(m.get("mtasts_match"), None, "mx[0].mtasts_match")
    c = m.get("connect") or {}
    eq(c.get("ip"), ip_of("ee"), "connect.ip")
    eq(c.get("ok"), True, "connect.ok")
    eq(c.get("starttls"), True, "connect.starttls")
    eq(c.get("dane"), "verified", "connect.dane")
    eq(c.get("error"), None, "connect.error")
    check(isinstance(c.get("tls"), dict), "connect.tls missing")
    check(isinstance(c.get("extensions"), list) and c["extensions"], "connect.extensions empty")
    verdict(m, "mx[0]")
    eq(get(p.j, "mtasts", "record"), None, "mtasts.record")
    eq(get(p.j, "mtasts", "mode"), None, "mtasts.mode")
    eq(get(p.j, "tlsrpt", "record"), L.state["tlsrpt"]["ee.dane.test"], "tlsrpt.record")
    eq(get(p.j, "tlsrpt", "rua"), ["mailto:tlsrpt@dane.test"], "tlsrpt.rua")
    p.no_mail()


@case("probe MTA-STS domain: policy enforce, MX matches, PKIX verified, exit 0")
def probe_sts(mode):
    p = Probe(mode, "enforce.sts.test")
    eq(p.r.rc, 0, "exit status")
    verdict(p.j, "domain")
    sts = L.state["sts"]["enforce.sts.test"]
    eq(get(p.j, "mtasts", "record"), "v=STSv1; id=" + sts["id"], "mtasts.record")
    eq(get(p.j, "mtasts", "mode"), "enforce", "mtasts.mode")
    eq(get(p.j, "mtasts", "mx"), sts["mx"], "mtasts.mx")
    eq(get(p.j, "mtasts", "error"), None, "mtasts.error")
    m = p.mx(1)[0]
    eq(m.get("host"), "mx-sts.sts.test", "mx[0].host")
    eq(m.get("dnssec"), "secure", "mx[0].dnssec")
    eq(get(m, "tlsa", "records"), [], "mx[0].tlsa.records")
    eq(get(m, "tlsa", "usable"), 0, "mx[0].tlsa.usable")
    eq(m.get("mtasts_match"), True, "mx[0].mtasts_match")
    c = m.get("connect") or {}
    eq(c.get("ok"), True, "connect.ok")
    eq(c.get("starttls"), True, "connect.starttls")
    eq(c.get("pkix_verified"), True, "connect.pkix_verified")
    eq(c.get("dane"), "none", "connect.dane")
    verdict(m, "mx[0]")
    eq(get(p.j, "tlsrpt", "rua"), ["mailto:tlsrpt@sts.test", "https://tlsrpt.sts.test/v1"],
       "tlsrpt.rua")
    p.no_mail()


@case("probe MTA-STS domain whose MX does not match: mtasts_match false, exit 75")
def probe_sts_mismatch(mode):
    p = Probe(mode, "mismatch.sts.test")
    eq(p.r.rc, 75, "exit status")
    eq(get(p.j, "mtasts", "mode"), "enforce", "mtasts.mode")
    m = p.mx(1)[0]
    eq(m.get("mtasts_match"), False, "mx[0].mtasts_match")
    p.no_mail()


@case("probe TLSA mismatch: DANE failed, exit 75")
def probe_dane_mismatch(mode):
    p = Probe(mode, "mismatch.dane.test")
    eq(p.r.rc, 75, "exit status")
    m = p.mx(1)[0]
    eq(get(m, "tlsa", "usable"), 1, "mx[0].tlsa.usable")
    eq(get(m, "connect", "dane"), "failed", "connect.dane")
    p.no_mail()


@case("probe null MX: exit 69")
def probe_null_mx(mode):
    p = Probe(mode, "nullmx.test")
    eq(p.r.rc, 69, "exit status")
    verdict(p.j, "domain")


@case("probe implicit MX: the domain is its own MX")
def probe_implicit(mode):
    p = Probe(mode, "implicit.test")
    eq(p.r.rc, 0, "exit status")
    m = p.mx(1)[0]
    eq(m.get("host"), "implicit.test", "mx[0].host")
    eq(m.get("addresses"), [ip_of("mx2")], "mx[0].addresses")
    eq(get(m, "connect", "ok"), True, "connect.ok")


@case("probe bogus zone: exit 75")
def probe_bogus(mode):
    p = Probe(mode, "bogus.test")
    eq(p.r.rc, 75, "exit status")
    p.no_mail()


# ---------------------------------------------------------------- main

def skip_all(reason):
    print("1..0 # SKIP " + reason)
    return 0


def has_deliver():
    try:
        p = subprocess.run([SMTPC, "deliver", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
    except OSError:
        return False
    return p.returncode == 0


def run_case(n, name, fn):
    del CURRENT_RESULTS[:]
    t = time.time()
    try:
        detail = fn()
        print("ok %d - %s" % (n, name))
        if isinstance(detail, str) and detail:
            print("# " + detail)
        if os.environ.get("SMTPC_LAB_VERBOSE"):
            for r in CURRENT_RESULTS:
                for ln in r.describe().splitlines():
                    print("#   " + ln)
        ok = True
    except Exception as e:  # noqa: BLE001 - any exception fails the case
        print("not ok %d - %s" % (n, name))
        msg = str(e) if isinstance(e, Fail) else "%s: %s" % (type(e).__name__, e)
        for ln in msg.splitlines():
            print("# " + ln)
        for r in CURRENT_RESULTS:
            for ln in r.describe().splitlines():
                print("#   " + ln)
        ok = False
    if time.time() - t > 30:
        print("# slow case: %.1f s" % (time.time() - t))
    sys.stdout.flush()
    return ok


def main():
    global SMTPC, L, TMP
    if len(sys.argv) < 2:
        print("usage: run.py PATH/TO/smtpc [SUBSTRING...]", file=sys.stderr)
        return 2
    SMTPC = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    if os.geteuid() != 0:
        return skip_all("lab tests need root (ports 25/53/443, Postfix master)")
    for tool in ("postfix", "knotd", "knotc", "kdig", "unbound", "unbound-checkconf",
                 "nginx", "openssl", "ss"):
        if not shutil.which(tool):
            return skip_all(tool + " not installed (run scripts/deps)")
    if not os.access(SMTPC, os.X_OK):
        print("Bail out! %s is not executable" % SMTPC)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    L = lab.Lab()
    try:
        # The lab's addresses are fixed: wait for another run to finish.
        L.start(wait_busy=300)
    except Exception as e:  # noqa: BLE001 - report any start failure as a bail-out
        print("Bail out! lab did not start: %s" % str(e).replace("\n", " ")[:800])
        return 1
    TMP = tempfile.mkdtemp(prefix="smtpc-lab-run-")
    plan = [("lab: " + name, fn) for name, fn in L.checks()]
    for name, fn, modes in CASES:
        for mode in modes:
            plan.append(("%s: %s" % (mode, name), lambda fn=fn, mode=mode: fn(mode)))
    plan = [(n, f) for n, f in plan if not only or any(o in n for o in only)]
    failed = 0
    try:
        print("1..%d" % len(plan), flush=True)
        deliver_checked = False
        for n, (name, fn) in enumerate(plan, 1):
            if not name.startswith("lab:") and not deliver_checked:
                deliver_checked = True
                if not has_deliver():
                    print("Bail out! %s has no working `deliver` command (`smtpc deliver "
                          "--help` failed)" % SMTPC)
                    failed += 1
                    return 1
            if not run_case(n, name, fn):
                failed += 1
    finally:
        keep = failed or os.environ.get("SMTPC_LAB_KEEP")
        L.stop(keep=bool(keep))
        if keep:
            print("# lab files (logs, captured mail) kept in %s; scratch in %s"
                  % (L.state["dir"], TMP))
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
