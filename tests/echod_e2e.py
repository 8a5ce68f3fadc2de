#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod: real echod processes on 127.0.0.1, port 0.

Usage: echod_e2e.py ECHOD MODE [TEST...]
       echod_e2e.py ECHOD MODE --measure-idle N   (not run by ctest)

MODE is a loop backend (epoll, poll, select, uring) or engine-uring (see
tests/echod_proc.py).

Every test starts its own echod with `--listen 127.0.0.1:0`, reads the bound
address from echod's stdout, talks to it with non-blocking sockets under a
deadline, checks every byte, and kills the process on the way out. Readiness
is polled for, never slept for; the only sleeps are the fixed intervals of
the CPU-time measurement and the idle-timeout scenario, which are the point
of those tests. Exit status: 0 pass, 1 fail, 77 skip (ctest's convention).
"""
import errno
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, Skip, base_mode, check, closed_by_peer, command_line,  # noqa: E402
                        connect, exit_status, fail, mode_args, mode_available, mode_label,
                        recv_exact, roundtrip, run_each, sanitized, select_tests, stat_field,
                        try_clients, workers_of)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
ECHOD = None
MODE = None
# ASan/UBSan builds are slower and hold more memory; bounds widen there.
SANITIZED = False
MiB = 1 << 20


def echod(*args, **kw):
    """An Echod in this run's mode, on 127.0.0.1:0 unless told otherwise."""
    return Echod(ECHOD, MODE, *args, **kw)


# --------------------------------------------------------------------------
# clients


def echo_clients(port, payloads, timeout=60, shut_after_send=False):
    """Runs one non-blocking client per payload at once; each sends its
    payload while reading the echo and must get back exactly that. Returns
    the number of clients."""
    sel = selectors.DefaultSelector()
    clients = []
    for data in payloads:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = s.connect_ex(("127.0.0.1", port))
        check(rc in (0, errno.EINPROGRESS), "connect: %s" % os.strerror(rc))
        c = {"s": s, "data": data, "sent": 0, "got": bytearray(), "done": False, "eof": False}
        clients.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    left = len(clients)
    deadline = time.monotonic() + timeout
    view = {}
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stuck = [(len(c["data"]), c["sent"], len(c["got"])) for c in clients if not c["done"]]
            fail("%d clients unfinished after %ss (size, sent, received): %s"
                 % (left, timeout, stuck[:10]))
        for key, ev in sel.select(min(remaining, 1.0)):
            c = key.data
            s = c["s"]
            if ev & selectors.EVENT_WRITE and c["sent"] < len(c["data"]):
                mv = view.setdefault(id(c), memoryview(c["data"]))
                try:
                    c["sent"] += s.send(mv[c["sent"]:c["sent"] + 262144])
                except BlockingIOError:
                    pass
                if c["sent"] == len(c["data"]):
                    if shut_after_send:
                        s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(262144)
                except BlockingIOError:
                    continue
                if not chunk:
                    c["eof"] = True
                c["got"] += chunk
                if len(c["got"]) > len(c["data"]):
                    fail("client got more bytes than it sent")
                if len(c["got"]) == len(c["data"]) and (not shut_after_send or c["eof"]):
                    check(bytes(c["got"]) == c["data"], "echo differs (size %d)" % len(c["data"]))
                    c["done"] = True
                    sel.unregister(s)
                    s.close()
                    left -= 1
                elif not chunk:
                    fail("EOF after %d of %d bytes" % (len(c["got"]), len(c["data"])))
    sel.close()
    return len(clients)


def run_fixture(name, port, timeout=30):
    """Runs a seed client from tests/fixtures against `port`."""
    p = subprocess.run([sys.executable, os.path.join(FIXTURES, name), str(port)],
                       capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, "%s failed (%d): %s" % (name, p.returncode, p.stderr))
    return p.stderr


# --------------------------------------------------------------------------
# tests


def test_usage():
    """Option and address errors: one line, the right exit status."""
    def run(*args):
        p = subprocess.run([ECHOD] + mode_args(MODE) + list(args), capture_output=True,
                           text=True, timeout=10)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = run("--help")
    check(rc == 0, "--help exit %d" % rc)
    for opt in ("--listen", "--backend", "--max-conns", "--idle-timeout", "--tick",
                "--high-water", "--low-water", "--trace", "--quiet", "--help", "--version"):
        check(opt in out, "--help does not document %s" % opt)
    rc, out, err = run("--version")
    check(rc == 0 and out.startswith("echod"), "--version: %d %r" % (rc, out))
    for args in (["--bogus"], ["--listen"], ["--listen", "127.0.0.1:99999"],
                 ["--listen", "127.0.0.1"], ["--listen", "::1:80"], ["--listen", ":80"],
                 ["--listen", "127.0.0.1:8x"], ["--listen", "127.0.0.1:-1"],
                 ["--listen", "127.1:80"], ["--backend", "kqueue"], ["--max-conns", "-1"],
                 ["--idle-timeout", "abc"], ["--high-water", "0"],
                 ["--high-water", "1K", "--low-water", "2K"], ["extra"],
                 ["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:x"]):
        rc, out, err = run(*args)
        check(rc == 2, "%s: exit %d, want 2 (%s)" % (args, rc, err))
        # Every tool says a usage error in the same two lines.
        lines = err.split("\n")
        check(len(lines) == 3 and lines[0].startswith("echod: ") and
              lines[1] == "Try 'echod --help' for more information." and lines[2] == "",
              "%s: not one error line and the hint: %r" % (args, err))
        check(out == "", "%s: printed %r on stdout before failing" % (args, out))
    # Port in use is a runtime failure: exit 1 with the reason.
    with echod() as d:
        rc, out, err = run("--listen", "127.0.0.1:%d" % d.port)
        check(rc == 1, "port in use: exit %d (%s)" % (rc, err))
        check("Address already in use" in err and err.startswith("echod: "),
              "port in use: %r" % err)


def free_port(kind=socket.SOCK_STREAM):
    """A port free on 127.0.0.1 just now (for a test that needs a fixed one)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_startup_lines():
    """Set-up that can fail is done, or checked, before echod says it is
    listening: a failed start prints one line saying why, nothing else,
    and binds nothing. An address given twice is a usage error, a --user
    that does not exist is found before binding, a name that does not
    resolve is a runtime failure (exit 1), like an address in use."""
    def run(*args):
        p = subprocess.run([ECHOD] + mode_args(MODE) + list(args), capture_output=True,
                           text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    port = free_port()
    rc, out, err = run("--listen", "127.0.0.1:%d" % port, "--listen", "127.0.0.1:%d" % port)
    check(rc == 2 and out == "" and err == (
        "echod: --listen 127.0.0.1:%d: the same address as --listen 127.0.0.1:%d\n"
        "Try 'echod --help' for more information.\n" % (port, port)),
        "address twice: %d %r %r" % (rc, out, err))
    port = free_port(socket.SOCK_DGRAM)
    rc, out, err = run("--udp", "127.0.0.1:%d" % port, "--udp", "127.0.0.1:%d" % port)
    check(rc == 2 and "the same address" in err, "udp address twice: %d %r" % (rc, err))
    # Port 0 twice is two ports.
    with echod("--listen", "127.0.0.1:0", lines=2) as d:
        check(len(set(d.addrs)) == 2, "port 0 twice: %s" % d.addrs)
    rc, out, err = run("--listen", "127.0.0.1:0", "--user", "no-such-user-x")
    check(rc == 1 and out == "" and err == "echod: --user no-such-user-x: no such user\n",
          "unknown user: %d %r %r" % (rc, out, err))
    rc, out, err = run("--listen", "no-such-host.invalid:7")
    check(rc == 1 and out == "" and len(err.splitlines()) == 1 and
          err.startswith("echod: --listen 'no-such-host.invalid:7': "),
          "host not found: %d %r %r" % (rc, out, err))
    # The second address is taken: the first is not announced, on stdout
    # or stderr.
    for opt, kind in (("--listen", socket.SOCK_STREAM), ("--udp", socket.SOCK_DGRAM)):
        with socket.socket(socket.AF_INET, kind) as held:
            held.bind(("127.0.0.1", 0))
            if kind == socket.SOCK_STREAM:
                held.listen()
            taken = "127.0.0.1:%d" % held.getsockname()[1]
            rc, out, err = run("--listen", "127.0.0.1:0", opt, taken)
        check(rc == 1 and out == "" and len(err.splitlines()) == 1 and
              "Address already in use" in err, "%s in use: %d %r %r" % (opt, rc, out, err))


def test_echo_one_client():
    """One client, sizes from 1 byte to 1 MiB, every byte checked."""
    with echod() as d:
        for size in (1, 2, 3, 100, 1023, 1024, 1025, 16384, 65535, 65536, 65537, 300000, MiB):
            echo_clients(d.port, [os.urandom(size)], timeout=30)
        # Many messages on one connection, of mixed sizes.
        s = connect(d.port)
        for size in (1, 10, 1000, 10000, 100000, 1, 7):
            roundtrip(s, os.urandom(size))
        s.close()
        check(d.stop() == 0, "exit status")


def test_echo_200_clients():
    """200 clients at once with messages from 1 byte to 1 MiB."""
    rnd = random.Random(3)
    sizes = [1, MiB] + [min(MiB, (1 << rnd.randrange(0, 21)) + rnd.randrange(0, 1000))
                        for _ in range(198)]
    payloads = [rnd.randbytes(n) for n in sizes]
    with echod() as d:
        echo_clients(d.port, payloads, timeout=90)
        check(d.stop() == 0, "exit status")


def test_burst_1000():
    """1,000 clients connect at once (the seed's backlog of 5 would strand
    most of them) and are all served."""
    with echod() as d:
        echo_clients(d.port, [b"burst %d" % i for i in range(1000)], timeout=60)
        check(d.stop() == 0, "exit status")


def test_half_close():
    """A client sends 10 MiB without reading, then shuts down its write
    side: echod still sends every byte back, then closes."""
    data = os.urandom(10 * MiB)
    with echod("--high-water", "16M", "--low-water", "1M") as d:
        s = connect(d.port, timeout=30)
        s.sendall(data)  # fits: echod queues up to 16 MiB without reading
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        s.settimeout(30)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        s.close()
        check(len(got) == len(data), "got %d of %d bytes" % (len(got), len(data)))
        check(bytes(got) == data, "echo differs")
        # Also with many concurrent half-closing clients of mixed sizes.
        echo_clients(d.port, [os.urandom(n) for n in (1, 1000, 100000, MiB)],
                     shut_after_send=True)
        check(d.stop() == 0, "exit status")


def test_backpressure_rss():
    """A client sends (up to) 100 MiB and never reads: echod stops reading
    from it near the high watermark, its RSS stays bounded, and another
    client is served meanwhile. Then the hog reads and gets every byte."""
    high = MiB
    with echod("--high-water", str(high), "--low-water", "256K") as d:
        warm = connect(d.port)
        roundtrip(warm, os.urandom(200000))  # read buffer and a few chunks touched
        base = d.rss_kib()
        hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hog.connect(("127.0.0.1", d.port))
        hog.setblocking(False)
        block = os.urandom(MiB)
        sent = 0
        sent_chunks = []
        last_progress = time.monotonic()
        deadline = time.monotonic() + 20
        # Send until 100 MiB or until echod has stopped taking data for
        # 0.5 s (the kernel buffers on both sides are then full too).
        while sent < 100 * MiB and time.monotonic() - last_progress < 0.5:
            check(time.monotonic() < deadline, "hog phase took too long")
            try:
                n = hog.send(block)
                sent_chunks.append(block[:n])
                sent += n
                last_progress = time.monotonic()
            except BlockingIOError:
                sel = selectors.DefaultSelector()
                sel.register(hog, selectors.EVENT_WRITE)
                sel.select(0.05)
                sel.close()
            # Meanwhile another client is served.
            roundtrip(warm, b"ping %d" % sent)
        rss = d.rss_kib()
        grow = rss - base
        limit = (high + 8 * MiB) // 1024 * (4 if SANITIZED else 1)
        print("  backpressure: hog sent %.1f MiB; echod RSS %d KiB (base %d KiB, +%d KiB, "
              "limit +%d KiB)" % (sent / MiB, rss, base, grow, limit))
        check(sent < 100 * MiB, "echod took all 100 MiB without the client reading")
        check(grow < limit, "RSS grew by %d KiB, limit %d KiB" % (grow, limit))
        for i in range(20):
            roundtrip(warm, os.urandom(10000))
        # The hog now reads: every byte it managed to send comes back.
        data = b"".join(sent_chunks)
        hog.setblocking(True)
        hog.shutdown(socket.SHUT_WR)
        hog.settimeout(30)
        got = bytearray()
        while True:
            chunk = hog.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        check(bytes(got) == data, "hog got %d of %d bytes back, or different ones"
              % (len(got), len(data)))
        hog.close()
        warm.close()
        check(d.stop() == 0, "exit status")


def test_reset_mid_stream():
    """A client that resets mid-stream, with echo data queued for it, does
    not disturb the others."""
    with echod("--high-water", "4M") as d:
        good = connect(d.port)
        roundtrip(good, b"before")
        for _ in range(5):
            bad = connect(d.port)
            bad.sendall(os.urandom(3 * MiB // 2))  # echod queues some of it for us
            # SO_LINGER 0: close() sends RST instead of FIN.
            bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            bad.close()
            roundtrip(good, os.urandom(100000))
        echo_clients(d.port, [os.urandom(n) for n in (10, 100000, MiB)])
        roundtrip(good, b"after")
        good.close()
        check(d.alive(), "echod died")
        check(d.stop() == 0, "exit status")


def test_reset_counted_apart():
    """A client that resets (SO_LINGER 0 close) counts in `resets`, not in
    `errors`; a clean close counts in neither."""
    def settled(d, want_total):
        """The stats line once every connection so far has been closed."""
        deadline = time.monotonic() + 10
        while True:
            line = d.stats()
            m = re.search(r"connections (\d+) open, (\d+) total", line)
            if m and m.group(1) == "0" and int(m.group(2)) == want_total:
                return line
            check(time.monotonic() < deadline, "connections never all closed: %s" % line)
            time.sleep(0.02)

    with echod() as d:
        for _ in range(3):
            s = connect(d.port)
            roundtrip(s, b"clean")
            s.close()
        line = settled(d, 3)
        check(stat_field(line, "resets") == 0 and stat_field(line, "errors") == 0,
              "after clean closes: %s" % line)
        for _ in range(4):
            s = connect(d.port)
            roundtrip(s, b"reset")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        line = settled(d, 7)
        check(stat_field(line, "resets") == 4 and stat_field(line, "errors") == 0,
              "after 4 resets: %s" % line)
        check(d.stop() == 0, "exit status")


def server_side(port):
    """ss's view of echod's side of the connections on 127.0.0.1:port."""
    p = subprocess.run(["ss", "-tnom", "state", "established", "(", "sport", "=", ":%d" % port,
                        ")"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0, "ss: %s" % p.stderr)
    return p.stdout


def test_socket_options():
    """--keepalive, --sndbuf and --rcvbuf are set once, on the listener, and
    every accepted socket has them (Linux copies them): ss shows echod's
    side of a connection with a keepalive timer and the buffer sizes
    (doubled by the kernel); without the options, neither."""
    if shutil.which("ss") is None:
        raise Skip("ss (iproute2) is not installed")
    check_refused(["--keepalive", "0"], "--keepalive")
    check_refused(["--keepalive", "5:1"], "expected IDLE or IDLE:INTERVAL:COUNT")
    check_refused(["--sndbuf", "0"], "--sndbuf")
    check_refused(["--rcvbuf", "2G"], "--rcvbuf")
    for args in ([], ["--keepalive", "7:3:4", "--sndbuf", "64K", "--rcvbuf", "96K"]):
        with echod(*args) as d:
            clients = [connect(d.port) for _ in range(3)]
            for c in clients:
                roundtrip(c, b"tuned?")
            out = server_side(d.port)
            lines = [ln for ln in out.splitlines() if "127.0.0.1:%d " % d.port in ln]
            check(len(lines) == 3, "ss shows %d of echod's connections: %s" % (len(lines), out))
            if args:
                check(out.count("timer:(keepalive,") == 3, "no keepalive timer: %s" % out)
                check(out.count("rb196608,") == 3 and out.count("tb131072,") == 3,
                      "buffer sizes not inherited: %s" % out)
            else:
                check("keepalive" not in out and "rb196608," not in out, "untuned: %s" % out)
            for c in clients:
                c.close()
            check(d.stop() == 0, "exit status")


def test_idle_timeout():
    """--idle-timeout closes the idle client, not the busy one."""
    with echod("--idle-timeout", "0.8") as d:
        idle = connect(d.port)
        busy = connect(d.port)
        roundtrip(idle, b"hello")
        t0 = time.monotonic()
        idle.setblocking(False)
        idle_closed_at = None
        # The busy client is watched for twice the timeout (1.6 s) at least,
        # and until the idle one is closed (2.2 s at most).
        while time.monotonic() - t0 < (2.2 if idle_closed_at is None else 1.6):
            roundtrip(busy, b"x")
            if idle_closed_at is None:
                try:
                    if idle.recv(10) == b"":
                        idle_closed_at = time.monotonic() - t0
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    idle_closed_at = time.monotonic() - t0
            time.sleep(0.05)  # the busy client's pace, the point of the test
        check(idle_closed_at is not None, "idle client not closed after 2.2 s")
        check(idle_closed_at >= 0.75, "idle client closed too early (%.2f s)" % idle_closed_at)
        roundtrip(busy, b"still here")
        busy.close()
        idle.close()
        check(d.stop() == 0, "exit status")


def test_max_conns():
    """--max-conns 2: the third client is refused, the first two are not
    disturbed, and a place that frees up is given to the next client."""
    with echod("--max-conns", "2") as d:
        a, b = connect(d.port), connect(d.port)
        roundtrip(a, b"a")
        roundtrip(b, b"b")
        c = connect(d.port)
        check(closed_by_peer(c), "third client was not refused")
        c.close()
        roundtrip(a, b"a again")
        roundtrip(b, b"b again")
        a.close()
        # echod learns of a's departure asynchronously: retry for a while.
        deadline = time.monotonic() + 5
        while True:
            e = connect(d.port)
            try:
                roundtrip(e, b"e", timeout=0.5)
                break
            except (AssertionError, socket.timeout, ConnectionResetError):
                e.close()
                check(time.monotonic() < deadline, "no client served after one left")
        e.close()
        b.close()
        d.signal(signal.SIGUSR1)
        d.wait_stderr(r"echod: stats: .*refused [1-9]")
        check(d.stop() == 0, "exit status")


def test_emfile():
    """Under a low RLIMIT_NOFILE, more clients than descriptors: echod
    refuses the extra ones without spinning and recovers when clients
    leave."""
    with echod(nofile=24, quiet=False) as d:
        served, refused = try_clients(d.port, 40)
        check(len(served) >= 5, "only %d clients served" % len(served))
        check(refused >= 10, "only %d clients refused" % refused)
        # More clients knock while the table is full; echod must not spin.
        knockers = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(10)]
        cpu0 = d.cpu_seconds()
        time.sleep(1.0)  # measuring CPU use over an interval is the point
        cpu = d.cpu_seconds() - cpu0
        print("  emfile: %d served, %d refused; CPU over 1 s while full: %.2f s"
              % (len(served), refused, cpu))
        check(cpu < 0.3, "echod used %.2f s of CPU in 1 s while out of fds" % cpu)
        for k in knockers:
            k.close()
        for s in served:
            roundtrip(s, b"still served")
        for s in served:
            s.close()
        # Recovery: new clients are served again.
        deadline = time.monotonic() + 5
        ok = 0
        while ok < 5:
            check(time.monotonic() < deadline, "echod did not recover (%d served)" % ok)
            s = connect(d.port)
            try:
                roundtrip(s, b"again", timeout=1)
                ok += 1
            except (AssertionError, ConnectionResetError, BrokenPipeError, socket.timeout):
                pass
            s.close()
        err = d.stderr()
        check("Too many open files" in err, "no EMFILE log line: %s" % err)
        check(err.count("Too many open files") <= 5, "EMFILE log not rate-limited:\n%s" % err)
        check(d.stop() == 0, "exit status")


def test_fd_beyond_setsize():
    """Descriptors at and above FD_SETSIZE: select refuses those clients
    cleanly (and serves the others); poll and epoll serve them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        raise Skip("RLIMIT_NOFILE hard limit %d < 2048" % hard)
    # echod inherits /dev/null on fds 24..1023, so its first few clients
    # get low numbers and the later ones 1024 and up.
    with echod(nofile=2048, fill_fds=(24, 1024), quiet=False) as d:
        served, refused = try_clients(d.port, 30)
        if workers_of(base_mode(MODE))[0] == "select":
            check(refused >= 5, "select: only %d clients refused" % refused)
            check(len(served) >= 5, "select: only %d clients served" % len(served))
            d.wait_stderr(r"beyond what select can watch \(FD_SETSIZE")
            # A freed low descriptor serves a new client again.
            served.pop().close()
            deadline = time.monotonic() + 5
            while True:
                s = connect(d.port)
                try:
                    roundtrip(s, b"low again", timeout=1)
                    s.close()
                    break
                except (AssertionError, ConnectionResetError, BrokenPipeError, socket.timeout):
                    s.close()
                    check(time.monotonic() < deadline, "no client served after one left")
        else:
            check(refused == 0, "%s refused %d clients with high fds" % (MODE, refused))
        for s in served:
            roundtrip(s, b"ok")
            s.close()
        check(d.alive(), "echod died")
        check(d.stop() == 0, "exit status")


def norm_trace(text, ports):
    """Trace lines with client ports replaced by C1, C2 and the server port
    by N, so runs can be compared."""
    out = []
    for line in text.splitlines():
        if line.startswith("echod: "):
            continue  # echod's own start-up/shutdown lines
        line = re.sub(r"^starting up on (\S+) port \d+$", r"starting up on \1 port N", line)
        for i, p in enumerate(ports):
            line = line.replace("('127.0.0.1', %d)" % p, "C%d" % (i + 1))
        out.append(line)
    return out


def client_ports(client_stderr):
    ports = []
    for m in re.finditer(r"^\('127\.0\.0\.1', (\d+)\): sending", client_stderr, re.M):
        p = int(m.group(1))
        if p not in ports:
            ports.append(p)
    return ports


def test_trace_multiclient():
    """--trace tells the seed's story for the seed's multi-socket client:
    every line the seed server prints for it, echod prints too, with the
    right addresses."""
    with echod("--trace", listen="localhost:0", quiet=False) as d:
        out = run_fixture("seed_multiclient.py", d.port)
        for part in ("This is the message. ", "It will be sent ", "in parts."):
            check(out.count("received %r" % part.encode()) == 2, "client output: %s" % out)
        ports = client_ports(out)
        check(len(ports) == 2, "client ports: %s" % out)
        d.wait_stderr(r"^  closing (.|\n)*^  closing ")
        check(d.stop() == 0, "exit status")
        ours = norm_trace(d.stderr(), ports)
    # Expected lines, in the seed's words.
    want = ["starting up on localhost port N", "waiting for the next event"]
    for c in ("C1", "C2"):
        want.append("  connection from %s" % c)
        for part in ("This is the message. ", "It will be sent ", "in parts."):
            want.append("  received %r from %s" % (part.encode(), c))
            want.append("  sending %r to %s" % (part.encode(), c))
        want.append("   %s queue empty" % c)
        want.append("  closing %s" % c)
    for line in want:
        check(line in ours, "trace lacks %r; trace:\n%s" % (line, "\n".join(ours)))
    # Per client, the story is in order.
    for c in ("C1", "C2"):
        mine = [l for l in ours if l.endswith(c) or (" %s " % c) in l]
        check(mine[0] == "  connection from %s" % c and mine[-1] == "  closing %s" % c,
              "order for %s: %s" % (c, mine))
    # And against the seed server itself (tests/fixtures), when it runs:
    # every kind of line it prints, echod prints (the seed's closing lines
    # name the last accepted client: that defect we do not copy).
    with tempfile.TemporaryFile() as serr_file:
        seed = subprocess.Popen([sys.executable, os.path.join(FIXTURES, "select_echo_server.py"),
                                 "0"], stdout=subprocess.PIPE, stderr=serr_file, text=True)
        try:
            sel = selectors.DefaultSelector()
            sel.register(seed.stdout, selectors.EVENT_READ)
            check(sel.select(10), "the seed server printed no address")
            sel.close()
            port = int(seed.stdout.readline().strip().rpartition(":")[2])
            sout = run_fixture("seed_multiclient.py", port)
            sports = client_ports(sout)
            # The seed has printed its story once it closed both sockets.
            deadline = time.monotonic() + 5
            while True:
                serr_file.seek(0)
                serr = serr_file.read().decode(errors="replace")
                if serr.count("  closing") >= 2 or "Traceback" in serr:
                    break
                check(time.monotonic() < deadline, "the seed server never closed: %s" % serr)
                time.sleep(0.01)
        finally:
            seed.kill()
            seed.wait()
            seed.stdout.close()
    theirs = norm_trace(serr, sports)
    compared = 0
    for line in theirs:
        if line.startswith("Traceback"):
            break  # the seed may trip over a closed socket: not our story
        if line.startswith("  closing") or not line.strip():
            continue
        if line.startswith("starting up on"):
            continue  # the seed prints the requested port 0
        check(line in ours, "seed prints %r, echod does not; echod:\n%s"
              % (line, "\n".join(ours)))
        compared += 1
    check(compared >= 20, "only %d lines of the seed's output compared: %s" % (compared, serr))


def test_tick_and_stats():
    """--tick wakes the loop when idle (--trace says so); SIGUSR1 prints
    statistics."""
    with echod("--trace", "--tick", "0.05", quiet=False) as d:
        d.wait_stderr(r"^  timed out, do some other work here$", timeout=5)
        s = connect(d.port)
        roundtrip(s, b"stats please")
        d.signal(signal.SIGUSR1)
        d.wait_stderr(r"echod: stats: ")
        d.wait_stderr(r"echod: stats: %s; connections 1 open, 1 total; bytes 12 in, "
                      r"12 out" % re.escape(mode_label(MODE)))
        # Bytes are shown exactly as Python's repr() shows them.
        me = s.getsockname()
        for data in (b"it's", b'say "hi"', b"both ' and \"", b"\x00\x7f\x80\xff\\\r\n\t~ "):
            roundtrip(s, data)
            d.wait_stderr(r"^%s$" % re.escape("  received %r from %r" % (data, me)))
            d.wait_stderr(r"^%s$" % re.escape("  sending %r to %r" % (data, me)))
        s.close()
        check(d.stop() == 0, "exit status")


def test_seed_slow_client():
    """The seed's slow client (it sleeps 4 s in all) gets its echo."""
    with echod() as d:
        out = run_fixture("seed_slow_client.py", d.port)
        got = "".join(eval(m) .decode() for m in re.findall(r"^received (b'.*')$", out, re.M))
        check(got == "Part one of the message.Part two of the message.", "slow client: %s" % out)
        check(d.stop() == 0, "exit status")


def stats_wait_bytes_in(d, want, timeout=10):
    """Asks for statistics (SIGUSR1) until echod reports `want` bytes in."""
    deadline = time.monotonic() + timeout
    while True:
        got = stat_field(d.stats(max(deadline - time.monotonic(), 0.1)), "bytes")
        if got >= want:
            return
        check(time.monotonic() < deadline, "echod read only %d of %d bytes" % (got, want))


def test_sigterm_drain():
    """SIGTERM during traffic: echod stops accepting, sends what it had
    queued, and exits 0; a client that never leaves is cut after --grace."""
    with echod("--high-water", "16M", "--grace", "1") as d:
        data = os.urandom(4 * MiB)
        s = connect(d.port, timeout=20)
        s.sendall(data)
        busy = connect(d.port)
        roundtrip(busy, b"busy")
        lurker = connect(d.port)  # never reads or closes
        roundtrip(lurker, b"lurk")
        # Wait until echod has read all 4 MiB: its echo is then queued in
        # echod or in flight, and all of it must come back.
        stats_wait_bytes_in(d, len(data) + 8)
        d.signal(signal.SIGTERM)
        t0 = time.monotonic()
        got = bytearray()
        s.settimeout(20)
        while True:
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        check(len(got) == len(data), "drained %d of %d bytes" % (len(got), len(data)))
        check(bytes(got) == data, "drained echo differs")
        # No new clients after the signal.
        deadline = time.monotonic() + 5
        while True:
            try:
                n = connect(d.port, timeout=1)
                refused = closed_by_peer(n, timeout=1)
                n.close()
            except (ConnectionRefusedError, ConnectionResetError):
                refused = True
            if refused:
                break
            check(time.monotonic() < deadline, "echod still accepts after SIGTERM")
        # The lurker never closes: echod cuts it when the grace period
        # (1 s) is over, and exits 0 on its own.
        s.close()
        busy.close()
        try:
            status = d.proc.wait(10)
        except subprocess.TimeoutExpired:
            fail("echod still running 10 s after SIGTERM")
        took = time.monotonic() - t0
        check(status == 0, "exit status %d after SIGTERM" % status)
        check(0.9 <= took < 5, "exit took %.1f s, grace is 1 s" % took)
        check(closed_by_peer(lurker, timeout=1), "lurker not closed")
        lurker.close()


def test_no_fd_leak():
    """RLIMIT_NOFILE 32: 2,000 sequential connect/echo/close cycles, and the
    descriptor count is back where it started."""
    with echod(nofile=32) as d:
        s = connect(d.port)
        roundtrip(s, b"warm")
        s.close()
        base = d.nfds() - pipe_fds(d)
        for i in range(2000):
            s = connect(d.port)
            msg = b"cycle %d" % i
            s.sendall(msg)
            got = recv_exact(s, len(msg), timeout=5)
            check(got == msg, "cycle %d: echo differs" % i)
            # Half the clients wait for echod's end of stream after their
            # half-close, half just close.
            if i % 2:
                s.shutdown(socket.SHUT_WR)
                check(closed_by_peer(s), "cycle %d: no EOF after half-close" % i)
            s.close()
        # Every client is gone; echod's descriptor count settles back.
        deadline = time.monotonic() + 5
        while d.nfds() - pipe_fds(d) > base:
            check(time.monotonic() < deadline, "echod holds %d fds, %d before" % (d.nfds(), base))
            time.sleep(0.01)
        check(d.stop() == 0, "exit status")


def pipe_fds(d):
    """Descriptors in --splice's pool of pipes (two a pipe; bounded by the
    pool, not leaked): the io_uring engine lends a pipe across completions,
    so clients in quick succession may make a few more than one."""
    m = re.search(r"pipes \d+ lent, (\d+) open", d.stats())
    return 2 * int(m.group(1)) if m else 0


def test_restart_same_port():
    """Stopped with clients connected and an echo in flight, echod exits
    holding nothing: an echod started at once on the same port binds it.
    (The io_uring engine's requests held the listener open past the
    process's exit until they were cancelled and waited for.)"""
    with echod() as d:
        port = d.port
        check(d.stop() == 0, "exit status")
    for i in range(6):
        # --grace 0.2: the client that does not read is cut after 0.2 s.
        with echod("--grace", "0.2", listen="127.0.0.1:%d" % port, may_exit=True) as d:
            deadline = time.monotonic() + 10
            while True:
                check(d.proc.poll() is None, "restart %d: echod exited: %s"
                      % (i, d.stderr().strip()[-300:]))
                try:
                    s = connect(port, timeout=1)
                    break
                except (ConnectionRefusedError, ConnectionResetError):
                    # Refused before echod listens; reset by a listener
                    # the last echod left behind (then this one exits).
                    check(time.monotonic() < deadline, "restart %d: never listened" % i)
                    time.sleep(0.01)
            try:
                roundtrip(s, os.urandom(1000))
            except OSError as e:
                d.wait()  # it exits if the port was not free
                fail("restart %d: %s; echod: %s" % (i, e, d.stderr().strip()[-300:]))
            busy = connect(port)
            busy.sendall(os.urandom(100000))  # echoed while echod stops; never read
            stats_wait_bytes_in(d, 1000 + 100000)
            check(d.stop() == 0, "restart %d: exit status" % i)
            s.close()
            busy.close()


def test_ipv6():
    """[::1]:0 works when the system has IPv6 loopback."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        raise Skip("no IPv6 loopback")
    with echod(listen="[::1]:0") as d:
        check(d.host == "::1", "bound address %s" % d.host)
        s = connect(d.port, host="::1")
        roundtrip(s, os.urandom(70000))
        s.close()
        check(d.stop() == 0, "exit status")


def test_uring_buffers_exhausted():
    """--engine uring only: with 1 or 2 receive buffers for 50 clients
    sending at once, receives run out of buffers (-ENOBUFS ends them) and
    must be armed again when buffers come back; every byte still comes
    back, in order. With 1 buffer no send may hold it (sends hold at most
    half), so every echo goes through the copy path."""
    if mode_label(MODE) != "engine uring":
        raise Skip("only for --engine uring")
    for nbuf in ("1", "2"):
        with echod("--uring-buffers", nbuf) as d:
            payloads = [os.urandom(random.randint(1, 300000)) for _ in range(50)]
            echo_clients(d.port, payloads, timeout=60)
            line = d.stats()
            waits = stat_field(line, "waits for buffers")
            rearms = stat_field(line, "re-armed receives")
            print("  --uring-buffers %s: %d waits for buffers, %d receives re-armed"
                  % (nbuf, waits, rearms))
            check(waits > 0, "the buffers never ran out: %s" % line)
            check(rearms > 0, "no receive was armed again: %s" % line)
            check(stat_field(line, "ring buffers") == 0, "buffers still held: %s" % line)
            check(d.stop() == 0, "exit status")
    # The window of buffers in the kernel's ring (engine_uring.c, step 4):
    # 16 at first, it grows when a burst runs the ring dry and shrinks
    # back under a light load.
    with echod() as d:
        in_ring = stat_field(d.stats(), "held,")
        check(in_ring == 16, "%d buffers in the ring at start, want 16" % in_ring)
        echo_clients(d.port, [os.urandom(100000) for _ in range(100)], timeout=60)
        line = d.stats()
        grown = stat_field(line, "held,")
        check(16 < grown <= 256, "window after a burst of 100 clients: %s" % line)
        s = connect(d.port)
        deadline = time.monotonic() + 15
        while True:
            for _ in range(100):
                roundtrip(s, b"light load")
            line = d.stats()
            if stat_field(line, "held,") <= 32:
                break
            check(time.monotonic() < deadline, "window never shrank from %d: %s" % (grown, line))
        print("  window: 16 at start, %d after a burst, %d under light load"
              % (grown, stat_field(line, "held,")))
        s.close()
        check(d.stop() == 0, "exit status")
    p = subprocess.run([ECHOD] + mode_args(MODE) + ["--uring-buffers", "3"],
                       capture_output=True, text=True, timeout=10)
    check(p.returncode == 2 and "not a power of two" in p.stderr,
          "--uring-buffers 3: exit %d, %r" % (p.returncode, p.stderr))


def check_refused(args, message):
    """echod in MODE with `args` exits 2 (usage) saying `message`."""
    p = subprocess.run([ECHOD] + mode_args(MODE) + args, capture_output=True, text=True,
                       timeout=10)
    check(p.returncode == 2 and message in p.stderr,
          "%s: exit %d, %r" % (" ".join(args), p.returncode, p.stderr))


def test_busy_poll():
    """--busy-poll USEC: with --engine uring, echod spins up to USEC before
    it sleeps, and under a ping-pong load the spins find work; once idle it
    sleeps again (the spin ends with its budget). The readiness loop
    refuses the option rather than ignore it."""
    if mode_label(MODE) != "engine uring":
        check_refused(["--busy-poll", "50"], "--busy-poll: only with --engine uring")
        return
    # The longest spin: on a loaded machine the client may wait for a CPU
    # (one of them is ours, spinning) before it sends the next ping.
    with echod("--busy-poll", "10000") as d:
        s = connect(d.port)
        roundtrip(s, os.urandom(300000))
        deadline = time.monotonic() + 20
        while True:
            for i in range(100):
                roundtrip(s, b"ping %d" % i)
            line = d.stats()
            polls = stat_field(line, "busy polls")
            found = stat_field(line, "found work")
            check(found <= polls, "more spins found work than ran: %s" % line)
            if found > 0:
                break
            check(time.monotonic() < deadline, "no spin found work: %s" % line)
        print("  --busy-poll 10000: %d spins, %d found work" % (polls, found))
        # Its waits are not load: over several 100 ms epochs of this light
        # ping-pong, --spin-receive auto must not take them for saturation.
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            roundtrip(s, b"light")
        line = d.stats()
        check(stat_field(line, "started") == 0,
              "--busy-poll's waits taken for load by --spin-receive auto: %s" % line)
        s.close()
        before = d.cpu_seconds()
        time.sleep(1.0)
        idle_cpu = d.cpu_seconds() - before
        check(idle_cpu < 0.5, "idle echod used %.2f s of CPU in 1 s: spinning on" % idle_cpu)
        check(d.stop() == 0, "exit status")
    check_refused(["--busy-poll", "10001"], "out of range")


def kernel_has_min_wait():
    """io_uring's minimum wait (IORING_FEAT_MIN_TIMEOUT) came in Linux 6.12."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (6, 12)


def test_batch_wait():
    """--batch-wait USEC (the engine's default is 200): with many clients
    sending at once, the engine asks the kernel to wake it for a batch of
    receives rather than one. Every byte must still come back; a lone client
    must still be answered; an idle echod must sleep. The batched wait needs
    the engine as the owner of an epoll loop and kernel 6.12; elsewhere the
    statistics must say nothing of it. The readiness loop refuses the
    option."""
    if mode_label(MODE) != "engine uring":
        check_refused(["--batch-wait", "50"], "--batch-wait: only with --engine uring")
        return
    expect = workers_of(MODE)[0] == "engine-uring" and kernel_has_min_wait()
    with echod() as d:
        socks = [connect(d.port) for _ in range(64)]
        deadline = time.monotonic() + 20
        rounds = 0
        while True:
            # Every client sends before any reads: receives pile up in the
            # ring while echod works, which is what makes batches.
            msgs = [b"%d:%d:" % (rounds, i) + os.urandom(40) for i in range(len(socks))]
            for s, m in zip(socks, msgs):
                s.sendall(m)
            for s, m in zip(socks, msgs):
                check(recv_exact(s, len(m)) == m, "echo differs")
            rounds += 1
            if rounds % 50:
                continue
            line = d.stats()
            if not expect:
                check("batch waits" not in line,
                      "batched waits without the kernel's minimum wait: %s" % line)
                if rounds >= 200:
                    print("  --batch-wait: off in this mode (%s, kernel %s)"
                          % (MODE, os.uname().release))
                    break
                continue
            waits = stat_field(line, "batch waits")
            short = stat_field(line, "short")
            check(short <= waits, "more short batches than batches: %s" % line)
            if waits > 0:
                print("  --batch-wait 200: %d batched waits, %d short, in %d rounds"
                      % (waits, short, rounds))
                break
            check(time.monotonic() < deadline, "no batched wait in %d rounds: %s" % (rounds, line))
        for s in socks[1:]:
            s.close()
        # A lone client after the crowd: answered, one message at a time.
        for i in range(200):
            roundtrip(socks[0], b"alone %d" % i)
        socks[0].close()
        before = d.cpu_seconds()
        time.sleep(1.0)
        idle_cpu = d.cpu_seconds() - before
        check(idle_cpu < 0.2, "idle echod used %.2f s of CPU in 1 s" % idle_cpu)
        check(d.stop() == 0, "exit status")
    with echod("--batch-wait", "0") as d:
        s = connect(d.port)
        roundtrip(s, b"off")
        line = d.stats()
        check("batch waits" not in line, "--batch-wait 0 still batches: %s" % line)
        s.close()
        check(d.stop() == 0, "exit status")
    check_refused(["--batch-wait", "1001"], "out of range")


def test_spin_receive():
    """--spin-receive auto|on|off (--engine uring). `on`: the engine
    receives by trying each client's socket in turn and never sleeps; every
    byte still comes back, in order, from many clients at once, half-closed
    ones included, and through a ring of one buffer (receives that find it
    empty). `off`: it never spins and says nothing of it. `auto` (the
    default) says in its statistics whether it spins. The readiness loop
    refuses `on` and `auto` and accepts `off`; `on` with --trace is
    refused."""
    if mode_label(MODE) != "engine uring":
        check_refused(["--spin-receive", "on"], "--spin-receive: only with --engine uring")
        check_refused(["--spin-receive", "auto"], "--spin-receive: only with --engine uring")
        with echod("--spin-receive", "off") as d:  # true of the loop: accepted
            s = connect(d.port)
            roundtrip(s, b"off")
            s.close()
            check(d.stop() == 0, "exit status")
        return
    check_refused(["--spin-receive", "sometimes"], "is not one of: auto, on, off")
    check_refused(["--spin-receive", "on", "--trace"], "--spin-receive on: not with --trace")
    rng = random.Random(862)
    for spin in ("on", "off", "auto"):
        with echod("--spin-receive", spin) as d:
            payloads = [rng.randbytes(rng.randint(1, 300000)) for _ in range(24)]
            echo_clients(d.port, payloads)
            echo_clients(d.port, payloads[:8], shut_after_send=True)
            line = d.stats()
            if spin == "on":
                check("spinning now" in line, "--spin-receive on, not spinning: %s" % line)
                check(stat_field(line, "started") == 1, "started more than once: %s" % line)
                empty = stat_field(line, "receives that found nothing")
                check(empty > 0, "a spinning engine that never found a socket empty: %s" % line)
                print("  --spin-receive on: %d receives found nothing" % empty)
            elif spin == "off":
                check("spinning" not in line, "--spin-receive off spins: %s" % line)
            else:
                started = stat_field(line, "started")
                print("  --spin-receive auto: started %d times under this load" % started)
            check(d.stop() == 0, "exit status")
    with echod("--spin-receive", "on", "--uring-buffers", "1") as d:
        echo_clients(d.port, [rng.randbytes(100000) for _ in range(8)])
        line = d.stats()
        # With workers the line has each worker's engine part: any of them.
        waits = sum(int(n) for n in re.findall(r"waits for buffers (\d+)", line))
        check(waits > 0, "one buffer, never short: %s" % line)
        check(d.stop() == 0, "exit status")


TESTS = [
    test_usage,
    test_startup_lines,
    test_echo_one_client,
    test_echo_200_clients,
    test_burst_1000,
    test_half_close,
    test_backpressure_rss,
    test_reset_mid_stream,
    test_reset_counted_apart,
    test_socket_options,
    test_idle_timeout,
    test_max_conns,
    test_emfile,
    test_fd_beyond_setsize,
    test_trace_multiclient,
    test_tick_and_stats,
    test_sigterm_drain,
    test_no_fd_leak,
    test_restart_same_port,
    test_ipv6,
    test_uring_buffers_exhausted,
    test_busy_poll,
    test_batch_wait,
    test_spin_receive,
]

# engine-uring-spin spins from the start, by design: the tests that check an
# idle or refusing echod uses no CPU (emfile, busy_poll, batch_wait) do not
# apply, nor do those with --trace (trace_multiclient, tick_and_stats:
# refused with spinning, as test_spin_receive checks). engine-uring runs
# them on the same engine.
SPIN_EXCLUDED = {"test_emfile", "test_busy_poll", "test_batch_wait", "test_trace_multiclient",
                 "test_tick_and_stats"}
# With --workers 2 (modes ending in -w2): --trace lines say which worker
# wrote them ("[worker N] ", tests/echod_workers_e2e.py checks them), so the
# seed's transcript is the single-threaded story; each worker rate-limits its
# own log lines (emfile counts them) and has its own ring (uring_buffers_exhausted
# and busy_poll read one engine's counters). The one-worker mode runs them.
# engine-uring-splice: a spliced connection receives through its pipe, not
# the ring of buffers, so the tests of how the engine receives (buffers run
# out, busy polling, batched waits, spinning receives) find nothing to
# count; engine-uring runs them.
URING_SPLICE_EXCLUDED = {"test_uring_buffers_exhausted", "test_busy_poll", "test_batch_wait",
                         "test_spin_receive"}
W2_EXCLUDED = {"test_trace_multiclient", "test_tick_and_stats", "test_emfile",
               "test_uring_buffers_exhausted", "test_busy_poll"}


def measure_idle(n):
    """Opens n idle connections to an echod in MODE and reports its RSS and
    the bytes per idle connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 100
    check(hard >= need, "RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    with echod(nofile=need) as d:
        s = connect(d.port)
        roundtrip(s, b"warm")  # the shared read buffer exists from here on
        s.close()
        base = d.rss_kib()
        socks = []
        for i in range(n):
            c = socket.create_connection(("127.0.0.1", d.port))
            socks.append(c)
            if i % 1000 == 999:
                roundtrip(c, b"sync")  # echod has accepted everything so far
        roundtrip(socks[-1], b"sync")
        rss = d.rss_kib()
        print("%s: %d idle connections: RSS %d KiB (before: %d KiB), %.0f bytes per "
              "connection" % (mode_label(MODE), n, rss, base, (rss - base) * 1024 / n))
        for c in socks:
            c.close()
        d.stop()


def leave_out(tests, names, why):
    """The tests not in `names`; says which were left out, and why."""
    left_out = [t.__name__ for t in tests if t.__name__ in names]
    if left_out:
        print("not %s: %s" % (why, ", ".join(left_out)), flush=True)
    return [t for t in tests if t.__name__ not in names]


def main():
    global ECHOD, MODE, SANITIZED
    (ECHOD,), MODE, args = command_line(__doc__)
    SANITIZED = sanitized(ECHOD)
    if args[:1] == ["--measure-idle"]:
        measure_idle(int(args[1]))
        return 0
    if not mode_available(ECHOD, MODE):
        return 77
    tests = select_tests(TESTS, args)
    if MODE == "engine-uring-spin":
        tests = leave_out(tests, SPIN_EXCLUDED, "in this mode (it spins by design)")
    if MODE == "engine-uring-splice":
        tests = leave_out(tests, URING_SPLICE_EXCLUDED, "with --splice on (engine-uring runs them)")
    if workers_of(MODE)[1] > 1:
        tests = leave_out(tests, W2_EXCLUDED, "with --workers 2 (the one-worker mode runs them)")
    # The seed's slow client takes 4 s of sleeping: run it alongside.
    slow_error = []

    def slow():
        try:
            test_seed_slow_client()
        except Exception as e:  # reported after the others
            slow_error.append(e)

    slow_thread = None
    if not args or "seed_slow_client" in args or "test_seed_slow_client" in args:
        slow_thread = threading.Thread(target=slow)
        slow_thread.start()
    failed, skipped = run_each(tests)
    if slow_thread:
        slow_thread.join(60)
        if slow_error or slow_thread.is_alive():
            failed += 1
            print("FAIL test_seed_slow_client %s" % (slow_error or "timeout"), flush=True)
        else:
            print("ok   test_seed_slow_client", flush=True)
    return exit_status(failed, skipped, len(tests))


if __name__ == "__main__":
    sys.exit(main())
