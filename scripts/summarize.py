#!/usr/bin/env python3
"""Sum `meson test` results over build directories, counting TAP subtests.

Usage: summarize.py [--extra-failures N] [--tap FILE]... BUILDDIR...
Reads BUILDDIR/meson-logs/testlog.json (one JSON object per test) and
`meson introspect --tests` (to know which tests speak TAP).  A TAP test
counts one result per "ok"/"not ok" line ("# SKIP" -> skipped, "# TODO" ->
passed whatever its outcome); when meson judged a TAP test bad (bail-out,
crash, timeout, wrong plan) but none of its lines failed, one more failure
is counted.  Any other test counts once by its result.  A build directory
without a test log (the build failed) counts as one failure.
A --tap FILE (a step run outside meson: fuzz/run's FUZZ_TAP, the valgrind
transcript run) counts its "ok"/"not ok" lines the same way; a missing
file, or fewer results than its plan announces, counts the missing ones
as failures (at least one).
Prints "N passed, N failed" (plus ", N skipped" when some were skipped);
exits 1 if anything failed.
"""

import json
import os
import re
import subprocess
import sys

BAD = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS", "INTERRUPT"}
TAP_LINE = re.compile(r"^(not ok|ok)\b[^#]*(#\s*(\w+))?", re.IGNORECASE)


def tap_tests(builddir):
    try:
        out = subprocess.run(["meson", "introspect", "--tests", builddir],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             check=True).stdout
        return {t["name"] for t in json.loads(out) if t.get("protocol") == "tap"}
    except (OSError, subprocess.CalledProcessError, ValueError):
        return set()


def count_tap(stdout, bad, skipped=False):
    p = f = s = 0
    for line in (stdout or "").splitlines():
        m = TAP_LINE.match(line.strip())
        if not m:
            continue
        directive = (m.group(3) or "").upper()
        if directive == "SKIP":
            s += 1
        elif directive == "TODO" or m.group(1).lower() == "ok":
            p += 1
        else:
            f += 1
    if bad and f == 0:
        f = 1
    elif skipped and p + f + s == 0:
        s = 1  # "1..0 # SKIP reason": the whole test was skipped
    return p, f, s


def summarize(builddir):
    log = os.path.join(builddir, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        return 0, 1, 0
    taps = tap_tests(builddir)
    p = f = s = 0
    with open(log) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            res = t.get("result", "ERROR")
            # The log names tests "project:suite / name"; introspect just "name".
            name = t.get("name", "").rsplit(" / ", 1)[-1]
            if name in taps:
                dp, df, ds = count_tap(t.get("stdout"), res in BAD, res == "SKIP")
            elif res in BAD:
                dp, df, ds = 0, 1, 0
            elif res == "SKIP":
                dp, df, ds = 0, 0, 1
            else:
                dp, df, ds = 1, 0, 0
            p, f, s = p + dp, f + df, s + ds
    return p, f, s


PLAN = re.compile(r"^1\.\.(\d+)")


def summarize_tap_file(path):
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return 0, 1, 0
    p, f, s = count_tap(text, False)
    plans = [int(m.group(1)) for m in map(PLAN.match, text.splitlines()) if m]
    want = plans[0] if plans else 0
    if p + f + s < max(want, 1):
        f += max(want, 1) - (p + f + s)
    return p, f, s


def main(argv):
    extra = 0
    taps = []
    while argv[:1] in (["--extra-failures"], ["--tap"]):
        if argv[0] == "--tap":
            taps.append(argv[1])
        else:
            extra = int(argv[1])
        argv = argv[2:]
    total = [0, 0, 0]
    for d in argv:
        for i, v in enumerate(summarize(d)):
            total[i] += v
    for t in taps:
        for i, v in enumerate(summarize_tap_file(t)):
            total[i] += v
    total[1] += extra
    line = "%d passed, %d failed" % (total[0], total[1])
    if total[2]:
        line += ", %d skipped" % total[2]
    print(line)
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
