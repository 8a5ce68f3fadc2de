#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""echod --workers: real echod processes with two workers.

Usage: echod_workers_e2e.py ECHOD MODE [TEST...]   (MODE: epoll-w2, engine-uring-w2)

- 1,000 connections spread over the workers, none holding more than 60%
  (the SIGUSR1 per-worker lines give the counts);
- --max-conns holds for the whole process with more clients than the limit;
- SIGTERM drains every worker: open connections echo to the end, exit 0;
- UDP is echoed by every worker, and --udp-rate still holds per source
  address (the sockets are steered by source address);
- --trace lines are whole and say which worker wrote them;
- --workers auto takes the CPUs of the affinity mask, and idle workers sleep.
"""
import os
import re
import resource
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, check, closed_by_peer, connect, recv_exact,  # noqa: E402
                        roundtrip, run_tests, stat_field, try_clients, workers_of)

ECHOD = MODE = None


def echod(*args, **kw):
    return Echod(ECHOD, MODE, *args, **kw)


def worker_lines(d):
    """The per-worker SIGUSR1 lines: {worker: (open, total)}."""
    before = len(d.stderr())
    d.signal(signal.SIGUSR1)
    d.wait_stderr(r"^echod: stats: worker 2: [^\n]*\n", after=before)
    out = {}
    for m in re.finditer(r"^echod: stats: worker (\d+): connections (\d+) open, (\d+) total",
                         d.stderr()[before:], re.M):
        out[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return out


def test_spread_1000():
    """1,000 connections over 2 workers: each gets some, none over 60%."""
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    check(hard >= n + 100, "RLIMIT_NOFILE hard limit %d is too low" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 100), hard))
    with echod(nofile=n + 200) as d:
        socks = []
        try:
            for i in range(n):
                s = connect(d.port)
                socks.append(s)
                if i % 100 == 99:
                    roundtrip(s, b"sync")  # accepted by now, whoever took it
            for s in socks[::97]:
                roundtrip(s, b"still")
            per = worker_lines(d)
            total_open = sum(v[0] for v in per.values())
            check(total_open == n, "workers hold %d of %d: %r" % (total_open, n, per))
            share = max(v[0] for v in per.values()) / n
            print("  per worker: %r; largest share %.0f%%" % (per, share * 100))
            check(len(per) == 2 and share <= 0.6,
                  "spread %r: one holds %.0f%%" % (per, share * 100))
            line = d.stats()
            check(stat_field(line, "connections") == n, "totals line: %s" % line)
        finally:
            for s in socks:
                s.close()
        check(d.stop() == 0, "exit status")


def test_max_conns_process():
    """--max-conns 10 with 40 clients: at most 10 served at once over both
    workers, the rest refused; the SIGUSR1 line counts them."""
    with echod("--max-conns", "10") as d:
        served, refused = try_clients(d.port, 40)
        per = worker_lines(d)
        check(len(served) == 10, "served %d at once, want 10 (%r)" % (len(served), per))
        check(refused == 30, "refused %d, want 30" % refused)
        check(sum(v[0] for v in per.values()) == 10, "workers hold %r" % per)
        check(all(v[1] > 0 for v in per.values()), "one worker took nothing: %r" % per)
        line = d.stats()
        check(stat_field(line, "max-conns") == 30, "refusals not counted: %s" % line)
        served.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the freed slot is free for either worker
            s = connect(d.port)
            try:
                roundtrip(s, b"again", timeout=1)
                served.append(s)
                break
            except (AssertionError, ConnectionResetError, BrokenPipeError, socket.timeout):
                s.close()
                check(time.monotonic() < deadline, "the freed slot never served again")
        for s in served:
            s.close()
        check(d.stop() == 0, "exit status")


def test_sigterm_drain():
    """SIGTERM with clients on both workers: every worker stops accepting,
    sends each client what it sent, ends it (EOF), and echod exits 0 with the
    total served."""
    with echod("--grace", "10", quiet=False) as d:
        socks = [connect(d.port) for _ in range(20)]
        for s in socks:
            roundtrip(s, b"before")
        per = worker_lines(d)
        check(all(v[0] > 0 for v in per.values()), "not on both workers: %r" % per)
        for s in socks:
            s.sendall(b"in flight")
        d.signal(signal.SIGTERM)
        d.wait_stderr(r"^echod: SIGTERM, draining \d+ connections$")
        for s in socks:
            check(recv_exact(s, 9) == b"in flight", "echo lost in the drain")
            check(closed_by_peer(s), "not ended after the drain")
            s.close()
        check(d.wait() == 0, "exit status")
        check(re.search(r"^echod: exiting: 20 connections served$", d.stderr(), re.M),
              "no exit line: %s" % d.stderr()[-500:])


def test_udp_two_workers():
    """Datagrams from many source ports are echoed; --udp-rate 50 --udp-burst
    50 holds for the source address however many sockets it uses."""
    with echod("--udp", "127.0.0.1:0", "--udp-rate", "50", "--udp-burst", "50",
               listen=None, lines=1) as d:
        port = d.addrs[0][1]
        socks = []
        for _ in range(8):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            u.settimeout(0.2)
            socks.append(u)
        sent = got = 0
        start = time.monotonic()
        for rnd in range(25):
            for u in socks:
                u.sendto(b"d%d" % rnd, ("127.0.0.1", port))
                sent += 1
        for u in socks:
            while True:
                try:
                    u.recvfrom(100)
                    got += 1
                except socket.timeout:
                    break
        elapsed = time.monotonic() - start
        allowed = 50 + 50 * elapsed + 2
        print("  sent %d from 8 ports, echoed %d in %.2f s (allowed %.0f)"
              % (sent, got, elapsed, allowed))
        check(got > 0, "nothing echoed")
        check(got <= allowed, "rate limit not per source: %d echoed, %.0f allowed" % (got, allowed))
        line = d.stats(kind="udp stats")
        check(stat_field(line, "rate") == sent - got, "udp totals: %s" % line)
        for u in socks:
            u.close()
        check(d.stop() == 0, "exit status")


def test_trace_tagged():
    """--trace with two workers: every connection line is whole and names
    its worker."""
    with echod("--trace", quiet=False) as d:
        socks = [connect(d.port) for _ in range(10)]
        for i, s in enumerate(socks):
            roundtrip(s, b"hello %d" % i)
        for s in socks:
            s.close()
        d.wait_stderr(r"(^\[worker \d\]   closing [^\n]*\n(.|\n)*){10}")
        text = d.stderr()
        for i in range(10):
            check(re.search(r"^\[worker [12]\]   received b'hello %d' from \('127\.0\.0\.1', \d+\)$"
                            % i, text, re.M), "no whole received line for client %d" % i)
        for line in text.splitlines():
            check(line.startswith(("[worker 1] ", "[worker 2] ", "echod: ", "starting up")),
                  "a line without its worker: %r" % line)
        check(d.stop() == 0, "exit status")


def test_auto_and_idle():
    """--workers auto: one per CPU of the affinity mask (said on the SIGUSR1
    line); idle workers sleep (no CPU over a second)."""
    want = len(os.sched_getaffinity(0))
    with echod("--workers", "auto") as d:
        roundtrip(connect(d.port), b"awake")
        line = d.stats()
        if want > 1:  # one CPU: one worker, no server and no such field
            check(stat_field(line, "workers") == want, "want workers %d: %s" % (want, line))
        cpu0 = d.cpu_seconds()
        time.sleep(1.0)  # idle CPU over an interval is the point
        cpu = d.cpu_seconds() - cpu0
        check(cpu < 0.05, "idle echod used %.2f s of CPU in 1 s" % cpu)
        check(d.stop() == 0, "exit status")


TESTS = [test_spread_1000, test_max_conns_process, test_sigterm_drain, test_udp_two_workers,
         test_trace_tagged, test_auto_and_idle]


def main():
    global ECHOD, MODE
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ECHOD, MODE = os.path.abspath(sys.argv[1]), sys.argv[2]
    check(workers_of(MODE)[1] == 2, "a -w2 mode is expected, not %s" % MODE)
    return run_tests(TESTS, sys.argv[3:], ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
