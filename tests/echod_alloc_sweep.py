#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Allocation-failure sweep of echod (issue 7) that also runs in the
sanitizer build.

Usage: echod_alloc_sweep.py --echod PATH [--faults KEYS] MODE
  PATH  echod_alloc_wrap (tests/alloc_sweep.cmake): echod linked with the
        counting allocator of tests/alloc_wrap.c through the linker's --wrap
  KEYS  fault modes of the TCP listener ("delay=1": --listen
        127.0.0.1:0,delay=1), so that the failures reach a fault listener's
        admission (its transport; the side engine with --engine uring)
  MODE  epoll, poll, select or uring (--engine loop --backend MODE), or engine-uring
        (--engine uring)

echod starts with a TCP and a UDP port-0 address, --max-conns-per-ip and
--idle-timeout (each costs start-up allocations), serves three TCP clients
in turn and one UDP datagram, and is stopped with SIGTERM. First without
faults, to count its allocations; then with IOMUX_FAIL_ALLOC_AT=N for
N = 1, 2, ... until N is past the last allocation of the run. Every run
must end in one of:
  exit1      start-up failed: exit status 1, exactly one line on stderr,
             starting "echod: "
  served     echod started, served every client and exited 0 on SIGTERM
  conn-lost  the failure cost one TCP client, which echod closed (never
             left hanging) and said so on stderr; the other clients and
             the datagram were served and echod exited 0 on SIGTERM
and no run may print a sanitizer report (in the ASan build LeakSanitizer
checks every exit path) or die of a signal. N past the start-up
allocations of an idle run are failures while serving: echod must keep
running. Exits 0 pass, 1 fail, 77 skip. Readiness is read from echod's
stdout, never slept for; every wait has a deadline. Only processes this
script started are signalled.
"""
import argparse
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, Skip, check, connect, fail, mode_args, run_one,  # noqa: E402
                        sanitized, udp_socket)

ARGS = None
SANITIZED = False
# Each adds allocations to start-up: the UDP service (its buffers and rate
# buckets), the per-address table, the idle sweep timer. (--listen
# 127.0.0.1:0 and --quiet are Echod's.)
ECHOD_OPTS = ["--udp", "127.0.0.1:0", "--max-conns-per-ip", "4", "--idle-timeout", "30"]
ADDRESSES = 2  # port-0 lines on stdout: the TCP one, then the UDP one
CLIENTS = 3
# Seconds for echod to print its addresses, and to exit: an ASan build on a
# loaded machine is slow.
ECHOD_TIMEOUT = 30
IO_TIMEOUT = 10
MAX_PROBLEMS = 5  # runs that went wrong before the sweep gives up
SANITIZER_REPORT = re.compile(r"Sanitizer|runtime error:|^SUMMARY:", re.M)
# Make any sanitizer report end the process with a status echod never uses.
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
    "LSAN_OPTIONS": "exitcode=86",
}


def log(msg):
    print(msg, flush=True)


def start(tmp, fail_at=0):
    """A wrapped echod (an echod_proc.Echod) failing allocation `fail_at`
    (0: none) and writing its counters to tmp/report. d.addrs holds the
    addresses it printed: fewer than ADDRESSES if it exited first."""
    report = os.path.join(tmp, "report")
    if os.path.exists(report):
        os.unlink(report)
    env = {k: (os.environ[k] + ":" + v) if os.environ.get(k) else v  # ours win: last
           for k, v in SAN_ENV.items()}
    env["IOMUX_ALLOC_REPORT"] = report
    env["IOMUX_FAIL_ALLOC_AT"] = str(fail_at)  # 0 (or unset): no failure
    listen, opts = "127.0.0.1:0", ECHOD_OPTS
    if ARGS.faults:
        listen, opts = listen + "," + ARGS.faults, opts + ["--fault-seed", "1"]
    return Echod(ARGS.echod, ARGS.mode, *opts, listen=listen, lines=ADDRESSES, may_exit=True,
                 env=env, stdin=subprocess.DEVNULL, timeout=ECHOD_TIMEOUT)


def read_report(path):
    """The wrapper's counters, or None if echod wrote none."""
    try:
        with open(path) as f:
            return {k: int(v) for k, v in (kv.split("=") for kv in f.read().split())}
    except FileNotFoundError:
        return None


def checked_report(tmp, d):
    """The counters of the run of `d`, which has exited."""
    rep = read_report(os.path.join(tmp, "report"))
    check(rep is not None, "echod wrote no allocation report (killed, or _exit?); status "
          "%s, stderr %r" % (d.proc.returncode, d.stderr()))
    # The build without LeakSanitizer has this count as its leak check.
    # Below zero is no leak: echod freed something the C library made.
    check(rep["live"] <= 0, "%d blocks from malloc and friends not freed at exit; stderr %r"
          % (rep["live"], d.stderr()))
    return rep


def tcp_roundtrip(addr, payload):
    """True if `payload` came back; False if echod closed or refused the
    connection first. A connection left hanging is a failure."""
    try:
        s = connect(addr[1], addr[0], IO_TIMEOUT)
    except ConnectionRefusedError:
        return False
    except socket.timeout:
        fail("TCP client: connect timed out after %ss" % IO_TIMEOUT)
    try:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                return False
            got += chunk
    except socket.timeout:
        fail("TCP client: no echo and no close within %ss" % IO_TIMEOUT)
    except (ConnectionResetError, BrokenPipeError):
        return False
    finally:
        s.close()
    check(got == payload, "TCP echo differs: sent %r, got %r" % (payload, got))
    return True


def udp_roundtrip(addr, payload):
    s = udp_socket("127.0.0.1")
    try:
        for _ in range(3):  # a datagram may be dropped; three never are
            s.sendto(payload, addr)
            deadline = time.monotonic() + IO_TIMEOUT / 3
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([s], [], [], left)[0]:
                    break
                data, src = s.recvfrom(65536)
                if src == addr and data == payload:
                    return
        fail("UDP: no echo of %r from %s:%d" % (payload, addr[0], addr[1]))
    finally:
        s.close()


def stderr_lines(d):
    text = d.stderr()
    check(not SANITIZER_REPORT.search(text), "sanitizer report: %s" % text[-6000:])
    return text.splitlines()


def failed_start(d, why):
    """echod did not come up: it must exit 1 with one 'echod: ' line."""
    status = d.wait()
    lines = stderr_lines(d)
    check(status == 1, "%s; exit status %s (86/87: sanitizer), stderr %r" % (why, status, lines))
    check(len(lines) == 1 and lines[0].startswith("echod: "),
          "%s; want one 'echod: ...' line on stderr, got %r" % (why, lines))
    return "exit1", lines[0]


def run(tmp, fail_at=0, clients=CLIENTS):
    """One echod run; returns (outcome, stderr line or None, report)."""
    with start(tmp, fail_at) as d:
        if len(d.addrs) < ADDRESSES:
            outcome, line = failed_start(d, "exited after printing %r" % d.addrs)
            return outcome, line, checked_report(tmp, d)
        tcp, udp = d.addrs
        served = lost = 0
        for k in range(clients):
            if tcp_roundtrip(tcp, b"allocation sweep, client %d, N=%d\n" % (k, fail_at)):
                served += 1
            else:
                lost += 1
                if lost > 1:
                    break
        if clients and not served:
            # Its addresses were printed, but start-up failed after that
            # (a TCP echo proves that echod_new() returned).
            outcome, line = failed_start(d, "served no client")
            return outcome, line, checked_report(tmp, d)
        check(lost <= 1, "%d of %d TCP clients lost to one failed allocation; stderr %r"
              % (lost, lost + served, d.stderr()))
        udp_roundtrip(udp, b"allocation sweep, datagram, N=%d" % fail_at)
        # A second serving pass after the loss: echod still accepts.
        if lost:
            check(tcp_roundtrip(tcp, b"after the loss\n"), "a client after the lost one was "
                  "not served; stderr %r" % d.stderr())
        status = d.stop()
        lines = stderr_lines(d)
        check(status == 0, "exit status %s after SIGTERM (86/87: sanitizer); stderr %r"
              % (status, lines))
        bad = [ln for ln in lines if not ln.startswith("echod: ")]
        check(not bad, "stderr lines not from echod: %r" % bad)
        if lost:
            check(lines, "a TCP client was closed and echod said nothing on stderr")
        return (("conn-lost" if lost else "served"), (lines[0] if lines else None),
                checked_report(tmp, d))


def clean_run(tmp, clients):
    outcome, line, rep = run(tmp, 0, clients)
    check(outcome == "served", "without faults: %s %r" % (outcome, line))
    check(rep["failed"] == 0 and rep["allocs"] > 0, "without faults: report %s" % rep)
    return rep["allocs"]


def probe(tmp):
    """Skips when the mode is not available here: Echod raises Skip for
    one the kernel refuses; echod exits 2 for one not compiled in."""
    with start(tmp) as d:
        if len(d.addrs) == ADDRESSES:
            d.stop()
            return
        status = d.wait()
        err = d.stderr().strip()
        if status == 2 or "not compiled in" in err:
            raise Skip("echod %s: exit %d: %s" % (" ".join(mode_args(ARGS.mode)), status, err))
        fail("echod did not start without faults: exit %d: %r" % (status, err))


def sweep():
    with tempfile.TemporaryDirectory(prefix="iomux-alloc-") as tmp:
        probe(tmp)
        t0 = time.monotonic()
        startup = clean_run(tmp, 0)  # start-up (and shutdown) allocations
        total = clean_run(tmp, CLIENTS)
        check(total > startup, "serving %d clients allocated nothing (%d vs %d at start-up): "
              "the serving-phase failures would not be exercised" % (CLIENTS, total, startup))
        outcomes = {"exit1": [], "served": [], "conn-lost": []}
        serving = {}
        messages = {}
        problems = []  # (N, what went wrong): the sweep goes on, to show them all
        limit = total * 2 + 100  # the allocation count may vary a little
        n = 0
        while n < limit:
            n += 1
            try:
                outcome, line, rep = run(tmp, n)
                if n > startup and rep["failed"]:
                    check(outcome != "exit1", "a failure while serving ended echod")
            except AssertionError as e:
                problems.append((n, str(e)))
                if len(problems) >= MAX_PROBLEMS:
                    break  # a hang per N would outlast the test's timeout
                rep = read_report(os.path.join(tmp, "report"))
                if rep is not None and rep["failed"] == 0:
                    break
                continue
            if rep["failed"] == 0:
                if outcome != "served":
                    problems.append((n, "past the last allocation: %s" % outcome))
                break
            outcomes[outcome].append(n)
            if line:  # one entry per message, whatever the client's port
                messages.setdefault(re.sub(r"\b\d{4,5}\b", "PORT", line), []).append(n)
            if n > startup:
                serving[outcome] = serving.get(outcome, 0) + 1
        else:
            problems.append((n, "still failing an allocation (clean runs made %d)" % total))
        took = time.monotonic() - t0
        log("alloc-sweep.%s%s: %d allocations in a clean run (%d at start-up and shutdown), "
            "N = 1..%d each failed in turn, %.2f s (%s build)"
            % (ARGS.mode, " " + ARGS.faults if ARGS.faults else "", total, startup, n - 1, took,
               "sanitizer" if SANITIZED else "plain"))
        for k, ns in outcomes.items():
            log("  %-9s %3d  %s" % (k, len(ns), compact(ns)))
        log("  while serving (N > %d): %s" % (startup, serving))
        for m, ns in sorted(messages.items(), key=lambda kv: kv[1][0]):
            log("  N=%s: %s" % (compact(ns), m))
        for pn, what in problems:
            log("  PROBLEM N=%d: %s" % (pn, what))
        if problems:
            fail("%d of %d runs went wrong (first: N=%d: %s)"
                 % (len(problems), n, problems[0][0], problems[0][1]))
        check(outcomes["exit1"], "no start-up allocation failure was seen")
        check(serving, "no allocation failed while echod was serving")


def compact(ns):
    """[1, 2, 3, 7] -> '1-3,7'"""
    out = []
    for x in ns:
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in out)


def main():
    global ARGS, SANITIZED
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--echod", required=True)
    ap.add_argument("--faults", default="")
    modes = ["epoll", "poll", "select", "uring", "engine-uring"]
    ap.add_argument("mode", choices=modes + [m + w for m in modes for w in ("-w2", "-wauto")])
    ARGS = ap.parse_args()
    SANITIZED = sanitized(ARGS.echod)
    return run_one("alloc-sweep.%s" % ARGS.mode, sweep)


if __name__ == "__main__":
    sys.exit(main())
