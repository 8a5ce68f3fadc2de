#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's PROXY protocol listeners (--listen ADDR,proxy=).

Usage: echod_proxy_e2e.py ECHOD ECHO_CLIENT ECHO_BENCH MODE [TEST...]

MODE is a loop backend or engine-uring (tests/echod_proc.py): the header
stage is the policy's, so it must hold with either engine, and in particular
the bytes that arrive in the same segment as the header must be echoed by
the io_uring engine too. Headers come from raw sockets (written here from
HAProxy's doc/proxy-protocol.txt) and from echo-client and echo-bench
--proxy-protocol. Every bad input of issue 24 must close only its own
connection, be counted on the SIGUSR1 line, and leave another client's echo
intact while it happens. Exit status: 0 pass, 1 fail, 77 skip.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, check, closed_by_peer, connect, client_backend,  # noqa: E402
                        command_line, recv_exact, roundtrip, run_tests, wait_counters)

ECHOD = CLIENT = BENCH = MODE = None
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
STATS = re.compile(r"proxy headers (\d+) accepted, (\d+) local, (\d+) pending; proxy rejected "
                   r"(\d+) \(invalid (\d+), timeout (\d+), source (\d+), closed (\d+)\)")
FIELDS = ("accepted", "local", "pending", "rejected", "invalid", "timeout", "source", "closed")


def echod(*args, **kw):
    """An Echod in this run's mode; `listen` may carry settings, so the
    port-0 address is counted here (echod_proc counts ":0" at the end)."""
    listen = kw.get("listen", "127.0.0.1:0")
    kw.setdefault("lines", 1 if listen and ":0," in listen + "," else 0)
    return Echod(ECHOD, MODE, *args, **kw)


def wait_stats(d, want):
    """Polls the SIGUSR1 line until the PROXY counters named in `want` have
    those values; returns them."""
    return wait_counters(d, STATS, FIELDS, "PROXY", want)


def v2(command, fam_proto, body):
    return V2_SIG + bytes([0x20 | command, fam_proto]) + struct.pack("!H", len(body)) + body


def v2_inet(src, sport, dst="127.0.0.1", dport=10000):
    return v2(1, 0x11, socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport,
                                                                                   dport))


def v2_inet6(src, sport, dst="::1", dport=10000):
    return v2(1, 0x21, socket.inet_pton(socket.AF_INET6, src)
              + socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport))


def v2_unix(src, dst):
    return v2(1, 0x31, src.ljust(108, b"\0") + dst.ljust(108, b"\0"))


V2_LOCAL = v2(0, 0x00, b"")


def proxied_roundtrip(port, header, payload=b"after the header", host="127.0.0.1", split=False):
    """Sends header and payload in one write (or the header a byte at a
    time, then the payload) and checks that exactly the payload comes back."""
    s = connect(port, host)
    try:
        if split:
            for i in range(len(header)):
                s.sendall(header[i:i + 1])
                time.sleep(0.001)  # separate segments: the point of the test
            s.sendall(payload)
        else:
            s.sendall(header + payload)
        check(recv_exact(s, len(payload)) == payload, "echo differs after %r" % header[:20])
        roundtrip(s, b"and more")
    finally:
        s.close()


# --------------------------------------------------------------------------


def test_usage():
    """Bad keys and values are usage errors naming them (exit 2)."""
    cases = [
        (["--listen", "127.0.0.1:0,proxy=v3"], "proxy='v3': expected v1, v2 or any"),
        (["--listen", "127.0.0.1:0,tls=on"], "unknown setting 'tls'"),
        (["--listen", "127.0.0.1:0,proxy"], "'proxy': expected KEY=VALUE"),
        (["--listen", "127.0.0.1:0,proxy=v1,proxy=v2"], "proxy given twice"),
        (["--listen", "127.0.0.1:0,proxy=v1", "--proxy-from", "10.1.0.0/8"], "--proxy-from"),
        (["--listen", "127.0.0.1:0,proxy=v1", "--proxy-timeout", "0"], "--proxy-timeout"),
        (["--listen", "127.0.0.1:0", "--proxy-from", "10.0.0.0/8"], "need a --listen"),
    ]
    for args, words in cases:
        p = subprocess.run([ECHOD] + args, capture_output=True, text=True, timeout=10)
        check(p.returncode == 2, "%s: exit %d, wanted 2" % (args, p.returncode))
        check(words in p.stderr, "%s: %r not in %r" % (args, words, p.stderr))


def test_headers_raw():
    """v1 TCP4/TCP6/UNKNOWN and v2 IPv4/IPv6/UNIX/LOCAL, with the client's
    bytes in the same write as the header: only those are echoed."""
    with echod("--trace", listen="127.0.0.1:0,proxy=any", quiet=False) as d:
        headers = [
            b"PROXY TCP4 192.0.2.1 127.0.0.1 4001 10000\r\n",
            b"PROXY TCP6 2001:db8::1 ::1 4002 10000\r\n",
            b"PROXY UNKNOWN whatever\r\n",
            v2_inet("192.0.2.3", 4003),
            v2_inet6("2001:db8::3", 4004),
            v2_unix(b"/run/client.sock", b"/run/echod.sock"),
            V2_LOCAL,
        ]
        for h in headers:
            proxied_roundtrip(d.port, h)
        d.wait_stderr(r"connection from \('192\.0\.2\.1', 4001\)")
        d.wait_stderr(r"connection from \('2001:db8::1', 4002, 0, 0\)")
        d.wait_stderr(r"connection from \('192\.0\.2\.3', 4003\)")
        d.wait_stderr(r"received b'after the header' from \('2001:db8::3', 4004, 0, 0\)")
        wait_stats(d, {"accepted": 5, "local": 2, "rejected": 0, "pending": 0})


def test_split_header():
    """Headers arriving a byte at a time, then data: echoed, nothing lost."""
    with echod(listen="127.0.0.1:0,proxy=any") as d:
        proxied_roundtrip(d.port, b"PROXY TCP4 192.0.2.1 127.0.0.1 4001 10000\r\n", split=True)
        proxied_roundtrip(d.port, v2_inet6("2001:db8::7", 7), split=True)
        # A v2 header with TLVs (a NOOP of 3 bytes and an AUTHORITY)
        tlvs = b"\x04\x00\x03abc" + b"\x02\x00\x0bexample.com"
        body = socket.inet_aton("192.0.2.8") * 2 + struct.pack("!HH", 8, 10000) + tlvs
        proxied_roundtrip(d.port, v2(1, 0x11, body), split=True)
        # Longer than the first buffer (232 bytes): a 2000-byte NOOP TLV,
        # whole with the data, and in pieces.
        body = socket.inet_aton("192.0.2.9") * 2 + struct.pack("!HH", 9, 10000)
        big = v2(1, 0x11, body + b"\x04" + struct.pack("!H", 2000) + b"n" * 2000)
        proxied_roundtrip(d.port, big)
        s = connect(d.port)
        for i in range(0, len(big), 300):
            s.sendall(big[i:i + 300])
            time.sleep(0.001)
        roundtrip(s, b"after a long header")
        s.close()
        wait_stats(d, {"accepted": 5, "rejected": 0})


def test_any_and_plain():
    """proxy=v1 refuses v2 and the other way round; proxy=any takes both;
    a plain listener next to them echoes a header as data."""
    with echod("--listen", "127.0.0.1:0,proxy=v1", "--listen", "127.0.0.1:0,proxy=v2",
               "--listen", "127.0.0.1:0", listen="127.0.0.1:0,proxy=any", lines=4) as d:
        any_port, v1_port, v2_port, plain_port = (a[1] for a in d.addrs)
        line = b"PROXY TCP4 192.0.2.1 127.0.0.1 4001 10000\r\n"
        bin_hdr = v2_inet("192.0.2.2", 4002)
        proxied_roundtrip(any_port, line)
        proxied_roundtrip(any_port, bin_hdr)
        proxied_roundtrip(v1_port, line)
        proxied_roundtrip(v2_port, bin_hdr)
        for port, hdr in ((v1_port, bin_hdr), (v2_port, line)):
            s = connect(port)
            s.sendall(hdr + b"data")
            check(closed_by_peer(s), "a header of the wrong version was served")
            s.close()
        s = connect(plain_port)
        roundtrip(s, line + b"plain")
        s.close()
        wait_stats(d, {"accepted": 4, "invalid": 2})


def run_tool(argv, timeout=60):
    p = subprocess.run(argv, capture_output=True, timeout=timeout)
    check(p.returncode == 0, "%s exited %d: %s" % (argv, p.returncode, p.stderr[-2000:]))
    return p


def test_clients():
    """echo-client and echo-bench --proxy-protocol v1 and v2 (IPv4, IPv6,
    Unix, LOCAL), and the client each header names in echod's trace."""
    tmp = tempfile.mkdtemp()
    sock = os.path.join(tmp, "proxy.sock")
    be = ["--backend", client_backend(MODE)]
    try:
        with echod("--trace", "--listen", "[::1]:0,proxy=v2", "--listen",
                   "unix:%s,proxy=any" % sock, listen="127.0.0.1:0,proxy=any", lines=2,
                   quiet=False) as d:
            v4 = "127.0.0.1:%d" % d.addrs[0][1]
            v6 = "[::1]:%d" % d.addrs[1][1]
            client = [CLIENT, "--quiet", "--sockets", "1"] + be
            out = run_tool(client + ["--connect", v4, "--proxy-protocol", "v1", "--proxy-source",
                                     "192.0.2.11:1111", "one", "two"]).stdout
            check(out == b"onetwo", "echo-client printed %r" % out)
            run_tool(client + ["--connect", v4, "--proxy-protocol", "v2", "--proxy-source",
                               "[2001:db8::12]:1212", "x"])
            run_tool(client + ["--connect", v6, "--proxy-protocol", "v2", "x"])
            run_tool(client + ["--connect", v6, "--proxy-protocol", "v2", "--proxy-source",
                               "local", "x"])
            run_tool(client + ["--connect", "unix:" + sock, "--proxy-protocol", "v2", "x"])
            run_tool(client + ["--connect", "unix:" + sock, "--proxy-protocol", "v1", "x"])
            d.wait_stderr(r"connection from \('192\.0\.2\.11', 1111\)")
            d.wait_stderr(r"connection from \('2001:db8::12', 1212, 0, 0\)")
            d.wait_stderr(r"PROXY v2 header from \('::1', \d+, 0, 0\): LOCAL")
            d.wait_stderr(r"PROXY v1 header from .*: UNKNOWN")
            bench = [BENCH, "--duration", "0.3", "--warmup", "0", "--json"] + be
            run_tool(bench + ["--connect", v4, "--conns", "3", "--proxy-protocol", "v2",
                              "--proxy-source", "192.0.2.13:1313"])
            run_tool(bench + ["--connect", v4, "--conns", "2", "--churn", "50", "--per-conn", "2",
                              "--proxy-protocol", "v1"])
            run_tool(bench + ["--connect", "unix:" + sock, "--conns", "2", "--proxy-protocol",
                              "v2"])
            d.wait_stderr(r"received b'[^']*' from \('192\.0\.2\.13', 1313\)")
            got = wait_stats(d, {"rejected": 0, "pending": 0})
            check(got["accepted"] >= 10 and got["local"] == 2, "counters %s" % got)
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


def test_max_conns_per_ip():
    """--max-conns-per-ip counts the header's client, not the balancer."""
    with echod("--max-conns-per-ip", "1", listen="127.0.0.1:0,proxy=v2") as d:
        a = connect(d.port)
        a.sendall(v2_inet("192.0.2.1", 1))
        roundtrip(a, b"first")
        b = connect(d.port)  # another client through the same balancer
        b.sendall(v2_inet("192.0.2.2", 2))
        roundtrip(b, b"second")
        c = connect(d.port)  # the first client again
        c.sendall(v2_inet("192.0.2.1", 3) + b"x")
        check(closed_by_peer(c), "a second connection from 192.0.2.1 was served")
        roundtrip(a, b"still")
        line = d.stats()
        check("per-ip 1" in line, "per-ip refusal not counted: %s" % line)
        for s in (a, b, c):
            s.close()


def test_max_conns_pending():
    """A connection waiting for its header holds a --max-conns place."""
    with echod("--max-conns", "1", listen="127.0.0.1:0,proxy=v1") as d:
        waiting = connect(d.port)
        waiting.sendall(b"PROXY TCP4 ")
        wait_stats(d, {"pending": 1})
        other = connect(d.port)
        check(closed_by_peer(other), "a second connection was taken over --max-conns 1")
        waiting.sendall(b"192.0.2.1 127.0.0.1 1 2\r\n")
        roundtrip(waiting, b"served")
        for s in (waiting, other):
            s.close()


# Each bad input: the bytes sent, the counter it must land in.
BAD = [
    ("v1 without CRLF in 107 bytes", b"PROXY UNKNOWN " + b"x" * 100, "invalid"),
    ("v1 not a header", b"hello, echo me\r\n", "invalid"),
    ("v2 longer than allowed", V2_SIG + b"\x21\x11\xff\xff", "invalid"),
    ("v2 family/protocol mismatch", V2_SIG + b"\x21\x10\x00\x0c" + b"\0" * 12, "invalid"),
    ("v2 protocol mismatch", V2_SIG + b"\x21\x01\x00\x0c" + b"\0" * 12, "invalid"),
    ("v2 unknown version", V2_SIG + b"\x31\x11\x00\x0c" + b"\0" * 12, "invalid"),
    ("v2 unknown command", V2_SIG + b"\x22\x11\x00\x0c" + b"\0" * 12, "invalid"),
    ("v2 length beyond the data", V2_SIG + b"\x21\x11\x00\x40" + b"\0" * 12, "timeout"),
    ("closed before the end", b"PROXY TCP4 192.0.2.1", "closed"),
]


def test_bad_input():
    """Each bad header closes only its connection and is counted, while
    another client's echo goes on."""
    with echod("--proxy-timeout", "1", "--listen", "127.0.0.1:0", lines=2,
               listen="127.0.0.1:0,proxy=any") as d:
        port, plain_port = d.addrs[0][1], d.addrs[1][1]
        good = connect(port)
        good.sendall(v2_inet("192.0.2.50", 50))
        roundtrip(good, b"before")
        plain = connect(plain_port)
        want = dict.fromkeys(("invalid", "timeout", "closed"), 0)
        for name, data, counter in BAD:
            s = connect(port)
            s.sendall(data)
            if counter == "closed":
                s.close()
            else:
                check(closed_by_peer(s, timeout=5), "%s: not closed" % name)
                s.close()
            roundtrip(good, b"during " + name.encode())
            roundtrip(plain, b"plain " + name.encode())
            want[counter] += 1
            wait_stats(d, want)
        good.close()
        plain.close()


def test_slowloris():
    """A header that never completes, one byte now and then, is closed at
    --proxy-timeout, and others are served meanwhile."""
    with echod("--proxy-timeout", "1", listen="127.0.0.1:0,proxy=any") as d:
        slow = connect(d.port)
        good = connect(d.port)
        good.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n")
        start = time.monotonic()
        closed = False
        for ch in b"PROXY TCP4 192.0.2.1 127.0.0.1 12345 ":
            try:
                slow.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            roundtrip(good, b"meanwhile")
            if closed_by_peer(slow, timeout=0.1):
                closed = True
                break
        elapsed = time.monotonic() - start
        check(closed, "the slow header was never closed")
        check(elapsed >= 0.9, "closed after %.2fs, before --proxy-timeout 1" % elapsed)
        roundtrip(good, b"after")
        wait_stats(d, {"timeout": 1, "accepted": 1})
        slow.close()
        good.close()


def test_proxy_from():
    """A peer not in --proxy-from (loopback is refused with 10.0.0.0/8) is
    closed at once, before a byte is read; Unix-domain peers are allowed."""
    tmp = tempfile.mkdtemp()
    sock = os.path.join(tmp, "p.sock")
    try:
        with echod("--proxy-from", "10.0.0.0/8", "--listen", "unix:%s,proxy=v1" % sock,
                   "--listen", "127.0.0.1:0", lines=2, listen="127.0.0.1:0,proxy=any") as d:
            plain = connect(d.addrs[1][1])
            for i in range(20):
                s = connect(d.port)
                check(closed_by_peer(s, timeout=5), "a peer outside --proxy-from was served")
                s.close()
                roundtrip(plain, b"plain %d" % i)
            # Logged, but not a line per connection (at most one a second).
            said = d.stderr().count("not allowed by --proxy-from")
            check(1 <= said < 20, "%d log lines for 20 refusals" % said)
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.settimeout(10)
            u.connect(sock)
            u.sendall(b"PROXY UNKNOWN\r\nunix")
            check(recv_exact(u, 4) == b"unix", "unix echo differs")
            u.close()
            wait_stats(d, {"source": 20, "local": 1})
            plain.close()
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


def test_no_proxy_counters_without_proxy():
    """The SIGUSR1 line names PROXY counters only with a proxy= listener."""
    with echod() as d:
        check("proxy" not in d.stats(), "PROXY counters without a proxy= listener")


TESTS = [test_usage, test_headers_raw, test_split_header, test_any_and_plain, test_clients,
         test_max_conns_per_ip, test_max_conns_pending, test_bad_input, test_slowloris,
         test_proxy_from, test_no_proxy_counters_without_proxy]


def main():
    global ECHOD, CLIENT, BENCH, MODE
    (ECHOD, CLIENT, BENCH), MODE, named = command_line(__doc__, programs=3)
    return run_tests(TESTS, named, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
