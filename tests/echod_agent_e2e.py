#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's HAProxy agent-check port (--agent).

Usage: echod_agent_e2e.py ECHOD MODE [TEST...]

MODE is a loop backend (epoll, poll, select, uring) or engine-uring (see
tests/echod_proc.py). Real echod processes on 127.0.0.1 port 0: the echo
port is the first address echod prints, the agent's the second. Each agent
connection must get exactly one line and then the server's end of stream.
Exit status: 0 pass, 1 fail, 77 skip.
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (DEFAULT_TIMEOUT, Echod, check, check_usage_error,  # noqa: E402
                        command_line, connect, mode_args, roundtrip, run_tests, stat_field)

ECHOD = MODE = None


def echod(*args, **kw):
    """An Echod in this run's mode with an agent on a port of its own."""
    kw.setdefault("lines", 2)
    return Echod(ECHOD, MODE, "--agent", "127.0.0.1:0", *args, **kw)


def agent_says(d, timeout=DEFAULT_TIMEOUT):
    """The agent's whole answer (read to its end of stream)."""
    host, port = d.addrs[1]
    s = connect(port, host, timeout)
    try:
        data = b""
        while True:
            chunk = s.recv(256)
            if not chunk:
                return data.decode()
            data += chunk
    finally:
        s.close()


def wait_agent(d, want, timeout=DEFAULT_TIMEOUT):
    """Polls the agent until it answers `want`; fails at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = agent_says(d)
        if got == want:
            return
        if time.monotonic() > deadline:
            check(False, "agent says %r, not %r" % (got, want))
        time.sleep(0.01)


def test_up_ready():
    """Without --max-conns: "up ready", one line, then end of stream."""
    with echod() as d:
        check(agent_says(d) == "up ready\n", "agent: %r" % agent_says(d))
        # An agent-send string from the balancer changes nothing.
        s = connect(d.addrs[1][1])
        s.sendall(b"backend/server\n")
        check(s.recv(100) == b"up ready\n", "with agent-send")
        s.close()


def test_weight_and_maint():
    """--max-conns 4: the weight is the free share, rounded up; "maint" when
    full; back to "up ready" when a client leaves."""
    with echod("--max-conns", "4") as d:
        check(agent_says(d) == "up ready 100%\n", "empty")
        clients = []
        for want in ("up ready 75%\n", "up ready 50%\n", "up ready 25%\n", "maint\n"):
            c = connect(d.port)
            roundtrip(c, b"x")  # served: counted as open
            clients.append(c)
            wait_agent(d, want)
        clients.pop().close()
        wait_agent(d, "up ready 25%\n")
        for c in clients:
            c.close()
        wait_agent(d, "up ready 100%\n")
    with echod("--max-conns", "3") as d:
        c = connect(d.port)
        roundtrip(c, b"x")
        wait_agent(d, "up ready 67%\n")  # 2/3 free, rounded up
        c.close()


def test_drain():
    """SIGTERM with a client still connected: the grace period keeps echod
    alive and the agent says "drain" until the last client leaves; then
    echod exits 0 and the agent port is gone with it."""
    with echod("--grace", "60", quiet=False) as d:
        c = connect(d.port)
        roundtrip(c, b"hello")
        check(agent_says(d) == "up ready\n", "before")
        d.signal(signal.SIGTERM)
        d.wait_stderr(r"^echod: SIGTERM, draining 1 connections$")
        for _ in range(3):
            check(agent_says(d) == "drain\n", "while draining")
        check(d.alive(), "echod exited during the grace period")
        c.close()
        check(d.wait() == 0, "exit status")
        refused = False
        try:
            connect(d.addrs[1][1]).close()
        except OSError:
            refused = True
        check(refused, "the agent port still answers after the exit")


def test_drain_delay():
    """--drain-delay: after SIGTERM the agent says "drain" at once, while
    echod still accepts and echoes (new and open clients alike, every byte)
    for the delay; then it stops accepting, ends its connections and exits 0."""
    with echod("--drain-delay", "1.5", "--grace", "60", quiet=False) as d:
        c = connect(d.port)
        roundtrip(c, b"before")
        d.signal(signal.SIGTERM)
        d.wait_stderr(r"^echod: SIGTERM, serving 1.5 s more while the agent says drain$")
        check(agent_says(d) == "drain\n", "during the delay")
        late = connect(d.port)  # a client a balancer sent before it saw drain
        roundtrip(late, b"x" * 100000)
        roundtrip(c, b"still echoed during the delay")
        d.wait_stderr(r"^echod: drain delay over, draining 2 connections$")
        check(agent_says(d) == "drain\n", "while draining")
        # With --workers, each worker closes its own SO_REUSEPORT socket as
        # its delay ends, within moments of the others: poll, bounded.
        refused = False
        deadline = time.monotonic() + 5
        while not refused and time.monotonic() < deadline:
            try:
                connect(d.port).close()
                time.sleep(0.01)
            except OSError:
                refused = True
        check(refused, "still accepting 5 s after the delay")
        late.close()
        c.close()
        check(d.wait() == 0, "exit status")


def test_drain_delay_again():
    """A second SIGTERM during --drain-delay means now: exit 0 at once."""
    with echod("--drain-delay", "60", quiet=False) as d:
        c = connect(d.port)
        roundtrip(c, b"x")
        d.signal(signal.SIGTERM)
        d.wait_stderr(r"serving 60 s more")
        d.signal(signal.SIGTERM)
        d.wait_stderr(r"^echod: SIGTERM again, exiting now$")
        check(d.wait() == 0, "exit status")
        c.close()


def test_drain_beats_maint():
    """A full server on its way out says "drain", not "maint"."""
    with echod("--max-conns", "1", "--grace", "60") as d:
        c = connect(d.port)
        roundtrip(c, b"x")
        wait_agent(d, "maint\n")
        d.signal(signal.SIGTERM)
        wait_agent(d, "drain\n")
        c.close()
        check(d.wait() == 0, "exit status")


def test_not_counted():
    """Agent connections are not echo connections: they never count as
    open or total, and --max-conns 1 still admits an echo client after many
    agent checks, even with agent connections left open."""
    with echod("--max-conns", "1", quiet=False) as d:
        idle = [connect(d.addrs[1][1]) for _ in range(10)]
        for _ in range(20):
            check(agent_says(d) == "up ready 100%\n", "agent")
        c = connect(d.port)
        roundtrip(c, b"still served")
        line = d.stats()
        check(stat_field(line, "connections") == 1 and "1 total" in line, line)
        check(stat_field(line, "refused") == 0, line)
        c.close()
        for s in idle:
            s.close()


def test_never_reads():
    """Clients that connect and never read (or send junk) cost nothing that
    lasts: each is answered and closed, and echod's descriptors come back
    to what they were."""
    with echod() as d:
        base = d.nfds()
        socks = []
        for i in range(200):
            s = connect(d.addrs[1][1])
            if i % 2:
                s.sendall(b"\x00" * 1000)
            socks.append(s)
        answered = 0
        for s in socks:
            s.settimeout(DEFAULT_TIMEOUT)
            data = b""
            try:
                while True:
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass  # closed over the cap with junk unread: the kernel resets
            # Over the cap of connections at once: closed without a word.
            check(data in (b"up ready\n", b""), "answer %r" % data)
            answered += data != b""
            s.close()
        check(answered >= 64, "only %d answered" % answered)
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while d.nfds() > base and time.monotonic() < deadline:
            time.sleep(0.01)
        check(d.nfds() <= base, "descriptors: %d, were %d" % (d.nfds(), base))
        c = connect(d.port)
        roundtrip(c, b"echo intact")
        c.close()


def test_ipv6():
    """An [IPV6]:PORT agent address, where the host has IPv6 loopback."""
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        return
    with Echod(ECHOD, MODE, "--agent", "[::1]:0", lines=2) as d:
        check(d.addrs[1][0] == "::1", "address %r" % (d.addrs[1],))
        check(agent_says(d) == "up ready\n", "agent over IPv6")


def test_usage():
    """Bad --agent values are usage errors (exit 2, one line and the hint)."""
    for args, want in ((["--agent", "127.0.0.1"], "--agent '127.0.0.1'"),
                       (["--agent", "unix:/tmp/x"], "--agent 'unix:/tmp/x'"),
                       (["--agent", "127.0.0.1:99999"], "--agent '127.0.0.1:99999'"),
                       (["--inetd", "--agent", "127.0.0.1:0"], "--inetd")):
        check_usage_error([ECHOD] + mode_args(MODE), args, want)


def test_address_in_use():
    """An agent address already taken: exit 1, saying so, no echo port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = subprocess.run([ECHOD] + mode_args(MODE) + ["--listen", "127.0.0.1:0", "--agent",
                                                        "127.0.0.1:%d" % port],
                           capture_output=True, timeout=10)
        err = r.stderr.decode()
        check(r.returncode == 1 and "--agent" in err and "in use" in err and not r.stdout,
              "exit %d, %r %r" % (r.returncode, r.stdout, err))
    finally:
        s.close()


TESTS = [
    test_up_ready,
    test_weight_and_maint,
    test_drain,
    test_drain_delay,
    test_drain_delay_again,
    test_drain_beats_maint,
    test_not_counted,
    test_never_reads,
    test_ipv6,
    test_usage,
    test_address_in_use,
]


def main():
    global ECHOD, MODE
    (ECHOD,), MODE, named = command_line(__doc__)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return run_tests(TESTS, named, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
