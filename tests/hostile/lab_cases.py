"""`smtpc deliver` against the DNSSEC / DANE / MTA-STS lab (tests/lab/lab.py), started once
for these cases: STARTTLS stripped where policy requires TLS, bogus DNSSEC answers, and a
hostile MTA-STS policy host (redirect, 1 GB, endless body, no answer, no TLS handshake).
Needs root (the lab binds ports 25/53/443 on 127.0.0.0/8); skipped otherwise."""

import os
import shutil
import sys
import time
import traceback

import harness
from harness import Fail, Skip, check, get, rss_small, within

sys.path.insert(0, os.path.join(harness.TESTS, "lab"))
import lab  # noqa: E402

CASES = []          # (name, fn(L))
SENDER = "hostile-sender@client.test"
SEQ = [0]


def case(name, modes=("trust-ad", "validate")):
    def deco(fn):
        for m in modes:
            CASES.append(("lab-%s: %s" % (m, name), lambda L, fn=fn, m=m: fn(L, m)))
        return fn
    return deco


# ---------------------------------------------------------------- running deliver

def dns_opts(L, mode):
    s = L.state
    if mode == "trust-ad":
        return ["--dnssec", "trust-ad", "--dns", s["dns"]["unbound"]]
    return ["--dnssec", "validate", "--trust-anchor", s["trust_anchor"], "--dns",
            s["dns"]["knot"]]


def log_size(L, tag):
    try:
        return os.path.getsize(L.state["mx"][tag]["log"])
    except OSError:
        return 0


def log_since(L, tag, off):
    try:
        with open(L.state["mx"][tag]["log"], "rb") as f:
            f.seek(off)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class Delivery:
    def __init__(self, L, mode, domain, timeout=20, extra=()):
        SEQ[0] += 1
        self.L = L
        self.mark = "smtpc-hostile-lab-%d-%s" % (SEQ[0], os.urandom(4).hex())
        self.to = "rcpt@" + domain
        d = harness.CTX.scratch("lab-" + domain)
        msg = os.path.join(d, "msg.eml")
        with open(msg, "wb") as f:
            f.write(("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n"
                     "\r\nHostile lab test %s.\r\n" % (SENDER, self.to, self.mark, self.mark,
                                                       self.mark)).encode())
        self.offsets = {t: log_size(L, t) for t in L.state["mx"]}
        self.hits0 = L.https_hits("mta-sts.enforce.sts.test")
        args = ["deliver", "--json", "--from", SENDER, "--to", self.to, "-m", msg,
                "--ca-file", L.state["ca_file"], "--state", os.path.join(d, "state"),
                "--ehlo", "client.test", "--timeout", str(timeout)]
        self.r = harness.run_smtpc(args + dns_opts(L, mode) + list(extra), timeout=120,
                                   env={"XDG_STATE_HOME": os.path.join(d, "xdg")}, cwd=d)
        harness.sanitizer_clean(self.r)
        check(not self.r.killed, "deliver did not exit in time\n" + self.r.describe())
        check(isinstance(self.r.j, dict), "stdout is not one JSON object\n" + self.r.describe())
        doms = self.r.j.get("domains") or []
        check(len(doms) == 1, "expected one domain\n" + self.r.describe())
        self.dom = doms[0]

    def fail(self, what):
        raise Fail("%s\n%s" % (what, self.r.describe()))

    def check(self, cond, what):
        if not cond:
            self.fail(what)

    def eq(self, a, b, what):
        if a != b or type(a) is not type(b):
            self.fail("%s: got %r, expected %r" % (what, a, b))

    # -- outcomes

    def deferred(self):
        """Not delivered, transient (exit 75), never in plaintext."""
        j, dom = self.r.j, self.dom
        self.eq(self.r.rc, 75, "exit status")
        self.eq(j.get("ok"), False, "ok")
        self.eq(dom.get("ok"), False, "domain ok")
        err = dom.get("error") or {}
        self.eq(err.get("permanent"), False, "domain error permanent")
        for x in dom.get("recipients") or []:
            self.eq(x.get("accepted"), False, "recipient accepted")
            self.eq(x.get("permanent"), False, "recipient permanent")
        for a in dom.get("attempts") or []:
            self.check(a.get("tls_mode") != "none", "a plaintext attempt: %r" % a)
        self.nowhere()
        return err

    def delivered_to(self, tag, tls=True):
        self.eq(self.r.rc, 0, "exit status")
        self.eq(self.dom.get("ok"), True, "domain ok")
        needle = self.mark.encode()
        deadline = time.time() + 30
        while True:
            where = self.L.where(needle)
            if tag in where or time.time() > deadline:
                break
            time.sleep(0.1)
        self.eq(sorted(where), [tag], "MX hosts that received the message")
        if tls is not None:
            head = where[tag][0].split(b"\r\nSubject:", 1)[0]
            self.eq(b"(using TLS" in head, tls, "received over TLS")

    def nowhere(self, wait=1.5):
        time.sleep(wait)
        self.eq(sorted(self.L.where(self.mark.encode())), [], "MX hosts that received it")
        for tag in self.L.state["mx"]:
            for ln in log_since(self.L, tag, self.offsets[tag]).splitlines():
                self.check(not ("disconnect from" in ln and " mail=" in ln),
                           "MX %s saw MAIL: %s" % (tag, ln))


# ---------------------------------------------------------------- downgrades

@case("MTA-STS enforce, STARTTLS stripped from the MX's EHLO: deferred, never plaintext")
def sts_stripped(L, mode):
    d = Delivery(L, mode, "downgrade.sts.test")
    d.eq(get(d.dom, "mtasts", "mode"), "enforce", "mtasts.mode")
    err = d.deferred()
    d.eq(get(d.dom, "attempts", 0, "tls_mode"), "starttls", "attempts[0].tls_mode")
    return "deferred: %s" % err.get("message")


@case("DANE MX without STARTTLS: deferred, never plaintext, not verified")
def dane_stripped(L, mode):
    d = Delivery(L, mode, "notls.dane.test")
    err = d.deferred()
    for a in d.dom.get("attempts") or []:
        d.check(a.get("dane") != "verified", "dane verified without TLS: %r" % a)
    return "deferred: %s" % err.get("message")


@case("bogus DNSSEC for the MX host's address: deferred, no downgrade to no-DANE")
def bogus_host(L, mode):
    d = Delivery(L, mode, "bogushost.dane.test")
    err = d.deferred()
    return "deferred: %s" % err.get("message")


@case("bogus DNSSEC zone (MX lookup): deferred, kind dns")
def bogus_zone(L, mode):
    d = Delivery(L, mode, "bogus.test")
    err = d.deferred()
    d.eq(err.get("kind"), "dns", "domain error kind")
    return "deferred: %s" % err.get("message")


@case("bogus DNSSEC answer for the TLSA records (secure MX and A): DANE stays required, "
      "deferred, nothing sent without DANE")
def bogus_tlsa(L, mode):
    d = Delivery(L, mode, "bogustlsa.dane.test")
    err = d.deferred()
    for a in d.dom.get("attempts") or []:
        d.check(a.get("dane") in ("failed", "required-unusable"),
                "attempt without DANE although TLSA was bogus: %r" % a)
        d.check(a.get("tls_mode") == "starttls", "attempt not requiring TLS: %r" % a)
    return "deferred: %s (%s)" % (err.get("message"),
                                  [a.get("dane") for a in d.dom.get("attempts") or []])


# ---------------------------------------------------------------- hostile policy host

BASELINE = {}


def deliver_baseline(L):
    """Peak RSS of an ordinary delivery (plain.test, no MTA-STS) with this smtpc."""
    if "rss" not in BASELINE:
        d = Delivery(L, "trust-ad", "plain.test")
        d.delivered_to("mx1", tls=True)
        BASELINE["rss"] = d.r.maxrss_kb
    return BASELINE["rss"]


def hostile_sts(domain, reason, timeout=20, bound=30.0):
    """RFC 8461 3.3/5: the fetch fails, there is no cached policy: the domain is treated as
    having none (mode null, the failure in mtasts.error) and mail goes out
    opportunistically, within bounded time and memory."""
    def fn(L, mode):
        d = Delivery(L, mode, domain, timeout=timeout)
        m = d.dom.get("mtasts") or {}
        d.eq(m.get("mode"), None, "mtasts.mode")
        d.eq(m.get("error"), reason, "mtasts.error")
        d.eq(get(d.dom, "attempts", 0, "tls_mode"), "opportunistic", "attempts[0].tls_mode")
        d.delivered_to("sts", tls=True)
        within(d.r, bound, "deliver")
        rss_small(d.r, base=deliver_baseline(L))
        d.eq(L.https_hits("mta-sts.enforce.sts.test") - d.hits0, 0,
             "requests to the redirect's target (redirects must not be followed)")
        return "%s in %.2f s, peak RSS %d KiB (an ordinary delivery: %d KiB)" % (
            reason, d.r.elapsed, d.r.maxrss_kb, deliver_baseline(L))
    return fn


for _dom, _reason, _t, _bound in (
        ("redirect.sts.test", "cannot-fetch-policy", 20, 15.0),
        ("huge.sts.test", "policy-syntax-error", 20, 15.0),
        ("endless.sts.test", "policy-syntax-error", 20, 15.0),
        ("hang.sts.test", "cannot-fetch-policy", 3, 12.0),
        ("hangtls.sts.test", "cannot-fetch-policy", 3, 12.0)):
    case("MTA-STS policy host %s: %s, delivered as without a policy"
         % (lab.HOSTILE_STS[_dom][1], _reason), modes=("trust-ad",))(
        hostile_sts(_dom, _reason, _t, _bound))


# ---------------------------------------------------------------- running

def run_all(cases):
    """Yields (name, (ok, detail, seconds)) for each case; ok None means skipped."""
    if not cases:
        return
    reason = None
    if os.geteuid() != 0:
        reason = "the lab needs root (ports 25/53/443, Postfix's master)"
    else:
        for tool in ("postfix", "knotd", "knotc", "kdig", "unbound", "nginx", "openssl"):
            if not shutil.which(tool):
                reason = tool + " not installed (scripts/deps)"
                break
    if reason:
        for name, _ in cases:
            yield name, (None, reason, 0.0)
        return
    L = lab.Lab()
    try:
        L.start(wait_busy=300)
    except Exception as e:  # noqa: BLE001 - every case reports the start failure
        for name, _ in cases:
            yield name, (False, "lab did not start: %s" % e, 0.0)
        return
    failed = False
    try:
        for name, fn in cases:
            t = time.monotonic()
            try:
                detail = fn(L)
                res = (True, detail, time.monotonic() - t)
            except Skip as e:
                res = (None, str(e), time.monotonic() - t)
            except Fail as e:
                res = (False, str(e), time.monotonic() - t)
            except Exception:  # noqa: BLE001
                res = (False, traceback.format_exc(), time.monotonic() - t)
            failed = failed or res[0] is False
            yield name, res
    finally:
        L.stop(keep=failed)
        if failed:
            print("# lab files kept in %s" % L.state.get("dir"))
