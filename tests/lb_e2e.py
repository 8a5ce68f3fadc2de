#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lb_e2e.py - echod behind real load balancers: HAProxy and nginx.

usage: lb_e2e.py ECHOD ECHO_BENCH GROUP MODE [TEST...]

GROUP (haproxy.tcp, haproxy.proxy, haproxy.drain, nginx.tcp, nginx.proxy)
names the balancer and what is tested. The balancer runs from the example
configuration in contrib/ (tests/lb_proc.py) in front of real echods
(tests/echod_proc.py) in MODE, all on loopback. Through each balancer
echo-bench runs with every byte verified. tcp: plain TCP, and HAProxy's
two plain health checks (connect; a string sent and expected back) see
the echods UP, then DOWN once one stops. proxy: with a PROXY header
(HAProxy send-proxy-v2, nginx proxy_protocol v1), echod names the real
client (the address echo-bench bound) and --max-conns-per-ip counts it.
drain: HAProxy's agent-check hears `drain` after SIGTERM and sends new
connections only to the other echod, while those open on the draining
one end cleanly after their echoes.

Exit 77 (skipped) when the balancer is not installed, or when echod lacks
the group's feature (`echod --help` does not mention it), saying which.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (DEFAULT_TIMEOUT, Echod, Skip, check, closed_by_peer,  # noqa: E402
                        fail, roundtrip, run_each, exit_status, select_tests,
                        stat_field)
from lb_proc import HAProxy, Nginx, free_port, wait_until  # noqa: E402

ECHOD = ECHO_BENCH = MODE = None
HELP = ""
# Real clients: loopback addresses other than the balancer's 127.0.0.1.
CLIENT_A = "127.0.0.5"
CLIENT_B = "127.0.0.6"
# echod's log line for the refusal over the limit names the real client.
REFUSED_LOG = re.compile(r"^echod: refusing connection from %s:\d+: " % re.escape(CLIENT_A), re.M)
NGINX_PLAIN, NGINX_PROXY = "127.0.0.1:7000", "127.0.0.1:7001"
NGINX_PLAIN_UP, NGINX_PROXY_UP = "127.0.0.1:10001", "127.0.0.1:10002"


def require(feature, pattern):
    """Skips the test unless echod --help matches pattern."""
    if not re.search(pattern, HELP, re.M):
        raise Skip("echod has no %s (not in echod --help)" % feature)


def require_proxy():
    require("PROXY protocol listeners (--listen ADDR,proxy=v1|v2)", r"proxy=")


def require_agent():
    require("--agent (HAProxy agent-check)", r"^\s*--agent ")


def echod(*args, listen="127.0.0.1:0", quiet=True):
    return Echod(ECHOD, MODE, *args, listen=listen, lines=1, quiet=quiet)


def addr(e):
    return "%s:%d" % (e.host, e.port)


def bench(port, *args, conns=4, duration="1"):
    """echo-bench through 127.0.0.1:port; fails unless it exits 0 (every
    byte came back right) having echoed messages. Returns its report."""
    argv = [ECHO_BENCH, "--connect", "127.0.0.1:%d" % port, "--conns", str(conns),
            "--depth", "2", "--size", "1K", "--duration", duration, "--warmup", "0.2",
            "--json"] + list(args)
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60 + float(duration))
    check(out.returncode == 0, "%s exited %d: %s %s" % (" ".join(argv), out.returncode,
                                                         out.stdout.decode()[-1500:],
                                                         out.stderr.decode()[-1500:]))
    report = json.loads(out.stdout)
    check(report["messages"] > 0 and report["errors"] == 0, "echo-bench report: %s" % report)
    return report


def client(port, source):
    """A connection to 127.0.0.1:port from source (a loopback address)."""
    s = socket.socket()
    try:
        s.bind((source, 0))
        s.settimeout(DEFAULT_TIMEOUT)
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


def check_real_clients(echods, source, port):
    """Each echod's --trace names the real clients, from the balancer's
    PROXY headers: echo-bench's `source` for its connections, and exactly
    the address and port of one more client per echod made here, from
    CLIENT_B through `port` (round robin: one each); the balancer's own
    address is never the client of echoed data. Their SIGUSR1 lines count
    the headers, none rejected; returns those lines."""
    held = []
    try:
        for _ in echods:
            held.append(client(port, CLIENT_B))
            roundtrip(held[-1], b"who am I\n")
        names = ["('%s', %d)" % s.getsockname() for s in held]
    finally:
        for s in held:
            s.close()
    lines = []
    for e in echods:
        e.wait_stderr(r"PROXY v\d header from \('127\.0\.0\.1', \d+\): client \('%s', \d+\)"
                      % re.escape(source))
        text = e.stderr()
        mine = [n for n in names if "received b'who am I\\n' from %s\n" % n in text]
        check(len(mine) == 1, "echod names %d of the clients %s: %s" % (len(mine), names,
                                                                     text[-1500:]))
        check(not re.search(r"received .* from \('127\.0\.0\.1'", text),
              "echod names the balancer as the client of echoed data: %s" % text[-1500:])
        line = e.stats()
        # HAProxy's health checks reset at once; one that is gone before
        # its header is read counts as closed, never as a bad header.
        refused = proxy_stat(line, "rejected") - proxy_stat(line, "closed")
        check(proxy_stat(line, "accepted") >= 2 and refused == 0, "PROXY headers: %s" % line)
        lines.append(line)
    return lines


def proxy_stat(line, name):
    """A number of the SIGUSR1 line's PROXY part: "accepted", "local",
    "rejected" (all causes), "closed" (the peer went before its header)."""
    m = re.search(r"proxy headers (\d+) accepted, (\d+) local.*proxy rejected (\d+) "
                  r"\(invalid \d+, timeout \d+, source \d+, closed (\d+)\)", line)
    check(m, "no PROXY counters in %r" % line)
    return int(m.group({"accepted": 1, "local": 2, "rejected": 3, "closed": 4}[name]))


def check_per_ip(port, servers):
    """With --max-conns-per-ip 1 on each of `servers` echods behind the
    balancer on port: CLIENT_A gets one connection per echod and no more;
    CLIENT_B, from the same balancer, is still served."""
    held = []
    try:
        for _ in range(servers):
            s = client(port, CLIENT_A)
            held.append(s)
            roundtrip(s, b"served\n")
        extra = client(port, CLIENT_A)
        held.append(extra)
        try:
            extra.sendall(b"over the limit\n")
        except OSError:
            pass
        check(closed_by_peer(extra), "a connection over %s's per-ip limit was served"
              % CLIENT_A)
        other = client(port, CLIENT_B)
        held.append(other)
        roundtrip(other, b"another client\n")
        for s in held[:servers]:
            roundtrip(s, b"still served\n")
    finally:
        for s in held:
            s.close()


# --------------------------------------------------------------------------
# HAProxy


def haproxy_tcp(e1, e2):
    return HAProxy.start("echod-tcp.cfg", {"ECHOD1": addr(e1), "ECHOD2": addr(e2)},
                   fronts=("ECHO_FRONT", "ECHO_CONNECT_FRONT"))


def test_haproxy_tcp():
    """Plain TCP: both health checks see both echods UP (the string check
    at layer 7, the connect at layer 4); echo-bench through each front end
    is served by both echods, every byte right."""
    with echod() as e1, echod() as e2, haproxy_tcp(e1, e2) as lb:
        for server in ("echod1", "echod2"):
            lb.wait_status(server, "UP$", proxy="echo")
            wait_until("echo/%s string check passed" % server,
                       lambda: lb.servers("echo")[server]["check_status"] == "L7OK")
            lb.wait_status(server, "UP$", proxy="echo_connect")
            wait_until("echo_connect/%s connect check passed" % server,
                       lambda: lb.servers("echo_connect")[server]["check_status"] == "L4OK")
        for proxy, front in (("echo", "ECHO_FRONT"), ("echo_connect", "ECHO_CONNECT_FRONT")):
            bench(lb.ports[front])
            stot = {k: v[1] for k, v in lb.sessions(proxy).items()}
            check(stot["echod1"] >= 2 and stot["echod2"] >= 2,
                  "%s: sessions per server %s, not spread over both" % (proxy, stot))


def test_haproxy_tcp_down():
    """A stopped echod goes DOWN under both health checks, the other stays
    UP, and echo-bench through the balancer is still served in full."""
    with echod() as e1, echod() as e2, haproxy_tcp(e1, e2) as lb:
        for proxy in ("echo", "echo_connect"):
            lb.wait_status("echod2", "UP$", proxy=proxy)
        check(e2.stop() == 0, "echod2 did not exit 0")
        for proxy in ("echo", "echo_connect"):
            lb.wait_status("echod2", "DOWN", proxy=proxy)
            check(lb.servers(proxy)["echod1"]["status"] == "UP", "echod1 is not UP")
        before = lb.sessions("echo")["echod2"][1]
        bench(lb.ports["ECHO_FRONT"])
        check(lb.sessions("echo")["echod2"][1] == before, "sessions went to the DOWN server")


def haproxy_proxy(e1, e2, agent_ports=None):
    """echod-proxy.cfg in front of e1 and e2; agent_ports: their --agent
    ports (default: free ports nobody answers on, which HAProxy ignores)."""
    agents = agent_ports or (free_port(), free_port())
    return HAProxy.start("echod-proxy.cfg", {
        "ECHOD1": addr(e1), "ECHOD1_AGENT_PORT": str(agents[0]),
        "ECHOD2": addr(e2), "ECHOD2_AGENT_PORT": str(agents[1])})


def test_haproxy_proxy_v2():
    """send-proxy-v2 in front of two proxy=v2 echods: every byte comes
    back, both echods served, and each names echo-bench's address."""
    require_proxy()
    listen = "127.0.0.1:0,proxy=v2"
    with echod("--trace", listen=listen) as e1, echod("--trace", listen=listen) as e2, \
            haproxy_proxy(e1, e2) as lb:
        for server in ("echod1", "echod2"):
            lb.wait_status(server, "UP$")
        bench(lb.ports["ECHO_FRONT"], "--source", CLIENT_A, duration="0.5")
        check_real_clients((e1, e2), CLIENT_A, lb.ports["ECHO_FRONT"])


def test_haproxy_proxy_per_ip():
    """--max-conns-per-ip 1 behind HAProxy counts the real client; the
    health checks' headers are LOCAL (the balancer itself)."""
    require_proxy()
    listen = "127.0.0.1:0,proxy=v2"
    with echod("--max-conns-per-ip", "1", listen=listen, quiet=False) as e1, \
            echod("--max-conns-per-ip", "1", listen=listen, quiet=False) as e2, \
            haproxy_proxy(e1, e2) as lb:
        for server in ("echod1", "echod2"):
            lb.wait_status(server, "UP$")
        check_per_ip(lb.ports["ECHO_FRONT"], 2)
        refused = sum(stat_field(e.stats(), "per-ip") for e in (e1, e2))
        check(refused == 1, "per-ip refusals: %d, not 1" % refused)
        logged = [e for e in (e1, e2) if REFUSED_LOG.search(e.stderr())]
        check(len(logged) == 1, "the refusal of %s is logged by %d echods, not 1"
              % (CLIENT_A, len(logged)))
        # The health checks (check-send-proxy, every second) say LOCAL.
        # HAProxy resets a check connection at once: the io_uring engine's
        # getpeername() after its multishot accept may then fail, and such
        # a check counts as closed before its header (rejected), not LOCAL.
        uring = MODE.startswith("engine-uring")

        def seen(e):
            line = e.stats()
            counted = proxy_stat(line, "local")
            if uring:
                counted += proxy_stat(line, "rejected")
            return counted >= 1
        for name, e in (("echod1", e1), ("echod2", e2)):
            try:
                wait_until("a LOCAL header from HAProxy's check",
                           lambda: seen(e), interval=0.2)
            except AssertionError as err:
                row = lb.servers()[name]
                fail("%s; %s's checks: %s %s %s; %s" % (err, name, row["check_status"],
                                                        row["chkfail"], row["last_chk"],
                                                        e.stats()))


def test_haproxy_drain():
    """SIGTERM to echod1: its agent says drain, HAProxy marks it DRAIN and
    sends new connections only to echod2, and the connections open on
    echod1 get back every byte echod1 took before it ends them."""
    require_proxy()
    require_agent()
    ports = (free_port(), free_port())
    listen = "127.0.0.1:0,proxy=v2"
    with echod("--agent", "127.0.0.1:%d" % ports[0], "--grace", "60", listen=listen) as e1, \
            echod("--agent", "127.0.0.1:%d" % ports[1], "--grace", "60", listen=listen) as e2, \
            haproxy_proxy(e1, e2, ports) as lb:
        for server in ("echod1", "echod2"):
            lb.wait_status(server, "UP$")
        drain(lb, e1, e2)


def test_haproxy_drain_delay():
    """With --drain-delay, the way to take a backend out without cutting
    anyone: SIGTERM to echod1, HAProxy marks it DRAIN and sends new
    connections to echod2 only, while echod1's open connections go on
    echoing every byte until their clients close them themselves."""
    require_proxy()
    require_agent()
    ports = (free_port(), free_port())
    listen = "127.0.0.1:0,proxy=v2"
    with echod("--agent", "127.0.0.1:%d" % ports[0], "--drain-delay", "4", "--grace", "5",
               listen=listen) as e1, \
            echod("--agent", "127.0.0.1:%d" % ports[1], listen=listen) as e2, \
            haproxy_proxy(e1, e2, ports) as lb:
        for server in ("echod1", "echod2"):
            lb.wait_status(server, "UP$")
        drain(lb, e1, e2, delay=True)


def test_haproxy_agent_maint():
    """A full echod (--max-conns) answers maint: HAProxy puts it in MAINT
    and serves new clients from the other echod, none refused; once a
    connection ends, the agent's `up ready` brings it back UP."""
    require_proxy()
    require_agent()
    ports = (free_port(), free_port())
    listen = "127.0.0.1:0,proxy=v2"
    with echod("--agent", "127.0.0.1:%d" % ports[0], "--max-conns", "1", listen=listen) as e1, \
            echod("--agent", "127.0.0.1:%d" % ports[1], listen=listen) as e2, \
            haproxy_proxy(e1, e2, ports) as lb:
        for server in ("echod1", "echod2"):
            lb.wait_status(server, "UP$")
        maint(lb)


def maint(lb):
    held = []
    try:
        # Round robin: within two connections, one is echod1's only one.
        while lb.sessions()["echod1"][0] == 0:
            check(len(held) < 2, "two connections and none on echod1: %s" % lb.sessions())
            held.append(client(lb.ports["ECHO_FRONT"], CLIENT_A))
            roundtrip(held[-1], b"fill\n")
        lb.wait_status("echod1", "MAINT")
        stot1 = lb.sessions()["echod1"][1]
        for _ in range(4):
            held.append(client(lb.ports["ECHO_FRONT"], CLIENT_A))
            roundtrip(held[-1], b"while echod1 is full\n")
        check(lb.sessions()["echod1"][1] == stot1,
              "a full echod got new connections: %s" % lb.sessions())
    finally:
        for s in held:
            s.close()
    lb.wait_status("echod1", "UP$")


def drain(lb, e1, e2, delay=False):
    held = []
    try:
        # Four connections, two on each echod (round robin), each with a
        # message echoed in full before the drain.
        message = os.urandom(96 * 1024)
        for _ in range(4):
            s = client(lb.ports["ECHO_FRONT"], CLIENT_A)
            held.append(s)
            roundtrip(s, b"open\n")
        scur = {k: v[0] for k, v in lb.sessions().items()}
        check(scur == {"echod1": 2, "echod2": 2}, "open sessions per server: %s" % scur)
        for s in held:
            roundtrip(s, message)
        stot1 = lb.sessions()["echod1"][1]
        e1.signal(signal.SIGTERM)
        lb.wait_status("echod1", "DRAIN")
        for _ in range(6):
            s = client(lb.ports["ECHO_FRONT"], CLIENT_B)
            held.append(s)
            roundtrip(s, b"new connection\n")
        sessions = lb.sessions()
        check(sessions["echod1"][1] == stot1,
              "the draining echod got new connections: %s" % sessions)
        check(sessions["echod2"][0] == 2 + 6, "echod2 sessions: %s" % sessions)
        if delay:
            # echod1 still serves its two: every byte of more messages comes
            # back, on all four, and the clients end them when they like.
            for s in held[:4]:
                roundtrip(s, message)
            for s in held:
                s.close()
            held = []
            check(e1.wait() == 0, "the drained echod did not exit 0")
            return
        # echod1's two end cleanly (end of stream, no reset, nothing more);
        # echod2's two still echo.
        wait_until("2 of the open connections ended",
                   lambda: sum(ended_cleanly(s) for s in held[:4]) >= 2)
        ended = [s for s in held[:4] if ended_cleanly(s)]
        check(len(ended) == 2, "%d open connections ended, not the 2 on echod1" % len(ended))
        for s in held[:4]:
            if s not in ended:
                roundtrip(s, message)
    finally:
        for s in held:
            s.close()
    check(e1.wait() == 0, "the drained echod did not exit 0")


def ended_cleanly(s):
    """True once the peer has ended s with an end of stream and nothing
    before it (a recv then keeps returning b""); False while it is open
    with nothing to read. A reset or stray bytes fail."""
    s.setblocking(False)
    try:
        data = s.recv(65536)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        fail("a connection on the draining echod was reset")
    finally:
        s.settimeout(DEFAULT_TIMEOUT)
    check(data == b"", "stray bytes after the echo: %r" % data[:100])
    return True


# --------------------------------------------------------------------------
# nginx


def nginx(plain=None, proxied=None):
    """contrib/nginx/echod-stream.conf: the plain front end to echod
    `plain`, the PROXY v1 one to `proxied` (a free port when None)."""
    return Nginx.start("echod-stream.conf", {
        NGINX_PLAIN: None, NGINX_PROXY: None,
        NGINX_PLAIN_UP: addr(plain) if plain else "127.0.0.1:%d" % free_port(),
        NGINX_PROXY_UP: addr(proxied) if proxied else "127.0.0.1:%d" % free_port()})


def test_nginx_tcp():
    """Plain TCP through nginx's stream proxy: every byte comes back."""
    with echod() as e, nginx(plain=e) as lb:
        bench(lb.ports[NGINX_PLAIN])
        served = int(re.search(r"(\d+) total", e.stats()).group(1))
        check(served >= 4, "echod served %d connections, not the 4 of echo-bench" % served)


def test_nginx_proxy_v1():
    """proxy_protocol on (v1) in front of a proxy=v1 echod: every byte
    comes back, and echod names echo-bench's address."""
    require_proxy()
    with echod("--trace", listen="127.0.0.1:0,proxy=v1") as e, nginx(proxied=e) as lb:
        bench(lb.ports[NGINX_PROXY], "--source", CLIENT_A, duration="0.5")
        check_real_clients((e,), CLIENT_A, lb.ports[NGINX_PROXY])


def test_nginx_proxy_per_ip():
    """--max-conns-per-ip 1 behind nginx counts the real client."""
    require_proxy()
    with echod("--max-conns-per-ip", "1", listen="127.0.0.1:0,proxy=v1", quiet=False) as e, \
            nginx(proxied=e) as lb:
        check_per_ip(lb.ports[NGINX_PROXY], 1)
        check(stat_field(e.stats(), "per-ip") == 1, "echod refused other than 1 per-ip")
        e.wait_stderr(REFUSED_LOG.pattern)


# Groups, each a CTest test of its own (tests/lb.cmake), so that one whose
# echod feature is missing is reported as skipped.
TESTS = {
    "haproxy.tcp": [test_haproxy_tcp, test_haproxy_tcp_down],
    "haproxy.proxy": [test_haproxy_proxy_v2, test_haproxy_proxy_per_ip],
    "haproxy.drain": [test_haproxy_drain, test_haproxy_drain_delay, test_haproxy_agent_maint],
    "nginx.tcp": [test_nginx_tcp],
    "nginx.proxy": [test_nginx_proxy_v1, test_nginx_proxy_per_ip],
}


def main():
    global ECHOD, ECHO_BENCH, MODE, HELP
    if len(sys.argv) < 5 or sys.argv[3] not in TESTS:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    ECHOD, ECHO_BENCH, group, MODE = sys.argv[1:5]
    HELP = subprocess.run([ECHOD, "--help"], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    chosen = select_tests(TESTS[group], sys.argv[5:])
    failed, skipped = run_each(chosen)
    return exit_status(failed, skipped, len(chosen))


if __name__ == "__main__":
    sys.exit(main())
