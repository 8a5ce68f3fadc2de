#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Allocation-failure sweep of echod (issue 7) that also runs in the
sanitizer build.

Usage: echod_alloc_sweep.py --echod PATH MODE
  PATH  echod_alloc_wrap (tests/alloc_sweep.cmake): echod linked with the
        counting allocator of tests/alloc_wrap.c through the linker's --wrap
  MODE  epoll, poll, select or uring (--backend MODE), or engine-uring
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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ARGS = None
SANITIZED = False
# Each adds allocations to start-up: the UDP service (its buffers and rate
# buckets), the per-address table, the idle sweep timer.
ECHOD_OPTS = ["--listen", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--max-conns-per-ip", "4",
              "--idle-timeout", "30", "--quiet"]
ADDRESSES = 2  # port-0 lines on stdout: the TCP one, then the UDP one
CLIENTS = 3
START_TIMEOUT = 30  # seconds; an ASan build on a loaded machine is slow
IO_TIMEOUT = 10
EXIT_TIMEOUT = 30
MAX_PROBLEMS = 5  # runs that went wrong before the sweep gives up
SANITIZER_REPORT = re.compile(r"Sanitizer|runtime error:|^SUMMARY:", re.M)
# Make any sanitizer report end the process with a status echod never uses.
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
    "LSAN_OPTIONS": "exitcode=86",
}


class Skip(Exception):
    pass


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def log(msg):
    print(msg, flush=True)


def mode_args(mode):
    if mode.startswith("engine-"):
        return ["--engine", mode[len("engine-"):]]
    return ["--backend", mode]


class Echod:
    """One wrapped echod process; a context manager that always reaps it."""

    def __init__(self, tmp, fail_at=0):
        self.report = os.path.join(tmp, "report")
        if os.path.exists(self.report):
            os.unlink(self.report)
        env = dict(os.environ)
        for k, v in SAN_ENV.items():
            env[k] = (env[k] + ":" + v) if env.get(k) else v  # ours win: last
        env["IOMUX_ALLOC_REPORT"] = self.report
        env.pop("IOMUX_FAIL_ALLOC_AT", None)
        if fail_at:
            env["IOMUX_FAIL_ALLOC_AT"] = str(fail_at)
        self.err = tempfile.TemporaryFile(dir=tmp)
        argv = [ARGS.echod] + mode_args(ARGS.mode) + ECHOD_OPTS
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env)
        self.status = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.err.close()

    def addresses(self):
        """The port-0 lines echod printed, up to ADDRESSES; fewer if its
        stdout closed first (it exited)."""
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + START_TIMEOUT
        while buf.count(b"\n") < ADDRESSES:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                fail("echod printed %d of %d addresses within %ss; stderr: %r"
                     % (buf.count(b"\n"), ADDRESSES, START_TIMEOUT, self.stderr()))
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        return buf.decode().splitlines()[:ADDRESSES]

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def wait(self, timeout=EXIT_TIMEOUT):
        try:
            self.status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("echod did not exit within %ss; stderr: %r" % (timeout, self.stderr()))
        return self.status

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def read_report(self):
        rep = read_report(self.report)
        check(rep is not None, "echod wrote no allocation report (killed, or _exit?); status "
              "%s, stderr %r" % (self.status, self.stderr()))
        # The build without LeakSanitizer has this count as its leak check.
        # Below zero is no leak: echod freed something the C library made.
        check(rep["live"] <= 0, "%d blocks from malloc and friends not freed at exit; stderr %r"
              % (rep["live"], self.stderr()))
        return rep


def read_report(path):
    """The wrapper's counters, or None if echod wrote none."""
    try:
        with open(path) as f:
            return {k: int(v) for k, v in (kv.split("=") for kv in f.read().split())}
    except FileNotFoundError:
        return None


def host_port(line):
    host, _, port = line.rpartition(":")
    return host.strip("[]"), int(port)


def tcp_roundtrip(addr, payload):
    """True if `payload` came back; False if echod closed or refused the
    connection first. A connection left hanging is a failure."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    try:
        try:
            s.connect(addr)
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(65536)
                if not chunk:
                    return False
                got += chunk
        except socket.timeout:
            fail("TCP client: no echo and no close within %ss" % IO_TIMEOUT)
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
            return False
        check(got == payload, "TCP echo differs: sent %r, got %r" % (payload, got))
        return True
    finally:
        s.close()


def udp_roundtrip(addr, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
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
    with Echod(tmp, fail_at) as d:
        lines = d.addresses()
        if len(lines) < ADDRESSES:
            outcome, line = failed_start(d, "exited after printing %r" % lines)
            return outcome, line, d.read_report()
        tcp, udp = host_port(lines[0]), host_port(lines[1])
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
            return outcome, line, d.read_report()
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
        return ("conn-lost" if lost else "served"), (lines[0] if lines else None), d.read_report()


def clean_run(tmp, clients):
    outcome, line, rep = run(tmp, 0, clients)
    check(outcome == "served", "without faults: %s %r" % (outcome, line))
    check(rep["failed"] == 0 and rep["allocs"] > 0, "without faults: report %s" % rep)
    return rep["allocs"]


def probe(tmp):
    """Skips when the mode is not available here."""
    with Echod(tmp) as d:
        lines = d.addresses()
        if len(lines) == ADDRESSES:
            d.stop()
            return
        status = d.wait()
        err = d.stderr().strip()
        if status == 2 or "not compiled in" in err or "not available" in err:
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
        log("alloc-sweep.%s: %d allocations in a clean run (%d at start-up and shutdown), "
            "N = 1..%d each failed in turn, %.2f s (%s build)"
            % (ARGS.mode, total, startup, n - 1, took,
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
    ap.add_argument("mode", choices=["epoll", "poll", "select", "uring", "engine-uring"])
    ARGS = ap.parse_args()
    with open(ARGS.echod, "rb") as f:
        SANITIZED = b"__asan_init" in f.read()
    start = time.monotonic()
    try:
        sweep()
    except Skip as e:
        log("SKIP alloc-sweep.%s: %s" % (ARGS.mode, e))
        return 77
    except Exception as e:
        traceback.print_exc()
        log("FAIL alloc-sweep.%s: %s: %s" % (ARGS.mode, type(e).__name__, e))
        return 1
    log("ok   alloc-sweep.%s %.1fs" % (ARGS.mode, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
