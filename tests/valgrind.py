#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make valgrind`: the unit tests and one end-to-end test under valgrind.

Usage: valgrind.py BUILD_DIR

Runs every C test program of BUILD_DIR's CTest list (unit tests and the
fuzz corpus replays; backend tests on epoll only, to keep the run short)
under `valgrind --leak-check=full --error-exitcode=1`, then
tests/reliability_e2e.py's `echo` test with echod under valgrind, and
tests/echod_tls_e2e.py's `test_clean_exit` (a TLS listener) the same way.
Prints one line per program; exits 1 if any failed. A test that exits 77 is reported as
skipped, not passed.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VALGRIND = ["valgrind", "--leak-check=full", "--error-exitcode=1", "--quiet",
            "--track-fds=no", "--trace-children=no"]


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


class Tally:
    """Runs one program and counts its verdict: 77 is a skip, never a pass."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def run(self, label, argv, **kw):
        start = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=900,
                           **kw)
        took = time.monotonic() - start
        if p.returncode == 77:
            self.skipped += 1
            verdict = "skip"
        elif p.returncode == 0:
            self.passed += 1
            verdict = "ok  "
        else:
            self.failed += 1
            verdict = "FAIL"
            sys.stdout.write(p.stdout[-6000:] + p.stderr[-6000:])
        print("%s %-28s %6.1fs" % (verdict, label, took), flush=True)


def main():
    build = sys.argv[1]
    listing = subprocess.run(["ctest", "--test-dir", build, "--show-only=json-v1"],
                             capture_output=True, text=True, check=True)
    tests = json.loads(listing.stdout)["tests"]
    tally = Tally()
    echod = None
    tls_cmd = None
    for t in tests:
        name, cmd = t["name"], t.get("command") or []
        if not cmd:
            continue
        if name == "tls.echod.epoll":
            tls_cmd = cmd
        if name.startswith("echod.") and echod is None:
            echod = cmd[2] if len(cmd) > 2 else None
        if not is_elf(cmd[0]) or not os.path.abspath(cmd[0]).startswith(os.path.abspath(build)):
            continue  # a Python driver: only C programs run under valgrind
        if "." in name and not name.endswith(".epoll") and not name.startswith("fuzz_replay."):
            continue
        tally.run(name, VALGRIND + cmd, cwd=build)
    # One end-to-end test: echod itself under valgrind, 64 MiB through it.
    echod = echod or os.path.join(build, "apps", "echod", "echod")
    env = dict(os.environ, IOMUX_ECHOD_WRAPPER=" ".join(VALGRIND))
    tally.run("echod under valgrind",
              [sys.executable, os.path.join(HERE, "reliability_e2e.py"), "--echod", echod,
               "--bytes", str(64 << 20), "echo", "epoll"], env=env)
    # And a TLS listener: echod under valgrind through a handshake, an echo,
    # a failed handshake and one left half done, then SIGTERM and exit 0.
    if tls_cmd:
        tally.run("echod TLS under valgrind", tls_cmd + ["test_clean_exit"], env=env)
    print("valgrind: %d passed, %d failed, %d skipped" % (tally.passed, tally.failed,
                                                         tally.skipped))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
