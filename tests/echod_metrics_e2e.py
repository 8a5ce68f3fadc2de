#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's Prometheus exporter (--metrics).

Usage: echod_metrics_e2e.py ECHOD MODE [TEST...]

MODE is a loop backend (epoll, poll, select, uring) or engine-uring (see
tests/echod_proc.py). Real echod processes on 127.0.0.1 port 0: the echo
port is the first address echod prints, the exporter's the second. Scraped
with curl and with raw sockets (for the exact bytes of an answer), checked
with `promtool check metrics`; a test whose tool is missing is skipped.

test_prometheus (only when named: ctest runs it once, not per mode) starts
a real Prometheus server on a free loopback port, with its storage in a
temporary directory, and waits a bounded time for it to scrape echod; if
the server does not become ready in time, that test is skipped, saying so.
Exit status: 0 pass, 1 fail, 77 skip.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (DEFAULT_TIMEOUT, ENGINES, Echod, Skip, check, check_usage_error,  # noqa: E402
                        closed_by_peer, command_line, connect, mode_args, recv_exact,
                        roundtrip, run_tests, stat_field, workers_of)

ECHOD = MODE = None
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEADLINE = 3.0  # METRICS_DEADLINE_MS in apps/echod/metrics.c
MAX_CONNS = 64  # METRICS_MAX_CONNS


def echod(*args, **kw):
    """An Echod in this run's mode with the exporter on a port of its own."""
    kw.setdefault("lines", 2)
    return Echod(ECHOD, MODE, "--metrics", "127.0.0.1:0", *args, **kw)


def http(d, request, port=None):
    """Sends raw request bytes to the exporter (the second port echod
    printed, or `port`); returns (status, headers dict with lower-case
    names, body) of the answer, read to the server's end of stream."""
    s = connect(port or d.addrs[1][1])
    try:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    check(sep, "no end of head in %r" % data[:200])
    lines = head.decode().split("\r\n")
    m = re.fullmatch(r"HTTP/1\.1 (\d{3}) [A-Za-z ]+", lines[0])
    check(m, "status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return int(m.group(1)), headers, body


def get(path="/metrics", method="GET"):
    return ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n"
            % (method, path)).encode()


def samples(text):
    """{'name{labels}': value} of an exposition (labels as written)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def scrape(d, port=None):
    status, headers, body = http(d, get(), port)
    check(status == 200, "status %d" % status)
    return samples(body.decode())


def wait_sample(d, key, want, timeout=DEFAULT_TIMEOUT, port=None):
    """Scrapes (the exporter, or `port`) until sample `key` equals `want`;
    returns the samples. A scrape closed unanswered (over the limit of
    connections, until idle ones are seen to go) is tried again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = scrape(d, port)
        except (AssertionError, ConnectionResetError) as e:
            s = {"error": str(e)}
        if s.get(key) == want:
            return s
        if time.monotonic() > deadline:
            check(False, "%s is %s, not %s: %s" % (key, s.get(key), want, s))
        time.sleep(0.01)


def curl(url, *args):
    if not shutil.which("curl"):
        raise Skip("curl is not installed")
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args) + [url],
                          capture_output=True, timeout=30)


def test_curl_and_promtool():
    """curl gets 200, the content type of format 0.0.4, a Content-Length
    that is the body's, Connection: close; promtool finds nothing wrong."""
    with echod() as d:
        url = "http://127.0.0.1:%d/metrics" % d.addrs[1][1]
        r = curl(url, "-i")
        check(r.returncode == 0, "curl: %s" % r.stderr.decode())
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        head = head.decode()
        check(head.startswith("HTTP/1.1 200 OK\r\n"), head)
        check("\r\nContent-Type: %s\r\n" % CONTENT_TYPE in head, head)
        check("\r\nContent-Length: %d\r\n" % len(body) in head, head)
        check("\r\nConnection: close" in head, head)
        text = body.decode()
        for family in ("echod_connections_open", "echod_connections_total",
                       "echod_received_bytes_total", "echod_sent_bytes_total",
                       "echod_connections_refused_total", "echod_connection_resets_total",
                       "echod_connection_errors_total", "echod_idle_closed_total",
                       "echod_agent_state", "echod_uptime_seconds", "echod_start_time_seconds",
                       "echod_info", "echod_side_connections_total"):
            check("\n# TYPE %s " % family in "\n" + text, "no family %s" % family)
        for reason in ("max_conns", "per_ip", "fds", "watch"):
            check('echod_connections_refused_total{reason="%s"} 0' % reason in text, reason)
        engine = ENGINES[MODE][0] if MODE in ENGINES else "loop"
        check(re.search(r'^echod_info\{version="[^"]+",engine="%s",backend="[a-z]+"\} 1$'
                        % engine, text, re.M), "info: %s" % text[:400])
        if not shutil.which("promtool"):
            raise Skip("promtool is not installed (Debian: prometheus)")
        p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
        check(p.returncode == 0, "promtool: %s %s" % (p.stdout.decode(), p.stderr.decode()))


def test_counters():
    """Known traffic moves the counters by exactly its bytes and
    connections; a refused client and an idle one are counted by reason."""
    n = 100000
    data = bytes(i * 7 & 0xFF for i in range(n))
    with echod("--max-conns", "2", "--idle-timeout", "0.2") as d:
        before = scrape(d)
        check(before["echod_connections_total"] == 0, "total %s" % before)
        c = connect(d.port)
        roundtrip(c, data)
        s = wait_sample(d, "echod_connections_open", 1)
        check(s["echod_received_bytes_total"] == n and s["echod_sent_bytes_total"] == n,
              "bytes %s" % s)
        check(s['echod_agent_state{state="up"}'] == 1, "agent state %s" % s)
        c2 = connect(d.port)
        roundtrip(c2, b"x")
        s = wait_sample(d, 'echod_agent_state{state="maint"}', 1)
        c3 = connect(d.port)  # the third: refused (--max-conns 2)
        check(closed_by_peer(c3), "third client not refused")
        c3.close()
        s = wait_sample(d, 'echod_connections_refused_total{reason="max_conns"}', 1)
        c.close()
        c2.close()
        s = wait_sample(d, "echod_connections_open", 0)
        check(s["echod_connections_total"] == 2 and s["echod_received_bytes_total"] == n + 1 and
              s["echod_sent_bytes_total"] == n + 1, "after %s" % s)
        idle = connect(d.port)
        check(closed_by_peer(idle), "idle client not closed")
        idle.close()
        s = wait_sample(d, "echod_idle_closed_total", 1)
        check(s["echod_connections_total"] == 3, "idle: %s" % s)
        check(s["echod_uptime_seconds"] >= 0.2, "uptime %s" % s["echod_uptime_seconds"])
        check(s["echod_max_buffered_bytes"] > 0 and s["echod_shed_memory_total"] == 0 and
              0 <= s["echod_buffered_bytes"] <= s["echod_max_buffered_bytes"], "budget %s" % s)
        check(abs(s["echod_start_time_seconds"] - time.time()) < 60, "start time")


# test_splice_and_fault_totals: what a plain client echoes (once); a client
# of the fault listener sends 2 bytes, so while there are fewer than 2,048
# of them a worker's bytes in tell its two kinds of clients apart.
PLAIN_BYTES = 4096


def stats_with_workers(d, nworkers):
    """SIGUSR1: (the totals line, [(connections total, bytes in) of each
    worker]); the list is empty without --workers."""
    before = len(d.stderr())
    d.signal(signal.SIGUSR1)
    line = d.wait_stderr(r"^echod: stats: [^\n]*\n", after=before).group(0).rstrip("\n")
    each = []
    for i in range(1, nworkers + 1 if nworkers > 1 else 1):
        m = d.wait_stderr(r"^echod: stats: worker %d: connections \d+ open, (\d+) total; "
                          r"bytes (\d+) in" % i, after=before)
        each.append((int(m.group(1)), int(m.group(2))))
    return line, each


def test_splice_and_fault_totals():
    """With --workers, the spliced bytes and the faults fired are the sum
    over every worker, on --metrics and on the SIGUSR1 totals line: clients
    of a spliced listener (--splice on, readiness engine only) and of a
    close-after=1 listener are spread until every worker has served some
    of both (the per-worker SIGUSR1 lines say so), then the totals must be
    what the clients did."""
    nworkers = workers_of(MODE)[1]
    splice = MODE not in ENGINES  # the io_uring engine never splices
    args = ["--listen", "127.0.0.1:0,close-after=1", "--fault-seed", "7"]
    with echod(*args + (["--splice", "on"] if splice else []), lines=3) as d:
        fault_port = d.addrs[1][1]
        data = bytes(i * 13 & 0xFF for i in range(PLAIN_BYTES))
        plain = faulty = 0
        for _ in range(40):
            for _ in range(8):
                c = connect(d.port)
                roundtrip(c, data)
                c.close()
                f = connect(fault_port)
                f.sendall(b"f-")  # one byte past close-after=1: the FIN
                check(recv_exact(f, 1) == b"f", "the fault listener's echo")
                check(closed_by_peer(f), "close-after=1 did not close")
                f.close()
            plain += 8
            faulty += 8
            line, each = stats_with_workers(d, nworkers)
            # bytes in = PLAIN_BYTES * plain clients + 2 * fault clients
            served = [(b // PLAIN_BYTES, b % PLAIN_BYTES // 2, n) for n, b in each]
            for p, f, n in served:
                check(p + f == n, "worker lines do not add up: %s" % each)
            if all(p and f for p, f, _ in served):
                break
        check(all(p and f for p, f, _ in served),
              "a worker served no client of a listener: (plain, faults, total) %s" % served)
        check(2 * faulty < PLAIN_BYTES, "too many fault clients to tell apart")
        print("  (plain, fault) clients per worker: %s" % [(p, f) for p, f, _ in served])
        s = wait_sample(d, "echod_connections_open", 0, port=d.addrs[2][1])
        total_in = plain * PLAIN_BYTES + 2 * faulty
        check(s["echod_connections_total"] == plain + faulty and
              s["echod_received_bytes_total"] == total_in, "echo counters %s" % s)
        close_key = 'echod_faults_total{kind="close-after"}'
        check(s.get(close_key) == faulty, "%s %s, not %d" % (close_key, s.get(close_key), faulty))
        line = stats_with_workers(d, nworkers)[0]
        faults = line[line.index("faults (seed"):]
        check(stat_field(faults, "close-after") == faulty, "SIGUSR1 faults: %s" % line)
        if not splice:
            return
        # Every plain byte went through a pipe: each client waits for its
        # echo, so a pipe is always free.
        check(s["echod_splice_no_pipe_total"] == 0, "no pipe: %s" % s)
        check(s["echod_spliced_bytes_total"] == plain * PLAIN_BYTES,
              "echod_spliced_bytes_total %s, not %d" % (s["echod_spliced_bytes_total"],
                                                        plain * PLAIN_BYTES))
        check(s['echod_splice_pipes{state="lent"}'] == 0 and
              0 < s['echod_splice_pipes{state="open"}'] <= s['echod_splice_pipes{state="max"}'],
              "pipes %s" % s)
        check(stat_field(line, "spliced") == plain * PLAIN_BYTES, "SIGUSR1 spliced: %s" % line)
        check(stat_field(line, "no pipe") == 0, "SIGUSR1 no pipe: %s" % line)


def proxy_v2(src, dst, sport, dport):
    """A PROXY v2 header (PROXY command, TCP over IPv4)."""
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


def test_proxy_counters():
    """PROXY headers accepted and refused are counted by command and reason."""
    with echod(listen="127.0.0.1:0,proxy=v2") as d:
        c = connect(d.port)
        c.sendall(proxy_v2("192.0.2.7", "127.0.0.1", 4242, d.port))
        roundtrip(c, b"behind a balancer")
        s = wait_sample(d, 'echod_proxy_headers_accepted_total{command="proxy"}', 1)
        check(s['echod_proxy_headers_accepted_total{command="local"}'] == 0, "local %s" % s)
        bad = connect(d.port)
        bad.sendall(b"PROXY TCP9 nonsense\r\n")
        check(closed_by_peer(bad), "a bad header was not refused")
        bad.close()
        s = wait_sample(d, 'echod_proxy_headers_rejected_total{reason="invalid"}', 1)
        c.close()


def test_resets():
    """A client that resets its connection counts as a reset."""
    with echod() as d:
        c = connect(d.port)
        roundtrip(c, b"bye")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        s = wait_sample(d, "echod_connection_resets_total", 1)
        check(s["echod_connection_errors_total"] == 0 and s["echod_connections_open"] == 0,
              "after a reset: %s" % s)


def test_drain_state():
    """After SIGTERM the exporter still answers through the grace period
    and says the agent state is drain."""
    with echod("--grace", "60") as d:
        c = connect(d.port)
        roundtrip(c, b"x")
        d.signal(signal.SIGTERM)
        s = wait_sample(d, 'echod_agent_state{state="drain"}', 1)
        check(s['echod_agent_state{state="up"}'] == 0, "up too: %s" % s)
        c.close()
        check(d.wait() == 0, "exit status")


def test_errors():
    """404 for another path, 405 (with Allow) for another method, 400 for
    garbage, 505 for HTTP/2.0, 431 for a head too large; HEAD gets GET's
    headers and no body."""
    with echod() as d:
        check(http(d, get("/"))[0] == 404, "/")
        check(http(d, get("/metricsx"))[0] == 404, "/metricsx")
        status, headers, _ = http(d, get("/metrics", "POST"))
        check(status == 405 and headers.get("allow") == "GET, HEAD", "POST: %s" % headers)
        check(http(d, get("/nothing", "DELETE"))[0] == 404, "DELETE elsewhere")
        for bad in (b"garbage\r\n\r\n", b"GET /metrics HTTP/1.1\nHost: x\n\n",
                    b"GET /metrics HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\xff" + b"\x00" * 100):
            status, headers, body = http(d, bad)
            check(status == 400 and headers.get("connection") == "close" and
                  int(headers["content-length"]) == len(body), "%r: %d" % (bad, status))
        check(http(d, b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n")[0] == 505, "HTTP/2.0")
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
        check(http(d, big)[0] == 431, "large head")
        _, gh, gbody = http(d, get())
        status, hh, hbody = http(d, get("/metrics", "HEAD"))
        check(status == 200 and hbody == b"" and hh["content-type"] == CONTENT_TYPE, "HEAD")
        check(abs(int(hh["content-length"]) - len(gbody)) < 16, "HEAD length")
        # Split into single bytes, the request is still one request.
        s = connect(d.addrs[1][1])
        for b in get():
            s.sendall(bytes([b]))
        check(recv_exact(s, 15) == b"HTTP/1.1 200 OK", "byte by byte")
        s.close()


def test_slow_head():
    """A request head that never completes is closed by the deadline, not
    before, and counted; other clients are served meanwhile."""
    with echod() as d:
        s = connect(d.addrs[1][1])
        start = time.monotonic()
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        check(scrape(d)["echod_connections_open"] == 0, "scrape meanwhile")
        c = connect(d.port)
        roundtrip(c, b"echo meanwhile")
        check(closed_by_peer(s, DEADLINE + DEFAULT_TIMEOUT), "slow head never closed")
        elapsed = time.monotonic() - start
        check(elapsed >= DEADLINE - 0.1, "closed after %.2fs, before the deadline" % elapsed)
        s.close()
        wait_sample(d, 'echod_side_connections_total{port="metrics",outcome="timed_out"}', 1)
        c.close()


def test_concurrent():
    """Many scrapes at once all get a whole answer; connections over the
    limit are closed at once and counted, and scraping works again once the
    idle ones go."""
    with echod() as d:
        results, errors = [], []

        def one():
            try:
                results.append(http(d, get())[0])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=one) for _ in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        check(not errors and results == [200] * 48, "results %s errors %s" % (results, errors))
        idle = [connect(d.addrs[1][1]) for _ in range(MAX_CONNS + 20)]
        over = sum(1 for s in idle[MAX_CONNS:] if closed_by_peer(s))
        check(over == 20, "%d of 20 over the limit closed" % over)
        for s in idle:
            s.close()
        # 20, and one more for each scrape here that came before echod saw
        # the idle ones go.
        s = wait_sample(d, "echod_connections_open", 0)
        over = s['echod_side_connections_total{port="metrics",outcome="overflow"}']
        check(20 <= over <= 30, "overflow %s" % over)
        check(s['echod_side_connections_total{port="metrics",outcome="answered"}'] >= 48, "%s" % s)
        c = connect(d.port)
        roundtrip(c, b"still echoing")
        c.close()


def test_with_agent():
    """--agent and --metrics together: the ports in that order on stdout,
    and the exporter counts the agent's connections apart."""
    with Echod(ECHOD, MODE, "--agent", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
               lines=3) as d:
        a = connect(d.addrs[1][1])
        check(a.recv(64) == b"up ready\n", "agent")
        a.close()
        status, _, body = http(d, get(), port=d.addrs[2][1])
        text = body.decode()
        check(status == 200, "status %d" % status)
        check('echod_side_connections_total{port="agent",outcome="answered"} 1' in text, text)
        check("echod_connections_total 0" in text, "agent counted as echo")


def test_usage():
    for args, want in ((["--metrics", "nonsense"], "--metrics 'nonsense'"),
                       (["--inetd", "--metrics", "127.0.0.1:0"], "--inetd")):
        check_usage_error([ECHOD] + mode_args(MODE), args, want)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def prom_query(port, query):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": query}))
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]["result"]


def wait_ready(prom, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prom.poll() is not None:
            return False
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def test_prometheus():
    """A real Prometheus server scrapes echod: up{job="echod"} becomes 1 and
    echod's own series are stored."""
    if not shutil.which("prometheus"):
        raise Skip("prometheus is not installed (Debian: prometheus)")
    with echod() as d, tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: echod\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % d.addrs[1][1])
        port = free_port()
        log = open(os.path.join(tmp, "log"), "w+")
        prom = subprocess.Popen(["prometheus", "--config.file=" + cfg,
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_ready(prom, port, 30):
                log.seek(0)
                raise Skip("prometheus did not become ready on 127.0.0.1:%d within 30 s: %s"
                           % (port, log.read()[-500:].replace("\n", " | ")))
            deadline = time.monotonic() + 30
            up = total = []
            while time.monotonic() < deadline:
                up = prom_query(port, 'up{job="echod"}')
                total = prom_query(port, 'echod_connections_total{job="echod"}')
                if up and up[0]["value"][1] == "1" and total:
                    break
                time.sleep(0.2)
            check(up and up[0]["value"][1] == "1", "up: %s" % up)
            check(total and total[0]["value"][1] == "0", "echod_connections_total: %s" % total)
        finally:
            prom.terminate()
            try:
                prom.wait(20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()


TESTS = [
    test_curl_and_promtool,
    test_counters,
    test_resets,
    test_proxy_counters,
    test_drain_state,
    test_errors,
    test_slow_head,
    test_concurrent,
    test_with_agent,
    test_usage,
    test_splice_and_fault_totals,
]


def main():
    global ECHOD, MODE
    (ECHOD,), MODE, named = command_line(__doc__)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    tests = TESTS + [test_prometheus] if "prometheus" in named else TESTS
    return run_tests(tests, named, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
