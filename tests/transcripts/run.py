#!/usr/bin/env python3
"""Runs the smtpc transcript tests and prints TAP.

    python3 tests/transcripts/run.py build/cli/smtpc [NAME|GLOB ...]
        [-j N] [-v] [--keep] [--check]

Each tests/transcripts/NAME.test is one scenario: smtpc's arguments, the fake server's
script (tests/fake/fakesmtp.py), the expected exit status, assertions on the --json
output and the expected message data. The format is described in README.md next to
this file. --check only parses every test (no smtpc needed: pass any path).

SMTPC_WRAPPER, when set, is a command (shell words) smtpc runs under, e.g.
"valgrind -q --error-exitcode=99 --leak-check=full". Under a wrapper the time limits
are tripled and the `elapsed` assertions are not checked (they would time the wrapper).
"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fake"))

import certs as certsmod  # noqa: E402
import fakesmtp  # noqa: E402
from fakesmtp import ScriptError  # noqa: E402

KNOWN_SECTIONS = {"title", "spec", "args", "file", "stdin", "env", "server", "body", "exit",
                  "json", "timeout", "requires", "note"}


# --------------------------------------------------------------------------------------
# Assertions: "PATH OP JSON" lines


_ASSERT = re.compile(r"^(\S+)\s+(==|!=|!~|~|in|has|not-in|<=|>=|<|>)\s+(.+)$")
_UNARY = re.compile(r"^(\S+)\s+(exists|missing)$")
_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+|\*)\]")


class Missing:
    def __repr__(self):
        return "<missing>"


MISSING = Missing()


def parse_path(path):
    pos, out = 0, []
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise ScriptError("bad path %r" % path)
        if m.group(1) is not None:
            out.append(m.group(1))
        else:
            g = m.group(2)
            out.append("*" if g == "*" else int(g))
        pos = m.end()
    return out


def lookup(value, toks):
    for i, t in enumerate(toks):
        if t == "*":
            if not isinstance(value, list):
                return MISSING
            return [lookup(v, toks[i + 1:]) for v in value]
        if isinstance(t, int):
            if not isinstance(value, list) or not -len(value) <= t < len(value):
                return MISSING
            value = value[t]
        else:
            if not isinstance(value, dict) or t not in value:
                return MISSING
            value = value[t]
    return value


def json_eq(a, b):
    """Equality that keeps JSON types apart (true != 1, 1 == 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_eq(a[k], b[k]) for k in a)
    return a == b


class Assertion:
    def __init__(self, text, lineno):
        self.text, self.lineno = text, lineno
        m = _UNARY.match(text)
        if m:
            self.lhs, self.op, self.rhs = m.group(1), m.group(2), None
        else:
            m = _ASSERT.match(text)
            if not m:
                raise ScriptError("line %d: cannot parse assertion %r" % (lineno, text))
            self.lhs, self.op = m.group(1), m.group(2)
            try:
                self.rhs = json.loads(m.group(3))
            except ValueError:
                raise ScriptError("line %d: right side is not JSON: %r" % (lineno, m.group(3)))
            if self.op in ("~", "!~"):
                if not isinstance(self.rhs, str):
                    raise ScriptError("line %d: regex must be a JSON string" % lineno)
                re.compile(self.rhs)
            if self.op in ("in", "not-in") and not isinstance(self.rhs, list):
                raise ScriptError("line %d: 'in' needs a JSON list" % lineno)
        self.len = False
        lhs = self.lhs
        if lhs.startswith("len(") and lhs.endswith(")"):
            self.len, lhs = True, lhs[4:-1]
        self.special = lhs if lhs in ("stdout", "stderr", "output", "elapsed", "exit") else None
        self.toks = None if self.special else parse_path(lhs)

    def needs_json(self):
        return self.special is None

    def check(self, doc, ctx):
        if self.special:
            v = ctx[self.special]
        else:
            v = lookup(doc, self.toks)
        if self.len:
            v = len(v) if isinstance(v, (list, dict, str)) else MISSING
        op, r = self.op, self.rhs
        if op == "exists":
            return v is not MISSING, v
        if op == "missing":
            return v is MISSING, v
        if v is MISSING:
            return False, v
        if op == "==":
            return json_eq(v, r), v
        if op == "!=":
            return not json_eq(v, r), v
        if op in ("~", "!~"):
            if not isinstance(v, str):
                return False, v
            found = re.search(r, v, re.S) is not None
            return found == (op == "~"), v
        if op == "in":
            return any(json_eq(v, x) for x in r), v
        if op == "not-in":
            return not any(json_eq(v, x) for x in r), v
        if op == "has":
            return isinstance(v, list) and any(json_eq(x, r) for x in v), v
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return False, v
        return {"<": v < r, "<=": v <= r, ">": v > r, ">=": v >= r}[op], v


# --------------------------------------------------------------------------------------
# One test


class Test:
    def __init__(self, path):
        self.tf = fakesmtp.parse_test_file(path)
        self.name = self.tf.name
        self.path = path
        names = [s[0] for s in self.tf.sections]
        for n in names:
            if n not in KNOWN_SECTIONS:
                raise ScriptError("%s: unknown section %%%% %s" % (path, n))
        for n in ("args", "server", "exit"):
            if names.count(n) != 1:
                raise ScriptError("%s: needs exactly one %%%% %s section" % (path, n))
        for n in ("title", "json", "stdin", "env", "timeout", "requires"):
            if names.count(n) > 1:
                raise ScriptError("%s: more than one %%%% %s section" % (path, n))
        t = self.tf.get("title")
        self.title = " ".join(t[1]) if t else self.name
        self.exits = [int(x) for x in self.tf.get("exit")[1]]
        if not self.exits:
            raise ScriptError("%s: %%%% exit needs a status" % path)
        tm = self.tf.get("timeout")
        self.timeout = float(tm[1][0]) if tm else 40.0
        rq = self.tf.get("requires")
        self.requires = rq[1] if rq else []
        a = self.tf.get("args")
        self.args_text = " ".join(l.strip() for l in a[2] if l.strip() and
                                  not l.strip().startswith("#"))
        self.files = {}
        for s in self.tf.all("file"):
            if not s[1]:
                raise ScriptError("%s: %%%% file needs a name" % path)
            self.files[s[1][0]] = fakesmtp.content_bytes(s[1][1:], s[2])
        st = self.tf.get("stdin")
        self.stdin = fakesmtp.content_bytes(st[1], st[2]) if st else None
        self.bodies = {}
        for s in self.tf.all("body"):
            name, opts = s[1][0], s[1][1:]
            same = [o for o in opts if o.startswith("same-as=")]
            if same:
                src = same[0][8:]
                if src not in self.files:
                    raise ScriptError("%s: body %s: no file %s" % (path, name, src))
                self.bodies[name] = self.files[src]
            else:
                self.bodies[name] = fakesmtp.content_bytes(opts, s[2])
        env = self.tf.get("env")
        self.env = []
        for l in (env[2] if env else []):
            if l.strip() and not l.startswith("#"):
                if "=" not in l:
                    raise ScriptError("%s: env lines are NAME=VALUE" % path)
                self.env.append(l.split("=", 1))
        js = self.tf.get("json")
        self.assert_lines = []
        if js:
            for k, l in enumerate(js[2]):
                if l.strip() and not l.strip().startswith("#"):
                    self.assert_lines.append((l.strip(), js[3] + 1 + k))
        # Parsed once with dummy values to catch syntax errors early.
        self.asserts = self.assertions(fakesmtp.cert_vars(None))
        srv = self.tf.get("server")
        self.server_first = srv[3] + 1
        self.listen, self.connect, self.steps = fakesmtp.parse_script(srv[2],
                                                                     self.server_first)
        self.json_mode = "--json" in shlex.split(self.args_text)
        if any(a.needs_json() for a in self.asserts) and not self.json_mode:
            raise ScriptError("%s: JSON assertions without --json" % path)
        body_steps = {s.arg for s in self.steps if s.op == "BODY"}
        for b in self.bodies:
            if b not in body_steps:
                raise ScriptError("%s: %%%% body %s is never received (no BODY %s)"
                                  % (path, b, b))

    def assertions(self, vars):
        """Assertions with placeholders (${tlsa:...}) substituted."""
        out = []
        for text, n in self.assert_lines:
            try:
                out.append(Assertion(fakesmtp.subst(text, vars), n))
            except ScriptError as e:
                raise ScriptError("%s: %s" % (self.path, e))
        return out

    def check_resolve(self, vars):
        """Parse-time validation with dummy values."""
        v = dict(vars)
        v.update({"port": 1, "tmp": "/tmp/x", "file": {n: "/tmp/x/" + n for n in self.files}})
        fakesmtp.resolve(self.steps, v)
        self.argv(v)

    def argv(self, vars):
        out = []
        for tok in shlex.split(self.args_text):
            m = re.fullmatch(r"\$\{seq:(\d+):(.*)\}", tok)
            if m:
                for i in range(1, int(m.group(1)) + 1):
                    out.extend(fakesmtp.subst(w.replace("%d", str(i)), vars)
                               for w in m.group(2).split(" ") if w)
                continue
            out.append(fakesmtp.subst(tok, vars))
        return out


def skip_reason(test):
    for r in test.requires:
        if r == "ipv6":
            try:
                s = socket.socket(socket.AF_INET6)
                s.bind(("::1", 0))
                s.close()
            except OSError:
                return "no IPv6 loopback"
        elif r == "tls-exporter":
            try:
                import ctypes
                ctypes.CDLL("libssl.so.3").SSL_export_keying_material
            except (OSError, AttributeError):
                return "cannot compute tls-exporter here"
        else:
            return "unknown requirement %s" % r
    return None


def show_diff(want, got):
    n = 0
    while n < min(len(want), len(got)) and want[n] == got[n]:
        n += 1
    lo = max(0, n - 40)
    return ("message data differs at byte %d (expected %d bytes, got %d)\n"
            "  expected: %r\n  got:      %r" % (n, len(want), len(got), want[lo:n + 40],
                                               got[lo:n + 40]))


def run_test(test, smtpc, certvars, keep):
    tmp = tempfile.mkdtemp(prefix="smtpc-t-%s-" % test.name)
    diag = []
    try:
        return _run_test(test, smtpc, certvars, tmp, diag)
    except ScriptError as e:
        return False, ["test file error: %s" % e]
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            diag.append("kept %s" % tmp)


def _run_test(test, smtpc, certvars, tmp, diag):
    files = {}
    for name, data in test.files.items():
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        files[name] = p
    vars = dict(certvars)
    vars.update({"tmp": tmp, "file": files})
    srv = fakesmtp.FakeServer(test.listen, test.connect, certvars["_certs"])
    vars["port"] = srv.bind()
    srv.load(fakesmtp.resolve(test.steps, vars))
    wrapper = shlex.split(os.environ.get("SMTPC_WRAPPER", ""))
    argv = wrapper + [smtpc] + test.argv(vars)
    limit = test.timeout * (3 if wrapper else 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPC_")}
    for k, v in test.env:
        env[k] = fakesmtp.subst(v, vars)
    done = threading.Event()
    th = threading.Thread(target=srv.run, args=(done,), daemon=True)
    th.start()
    t0 = time.monotonic()
    timed_out = False
    try:
        p = subprocess.run(argv, input=test.stdin if test.stdin is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=limit, cwd=tmp)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        timed_out = True
        rc, out, err = None, e.stdout or b"", e.stderr or b""
    except OSError as e:
        done.set()
        th.join(5)
        return False, ["cannot run %s: %s" % (smtpc, e)]
    elapsed = time.monotonic() - t0
    done.set()
    th.join(60)
    problems = []
    if th.is_alive():
        problems.append("the fake server did not finish")
    if timed_out:
        problems.append("smtpc did not exit within %gs (killed)" % limit)
    elif rc not in test.exits:
        problems.append("exit status %s, expected %s" % (rc, " or ".join(map(str, test.exits))))
    for m in srv.mismatches:
        problems.append("server: %s" % m)
    doc = None
    out_s = out.decode("utf-8", "replace")
    err_s = err.decode("utf-8", "replace")
    if test.json_mode and not timed_out:
        try:
            dec = json.JSONDecoder()
            s = out_s.strip()
            doc, end = dec.raw_decode(s)
            if s[end:].strip():
                problems.append("stdout has more than one JSON value")
            if not isinstance(doc, dict):
                problems.append("stdout JSON is not an object")
        except ValueError as e:
            problems.append("stdout is not one JSON object: %s" % e)
            doc = None
    ctx = {"stdout": out_s, "stderr": err_s, "output": out_s + err_s, "elapsed": elapsed,
           "exit": rc}
    for a in test.assertions(vars):
        if wrapper and a.special == "elapsed":
            continue
        if a.needs_json() and doc is None:
            problems.append("assertion not checked (no JSON): %s" % a.text)
            continue
        ok, got = a.check(doc, ctx)
        if not ok:
            shown = json.dumps(got) if got is not MISSING else "<missing>"
            if a.special in ("stdout", "stderr", "output") and len(shown) > 300:
                shown = shown[:300] + "..."
            problems.append("assertion failed: %s   (actual: %s)" % (a.text, shown))
    for name, want in test.bodies.items():
        got = srv.bodies.get(name)
        if got is None:
            if not srv.mismatches:
                problems.append("message data %s never received" % name)
        elif got != want:
            problems.append(show_diff(want, got))
    if problems:
        diag.extend(problems)
        diag.append("command: %s" % " ".join(shlex.quote(a) for a in argv)[:2000])
        diag.append("exit status: %s, %.2fs" % (rc, elapsed))
        if out_s.strip():
            diag.append("stdout:")
            diag.extend("  " + l for l in _clip(out_s, 60))
        if err_s.strip():
            diag.append("stderr:")
            diag.extend("  " + l for l in _clip(err_s, 60))
        diag.append("transcript (server view):")
        diag.extend("  " + l for l in srv.tr.render(limit=160).split("\n"))
        return False, diag
    return True, diag


def _clip(text, n):
    lines = text.rstrip("\n").split("\n")
    if len(lines) > n:
        lines = lines[:n // 2] + ["... %d lines left out ..." % (len(lines) - n)] + lines[-n // 2:]
    return [l[:400] for l in lines]


# --------------------------------------------------------------------------------------


def select_tests(names):
    allt = sorted(f[:-5] for f in os.listdir(HERE) if f.endswith(".test"))
    if not names:
        return allt
    out = []
    for n in names:
        n = os.path.basename(n)
        if n.endswith(".test"):
            n = n[:-5]
        hits = [t for t in allt if fnmatch.fnmatchcase(t, n)]
        if not hits:
            sys.stderr.write("no test matches %r\n" % n)
            sys.exit(2)
        out.extend(h for h in hits if h not in out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("smtpc")
    ap.add_argument("names", nargs="*")
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("SMTPC_TEST_JOBS",
                                                                        "8")))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep each test's temp directory")
    ap.add_argument("--check", action="store_true", help="only parse the tests")
    a = ap.parse_args()
    names = select_tests(a.names)
    tests, broken = [], []
    for n in names:
        try:
            tests.append(Test(os.path.join(HERE, n + ".test")))
        except (ScriptError, ValueError, OSError) as e:
            broken.append((n, str(e)))
            tests.append(n)
    print("1..%d" % len(tests), flush=True)
    if a.check:
        dummy = fakesmtp.cert_vars(None)
        fails = 0
        for i, t in enumerate(tests, 1):
            err = None
            if isinstance(t, str):
                err = dict(broken)[t]
            else:
                try:
                    t.check_resolve(dummy)
                except (ScriptError, ValueError) as e:
                    err = str(e)
            name = t if isinstance(t, str) else t.name
            if err:
                fails += 1
                print("not ok %d - %s\n# %s" % (i, name, err))
            else:
                print("ok %d - %s" % (i, name))
        return 1 if fails else 0
    smtpc = os.path.abspath(a.smtpc)
    certdir = tempfile.mkdtemp(prefix="smtpc-pki-")
    try:
        certvars = fakesmtp.cert_vars(certsmod.generate(certdir))
        return _run_all(tests, broken, smtpc, certvars, a)
    finally:
        if not a.keep:
            shutil.rmtree(certdir, ignore_errors=True)


def _run_all(tests, broken, smtpc, certvars, a):
    brokenmap = dict(broken)
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        futs = []
        for t in tests:
            if isinstance(t, str):
                futs.append(None)
            elif skip_reason(t):
                futs.append(("skip", skip_reason(t)))
            else:
                futs.append(ex.submit(run_test, t, smtpc, certvars, a.keep))
        for i, (t, f) in enumerate(zip(tests, futs), 1):
            if f is None:
                failed += 1
                print("not ok %d - %s\n# test file error: %s" % (i, t, brokenmap[t]), flush=True)
                continue
            if isinstance(f, tuple):
                print("ok %d - %s # SKIP %s" % (i, t.name, f[1]), flush=True)
                continue
            ok, diag = f.result()
            if ok:
                print("ok %d - %s" % (i, t.name), flush=True)
                if a.verbose:
                    print("# " + t.title)
            else:
                failed += 1
                print("not ok %d - %s: %s" % (i, t.name, t.title))
                for d in diag:
                    for line in d.split("\n"):
                        print("# " + line)
                sys.stdout.flush()
    if failed:
        print("# %d of %d transcript tests failed" % (failed, len(tests)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
