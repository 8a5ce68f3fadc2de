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
- --workers auto takes the CPUs of the affinity mask, and idle workers sleep;
- --steer cpu: its usage errors, and a kernel refusing its pinning or its
  program (tests/no_steer.c) fails the start; named on the command line
  (their own ctest entry, skipped with fewer than 2 CPUs): steer_cpu, a
  client pinned to a CPU is served by the worker pinned there only, and
  steer_upgrade, the same after SIGUSR2 handed the sockets to a new echod.
"""
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, Skip, check, closed_by_peer, command_line, connect,  # noqa: E402
                        mode_args, recv_exact, roundtrip, run_tests, stat_field, try_clients,
                        workers_of)
from upgrade_e2e import (SERVING, become_subreaper, kill_quietly, stderr_match,  # noqa: E402
                         wait_pid)

ECHOD = MODE = None


def echod(*args, **kw):
    return Echod(ECHOD, MODE, *args, **kw)


def worker_lines(d, pid=None):
    """The per-worker SIGUSR1 lines: {worker: (open, total)}; of echod `pid`
    (an upgrade's new one, writing to d's stderr) if given."""
    before = len(d.stderr())
    if pid is None:
        d.signal(signal.SIGUSR1)
        d.wait_stderr(r"^echod: stats: worker 2: [^\n]*\n", after=before)
    else:
        os.kill(pid, signal.SIGUSR1)
        stderr_match(d, r"^echod: stats: worker 2: [^\n]*\n", before)
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


def steer_cpus():
    """The first two CPUs of the affinity mask (echod inherits it), or Skip."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise Skip("--steer cpu needs 2 CPUs in the affinity mask; this one has %d" % len(cpus))
    return cpus[:2]


def served_from(d, cpu, pid=None, n=40):
    """Opens n connections from this thread pinned to `cpu` (on loopback the
    kernel processes their SYNs there), echoes on each and closes them;
    returns how many each worker accepted meanwhile: {worker: count}."""
    before = worker_lines(d, pid)
    mask = os.sched_getaffinity(0)
    socks = []
    os.sched_setaffinity(0, {cpu})
    try:
        for i in range(n):
            socks.append(connect(d.port))
            roundtrip(socks[-1], b"from CPU %d, %d" % (cpu, i))
    finally:
        os.sched_setaffinity(0, mask)
        for s in socks:
            s.close()
    after = worker_lines(d, pid)
    return {w: after[w][1] - before[w][1] for w in after}


def check_steered(d, cpus, pid=None, order=(0, 1, 0)):
    """Clients pinned to cpus[k] are all served by worker k + 1 (the hash
    alone would give each worker about half of them)."""
    for k in order:
        got = served_from(d, cpus[k], pid)
        print("  40 clients on CPU %d: accepted per worker %r" % (cpus[k], got))
        check(got.get(k + 1) == 40 and sum(got.values()) == 40,
              "clients on CPU %d: worker %d should have taken all 40: %r" % (cpus[k], k + 1, got))


def test_steer_cpu():
    """--steer cpu: the workers are pinned to the first two CPUs (said at
    start-up), and a client on either CPU is served by that CPU's worker."""
    cpus = steer_cpus()
    with echod("--steer", "cpu", quiet=False) as d:
        d.wait_stderr(r"^echod: --steer cpu: [^\n]*: worker 1 on CPU %d, worker 2 on CPU %d$"
                      % tuple(cpus))
        check_steered(d, cpus)
        check(d.stop() == 0, "exit status")


def test_steer_upgrade():
    """--steer cpu after SIGUSR2: the new echod takes worker k's socket for
    its worker k, pinned to the same CPU, and the group's program still
    steers to it once the old echod has gone."""
    cpus = steer_cpus()
    become_subreaper()  # the new echod is re-parented here, and reaped
    with echod("--steer", "cpu", quiet=False) as d:
        before = len(d.stderr())
        d.signal(signal.SIGUSR2)
        pid = int(stderr_match(d, SERVING, before).group(1))
        try:
            check(d.wait() == 0, "the old echod's exit status")
            check_steered(d, cpus, pid, order=(1, 0))
            os.kill(pid, signal.SIGTERM)
            check(wait_pid(pid, 10) == 0, "the new echod's exit status")
        finally:
            kill_quietly(pid)


def test_steer_usage():
    """--steer cpu with one worker, or more workers than CPUs, and an
    unknown --steer are usage errors: exit 2, nothing on stdout."""
    base = mode_args(workers_of(MODE)[0]) + ["--listen", "127.0.0.1:0"]
    ncpus = len(os.sched_getaffinity(0))
    cases = [(["--steer", "cpu"], "--steer cpu: only with --workers N (N > 1) or auto"),
             (["--steer", "cpu", "--workers", "1"], "only with --workers"),
             (["--steer", "sideways", "--workers", "2"], "'sideways' is not one of: none, cpu")]
    if ncpus < 256:
        cases.append((["--steer", "cpu", "--workers", str(ncpus + 1)],
                      "--steer cpu: %d workers, but echod may run on %d CPUs" % (ncpus + 1, ncpus)))
    for args, message in cases:
        p = subprocess.run([ECHOD] + base + args, capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and p.stderr.startswith("echod: ") and message in p.stderr,
              "%s: exit %d, %r" % (" ".join(args), p.returncode, p.stderr))
        check(p.stdout == "", "%s: printed %r on stdout" % (" ".join(args), p.stdout))


def test_steer_refused():
    """A kernel that refuses to pin a thread or to attach the program
    (tests/no_steer.c) makes --steer cpu fail at start-up: exit 1 and one
    line saying why. Without --steer the same kernel serves as usual."""
    tool = os.environ.get("IOMUX_NO_STEER")
    if not tool:
        raise Skip("IOMUX_NO_STEER (tests/no_steer.c) is not set")
    steer_cpus()
    for what, line in (("affinity", r"echod: --steer cpu: worker 1: pinning it to CPU \d+: "),
                       ("cbpf", r"echod: --steer cpu: listen on 127\.0\.0\.1:0: the kernel "
                                r"refused the steering program: ")):
        p = subprocess.run([tool, what, ECHOD] + mode_args(MODE) +
                           ["--listen", "127.0.0.1:0", "--steer", "cpu"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode == 77:
            raise Skip(p.stderr.strip())
        lines = p.stderr.splitlines()
        check(p.returncode == 1 and len(lines) == 1 and
              re.match(line + "Operation not permitted$", lines[0]),
              "refused %s: exit %d, %r" % (what, p.returncode, p.stderr))
        check(p.stdout == "", "refused %s: printed %r on stdout" % (what, p.stdout))
    with echod(argv0=[tool, "cbpf"]) as d:
        roundtrip(connect(d.port), b"no program needed")
        check(d.stop() == 0, "exit status")


TESTS = [test_spread_1000, test_max_conns_process, test_sigterm_drain, test_udp_two_workers,
         test_trace_tagged, test_auto_and_idle, test_steer_usage, test_steer_refused]
# Run when named (their own ctest entry, which skips as a whole without 2 CPUs).
STEER_TESTS = [test_steer_cpu, test_steer_upgrade]


def main():
    global ECHOD, MODE
    (ECHOD,), MODE, named = command_line(__doc__)
    check(workers_of(MODE)[1] == 2, "a -w2 mode is expected, not %s" % MODE)
    return run_tests(TESTS + STEER_TESTS if named else TESTS, named, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
