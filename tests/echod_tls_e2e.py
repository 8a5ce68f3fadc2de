#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's TLS listeners (--listen ADDR,tls-cert=FILE...).

Usage: echod_tls_e2e.py ECHOD ECHO_CLIENT ECHO_BENCH HAVE_TLS MODE [TEST...]

MODE is a loop backend or an io_uring engine mode (tests/echod_proc.py). With
the io_uring engine, TLS connections are served by the readiness engine
beside it on the same loop (the side engine): every test runs in every mode.
Certificates (a CA, a stranger CA, server and client certificates) are made
at run time with the openssl tool (tests/tls_e2e.py's make_certs()), never
committed. Clients: echo-client and echo-bench --tls, Python's ssl module
(wrapped sockets in the seed's multi-socket style, and a memory-BIO client
for byte-level control: half-close, truncated records, garbage after the
ClientHello), `openssl s_client` and `socat OPENSSL:` (skipped with a
message if socat is absent). Every bad input must close only its own
connection and be counted on the SIGUSR1 line. Exit: 0 pass, 1 fail,
77 skip (no TLS in this build, no openssl tool, mode not available).
"""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, Skip, check, closed_by_peer, connect, counters,  # noqa: E402
                        raise_nofile, recv_exact, roundtrip, run_tests, wait_counters)
import tls_e2e  # noqa: E402  (make_certs, pattern)

ECHOD = CLIENT = BENCH = MODE = None
CERTS = None
TLS_STATS = re.compile(r"tls handshakes (\d+) ok, (\d+) failed, (\d+) timed out, (\d+) in "
                       r"progress; tls ended (\d+) truncated, (\d+) record errors")
# A trace line; with workers it says which one wrote it.
TRACED = r"^(\[worker \d+\] )?"
FIELDS = ("ok", "failed", "timed_out", "pending", "truncated", "record_errors")


def tls_listen(*keys):
    return ",".join(["127.0.0.1:0", "tls-cert=" + CERTS("server.pem"),
                     "tls-key=" + CERTS("server.key")] + list(keys))


def echod(*args, listen=None, **kw):
    listen = listen or tls_listen()
    kw.setdefault("lines", 1)
    return Echod(ECHOD, MODE, *args, listen=listen, **kw)


def tls_stats(d):
    return counters(d, TLS_STATS, FIELDS, "TLS")


def wait_stats(d, want, timeout=10):
    return wait_counters(d, TLS_STATS, FIELDS, "TLS", want, timeout)


def run(argv, stdin_data=None, timeout=60):
    p = subprocess.run([str(a) for a in argv], input=stdin_data, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def client(port, *args, stdin_data=None, timeout=60):
    return run([CLIENT, "--connect", "localhost:%d" % port, "--tls", "--tls-ca", CERTS("ca.pem")]
               + list(args), stdin_data, timeout)


def context(cert=None):
    ctx = ssl.create_default_context(cafile=CERTS("ca.pem"))
    if cert:
        ctx.load_cert_chain(CERTS(cert + ".pem"), CERTS(cert + ".key"))
    return ctx


def tls_connect(port, cert=None, version=None):
    ctx = context(cert)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx.wrap_socket(connect(port), server_hostname="localhost")


class BioClient:
    """A TLS client on memory BIOs over a raw socket: the test decides
    which bytes go on the wire, and when."""

    def __init__(self, port, version=None):
        ctx = context()
        if version:
            ctx.minimum_version = ctx.maximum_version = version
        self.sock = connect(port)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def feed(self):
        data = self.sock.recv(65536)
        if data:
            self.inc.write(data)
        else:
            self.inc.write_eof()
        return data

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                self.feed()

    def read_all(self, want=None):
        """Decrypted bytes until close_notify (or `want` bytes); returns
        (bytes, whether close_notify came)."""
        got = bytearray()
        while want is None or len(got) < want:
            try:
                chunk = self.obj.read(65536)
                if not chunk:  # close_notify, when ours was not sent yet
                    return bytes(got), True
                got += chunk
            except ssl.SSLWantReadError:
                if not self.feed():
                    return bytes(got), False
            except ssl.SSLZeroReturnError:
                return bytes(got), True
        return bytes(got), False


# ------------------------------------------------------------------ tests


def test_echo_sizes():
    """1 B to 16 MiB byte-exact through TLS 1.2 and 1.3 (echo-client), and
    echo-bench verifying every byte, small and large, plus --churn."""
    with echod() as d:
        for version in ("1.2", "1.3"):
            for n in (1, 1000, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024):
                data = tls_e2e.pattern(n, n % 251)
                rc, out, err = client(d.port, "--tls-version", version, "--quiet", "-",
                                      stdin_data=data + b"\n", timeout=120)
                check(rc == 0 and out == data, "TLS %s %d bytes: exit %s, %d bytes back: %s"
                      % (version, n, rc, len(out), err[-300:]))
            for size in ("64", "16K"):
                rc, out, err = run([BENCH, "--connect", "localhost:%d" % d.port, "--tls",
                                    "--tls-ca", CERTS("ca.pem"), "--tls-version", version,
                                    "--size", size, "--conns", "4", "--duration", "0.5",
                                    "--warmup", "0.1"])
                text = out.decode() + err
                check(rc == 0 and "errors 0" in text, "echo-bench TLS %s %s: %s"
                      % (version, size, text))
        rc, out, err = run([BENCH, "--connect", "localhost:%d" % d.port, "--tls", "--tls-ca",
                            CERTS("ca.pem"), "--churn", "20", "--per-conn", "2", "--duration",
                            "1", "--warmup", "0"])
        text = out.decode() + err
        check(rc == 0 and "errors 0" in text, "echo-bench --churn --tls: " + text)
        s = tls_stats(d)
        check(s["failed"] == 0 and s["timed_out"] == 0, "no failed handshake: %s" % s)


def test_bench_resume():
    """echo-bench --churn --tls-resume offers each thread's last session: the
    handshakes resume (TLS 1.3 tickets, TLS 1.2 sessions); none do without
    the option, and the option needs --tls and --churn."""
    with echod() as d:
        for version in ("1.3", "1.2"):
            for resume in (False, True):
                argv = [BENCH, "--connect", "localhost:%d" % d.port, "--tls", "--tls-ca",
                        CERTS("ca.pem"), "--tls-version", version, "--churn", "50",
                        "--duration", "0.5", "--warmup", "0", "--json"]
                rc, out, err = run(argv + (["--tls-resume"] if resume else []))
                check(rc == 0, "echo-bench TLS %s resume %s: %s" % (version, resume, err))
                r = json.loads(out.decode().strip().splitlines()[-1])
                tls = r["tls"]
                check(tls["handshakes"] >= 10 and r["errors"] == 0, "handshakes: %s" % r)
                if resume:
                    check(0 < tls["resumed"] < tls["handshakes"],
                          "TLS %s: some resumed, not the first: %s" % (version, tls))
                else:
                    check(tls["resumed"] == 0, "TLS %s: none resumed: %s" % (version, tls))
    for extra in ([], ["--tls"]):
        rc, _, err = run([BENCH, "--connect", "localhost:1", "--tls-resume"] + extra)
        check(rc == 2 and "--tls-resume needs --tls and --churn" in err,
              "--tls-resume alone: exit %s: %s" % (rc, err))


def test_plain_and_tls():
    """A plain and a TLS listener served by one echod at once."""
    with echod("--listen", "127.0.0.1:0", lines=2) as d:
        plain_port = d.addrs[1][1]
        t = tls_connect(d.port)
        p = connect(plain_port)
        for i in range(3):
            roundtrip(t, b"tls %d" % i)
            roundtrip(p, b"plain %d" % i)
        t.close()
        p.close()
        check(d.alive(), "echod still runs")


def test_python_multi_socket():
    """The seed's client style: several sockets, the message sent in parts
    on each, every echo read back; sockets wrapped by Python's ssl."""
    message = [b"This is the message. ", b"It will be sent ", b"in parts."]
    with echod() as d:
        socks = [tls_connect(d.port) for _ in range(5)]
        for part in message:
            for s in socks:
                s.sendall(part)
            for s in socks:
                check(recv_exact(s, len(part)) == part, "echo of %r" % part)
        for s in socks:
            s.close()
        wait_stats(d, {"ok": 5, "failed": 0})


def test_half_close():
    """close_notify and FIN right after 256 KiB: everything is echoed, then
    echod's close_notify, then its FIN."""
    data = tls_e2e.pattern(256 * 1024, 7)
    with echod() as d:
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            c = BioClient(d.port, version)
            c.handshake()
            c.obj.write(data)
            try:
                c.obj.unwrap()
            except ssl.SSLWantReadError:
                pass
            c.flush()
            c.sock.shutdown(socket.SHUT_WR)
            got, notified = c.read_all()
            check(got == data, "%s: all %d bytes echoed after our close_notify (%d)"
                  % (version, len(data), len(got)))
            check(notified, "%s: echod sent close_notify" % version)
            check(c.sock.recv(1) == b"", "%s: then its FIN" % version)
            c.sock.close()
        s = wait_stats(d, {"ok": 2})
        check(s["truncated"] == 0 and s["record_errors"] == 0, "clean ends: %s" % s)


def test_proxy_then_tls():
    """proxy= and tls-cert= together: the PROXY header, then the handshake;
    the header's client is the one --trace names."""
    with echod("--trace", listen=tls_listen("proxy=v1"), quiet=False) as d:
        s = connect(d.port)
        s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 4242 7\r\n")
        t = context().wrap_socket(s, server_hostname="localhost")
        roundtrip(t, b"behind a balancer")
        d.wait_stderr(TRACED + r"  TLS handshake with \('192\.0\.2\.7', 4242\): TLSv1\.3")
        t.close()


def test_drain_and_idle():
    """SIGTERM: an open TLS connection gets its echo, then close_notify and
    the FIN; --idle-timeout cuts an idle TLS connection."""
    with echod("--idle-timeout", "0.5") as d:
        t = tls_connect(d.port)
        roundtrip(t, b"x")
        check(t.recv(1) == b"", "--idle-timeout: the idle TLS connection is closed")
        t.close()
    with echod() as d:
        c = BioClient(d.port)
        c.handshake()
        c.obj.write(b"draining")
        c.flush()
        got, _ = c.read_all(want=8)
        check(got == b"draining", "echoed before SIGTERM")
        d.signal(15)
        got, notified = c.read_all()
        check(got == b"" and notified, "SIGTERM: close_notify (%r, %s)" % (got, notified))
        try:
            c.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        c.flush()
        c.sock.shutdown(socket.SHUT_WR)
        check(c.sock.recv(1) == b"", "then the FIN")
        c.sock.close()
        check(d.wait(timeout=10) == 0, "echod exits 0 once the client has gone")


def test_mutual_tls():
    """tls-ca=: a client certificate from that CA is required."""
    with echod(listen=tls_listen("tls-ca=" + CERTS("ca.pem"))) as d:
        for version in ("1.2", "1.3"):
            rc, out, _ = client(d.port, "--sockets", "1", "--tls-version", version, "--tls-cert",
                                CERTS("client.pem"), "--tls-key", CERTS("client.key"), "--quiet",
                                "hello")
            check(rc == 0 and out == b"hello", "TLS %s with the client certificate" % version)
            rc, out, _ = client(d.port, "--sockets", "1", "--tls-version", version, "--quiet",
                                "hello")
            check(rc == 1, "TLS %s without a client certificate: refused" % version)
            rc, out, _ = client(d.port, "--sockets", "1", "--tls-version", version, "--tls-cert",
                                CERTS("stranger.pem"), "--tls-key", CERTS("stranger.key"),
                                "--quiet", "hello")
            check(rc == 1, "TLS %s with a stranger's certificate: refused" % version)
        wait_stats(d, {"ok": 2, "failed": 4})


def test_openssl_s_client():
    """openssl s_client as a client: its line comes back."""
    with echod() as d:
        p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
                              "-CAfile", CERTS("ca.pem"), "-quiet", "-no_ign_eof"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        try:
            p.stdin.write(b"from s_client\n")
            p.stdin.flush()
            line = p.stdout.readline()  # bounded by the ctest timeout, and by s_client's end
            check(line == b"from s_client\n", "s_client got its line back: %r" % line)
            p.stdin.close()
            p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_socat_client():
    """socat OPENSSL: as a client, its input echoed, then its end."""
    if shutil.which("socat") is None:
        raise Skip("socat is not installed: the socat OPENSSL: client is not tested")
    data = tls_e2e.pattern(100000, 3)
    with echod() as d:
        rc, out, err = run(["socat", "-t", "10", "-",
                            "OPENSSL:127.0.0.1:%d,cafile=%s" % (d.port, CERTS("ca.pem"))],
                           stdin_data=data)
        check(rc == 0 and out == data, "socat: exit %s, %d bytes back: %s" % (rc, len(out), err))


def peer_cn(port):
    with tls_connect(port) as t:
        return dict(x[0] for x in t.getpeercert()["subject"])["commonName"]


def test_sighup_reload():
    """SIGHUP reads the certificate again: new handshakes get the new one,
    a connection made before keeps working; a bad file keeps the old one,
    said in one line."""
    cert, key = CERTS("live.pem"), CERTS("live.key")
    shutil.copy(CERTS("server.pem"), cert)
    shutil.copy(CERTS("server.key"), key)
    with echod(quiet=False, listen="127.0.0.1:0,tls-cert=%s,tls-key=%s" % (cert, key)) as d:
        check(peer_cn(d.port) == "iomux test server", "the first certificate")
        old = tls_connect(d.port)
        roundtrip(old, b"before")
        shutil.copy(CERTS("server2.pem"), cert)
        shutil.copy(CERTS("server2.key"), key)
        d.signal(1)  # SIGHUP
        d.wait_stderr(r"SIGHUP: --listen .*: certificate .* read again")
        # Said once every worker has read the files: whichever takes each
        # of these connections (with --workers) serves the new pair.
        names = [peer_cn(d.port) for _ in range(6)]
        check(names == ["iomux test server2"] * 6, "the new certificate after SIGHUP: %s" % names)
        roundtrip(old, b"after the reload")
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        at = len(d.stderr())
        d.signal(1)
        d.wait_stderr(r"keeping the certificate in use", after=at)
        check(peer_cn(d.port) == "iomux test server2", "a failed reload keeps the certificate")
        lines = [x for x in d.stderr()[at:].splitlines() if "SIGHUP" in x]
        check(len(lines) == 1, "one line for a failed reload: %r" % lines)
        roundtrip(old, b"still")
        old.close()
    with Echod(ECHOD, MODE, quiet=False) as d:
        d.signal(1)
        d.wait_stderr(r"SIGHUP: nothing to reload")


def test_bad_input():
    """Each closes only its connection and is counted, while another
    client is served: plain TCP on the TLS port, garbage after the
    ClientHello, renegotiation (TLS 1.2), a truncated record, an abrupt
    close without close_notify."""
    with echod() as d:
        good = tls_connect(d.port)
        roundtrip(good, b"first")
        s = connect(d.port)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        check(closed_by_peer(s), "plain TCP on the TLS port: closed")
        s.close()
        wait_stats(d, {"failed": 1})
        c = BioClient(d.port)
        try:
            c.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        c.sock.sendall(c.out.read() + os.urandom(300))
        check(closed_by_peer(c.sock), "garbage after the ClientHello: closed")
        c.sock.close()
        wait_stats(d, {"failed": 2})
        renegotiate(d.port)
        wait_stats(d, {"record_errors": 1})
        c = BioClient(d.port)
        c.handshake()
        c.obj.write(b"x" * 1000)
        record = c.out.read()
        c.sock.sendall(record[:len(record) // 2])
        c.sock.shutdown(socket.SHUT_WR)
        check(closed_by_peer(c.sock), "a truncated record: closed")
        c.sock.close()
        wait_stats(d, {"truncated": 1})
        a = tls_connect(d.port)
        roundtrip(a, b"abrupt")
        a.close()  # Python's close() sends no close_notify (unwrap() would)
        wait_stats(d, {"truncated": 2})
        roundtrip(good, b"still served")
        good.close()
        s = wait_stats(d, {"ok": 4, "truncated": 3})
        check(s["failed"] == 2 and s["record_errors"] == 1, "counted: %s" % s)


def renegotiate(port):
    """openssl s_client's R command (TLS 1.2): echod refuses and closes."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2",
                          "-CAfile", CERTS("ca.pem")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        while True:  # bounded: s_client ends when echod closes
            line = p.stdout.readline()
            check(line, "s_client ended before its echo")
            if line == b"hello\n":
                break
        p.stdin.write(b"R\n")
        p.stdin.flush()
        rest = p.stdout.read()
        check(b"RENEGOTIATING" in rest, "s_client tried: %r" % rest[-300:])
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_stalled_handshakes():
    """1,000 handshakes stalled after one byte do not stop another client;
    they are 'in progress', and closed as they go."""
    raise_nofile(4096)
    with echod(nofile=4096) as d:
        stalled = []
        try:
            for _ in range(1000):
                s = connect(d.port)
                s.sendall(b"\x16")
                stalled.append(s)
            rc, out, err = client(d.port, "--sockets", "1", "--quiet", "served")
            check(rc == 0 and out == b"served", "another client is served: " + err)
            wait_stats(d, {"pending": 1000, "ok": 1})
        finally:
            for s in stalled:
                s.close()
        wait_stats(d, {"pending": 0, "failed": 1000})


def test_deadline_and_max_conns():
    """--tls-timeout closes a stalled handshake (counted as timed out);
    handshakes count toward --max-conns."""
    with echod("--tls-timeout", "0.5", "--max-conns", "2") as d:
        a, b = connect(d.port), connect(d.port)
        wait_stats(d, {"pending": 2})
        c = connect(d.port)
        check(closed_by_peer(c, timeout=5), "the third connection: refused (--max-conns)")
        check(closed_by_peer(a) and closed_by_peer(b), "stalled handshakes closed at the deadline")
        wait_stats(d, {"timed_out": 2, "pending": 0})
        check("max-conns 1" in d.stats(), "refused for --max-conns, counted")
        for s in (a, b, c):
            s.close()


def test_trace():
    """--trace: one line per handshake (version, cipher, ALPN, client
    subject with mutual TLS), the decrypted bytes in the seed's words."""
    listen = tls_listen("tls-ca=" + CERTS("ca.pem"), "alpn=echo:other")
    with echod("--trace", listen=listen, quiet=False) as d:
        rc, out, _ = client(d.port, "--tls-cert", CERTS("client.pem"), "--tls-key",
                            CERTS("client.key"), "--alpn", "x,echo", "--sockets", "1", "--quiet",
                            "traced")
        check(rc == 0 and out == b"traced", "echoed")
        d.wait_stderr(TRACED + r"  TLS handshake with \('127\.0\.0\.1', \d+\): TLSv1\.3, \S+, ALPN echo, "
                      r"client .*CN ?= ?iomux test client")
        d.wait_stderr(TRACED + r"  received b'traced' from \('127\.0\.0\.1', \d+\)")
        d.wait_stderr(TRACED + r"  sending b'traced' to \('127\.0\.0\.1', \d+\)")
        rc, _, _ = client(d.port, "--tls-cert", CERTS("client.pem"), "--tls-key",
                          CERTS("client.key"), "--alpn", "nope", "--quiet", "x")
        check(rc == 1, "no common ALPN protocol: refused")


def test_usage():
    """Bad settings are usage errors (exit 2); unreadable or mismatched
    files a one-line runtime error (exit 1), before serving."""
    for listen, status, needle in (
            ("127.0.0.1:0,tls-key=" + CERTS("server.key"), 2, "need tls-cert"),
            ("127.0.0.1:0,tls-cert=" + CERTS("server.pem") + ",alpn=a::b", 2, "ALPN list"),
            ("127.0.0.1:0,tls-cert=" + CERTS("server.pem") + ",tls-version=1.1", 2, "1.2"),
            ("127.0.0.1:0,tls-cert=" + CERTS("missing.pem"), 1, "No such file"),
            ("127.0.0.1:0,tls-cert=%s,tls-key=%s" % (CERTS("server.pem"), CERTS("client.key")),
             1, "does not match")):
        rc, _, err = run([ECHOD, "--listen", listen], timeout=10)
        first = err.splitlines()[0] if err else ""
        check(rc == status and needle in first,
              "--listen %s: exit %s (want %s), %r" % (listen, rc, status, err))
    with Echod(ECHOD, "auto", listen=tls_listen(), lines=1, quiet=False) as d:
        t = tls_connect(d.port)
        try:
            roundtrip(t, b"auto: served")
        finally:
            t.close()


def test_clean_exit():
    """SIGTERM with a TLS connection open, a handshake half done and one
    failed before: echod exits 0 with everything released (`make valgrind`
    runs this test with echod under valgrind, whose --error-exitcode
    turns a leak or a bad read into exit 1)."""
    with echod("--grace", "1") as d:
        t = tls_connect(d.port)
        roundtrip(t, b"before the end")
        bad = connect(d.port)
        bad.sendall(b"GET / HTTP/1.0\r\n\r\n")
        check(closed_by_peer(bad, timeout=30), "a plain-TCP client on the TLS port is closed")
        bad.close()
        stalled = connect(d.port)
        stalled.sendall(b"\x16")
        wait_stats(d, {"pending": 1, "failed": 1}, timeout=30)
        status = d.stop(timeout=120)
        check(status == 0, "echod exit status %s (want 0); stderr: %s" % (status, d.stderr()[-2000:]))
        t.close()
        stalled.close()


def test_idle_memory():
    """Reports the resident memory of 1,000 idle TLS connections (no
    assertion on the figure: it goes into docs/echod.md)."""
    raise_nofile(4096)
    with echod(nofile=4096) as d:
        before = d.rss_kib()
        socks = []
        try:
            for _ in range(1000):
                t = tls_connect(d.port)
                roundtrip(t, b"x")
                socks.append(t)
            wait_stats(d, {"ok": 1000})
            after = d.rss_kib()
            print("idle TLS connections: 1000, RSS %d KiB -> %d KiB, %.1f KiB each"
                  % (before, after, (after - before) / 1000.0), flush=True)
        finally:
            for t in socks:
                t.close()


TESTS = [test_echo_sizes, test_bench_resume, test_plain_and_tls, test_python_multi_socket, test_half_close,
         test_proxy_then_tls, test_drain_and_idle, test_mutual_tls, test_openssl_s_client, test_socat_client, test_sighup_reload,
         test_bad_input, test_stalled_handshakes, test_deadline_and_max_conns, test_trace,
         test_usage, test_clean_exit, test_idle_memory]


def main():
    global ECHOD, CLIENT, BENCH, MODE, CERTS
    ECHOD, CLIENT, BENCH, have_tls, MODE = sys.argv[1:6]
    if have_tls.upper() not in ("ON", "1", "TRUE", "YES"):
        print("skip all: this build has no TLS (OpenSSL 3 not found)")
        return 77
    if shutil.which("openssl") is None:
        print("skip all: the openssl command-line tool is not installed")
        return 77
    with tempfile.TemporaryDirectory(prefix="iomux-echod-tls-") as tmp:
        CERTS = tls_e2e.make_certs(tmp)
        make_second_server_cert(tmp)
        return run_tests(TESTS, sys.argv[6:], echod=ECHOD, mode=MODE)


def make_second_server_cert(tmp):
    """server2: another certificate for localhost from the same CA (SIGHUP)."""
    p = CERTS
    tls_e2e.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", p("server2.key"), "-out", p("server2.csr"), "-subj",
                    "/CN=iomux test server2")
    tls_e2e.openssl("x509", "-req", "-in", p("server2.csr"), "-CA", p("ca.pem"), "-CAkey",
                    p("ca.key"), "-CAcreateserial", "-out", p("server2.pem"), "-days", "2",
                    "-extfile", p("san.ext"))


if __name__ == "__main__":
    sys.exit(main())
