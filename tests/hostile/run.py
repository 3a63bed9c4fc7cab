#!/usr/bin/env python3
"""Hostile and broken servers, and the proofs that nothing is lost or leaked:
`smtpc send` and `smtpc deliver` driven black-box. Prints TAP.

    python3 tests/hostile/run.py build/cli/smtpc [SUBSTRING...] [-j N] [-v] [--list]

Every case asserts an exact outcome: exit status, error kind, command, permanence,
that nothing is reported delivered, a wall-clock bound (with --timeout) and, for the
huge inputs, the client's peak RSS (wait4 rusage of the smtpc process).

  stall-*    the server stops answering mid-reply, mid-DATA, mid-TLS-handshake, or
             dribbles bytes (a slow loris): the stage timeout fires, time is bounded
  huge-*     10 MB reply line, 100 000-line reply, EHLO with 10 000 keywords, 10 MB SASL
             challenge: a clean protocol error, peak RSS < 50 MB
  inject-*   STARTTLS command injection (plaintext after the 220 in the same packet)
  close-*    the server closes after MAIL, each RCPT, 354, the final dot: transient,
             unknown recipients have code 0
  reply-*    421 at every stage, 4xx and 5xx to every command (pipelined or not)
  tls-*      expired / wrong name / self-signed / untrusted CA / TLS 1.0-only / alert
             after the handshake, x immediate/starttls/opportunistic x pkix/none/
             --ignore-tls-errors, with the exact TLSRPT results
  kill-*     the server dies after N bytes sent (or read), for every N of a session:
             delivered only if the 250 to the final dot was fully sent
  secret-*   passwords and tokens never in any output; AUTH never sent unprotected
  lab-*      `smtpc deliver` in the DNSSEC/DANE/MTA-STS lab (tests/lab/lab.py): STARTTLS
             stripped, bogus DNSSEC, hostile MTA-STS policy hosts (needs root; else
             skipped)

Cases run in parallel (-j, default 8, or SMTPC_TEST_JOBS); the lab cases run after
the others, one at a time, with the lab started once. Python 3 standard library only.
"""

import argparse
import concurrent.futures
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import Fail  # noqa: E402

import fake_cases  # noqa: E402,F401  (registers cases)
import kill_cases  # noqa: E402,F401
import secret_cases  # noqa: E402,F401
import lab_cases  # noqa: E402


def run_one(name, fn):
    t = time.monotonic()
    try:
        detail = fn()
        return True, detail, time.monotonic() - t
    except harness.Skip as e:
        return None, str(e), time.monotonic() - t
    except Fail as e:
        return False, str(e), time.monotonic() - t
    except Exception:  # noqa: BLE001 - a bug in a case fails that case
        return False, traceback.format_exc(), time.monotonic() - t


def report(n, name, result, verbose):
    ok, detail, secs = result
    if ok is None:
        print("ok %d - %s # SKIP %s" % (n, name, detail), flush=True)
        return True
    print("%s %d - %s" % ("ok" if ok else "not ok", n, name))
    if detail and (not ok or verbose or detail.count("\n") < 3):
        for ln in str(detail).rstrip("\n").split("\n")[:400]:
            print("# " + ln)
    if secs > 60:
        print("# slow case: %.1f s" % secs)
    sys.stdout.flush()
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("smtpc")
    ap.add_argument("only", nargs="*", help="run the cases whose name contains one of these")
    ap.add_argument("-j", "--jobs", type=int,
                    default=int(os.environ.get("SMTPC_TEST_JOBS", "8")))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    a = ap.parse_args()
    cases = [(n, f) for n, f in harness.CASES
             if not a.only or any(o in n for o in a.only)]
    labs = [(n, f) for n, f in lab_cases.CASES if not a.only or any(o in n for o in a.only)]
    if a.list:
        for n, _ in cases + labs:
            print(n)
        return 0
    smtpc = os.path.abspath(a.smtpc)
    if not os.access(smtpc, os.X_OK):
        print("Bail out! %s is not executable" % smtpc)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    tmp = tempfile.mkdtemp(prefix="smtpc-hostile-")
    harness.CTX = harness.Ctx(smtpc, tmp)
    print("1..%d" % (len(cases) + len(labs)), flush=True)
    failed = 0
    n = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            futs = [(name, ex.submit(run_one, name, fn)) for name, fn in cases]
            for name, fut in futs:
                n += 1
                if not report(n, name, fut.result(), a.verbose):
                    failed += 1
        for name, result in lab_cases.run_all(labs):
            n += 1
            if not report(n, name, result, a.verbose):
                failed += 1
    finally:
        if failed or a.keep:
            print("# scratch files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        print("# %d of %d hostile cases failed" % (failed, n))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
