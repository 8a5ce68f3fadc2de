#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's datagram echo (UDP and Unix datagram sockets).

Usage: echod_udp_e2e.py ECHOD MODE [--bench ECHO_BENCH] [TEST...]

MODE is a loop backend (epoll, poll, select, uring) or engine-uring (see
tests/echod_proc.py).

Real echod processes on 127.0.0.1 / ::1 port 0 or on Unix sockets in a
temporary directory. A datagram that must get no reply is followed by one
that must (from another socket, through the same echod socket): once that
reply is in, echod has dealt with the first, so absence is checked without
sleeping. Exit status: 0 pass, 1 fail, 77 skip.
"""
import json
import os
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
from echod_proc import (Echod, Skip, check, check_usage_error, client_backend, command_line,  # noqa: E402
                        fail, mode_args, run_tests, stat_field, udp_socket)

ECHOD = MODE = BENCH = None


def echod(*args, **kw):
    """An Echod in this run's mode; no TCP --listen unless the test asks."""
    kw.setdefault("listen", None)
    return Echod(ECHOD, MODE, *args, **kw)


def pattern(n, seed=0):
    return bytes((i * 7 + seed + i // 251) & 0xFF for i in range(n))


def roundtrip(s, to, data):
    s.sendto(data, to)
    got, frm = s.recvfrom(70000)
    check(got == data, "echo of %d bytes came back as %d different bytes" % (len(data), len(got)))
    return frm


def no_reply(s):
    """Nothing is waiting on s (checked after a sentinel, never by waiting)."""
    s.setblocking(False)
    try:
        got = s.recv(70000)
        fail("unexpected reply of %d bytes" % len(got))
    except BlockingIOError:
        pass
    finally:
        s.settimeout(5)


def sentinel(to, host="127.0.0.1"):
    with udp_socket(host) as s:
        roundtrip(s, to, b"sentinel")


def test_sizes():
    with echod("--udp", "127.0.0.1:0", "--udp", "[::1]:0", lines=2) as d:
        v4, v6 = d.addrs
        with udp_socket("127.0.0.1") as s:
            for n in (0, 1, 1472, 65507):
                check(roundtrip(s, v4, pattern(n, n)) == v4, "reply from another address")
        with udp_socket("::1") as s:
            for n in (0, 1, 1472, 65527):
                roundtrip(s, v6, pattern(n, n))
        st = d.stats(kind="udp stats")
        check(" 8 received, 8 echoed" in st, "stats: %s" % st)
        check(d.stop() == 0, "exit status")


def test_many_clients():
    """10 clients x 1,000 datagrams, 8 in flight each: every one answered
    with its own bytes (loss is counted and reported). The window is kept
    small enough for a default 208 KiB receive queue (a small datagram
    costs about 1 KiB of it), so nothing may be lost on loopback even when
    echod is not scheduled for a while."""
    clients, per, window, size = 10, 1000, 8, 64
    with echod("--udp", "127.0.0.1:0", "--udp-rate", "0", lines=1) as d:
        to = d.addrs[0]
        sel = selectors.DefaultSelector()
        state = []
        for c in range(clients):
            s = udp_socket("127.0.0.1")
            s.setblocking(False)
            st = {"s": s, "id": c, "sent": 0, "got": 0, "bad": 0}
            state.append(st)
            sel.register(s, selectors.EVENT_READ, st)

        def message(c, seq):
            return struct.pack("!II", c, seq) + pattern(size - 8, c * 131 + seq)

        def fill(st):
            while st["sent"] < per and st["sent"] - st["got"] < window:
                st["s"].sendto(message(st["id"], st["sent"]), to)
                st["sent"] += 1

        for st in state:
            fill(st)
        start = time.monotonic()
        last_progress = start
        while any(st["got"] < per for st in state):
            now = time.monotonic()
            if now - last_progress > 2 or now - start > 30:
                break
            for key, _ in sel.select(0.5):
                st = key.data
                while True:
                    try:
                        data = st["s"].recv(70000)
                    except BlockingIOError:
                        break
                    c, seq = struct.unpack("!II", data[:8])
                    if c != st["id"] or data != message(c, seq):
                        st["bad"] += 1
                    st["got"] += 1
                    last_progress = time.monotonic()
                fill(st)
        elapsed = time.monotonic() - start
        sent = sum(st["sent"] for st in state)
        got = sum(st["got"] for st in state)
        bad = sum(st["bad"] for st in state)
        stats = d.stats(kind="udp stats")
        for st in state:
            st["s"].close()
        sel.close()
        print("     %d datagrams sent, %d answered, %d lost, %d corrupt in %.2fs; %s"
              % (sent, got, sent - got, bad, elapsed, stats))
        check(bad == 0, "%d corrupt replies" % bad)
        check(sent == clients * per and got == sent,
              "%d of %d datagrams lost (stats: %s)" % (sent - got, sent, stats))
        check("%d received, %d echoed" % (sent, sent) in stats, "stats: %s" % stats)


def own_loopback():
    """An address of 127/8 (all loopback) that no other test process uses:
    fixed ports such as 19 are then safe from tests running side by side."""
    pid = os.getpid()
    return "127.%d.%d.%d" % ((pid >> 14) & 255, (pid >> 7) & 127, (pid & 127) + 1)


def test_port_filter():
    with echod("--udp", "127.0.0.1:0", lines=1) as d:
        to = d.addrs[0]
        with udp_socket(own_loopback(), 19) as chargen:
            chargen.sendto(b"loop?", to)
            sentinel(to)
            no_reply(chargen)
        st = d.stats(kind="udp stats")
        check(stat_field(st, "loop-prone port") == 1, "not counted: %s" % st)
    with echod("--udp", "127.0.0.1:0", "--udp-any-port", lines=1) as d:
        with udp_socket(own_loopback(), 19) as chargen:
            roundtrip(chargen, d.addrs[0], b"allowed now")


def test_rate_limit():
    """A flood from one address is held to --udp-rate with its burst;
    another address is still served meanwhile."""
    rate, burst, flood = 10, 5, 200
    with echod("--udp", "127.0.0.1:0", "--udp-rate", str(rate), "--udp-burst", str(burst),
               lines=1) as d:
        to = d.addrs[0]
        start = time.monotonic()
        with udp_socket("127.0.0.1") as f:
            for i in range(flood):
                f.sendto(b"%d" % i, to)
            sentinel(to, "127.0.0.2")
            # With --workers, another worker may answer the sentinel before
            # the flooder's has read the flood: its replies are awaited until
            # none comes for 0.5 s, and the time they took counts.
            f.settimeout(0.5)
            got = 0
            last = time.monotonic()
            try:
                while True:
                    f.recv(100)
                    got += 1
                    last = time.monotonic()
            except socket.timeout:
                pass
            elapsed = max(last, start) - start
        allowed = burst + int(elapsed * rate) + 1
        check(burst <= got <= allowed,
              "flooder got %d replies in %.2fs, expected %d..%d" % (got, elapsed, burst, allowed))
        st = d.stats(kind="udp stats")
        check(stat_field(st, "rate") >= flood - allowed - 5, "rate drops not counted: %s" % st)


def test_reply_address():
    """A 0.0.0.0 socket answers from the address each datagram came to."""
    with echod("--udp", "0.0.0.0:0", "--udp", "[::]:0", lines=2) as d:
        port4, port6 = d.addrs[0][1], d.addrs[1][1]
        with udp_socket("127.0.0.1") as s:
            for host in ("127.0.0.1", "127.0.0.5", "127.1.2.3"):
                frm = roundtrip(s, (host, port4), b"from where?")
                check(frm == (host, port4), "reply to %s came from %s" % (host, frm))
        with udp_socket("::1") as s:
            frm = roundtrip(s, ("::1", port6), b"v6")
            check(frm[:2] == ("::1", port6), "reply came from %s" % (frm,))


def unix_dgram(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    return s


def wait_stale(path, timeout=10):
    """Polls until nobody receives on the Unix datagram socket at `path`.
    A dead process's sockets usually go with it, but not always at once:
    with the io_uring backend the kernel tears the ring (and the files it
    holds) down after the process is gone."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.connect(path)
            except ConnectionRefusedError:
                return
        check(time.monotonic() < deadline, "%s still served %ss after its echod died"
              % (path, timeout))
        time.sleep(0.005)


def test_unix_dgram():
    tmp = tempfile.mkdtemp(prefix="echod-udp-")
    try:
        path = os.path.join(tmp, "echo.dgram")
        with echod("--udp", "unix:" + path, quiet=False) as d:
            d.wait_stderr(r"echoing datagrams on unix:")
            with unix_dgram(os.path.join(tmp, "c")) as s:
                for n in (0, 1, 1472, 60000, 65536):
                    roundtrip(s, path, pattern(n, 3))
                # Longer than echod's 64 KiB buffer: cut by the kernel, so
                # it must not be echoed; counted and logged.
                s.sendto(pattern(70000), path)
                with unix_dgram(os.path.join(tmp, "c2")) as s2:
                    roundtrip(s2, path, b"sentinel")
                no_reply(s)
                d.wait_stderr(r"longer than 65536 bytes: not echoed")
                st = d.stats(kind="udp stats")
                check(stat_field(st, "truncated") == 1, "stats: %s" % st)
            # A second echod on the live socket is refused, clearly.
            r = subprocess.run([ECHOD, "--udp", "unix:" + path], capture_output=True, timeout=10)
            check(r.returncode == 1 and b"another process is serving this socket" in r.stderr,
                  "second echod: %d %r" % (r.returncode, r.stderr))
            d.proc.kill()  # dies without removing its file
            d.wait()
        check(os.path.exists(path), "killed echod removed its file?")
        wait_stale(path)
        # The stale file is replaced; a clean exit removes the file.
        with echod("--udp", "unix:" + path, quiet=False) as d:
            d.wait_stderr(r"echoing datagrams on unix:")
            with unix_dgram(os.path.join(tmp, "c3")) as s:
                roundtrip(s, path, b"after a crash")
            check(d.stop() == 0, "exit status")
        check(not os.path.exists(path), "socket file left behind after a clean exit")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_usage():
    for args, want in ((["--udp", "127.0.0.1"], "--udp '127.0.0.1'"),
                       (["--udp-rate", "fast"], "--udp-rate"),
                       (["--udp-burst", "0"], "--udp-burst"),
                       (["--udp", "unix:"], "--udp 'unix:'")):
        check_usage_error([ECHOD] + mode_args(MODE), args, want)


def test_bench_udp():
    """echo-bench --udp against echod: datagrams verified, none lost."""
    if not BENCH:
        raise Skip("no echo-bench given")
    with echod("--udp", "127.0.0.1:0", "--udp-rate", "0", lines=1) as d:
        host, port = d.addrs[0]
        r = subprocess.run([BENCH, "--udp", "--connect", "%s:%d" % (host, port), "--conns", "4",
                            "--size", "512", "--depth", "4", "--duration", "1", "--warmup",
                            "0.2", "--backend", client_backend(MODE), "--json"],
                           capture_output=True, timeout=30)
        out = r.stdout.decode()
        check(r.returncode == 0, "echo-bench exit %d: %s %s" % (r.returncode, out,
                                                                 r.stderr.decode()))
        res = json.loads(out)
        check(res["errors"] == 0 and res["messages"] > 0, "bench result: %s" % out)
        check(res.get("lost", 0) == 0, "datagrams lost on loopback: %s" % out)
        print("     echo-bench --udp: %s msg/s" % res.get("messages_per_s"))


class BadUdpServer:
    """A UDP echo server in a thread that drops or corrupts every nth datagram."""

    def __init__(self, mode, nth):
        self.s = udp_socket("127.0.0.1")
        self.s.settimeout(0.05)
        self.addr = self.s.getsockname()
        self.mode, self.nth, self.count = mode, nth, 0
        self.stop = False
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                data, frm = self.s.recvfrom(70000)
            except socket.timeout:
                continue
            self.count += 1
            if self.count % self.nth == 0:
                if self.mode == "drop":
                    continue
                data = data[:-1] + bytes([data[-1] ^ 0x20])
            self.s.sendto(data, frm)

    def close(self):
        self.stop = True
        self.t.join(5)
        self.s.close()


def bench(addr, *args):
    r = subprocess.run([BENCH, "--udp", "--connect", "%s:%d" % addr, "--backend",
                        client_backend(MODE), "--json"] + list(args), capture_output=True,
                       timeout=30)
    out = r.stdout.decode()
    return r.returncode, (json.loads(out) if out.strip() else {}), r.stderr.decode()


def test_bench_udp_faults():
    """echo-bench --udp counts loss without calling it an error, and reports
    corruption and a closed port as errors."""
    if not BENCH:
        raise Skip("no echo-bench given")
    srv = BadUdpServer("drop", 10)
    try:
        rc, res, err = bench(srv.addr, "--conns", "2", "--depth", "8", "--duration", "0.5",
                             "--warmup", "0")
    finally:
        srv.close()
    check(rc == 0 and res["lost"] > 0 and res["errors"] == 0,
          "dropping server: exit %d, %s %s" % (rc, res, err))
    srv = BadUdpServer("corrupt", 50)
    try:
        rc, res, err = bench(srv.addr, "--conns", "2", "--duration", "0.5", "--warmup", "0")
    finally:
        srv.close()
    check(rc == 1 and res["errors"] > 0 and "is wrong" in res["first_error"],
          "corrupting server: exit %d, %s %s" % (rc, res, err))
    with udp_socket("127.0.0.1") as closed:
        addr = closed.getsockname()
    rc, res, err = bench(addr, "--duration", "0.3", "--warmup", "0")
    check(rc == 1 and "nothing listens" in (res.get("first_error") or ""),
          "closed port: exit %d, %s %s" % (rc, res, err))


TESTS = [
    test_sizes,
    test_many_clients,
    test_port_filter,
    test_rate_limit,
    test_reply_address,
    test_unix_dgram,
    test_usage,
    test_bench_udp,
    test_bench_udp_faults,
]


def main():
    global ECHOD, MODE, BENCH
    (ECHOD,), MODE, args = command_line(__doc__)
    if args[:1] == ["--bench"]:
        BENCH = os.path.abspath(args[1])
        args = args[2:]
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return run_tests(TESTS, args, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
