"""Shared machinery of the hostile-server suite (tests/hostile/run.py).

Runs `smtpc` as a child process and measures it (exit status, stdout, stderr, wall
clock, peak RSS from wait4's rusage of that very child), plays fake-server scripts
(tests/fake/fakesmtp.py) in a thread, and provides the assertions the cases use.
Python 3 standard library only.
"""

import json
import os
import shlex
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "fake"))

import certs as certsmod  # noqa: E402
import fakesmtp  # noqa: E402

HOST = "mx.smtpc.test"
EHLO_NAME = "client.smtpc.test"
SENDER = "sender@example.org"

# The message every case sends unless it says otherwise (CRLF, ASCII).
MESSAGE = (b"From: sender@example.org\r\nTo: rcpt@example.net\r\n"
           b"Subject: hostile server test\r\nMessage-ID: <hostile@example.org>\r\n\r\n"
           b"Hello from the smtpc hostile-server tests.\r\n")

# Peak RSS a run may reach (KiB) in the bounded-memory cases.
RSS_LIMIT_KB = 50 * 1024


class Fail(Exception):
    pass


class Skip(Exception):
    """The case cannot run here (TAP # SKIP with the reason)."""


def check(cond, what):
    if not cond:
        raise Fail(what)


def eq(actual, expected, what):
    if actual != expected or type(actual) is not type(expected):
        raise Fail("%s: got %r, expected %r" % (what, actual, expected))


def get(obj, *path):
    for p in path:
        try:
            obj = obj[p]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


class Ctx:
    """Per-run state: the smtpc path, the test PKI, a scratch directory."""

    def __init__(self, smtpc, tmp):
        self.smtpc = smtpc
        self.tmp = tmp
        self.certvars = fakesmtp.cert_vars(certsmod.generate(os.path.join(tmp, "pki")))
        self.seq = 0
        self.lock = threading.Lock()
        self.baseline = {}
        self.baseline_lock = threading.Lock()
        self.asan = sanitized(smtpc)

    def scratch(self, name):
        with self.lock:
            self.seq += 1
            n = self.seq
        d = os.path.join(self.tmp, "%04d-%s" % (n, "".join(c if c.isalnum() or c in "-_"
                                                              else "_" for c in name)[:60]))
        os.makedirs(d)
        return d


CTX = None          # the Ctx of this run (set by run.py)


# ---------------------------------------------------------------- running smtpc

class Run:
    """One finished smtpc process."""

    def __init__(self, argv, rc, out, err, elapsed, maxrss_kb, killed):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed, self.maxrss_kb, self.killed = elapsed, maxrss_kb, killed
        self.j = None
        try:
            self.j = json.loads(out.decode("utf-8", "replace").strip())
        except ValueError:
            pass
        self.srv = None

    def describe(self, transcript=True):
        lines = ["command: " + " ".join(shlex.quote(a) for a in self.argv)[:1500],
                 "exit status: %s%s, %.2f s, peak RSS %d KiB" % (
                     self.rc, " (killed: did not exit in time)" if self.killed else "",
                     self.elapsed, self.maxrss_kb)]
        if self.j is not None:
            lines += ["json:"] + ["  " + ln for ln in
                                  json.dumps(self.j, indent=1).splitlines()[:200]]
        elif self.out:
            lines.append("stdout: " + self.out.decode("utf-8", "replace")[:3000])
        errs = self.err.decode("utf-8", "replace").splitlines()
        if len(errs) > 60:
            errs = errs[:20] + ["... %d lines ..." % (len(errs) - 40)] + errs[-20:]
        lines += ["stderr: " + ln[:300] for ln in errs]
        if transcript and self.srv is not None:
            if self.srv.mismatches:
                lines += ["server mismatch: " + m for m in self.srv.mismatches]
            lines.append("transcript (server view):")
            lines += ["  " + ln for ln in self.srv.tr.render(limit=120).split("\n")]
        return "\n".join(lines)


TIME = "/usr/bin/time"       # GNU time: the peak RSS of smtpc alone (%M)


def child_pid(pid, timeout=5.0):
    """The first child of pid (smtpc under GNU time), or pid itself without time."""
    deadline = time.monotonic() + timeout
    path = "/proc/%d/task/%d/children" % (pid, pid)
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                kids = f.read().split()
        except OSError:
            return None
        if kids:
            return int(kids[0])
        time.sleep(0.005)
    return None


def run_smtpc(args, stdin=b"", timeout=60.0, env=None, cwd=None, spy=None):
    """Runs smtpc ARGS; returns a Run with smtpc's own peak RSS in KiB.

    The peak comes from GNU time (%M: the rusage of the process it forks and execs).
    Without it, wait4's rusage is used; that figure includes the forking Python's
    size (Linux keeps the high-water mark across fork and exec), so it is only an
    upper bound and maxrss_exact is False."""
    import subprocess
    argv = [CTX.smtpc] + list(args)
    e = {k: v for k, v in os.environ.items() if not k.startswith("SMTPC_")}
    e.update(env or {})
    d = cwd or CTX.tmp
    timed = os.access(TIME, os.X_OK)
    rssfile = os.path.join(d, ".rss.%d" % threading.get_ident())
    cmd = ([TIME, "-f", "%M %x", "-o", rssfile] if timed else []) + argv
    with tempfile.TemporaryFile(dir=d) as fo, tempfile.TemporaryFile(dir=d) as fe, \
            tempfile.TemporaryFile(dir=d) as fi:
        fi.write(stdin)
        fi.seek(0)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=fi, stdout=fo, stderr=fe, env=e, cwd=d,
                             start_new_session=True)
        spy_thread = None
        if spy is not None:
            # spy(pid of smtpc) runs beside it (e.g. reads its memory while it waits).
            target = child_pid(p.pid) if timed else p.pid
            spy_thread = threading.Thread(target=spy, args=(target,), daemon=True)
            spy_thread.start()
        killed = False
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.monotonic() > deadline and not killed:
                killed = True
                os.killpg(p.pid, signal.SIGKILL)   # time and smtpc: their own group
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        if spy_thread is not None:
            spy_thread.join(30)
        rc = os.waitstatus_to_exitcode(status)
        maxrss, exact = ru.ru_maxrss, False
        if timed:
            try:
                with open(rssfile) as f:
                    text = f.read().strip().splitlines()
                os.unlink(rssfile)
                rss, code = text[-1].split()
                maxrss, exact = int(rss), True
                sig = [ln for ln in text if ln.startswith("Command terminated by signal")]
                rc = -int(sig[0].split()[-1]) if sig else int(code)
            except (OSError, ValueError, IndexError):
                pass
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    r = Run(argv, rc, out, err, elapsed, maxrss, killed)
    r.maxrss_exact = exact
    return r


def sanitized(path):
    """True when smtpc is built with AddressSanitizer (its RSS is not comparable)."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ---------------------------------------------------------------- scripted server

def send_args(tls="none", rcpts=("rcpt@example.net",), extra=(), timeout=None,
              json_out=True, msg="${file:msg}", verify=True):
    """smtpc send arguments against the fake server (placeholders filled by session())."""
    a = ["send", "--server", "127.0.0.1:${port}", "--ehlo", EHLO_NAME, "--tls", tls,
         "--from", SENDER]
    for r in rcpts:
        a += ["--to", r]
    if msg:
        a += ["-m", msg]
    if json_out:
        a.append("--json")
    if tls != "none" and verify:
        a += ["--ca-file", "${ca}", "--tls-name", HOST]
    if timeout is not None:
        a += ["--timeout", str(timeout)]
    return a + list(extra)


def session(script, args, files=None, stdin=b"", timeout=60.0, env=None, name="case",
            spy=None):
    """Plays `script` (fakesmtp steps, one per line) against `smtpc ARGS`.
    files: {name: bytes} written to the case's directory (${file:NAME}); "msg" defaults
    to MESSAGE. Returns the Run (with .srv: the FakeServer)."""
    d = CTX.scratch(name)
    fl = {"msg": MESSAGE}
    fl.update(files or {})
    paths = {}
    for n, data in fl.items():
        p = os.path.join(d, n)
        with open(p, "wb") as f:
            f.write(data)
        paths[n] = p
    vars = dict(CTX.certvars)
    vars.update({"tmp": d, "file": paths})
    lines = script.strip("\n").split("\n") if isinstance(script, str) else list(script)
    listen, connect, steps = fakesmtp.parse_script(lines)
    srv = fakesmtp.FakeServer(listen, connect, CTX.certvars["_certs"])
    vars["port"] = srv.bind()
    srv.load(fakesmtp.resolve(steps, vars))
    argv = [fakesmtp.subst(a, vars) for a in args]
    envs = {k: fakesmtp.subst(v, vars) for k, v in (env or {}).items()}
    done = threading.Event()
    th = threading.Thread(target=srv.run, args=(done,), daemon=True)
    th.start()
    try:
        r = run_smtpc(argv, stdin=stdin, timeout=timeout, env=envs, cwd=d, spy=spy)
    finally:
        done.set()
        th.join(130)
    r.srv = srv
    r.dir = d
    if th.is_alive():
        raise Fail("the fake server did not finish\n" + r.describe())
    return r


def client_bytes(srv):
    """Everything the client sent, as the server received it (after TLS)."""
    return b"".join(d for _, who, d in srv.tr.items if who == "C")


def server_bytes(srv):
    return b"".join(d for _, who, d in srv.tr.items if who == "S")


# ---------------------------------------------------------------- assertions

def sanitizer_clean(r):
    if b"runtime error:" in r.err or b"Sanitizer" in r.err:
        raise Fail("sanitizer report on stderr\n" + r.describe())


def one_json(r):
    sanitizer_clean(r)
    check(not r.killed, "smtpc did not exit within its time limit (hang)\n" + r.describe())
    check(isinstance(r.j, dict), "stdout is not exactly one JSON object\n" + r.describe())
    return r.j


def within(r, secs, what="the run"):
    check(r.elapsed <= secs, "%s took %.2f s, bound %.1f s\n%s" % (what, r.elapsed, secs,
                                                                  r.describe()))


def baseline_rss(tls="none"):
    """Peak RSS (KiB) of an ordinary small session with this smtpc (plaintext, or with
    STARTTLS when tls is "starttls"), measured once each."""
    with CTX.baseline_lock:     # measured once, even when cases ask at the same time
        if tls not in CTX.baseline:
            CTX.baseline[tls] = _measure_baseline(tls)
        return CTX.baseline[tls]


def _measure_baseline(tls):
    pre = []
    if tls == "starttls":
        pre = [ehlo("STARTTLS", "8BITMIME"), "C: STARTTLS", "S: 220 go", "TLS cert=valid"]
    r = session("\n".join([GREET] + pre + [
        ehlo("8BITMIME"), "C: MAIL FROM:<%s> BODY=7BIT" % SENDER, "S: 250 ok",
        "C: RCPT TO:<rcpt@example.net>", "S: 250 ok", "C: DATA", "S: 354 go", "BODY b",
        "S: 250 queued", "QUIT"]), send_args(tls=tls), name="baseline-rss-" + tls)
    check(r.rc == 0, "the baseline session failed\n" + r.describe())
    return r.maxrss_kb


# How much a hostile input may add to the peak RSS of an ordinary session.
RSS_GROWTH_KB = 8 * 1024


def rss_small(r, limit_kb=RSS_LIMIT_KB, base=None):
    """Bounded memory: below limit_kb (50 MB) and at most RSS_GROWTH_KB above an ordinary
    run's peak (base; default: an ordinary `send` session's). Under AddressSanitizer only
    the growth is checked (its shadow memory inflates every figure)."""
    if not getattr(r, "maxrss_exact", False):
        return
    if base is None:
        base = baseline_rss()
    grow = r.maxrss_kb - base
    check(grow <= RSS_GROWTH_KB, "peak RSS %d KiB, %d KiB above an ordinary session's (%d KiB)"
          "; allowed %d KiB more\n%s" % (r.maxrss_kb, grow, base, RSS_GROWTH_KB,
                                          r.describe()))
    if not CTX.asan:
        check(r.maxrss_kb < limit_kb, "peak RSS %d KiB >= %d KiB\n%s"
              % (r.maxrss_kb, limit_kb, r.describe()))


def server_clean(r):
    """The fake server saw no protocol mismatch."""
    check(not r.srv.mismatches, "fake server mismatches:\n  " +
          "\n  ".join(r.srv.mismatches) + "\n" + r.describe())


def expect(r, rc, where, kind, command=None, permanent=None, code=None, enhanced=None):
    """The run failed as said: `where` is "top" (session error) or a message index.
    kind may be a tuple of acceptable kinds. Returns the error object."""
    j = one_json(r)
    try:
        eq(r.rc, rc, "exit status")
        eq(j.get("ok"), False, "ok")
        if where == "top":
            err = j.get("error")
        else:
            msgs = j.get("messages") or []
            check(len(msgs) > where, "messages[%d] missing" % where)
            eq(msgs[where].get("ok"), False, "messages[%d].ok" % where)
            err = msgs[where].get("error")
        check(isinstance(err, dict), "no error object at %s" % where)
        if isinstance(kind, tuple):
            check(err.get("kind") in kind, "error.kind %r not in %r" % (err.get("kind"), kind))
        else:
            eq(err.get("kind"), kind, "error.kind")
        if command is not None:
            if isinstance(command, tuple):
                check(err.get("command") in command, "error.command %r not in %r"
                      % (err.get("command"), command))
            else:
                eq(err.get("command"), command, "error.command")
        if permanent is not None:
            eq(err.get("permanent"), permanent, "error.permanent")
        if code is not None:
            eq(err.get("code"), code, "error.code")
        if enhanced is not None:
            eq(err.get("enhanced_code"), enhanced, "error.enhanced_code")
        nothing_delivered(r)
    except Fail as e:
        raise Fail("%s\n%s" % (e, r.describe()))
    return err


def nothing_delivered(r):
    """No message reported delivered; every recipient reported not delivered."""
    j = r.j
    eq(j.get("ok"), False, "ok")
    for i, m in enumerate(j.get("messages") or []):
        eq(m.get("ok"), False, "messages[%d].ok" % i)
    check(r.rc != 0, "exit status 0 although nothing was delivered")


def delivered(r, n_msgs=1):
    j = one_json(r)
    try:
        eq(r.rc, 0, "exit status")
        eq(j.get("ok"), True, "ok")
        eq(j.get("error"), None, "error")
        msgs = j.get("messages") or []
        eq(len(msgs), n_msgs, "number of messages")
        for i, m in enumerate(msgs):
            eq(m.get("ok"), True, "messages[%d].ok" % i)
            for rc_ in m.get("recipients") or []:
                eq(rc_.get("accepted"), True, "recipient %s accepted" % rc_.get("address"))
    except Fail as e:
        raise Fail("%s\n%s" % (e, r.describe()))


def rcpt(r, i, accepted, code, permanent=False, msg=0):
    x = get(r.j, "messages", msg, "recipients", i)
    check(isinstance(x, dict), "messages[%d].recipients[%d] missing\n%s" % (msg, i,
                                                                           r.describe()))
    try:
        eq(x.get("accepted"), accepted, "recipients[%d].accepted" % i)
        eq(x.get("code"), code, "recipients[%d].code" % i)
        eq(x.get("permanent"), permanent, "recipients[%d].permanent" % i)
        if code == 0:
            eq(x.get("line"), "", "recipients[%d].line (no reply)" % i)
    except Fail as e:
        raise Fail("%s\n%s" % (e, r.describe()))


# ---------------------------------------------------------------- case registry

CASES = []          # (name, fn) in registration order


def case(name):
    def deco(fn):
        CASES.append((name, fn))
        return fn
    return deco


def add(name, fn):
    CASES.append((name, fn))


# ---------------------------------------------------------------- script pieces

GREET = "S: 220 %s ESMTP fake" % HOST


def ehlo(*ext):
    """The client's EHLO and a 250 reply offering ext (keywords, in order)."""
    lines = ["C: EHLO " + EHLO_NAME]
    words = [HOST] + list(ext)
    for i, w in enumerate(words):
        lines.append("S: 250%s%s" % (" " if i == len(words) - 1 else "-", w))
    return "\n".join(lines)


def starttls(cert="valid", opts=""):
    return "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\nTLS cert=%s %s" % (cert, opts)
