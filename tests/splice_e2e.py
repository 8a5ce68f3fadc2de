#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod --splice (issue 28): what the echo, reliability
and budget areas do not check in their MODE-splice runs.

Usage: splice_e2e.py ECHOD MODE [TEST...]
       (MODE: a backend, e.g. epoll, or engine-uring)

Every test starts its own echod on 127.0.0.1:0 in MODE (the readiness
engine on a backend, or the io_uring engine) with the --splice it names,
checks every byte its clients get back, and reads what was spliced from the
statistics line (SIGUSR1).
Exit status: 0 pass, 1 fail, 77 skip.
"""
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_e2e import echo_clients  # noqa: E402
from echod_proc import (Echod, base_mode, check, closed_by_peer, command_line, connect,  # noqa: E402
                        roundtrip, run_tests, stat_field)

ECHOD = None
MODE = None
KiB = 1 << 10
MiB = 1 << 20
RNG = random.Random(28)


def echod(splice, *args, **kw):
    """echod in MODE with --splice `splice`."""
    return Echod(ECHOD, base_mode(MODE), "--splice", splice, *args, **kw)


def settled(d, timeout=10):
    """The statistics line once every client's close has reached echod (an
    engine may see it after the client has its last byte)."""
    deadline = time.monotonic() + timeout
    while True:
        line = d.stats()
        if stat_field(line, "connections") == 0 or time.monotonic() > deadline:
            return line


def uring():
    """The io_uring engine: IORING_OP_SPLICE, and `auto` meaning off."""
    return base_mode(MODE).startswith("engine-uring")


def test_spliced_and_counted():
    """--splice on: clients of large messages get every byte back, the
    bytes go through pipes (spliced counts them, within bytes out), and
    every pipe is back in the pool afterwards."""
    with echod("on") as d:
        payloads = [RNG.randbytes(RNG.choice((1, 1000, 100 * KiB, MiB, 3 * MiB)))
                    for _ in range(24)]
        echo_clients(d.port, payloads)
        line = settled(d)
        total = sum(len(p) for p in payloads)
        spliced = stat_field(line, "spliced")
        check(spliced > total // 2, "spliced %d of %d bytes: %s" % (spliced, total, line))
        check(spliced <= stat_field(line, "in,"), "spliced more than echoed: %s" % line)
        check(stat_field(line, "pipes") == 0, "pipes still lent: %s" % line)
        print("  spliced %d of %d bytes" % (spliced, total))
        check(d.stop() == 0, "exit status")


def test_auto_threshold():
    """--splice auto: small messages are copied (nothing spliced); a
    connection whose read fills 64 KiB is spliced from then on. With the
    io_uring engine auto is off (docs/design.md): no pipes at all."""
    if uring():
        with echod("auto", quiet=False) as d:
            s = connect(d.port)
            for _ in range(3):
                roundtrip(s, RNG.randbytes(4 * MiB), timeout=30)
            s.close()
            line = d.stats()
            check("spliced" not in line, "auto spliced on io_uring: %s" % line)
            check(d.stop() == 0, "exit status")
        return
    with echod("auto") as d:
        s = connect(d.port)
        for _ in range(200):
            roundtrip(s, RNG.randbytes(RNG.randrange(1, 4000)))
        check(stat_field(d.stats(), "spliced") == 0, "small messages spliced")
        big = RNG.randbytes(4 * MiB)
        roundtrip(s, big, timeout=30)
        roundtrip(s, big, timeout=30)
        line = d.stats()
        check(stat_field(line, "spliced") > 4 * MiB, "large messages not spliced: %s" % line)
        s.close()
        check(d.stop() == 0, "exit status")


def test_off_and_trace():
    """--splice off, and --trace (which needs the bytes), never splice; with
    --engine auto, --splice on means the readiness engine."""
    for args in (("off",), ("on", "--trace")):
        with echod(*args, quiet=False) as d:
            s = connect(d.port)
            roundtrip(s, RNG.randbytes(MiB), timeout=30)
            s.close()
            line = d.stats()
            check("spliced" not in line, "%s: spliced: %s" % (args, line))
            check(d.stop() == 0, "exit status")
    with Echod(ECHOD, "auto", "--splice", "on", quiet=False) as d:
        check("engine loop" in d.stderr(), "--splice on chose: %s" % d.stderr())
        check(d.stop() == 0, "exit status")


def test_pipes_run_out():
    """Descriptors run out: with RLIMIT_NOFILE 64 and clients holding all
    but one descriptor, pipe() fails with EMFILE; every connection keeps
    echoing by copying, and none is lost. Once clients leave, pipes are
    made again and splicing resumes."""
    nofile = 64
    with echod("on", nofile=nofile) as d:
        socks = []
        # Silent clients: accepted, never read from, so no pipe is made yet.
        while d.nfds() < nofile - 1:
            want = d.nfds() + 1
            socks.append(connect(d.port))
            deadline = time.monotonic() + 10
            while d.nfds() < want:
                check(time.monotonic() < deadline, "client %d not accepted" % len(socks))
                time.sleep(0.01)  # polling /proc for the accept, bounded above
        msgs = [RNG.randbytes(RNG.choice((300 * KiB, MiB))) for _ in socks]
        errors = []

        def client(s, data):
            try:
                for _ in range(3):
                    roundtrip(s, data, timeout=60)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=client, args=(s, m)) for s, m in zip(socks, msgs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        check(not errors, "clients failed: %s" % errors[:3])
        line = d.stats()
        print("  %d clients, %d descriptors: %s" % (len(socks), d.nfds(),
                                                     line[line.index("spliced"):]))
        check(stat_field(line, "no pipe") > 0, "no connection went without a pipe: %s" % line)
        check(stat_field(line, "errors") == 0 and stat_field(line, "resets") == 0, line)
        check(stat_field(line, "connections") == len(socks), "connections lost: %s" % line)
        check(stat_field(line, "spliced") == 0, "spliced without a pipe: %s" % line)
        for s in socks:
            roundtrip(s, b"still here")
        for s in socks[1:]:
            s.close()
        for _ in range(100):  # past the pool's pause after a failed pipe()
            roundtrip(socks[0], msgs[0], timeout=30)
        line = d.stats()
        check(stat_field(line, "spliced") > 0, "no splice once descriptors came free: %s" % line)
        socks[0].close()
        check(d.stop() == 0, "exit status")


def test_reset_mid_splice():
    """Clients reset while echod splices their bytes: counted as resets,
    their pipes (holding bytes) are closed rather than lent again, and
    another client's echo is unharmed."""
    with echod("on", quiet=False) as d:
        good = connect(d.port)
        for i in range(20):
            bad = connect(d.port)
            bad.sendall(RNG.randbytes(2 * MiB)[: (i + 1) * 100 * KiB])
            bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            bad.close()  # RST
            roundtrip(good, RNG.randbytes(256 * KiB))
        deadline = time.monotonic() + 10
        while True:
            line = d.stats()
            if stat_field(line, "connections") == 1:
                break
            check(time.monotonic() < deadline, "reset clients still open: %s" % line)
        check(stat_field(line, "resets") > 0, "no reset counted: %s" % line)
        check(stat_field(line, "errors") == 0, "errors: %s" % line)
        check(stat_field(line, "pipes") == 0, "pipes still lent: %s" % line)
        roundtrip(good, RNG.randbytes(MiB))
        good.close()
        check(d.alive(), "echod died")
        check(d.stop() == 0, "exit status")


def test_never_readers_hold_no_pipe():
    """Clients that send and never read: what their pipe held joins their
    queue (bounded by --high-water), so they hold no pipe and echod's RSS
    stays bounded; a reading client is still spliced."""
    high = 256 * KiB
    with echod("on", "--high-water", str(high)) as d:
        good = connect(d.port)
        roundtrip(good, RNG.randbytes(MiB))
        base = d.rss_kib()
        hogs = []
        for _ in range(30):
            h = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            h.connect(("127.0.0.1", d.port))
            h.setblocking(False)
            hogs.append(h)
        block = RNG.randbytes(MiB)
        stalled_since = time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() - stalled_since < 0.5:
            check(time.monotonic() < deadline, "never-readers took bytes for 30 s")
            for h in hogs:
                try:
                    if h.send(block):
                        stalled_since = time.monotonic()
                except BlockingIOError:
                    pass
        before = stat_field(d.stats(), "spliced")
        roundtrip(good, RNG.randbytes(2 * MiB), timeout=30)
        line = d.stats()
        grow = d.rss_kib() - base
        print("  30 never-readers: RSS +%d KiB; %s" % (grow, line[line.index("spliced"):]))
        check(stat_field(line, "pipes") <= 1, "never-readers hold pipes: %s" % line)
        check(stat_field(line, "spliced") > before, "the reading client was not spliced")
        check(grow < 30 * (high + 128 * KiB) // KiB + 4096, "RSS grew %d KiB" % grow)
        for h in hogs:
            h.close()
        good.close()
        check(d.stop() == 0, "exit status")


def test_idle_timeout_sees_splices():
    """A spliced client is busy for longer than --idle-timeout without
    ever being copied: it is not cut (splices count as I/O); idle, it is."""
    with echod("on", "--idle-timeout", "1") as d:
        s = connect(d.port)
        data = RNG.randbytes(256 * KiB)
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            roundtrip(s, data, timeout=10)
        check(stat_field(d.stats(), "idle closed") == 0, "a busy spliced client was cut")
        check(closed_by_peer(s, timeout=10), "the idle client was not cut")
        check(stat_field(d.stats(), "idle closed") == 1, "not counted as idle")
        s.close()
        check(d.stop() == 0, "exit status")


def test_half_close_spliced():
    """Half-close while bytes are in the pipe: a client sends 10 MiB,
    reading as it goes, and shuts down its write side at once; every byte
    comes back before echod's end of stream."""
    with echod("on") as d:
        s = connect(d.port, timeout=30)
        data = RNG.randbytes(10 * MiB)
        got = bytearray()

        def reader():
            while True:
                chunk = s.recv(MiB)
                if not chunk:
                    return
                got.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        t.join(60)
        check(bytes(got) == data, "got %d of %d bytes, or others" % (len(got), len(data)))
        line = d.stats()
        # How much is spliced depends on how fast this process reads: while
        # its socket is full, echod copies (spill_pipe). The first pipe
        # always goes out spliced, whatever the machine's load.
        check(stat_field(line, "spliced") >= 64 * 1024, "not spliced: %s" % line)
        s.close()
        check(d.stop() == 0, "exit status")


TESTS = [
    test_spliced_and_counted,
    test_auto_threshold,
    test_off_and_trace,
    test_pipes_run_out,
    test_reset_mid_splice,
    test_never_readers_hold_no_pipe,
    test_idle_timeout_sees_splices,
    test_half_close_spliced,
]


def main():
    global ECHOD, MODE
    (ECHOD,), MODE, named = command_line(__doc__)
    return run_tests(TESTS, named, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
