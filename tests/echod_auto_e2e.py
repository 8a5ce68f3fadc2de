#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""echod --engine auto (the default): which engine it chooses, and says.

    echod_auto_e2e.py ECHOD NO_URING [TEST...]

NO_URING is tests/no_uring.c: it runs echod under a seccomp filter that
makes io_uring_setup() fail (ENOSYS as on a kernel without io_uring, EPERM
as under a container's policy), so the fall-back is seen with the kernel's
own refusal, not a switch in echod. Exit 77 when nothing could be checked.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, Skip, check, connect, roundtrip,  # noqa: E402
                        run_each, exit_status, select_tests)

ECHOD = NO_URING = None
LISTENING = r"^echod: listening on 127\.0\.0\.1:\d+ \((?P<label>[^)]*)\)$"
CHOSEN = r"^echod: engine (?P<engine>\S+) \(--engine auto(?P<why>[^)]*)\)$"


def uring_here():
    """'yes' if `--engine uring` serves here, 'missing' if not built,
    'refused' if the kernel refuses it."""
    with Echod(ECHOD, "engine-uring", may_exit=True) as d:
        if d.port is not None:
            return "yes"
        d.wait()
        err = d.stderr()
    if "not compiled in" in err:
        return "missing"
    return "refused"


def serve_one(d, label, engine, why):
    """echod `d` said it serves with `label`, chose `engine` for `why`
    (a regex for the part after "--engine auto"), and echoes."""
    listening = d.wait_stderr(LISTENING)
    check(listening.group("label") == label,
          "listening line says %r, not %r" % (listening.group(0), label))
    chosen = d.wait_stderr(CHOSEN)
    check(chosen.group("engine") == engine and re.fullmatch(why, chosen.group("why")),
          "engine line %r: wanted engine %s (%s)" % (chosen.group(0), engine, why))
    s = connect(d.port)
    roundtrip(s, b"auto engine\n")
    s.close()
    check(label in d.stats(), "the stats line names %r" % label)
    check(d.stop() == 0, "echod exits 0")


def test_default_is_auto():
    """No --engine: io_uring where this build and kernel allow it, else the
    readiness engine, and the start-up lines say which (and why)."""
    here = uring_here()
    with Echod(ECHOD, "auto", quiet=False) as d:
        if here == "yes":
            serve_one(d, "engine uring", "uring", "")
        elif here == "missing":
            serve_one(d, "backend epoll", "loop", r": uring not compiled in, no .*")
        else:
            serve_one(d, "backend epoll", "loop", r": uring not available here: .*")


def fallback(errname, strerror):
    """Under a filter refusing io_uring_setup() with errname: auto falls back
    to the loop engine and says why; --engine uring exits 1 saying it is
    not available."""
    with Echod(ECHOD, "auto", quiet=False, argv0=[NO_URING, errname], may_exit=True) as d:
        if d.port is None:
            d.wait()
            if d.proc.returncode == 77:
                raise Skip("no_uring: %s" % d.stderr().strip())
            check(False, "echod under no_uring exited: %s" % d.stderr())
        serve_one(d, "backend epoll", "loop",
                  r": uring (not available here: %s|not compiled in, no .*)" % re.escape(strerror))
    if uring_here() != "yes":
        return
    r = subprocess.run([NO_URING, errname, ECHOD, "--engine", "uring", "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "--engine uring: not available on this system" in r.stderr,
          "--engine uring refused: exit %d, %r" % (r.returncode, r.stderr))


def test_fallback_enosys():
    """A kernel without io_uring (ENOSYS)."""
    fallback("ENOSYS", os.strerror(38))


def test_fallback_eperm():
    """A policy that forbids it (EPERM: seccomp, io_uring_disabled)."""
    fallback("EPERM", os.strerror(1))


def test_backend_means_loop():
    """--backend NAME names a readiness backend, which only the loop engine
    uses: auto takes the loop engine on it, and says so."""
    with Echod(ECHOD, "auto", "--backend", "poll", quiet=False) as d:
        serve_one(d, "backend poll", "loop", r": --backend given")


def test_uring_option_means_uring():
    """An option of the io_uring engine's own means that engine."""
    here = uring_here()
    with Echod(ECHOD, "auto", "--busy-poll", "10", quiet=False, may_exit=True) as d:
        if here != "yes":
            check(d.port is None and d.wait() != 0, "without io_uring, --busy-poll fails")
            return
        serve_one(d, "engine uring", "uring", r": --busy-poll given")


def test_quiet_and_trace():
    """--quiet says nothing; --trace keeps the seed's lines (no engine
    line) and echoes, on whichever engine auto chose."""
    with Echod(ECHOD, "auto") as d:
        s = connect(d.port)
        roundtrip(s, b"quiet\n")
        s.close()
        d.stop()
        check("engine" not in d.stderr(), "--quiet prints no engine line: %r" % d.stderr())
    with Echod(ECHOD, "auto", "--trace", quiet=False) as d:
        d.wait_stderr(r"^starting up on 127\.0\.0\.1 port \d+$")
        s = connect(d.port)
        roundtrip(s, b"traced\n")
        d.wait_stderr(r"traced")
        s.close()
        d.stop()
        check("echod: engine" not in d.stderr(), "--trace prints no engine line")


TESTS = [test_default_is_auto, test_fallback_enosys, test_fallback_eperm,
         test_backend_means_loop, test_uring_option_means_uring, test_quiet_and_trace]


def main():
    global ECHOD, NO_URING
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ECHOD, NO_URING = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    tests = select_tests(TESTS, sys.argv[3:])
    failed, skipped = run_each(tests)
    return exit_status(failed, skipped, len(tests))


if __name__ == "__main__":
    sys.exit(main())
