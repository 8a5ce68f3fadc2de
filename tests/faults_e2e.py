# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's fault modes (--listen ADDR,delay=... and
--udp-drop), each measured from the client side.

Usage: faults_e2e.py ECHOD ECHO_CLIENT ECHO_BENCH MODE [TEST...]

MODE is a loop backend or engine-uring (tests/echod_proc.py): with the
io_uring engine, fault listeners are served by the readiness engine beside
it on the same loop, which these tests must not be able to tell apart.
Time bounds are one-sided where the mode promises one side (never earlier
than the delay) and generous on the other (under load a turn of the loop
may come late). Exit status: 0 pass, 1 fail, 77 skip.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, check, client_backend, command_line, connect, fail,  # noqa: E402
                        recv_exact, run_tests, stat_field, udp_socket)

ECHOD = CLIENT = BENCH = MODE = None
# How late an echo may come beyond what the mode asks, on a loaded machine.
LATE = 2.0


def echod(faults, *args, **kw):
    """An Echod in this run's mode on one listener with `faults`, seeded."""
    kw.setdefault("lines", 1)
    return Echod(ECHOD, MODE, "--fault-seed", "7", *args,
                 listen="127.0.0.1:0," + faults, **kw)


def read_until_end(s, timeout=10):
    """Everything until EOF or a reset: (bytes, "eof" | "reset" | "timeout")."""
    s.settimeout(timeout)
    buf = bytearray()
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return bytes(buf), "eof"
            buf += chunk
    except ConnectionResetError:
        return bytes(buf), "reset"
    except socket.timeout:
        return bytes(buf), "timeout"


def fault_count(d, name):
    line = d.stats()
    m = re.search(r"faults \(seed \d+\)(.*)$", line)
    check(m, "no fault counters in %r" % line)
    return stat_field(m.group(1), name)


def test_delay():
    with echod("delay=50") as d:
        s = connect(d.port)
        for i in range(3):
            start = time.monotonic()
            s.sendall(b"ping %d" % i)
            got = recv_exact(s, 6)
            took = time.monotonic() - start
            check(got == b"ping %d" % i, "echo differs: %r" % got)
            check(0.050 <= took < 0.050 + LATE, "echo after %.4f s, wanted >= 0.050" % took)
        s.close()
        check(fault_count(d, "delay") >= 3, "delay not counted")


def test_delay_jitter_keeps_order():
    with echod("delay=20+-15") as d:
        s = connect(d.port)
        want = b"".join(b"%04d" % i for i in range(200))
        for i in range(200):
            s.sendall(b"%04d" % i)
        check(recv_exact(s, len(want)) == want, "the order of delayed chunks changed")
        s.close()


def test_rate():
    # 1 MiB at 100,000 bytes/s: 10.5 s; the bucket starts empty and holds
    # 20 ms, so it may not come sooner than 10.49 - 0.02 s (an unpaced echo
    # takes milliseconds, one at twice the rate 5.2 s). With --workers the
    # same pacing is checked on 256 KiB (2.6 s): the suite's time.
    size, rate = (1 << 18 if re.search(r"-w(2|auto)$", MODE) else 1 << 20), 100000
    with echod("rate=%d" % rate) as d:
        s = connect(d.port)
        data = os.urandom(size)
        start = time.monotonic()
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        got = recv_exact(s, size, timeout=30)
        took = time.monotonic() - start
        sender.join()
        s.close()
        check(got == data, "paced echo differs")
        check(took >= size / rate - 0.05, "%d bytes in %.2f s at rate=%d" % (size, took, rate))
        check(took < size / rate + 3 * LATE, "%d bytes took %.2f s" % (size, took))


def sliced_reads(port, data):
    """The sizes of the reads that bring `data` back."""
    s = connect(port)
    s.sendall(data)
    got = bytearray()
    sizes = []
    s.settimeout(10)
    while len(got) < len(data):
        chunk = s.recv(4096)
        check(chunk, "EOF")
        sizes.append(len(chunk))
        got += chunk
    s.close()
    check(bytes(got) == data, "sliced echo differs")
    return sizes


def test_slice():
    # Pieces 50 ms apart: a client that is not scheduled for that long (a
    # loaded machine) reads two at once. That is the client's lateness,
    # not a piece too large, so it gets three tries; an echo that is not
    # cut fails them all.
    with echod("slice=7:50") as d:
        data = bytes(range(48, 48 + 64))
        for _ in range(3):
            sizes = sliced_reads(d.port, data)
            if max(sizes) <= 7:
                return
        fail("a read of %d bytes: %s" % (max(sizes), sizes))


def test_slice_no_pause():
    with echod("slice=5") as d:
        s = connect(d.port)
        data = os.urandom(100000)
        threading.Thread(target=s.sendall, args=(data,)).start()
        check(recv_exact(s, len(data)) == data, "sliced echo differs")
        s.close()
        check(fault_count(d, "slice") == 1, "slice not counted once")


def test_reset_after():
    with echod("reset-after=1000") as d:
        s = connect(d.port)
        s.sendall(os.urandom(3000))
        got, end = read_until_end(s)
        s.close()
        check(len(got) == 1000 and end == "reset", "%d bytes, then %s" % (len(got), end))
        check(fault_count(d, "reset-after") == 1, "reset not counted")


def test_close_after():
    with echod("close-after=1000") as d:
        s = connect(d.port)
        data = os.urandom(3000)
        s.sendall(data)
        got, end = read_until_end(s)
        check(got == data[:1000] and end == "eof", "%d bytes, then %s" % (len(got), end))
        s.sendall(b"more, dropped")  # the server still reads: no reset
        s.shutdown(socket.SHUT_WR)
        s.close()
        check(fault_count(d, "close-after") == 1, "close not counted")


def test_stall_after():
    with echod("stall-after=1000") as d:
        s = connect(d.port)
        data = os.urandom(3000)
        s.sendall(data)
        check(recv_exact(s, 1000) == data[:1000], "the first 1000 bytes differ")
        got, end = read_until_end(s, timeout=0.5)
        check(got == b"" and end == "timeout", "after the stall: %d bytes, %s" % (len(got), end))
        s.sendall(b"still open")
        check(fault_count(d, "stall-after") == 1, "stall not counted")
        s.close()


def test_stall_ends_by_idle_timeout():
    with echod("stall-after=10", "--idle-timeout", "1") as d:
        s = connect(d.port)
        s.sendall(b"x" * 20)
        got, end = read_until_end(s, timeout=10)
        check(len(got) == 10 and end in ("eof", "reset"), "%d bytes, %s" % (len(got), end))
        s.close()


def test_accept_delay():
    with echod("accept-delay=200") as d:
        start = time.monotonic()
        s = connect(d.port)
        s.sendall(b"hello")
        check(recv_exact(s, 5) == b"hello", "echo differs")
        took = time.monotonic() - start
        s.close()
        check(0.2 <= took < 0.2 + LATE, "echo %.3f s after connecting" % took)


def test_slow_close():
    with echod("slow-close=300") as d:
        s = connect(d.port)
        s.sendall(b"bye")
        check(recv_exact(s, 3) == b"bye", "echo differs")
        start = time.monotonic()
        s.shutdown(socket.SHUT_WR)
        got, end = read_until_end(s)
        took = time.monotonic() - start
        s.close()
        check(end == "eof" and got == b"", "%r, %s" % (got, end))
        check(0.3 <= took < 0.3 + LATE, "FIN answered after %.3f s" % took)


def test_corrupt_fails_clients():
    with echod("corrupt=100") as d:
        r = subprocess.run([CLIENT, "--connect", "127.0.0.1:%d" % d.port, "--sockets", "1",
                            "--backend", client_backend(MODE), "hello world"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 1, "echo-client exit %d: %s" % (r.returncode, r.stderr))
        r = subprocess.run([BENCH, "--connect", "127.0.0.1:%d" % d.port, "--duration", "0.5",
                            "--warmup", "0"], capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "is wrong" in r.stdout + r.stderr,
              "echo-bench exit %d: %s %s" % (r.returncode, r.stdout[-500:], r.stderr[-500:]))
        check(fault_count(d, "corrupt") >= 2, "corruption not counted")


def udp_echoed(seed, batches):
    """The datagrams echoed of `batches` x 50 sent to a --udp-drop 50 echod
    with --fault-seed `seed`, and how many it counted dropped."""
    with Echod(ECHOD, MODE, "--udp", "127.0.0.1:0", "--udp-drop", "50", "--udp-rate", "0",
               "--fault-seed", str(seed), listen=None, lines=1) as d:
        _, port = d.addrs[0]
        c = udp_socket("127.0.0.1")
        echoed = set()
        dropped = 0
        for batch in range(batches):
            for i in range(batch * 50, batch * 50 + 50):
                c.sendto(b"%06d" % i, ("127.0.0.1", port))
            # Each datagram is either echoed or counted dropped: the batch
            # is done when the two add up (polled when the socket is quiet).
            c.settimeout(0.02)
            deadline = time.monotonic() + 10
            while len(echoed) + dropped < batch * 50 + 50:
                try:
                    echoed.add(c.recv(100))
                except socket.timeout:
                    dropped = fault_count(d, "drop")
                    check(time.monotonic() < deadline, "batch %d: %d echoed, %d dropped"
                          % (batch, len(echoed), dropped))
        c.close()
        return echoed, fault_count(d, "drop")


def test_udp_drop():
    echoed, dropped = udp_echoed(7, 40)
    check(800 <= len(echoed) <= 1200, "%d of 2000 datagrams echoed" % len(echoed))
    check(dropped == 2000 - len(echoed), "%d counted dropped, %d echoed" % (dropped, len(echoed)))
    # The same seed drops the same datagrams (one source: one worker's draws).
    again, _ = udp_echoed(7, 4)
    first = {x for x in echoed if int(x) < 200}
    check(again == first, "seed 7 echoed %s, then %s" % (sorted(first)[:10], sorted(again)[:10]))


def fault_pattern(seed):
    """Which of 30 connections p=0.5,close-after=4 cut, in one run."""
    pattern = ""
    with Echod(ECHOD, MODE, "--fault-seed", str(seed),
               listen="127.0.0.1:0,p=0.5,close-after=4", lines=1) as d:
        for _ in range(30):
            s = connect(d.port)
            s.sendall(b"12345678")
            s.shutdown(socket.SHUT_WR)
            got, end = read_until_end(s)
            s.close()
            pattern += "c" if got == b"1234" and end == "eof" else "."
            check(got in (b"1234", b"12345678") and end == "eof", "echo %r, %s" % (got, end))
    return pattern


def corrupt_echoes(seed):
    """40 messages echoed one at a time (a chunk each) by corrupt=50."""
    with Echod(ECHOD, MODE, "--fault-seed", str(seed), listen="127.0.0.1:0,corrupt=50",
               lines=1) as d:
        s = connect(d.port)
        echoes = []
        for i in range(40):
            msg = b"message %08d" % i
            s.sendall(msg)
            echoes.append(recv_exact(s, len(msg)))
        s.close()
        return echoes


def test_seed_replays_and_p():
    a, b = fault_pattern(42), fault_pattern(42)
    check(a == b, "the same seed gave %s and %s" % (a, b))
    check(5 <= a.count("c") <= 25, "p=0.5 cut %d of 30: %s" % (a.count("c"), a))
    # corrupt= draws which chunks and which bit from the same seed.
    a, b = corrupt_echoes(9), corrupt_echoes(9)
    bad = sum(e != b"message %08d" % i for i, e in enumerate(a))
    check(a == b, "the same seed corrupted differently: %s / %s" % (a[:4], b[:4]))
    check(5 <= bad <= 35, "corrupt=50 changed %d of 40 chunks" % bad)


def test_combination_and_clean_listener():
    # delay and reset-after together; a clean listener beside is not delayed.
    with Echod(ECHOD, MODE, "--listen", "127.0.0.1:0", "--fault-seed", "1",
               listen="127.0.0.1:0,delay=1000,reset-after=100", lines=2) as d:
        clean = connect(d.addrs[1][1])
        start = time.monotonic()
        clean.sendall(b"fast")
        check(recv_exact(clean, 4) == b"fast", "clean echo differs")
        check(time.monotonic() - start < 1.0, "the clean listener was delayed")
        clean.close()
        s = connect(d.port)
        start = time.monotonic()
        s.sendall(b"y" * 300)
        got, end = read_until_end(s)
        took = time.monotonic() - start
        s.close()
        check(len(got) == 100 and end == "reset", "%d bytes, %s" % (len(got), end))
        check(took >= 1.0, "reset after %.3f s, before the delay" % took)


def test_trace_says_fault():
    with echod("reset-after=5", "--trace", quiet=False) as d:
        s = connect(d.port)
        s.sendall(b"0123456789")
        read_until_end(s)
        s.close()
        # With workers, trace lines say which one wrote them: "[worker N] ".
        d.wait_stderr(r"^(\[worker \d+\] )?  fault reset-after on \('127\.0\.0\.1', \d+\) "
                      r"after 5 bytes echoed$")


def test_drain_sends_delayed_echo():
    # SIGTERM: a delayed echo still goes out, then the end of stream.
    with echod("delay=300", quiet=False) as d:
        s = connect(d.port)
        s.sendall(b"late")
        deadline = time.monotonic() + 10
        while stat_field(d.stats(), "bytes") < 4:  # received, and not yet due
            check(time.monotonic() < deadline, "echod never received the bytes")
        d.signal(signal.SIGTERM)
        got, end = read_until_end(s)
        s.close()
        check(got == b"late" and end == "eof", "%r, %s" % (got, end))
        check(d.wait() == 0, "echod exit status")


def test_metrics():
    with echod("close-after=3", "--metrics", "127.0.0.1:0", lines=2) as d:
        s = connect(d.port)
        s.sendall(b"abcdef")
        read_until_end(s)
        s.close()
        host, port = d.addrs[1]
        m = socket.create_connection((host, port), timeout=10)
        m.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        body, _ = read_until_end(m)
        m.close()
        check(b'echod_faults_total{kind="close-after"} 1' in body, body.decode()[-800:])


def test_bad_values():
    for listen, key in (("delay=abc", "delay"), ("rate=0", "rate"), ("slice=0", "slice"),
                        ("corrupt=101", "corrupt"), ("p=0.5", "p="), ("p=2,delay=1", "p"),
                        ("delay=5,delay=6", "delay")):
        r = subprocess.run([ECHOD, "--listen", "127.0.0.1:0," + listen], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 2 and key in r.stderr.splitlines()[0],
              "%s: exit %d, %r" % (listen, r.returncode, r.stderr))


TESTS = [test_delay, test_delay_jitter_keeps_order, test_rate, test_slice, test_slice_no_pause,
         test_reset_after, test_close_after, test_stall_after, test_stall_ends_by_idle_timeout,
         test_accept_delay, test_slow_close, test_corrupt_fails_clients, test_udp_drop,
         test_seed_replays_and_p, test_combination_and_clean_listener, test_trace_says_fault,
         test_drain_sends_delayed_echo, test_metrics, test_bad_values]


def main():
    global ECHOD, CLIENT, BENCH, MODE
    (ECHOD, CLIENT, BENCH), MODE, named = command_line(__doc__, programs=3)
    return run_tests(TESTS, named, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
