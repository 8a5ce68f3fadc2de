#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make valgrind`: the unit tests and one end-to-end test under valgrind.

Usage: valgrind.py BUILD_DIR

Runs every C test program of BUILD_DIR's CTest list (unit tests and the
fuzz corpus replays; backend tests on epoll only, to keep the run short) under `valgrind --leak-check=full --error-exitcode=1`, then
tests/reliability_e2e.py's `echo` test with echod under valgrind, and
tests/echod_tls_e2e.py's `test_clean_exit` (a TLS listener) the same way. Prints one
line per program; exits 1 if any failed. A test that exits 77 is reported as
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


def main():
    build = sys.argv[1]
    listing = subprocess.run(["ctest", "--test-dir", build, "--show-only=json-v1"],
                             capture_output=True, text=True, check=True)
    tests = json.loads(listing.stdout)["tests"]
    failed = passed = skipped = 0
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
        start = time.monotonic()
        p = subprocess.run(VALGRIND + cmd, capture_output=True, text=True, errors="replace",
                           timeout=900,
                           cwd=build)
        took = time.monotonic() - start
        if p.returncode == 77:
            skipped += 1
            verdict = "skip"
        elif p.returncode == 0:
            passed += 1
            verdict = "ok  "
        else:
            failed += 1
            verdict = "FAIL"
            sys.stdout.write(p.stderr[-6000:])
        print("%s %-28s %6.1fs" % (verdict, name, took), flush=True)
    # One end-to-end test: echod itself under valgrind, 64 MiB through it.
    echod = echod or os.path.join(build, "apps", "echod", "echod")
    env = dict(os.environ, IOMUX_ECHOD_WRAPPER=" ".join(VALGRIND))
    start = time.monotonic()
    p = subprocess.run([sys.executable, os.path.join(HERE, "reliability_e2e.py"), "--echod", echod,
                        "--bytes", str(64 << 20), "echo", "epoll"], env=env,
                       capture_output=True, text=True, timeout=900)
    took = time.monotonic() - start
    if p.returncode == 0:
        passed += 1
        print("ok   %-28s %6.1fs" % ("echod under valgrind", took))
    else:
        failed += 1
        sys.stdout.write(p.stdout[-6000:] + p.stderr[-6000:])
        print("FAIL %-28s %6.1fs" % ("echod under valgrind", took))
    # And a TLS listener: echod under valgrind through a handshake, an echo,
    # a failed handshake and one left half done, then SIGTERM and exit 0.
    if tls_cmd:
        start = time.monotonic()
        p = subprocess.run(tls_cmd + ["test_clean_exit"], env=env, capture_output=True, text=True,
                           timeout=900)
        took = time.monotonic() - start
        if p.returncode == 77:
            skipped += 1
            print("skip %-28s %6.1fs" % ("echod TLS under valgrind", took))
        elif p.returncode == 0:
            passed += 1
            print("ok   %-28s %6.1fs" % ("echod TLS under valgrind", took))
        else:
            failed += 1
            sys.stdout.write(p.stdout[-6000:] + p.stderr[-6000:])
            print("FAIL %-28s %6.1fs" % ("echod TLS under valgrind", took))
    print("valgrind: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
