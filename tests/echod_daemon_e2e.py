#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's daemon integration: systemd socket
activation, --inetd, --user, --max-conns-per-ip and Unix stream sockets.

Usage: echod_daemon_e2e.py ECHOD MODE [TEST...]

MODE is a loop backend (epoll, poll, select, uring) or engine-uring (see
tests/echod_proc.py).

Real echod processes on 127.0.0.1 port 0, on socket pairs, or on Unix
sockets in a temporary directory; every byte is checked. --user needs root
(skipped otherwise). Exit status: 0 pass, 1 fail, 77 skip.
"""
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (Echod, Skip, check, closed_by_peer, command_line, mode_args,  # noqa: E402
                        mode_label, roundtrip, run_tests, stat_field, udp_socket)

ECHOD = MODE = None
MiB = 1 << 20


def echod(*args, **kw):
    """An Echod in this run's mode; no --listen unless the test asks."""
    kw.setdefault("listen", None)
    return Echod(ECHOD, MODE, *args, **kw)


def pattern(n, seed=0):
    return bytes((i * 7 + seed + i // 251) & 0xFF for i in range(n))


def echo_all(s, data, half_close=True):
    """Sends data from a thread while reading; with half_close, shuts down
    the sending side and reads until the server's end of stream. Returns
    what came back (all of it must be identical)."""
    s.settimeout(10)
    err = []

    def writer():
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer)
    t.start()
    got = bytearray()
    try:
        while len(got) < len(data) or half_close:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
    finally:
        t.join(10)
    check(not err, "send failed: %s" % err)
    check(bytes(got) == data, "echo differs: sent %d bytes, got %d%s" % (
        len(data), len(got), "" if len(got) != len(data) else " (same length, other bytes)"))
    return got


# --------------------------------------------------------------------------
# socket activation


def activated(sockets, names=None, extra_env=None, args=(), lines=0, pid_wrapper=True):
    """echod started the way systemd starts it: `sockets` at fds 3, 4, ...
    and LISTEN_PID set to echod's own pid by a shell that execs it."""
    srcs = [s.fileno() for s in sockets]
    n = len(srcs)
    env = {"LISTEN_FDS": str(n)}
    if names:
        env["LISTEN_FDNAMES"] = ":".join(names)
    env.update(extra_env or {})

    def child():
        # Copies above the target range first, so that no source is
        # overwritten before it is moved.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 3 + n) for fd in srcs]
        for i, fd in enumerate(moved):
            os.dup2(fd, 3 + i)
            os.close(fd)

    wrapper = (["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"]
               if pid_wrapper else None)
    return echod(*args, quiet=False, env=env, preexec_fn=child,
                 pass_fds=tuple(range(3, 3 + n)), argv0=wrapper, lines=lines)


def test_socket_activation():
    tmp = tempfile.mkdtemp(prefix="echod-act-")
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    udp = udp_socket("127.0.0.1")
    # Dual-stack, as BindIPv6Only=both makes it: IPv4 datagrams arrive
    # with mapped addresses and must be answered from the right one.
    dual = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    dual.bind(("::", 0))
    path = os.path.join(tmp, "s")
    uxs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    uxs.bind(path)
    uxs.listen(16)
    try:
        with activated([tcp, udp, uxs, dual],
                       names=["echo-tcp", "echo-udp", "echo-unix", "dual"]) as d:
            with socket.create_connection(tcp.getsockname()) as c:
                echo_all(c, pattern(MiB))
            with udp_socket("127.0.0.1") as u:
                u.sendto(b"datagram", udp.getsockname())
                got, frm = u.recvfrom(100)
                check(got == b"datagram" and frm == udp.getsockname(), "udp: %r %r" % (got, frm))
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)
                echo_all(c, pattern(100000, 5))
            port = dual.getsockname()[1]
            for host in ("127.0.0.7", "::1"):
                with udp_socket(host) as u:
                    u.sendto(b"dual", (host, port))
                    got, frm = u.recvfrom(100)
                    check(got == b"dual" and frm[:2] == (host, port),
                          "dual-stack: %r from %r" % (got, frm))
            d.wait_stderr(r"listening on stream 127\.0\.0\.1:\d+ \(fd 3, echo-tcp\) \(%s\)$"
                          % re.escape(mode_label(MODE)))
            d.wait_stderr(r"echoing datagrams on datagram 127\.0\.0\.1:\d+ \(fd 4, echo-udp\)")
            check(d.stop() == 0, "exit status")
        # LISTEN_PID naming another process: not ours; echod binds its own.
        with activated([tcp], extra_env={"LISTEN_PID": "1"}, pid_wrapper=False,
                       args=("--listen", "127.0.0.1:0"), lines=1) as d:
            check(d.addrs[0][1] != tcp.getsockname()[1], "used a socket meant for another pid")
            with socket.create_connection(d.addrs[0]) as c:
                roundtrip(c, b"own socket")
        # A connected stream socket is not a listener: a clear error.
        a, b = socket.socketpair()
        with activated([a]) as d:
            check(d.wait() == 1, "exit status with a connected socket")
            check("is a stream socket that is not listening" in d.stderr(), d.stderr())
        a.close()
        b.close()
    finally:
        for s in (tcp, udp, uxs, dual):
            s.close()
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# inetd mode


def test_inetd_socketpair():
    """stdin/stdout a socket pair; stderr the same socket too (as inetd
    gives it): nothing echod says may get into the echo."""
    for share_stderr in (False, True):
        ours, theirs = socket.socketpair()
        if share_stderr:
            proc = subprocess.Popen([ECHOD] + mode_args(MODE) + ["--inetd"], stdin=theirs,
                                    stdout=theirs, stderr=theirs)
        else:
            proc = subprocess.Popen([ECHOD] + mode_args(MODE) + ["--inetd", "--quiet"],
                                    stdin=theirs, stdout=theirs, stderr=subprocess.PIPE)
        theirs.close()
        try:
            echo_all(ours, pattern(3 * MiB, 1))
            check(proc.wait(10) == 0, "exit status %s" % proc.returncode)
            if not share_stderr:
                check(proc.stderr.read() == b"", "--quiet said something")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr:
                proc.stderr.close()
            ours.close()


def test_inetd_tcp():
    """A real TCP connection as stdin, with data sent before the client's
    half-close all echoed; then --idle-timeout ends an idle one."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    try:
        for idle in (False, True):
            client = socket.create_connection(lst.getsockname())
            conn, _ = lst.accept()
            args = ["--inetd"] + (["--idle-timeout", "0.2"] if idle else [])
            with echod(*args, stdin=conn, stdout=conn) as d:
                conn.close()
                if idle:
                    roundtrip(client, b"then silence")
                    client.settimeout(10)
                    check(client.recv(10) == b"", "idle connection not closed")
                else:
                    echo_all(client, pattern(2 * MiB, 9))
                check(d.wait() == 0, "exit status")
            client.close()
    finally:
        lst.close()


def test_inetd_errors():
    with open(os.devnull, "rb") as null:
        with echod("--inetd", stdin=null) as d:
            check(d.wait() == 1, "exit status")
            check("echod: --inetd: stdin is not a stream socket" in d.stderr(), d.stderr())
    r = subprocess.run([ECHOD, "--inetd", "--listen", "127.0.0.1:0"], capture_output=True,
                       timeout=10)
    check(r.returncode == 2 and b"--inetd" in r.stderr, "usage: %r" % r.stderr)


# --------------------------------------------------------------------------
# privileges


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(v) for v in value.split()]
    return ids


def as_nobody():
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


def root_and_nobody():
    """The user nobody, for a test that runs as root (or Skip)."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user 'nobody'")


def test_user():
    nobody = root_and_nobody()
    with echod("--listen", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--user", "nobody",
               quiet=False, lines=2) as d:
        d.wait_stderr(r"^echod: running as nobody \(uid %d, gid %d\)$"
                      % (nobody.pw_uid, nobody.pw_gid))
        ids = proc_ids(d.proc.pid)
        check(ids["Uid"] == [nobody.pw_uid] * 4, "uids: %s" % ids)
        check(ids["Gid"] == [nobody.pw_gid] * 4, "gids: %s" % ids)
        check(set(ids["Groups"]) <= set(os.getgrouplist("nobody", nobody.pw_gid)),
              "groups: %s" % ids)
        with socket.create_connection(d.addrs[0]) as c:
            roundtrip(c, b"served as nobody")
        with udp_socket("127.0.0.1") as u:
            u.sendto(b"dgram", d.addrs[1])
            check(u.recv(100) == b"dgram", "udp after the switch")
        check(d.stop() == 0, "exit status")

    r = subprocess.run([ECHOD, "--listen", "127.0.0.1:0", "--user", "no-such-user-x"],
                       capture_output=True, timeout=10)
    check(r.returncode == 1 and b"echod: --user no-such-user-x: no such user" in r.stderr,
          "unknown user: %d %r" % (r.returncode, r.stderr))
    # Not root: asked to become root, echod refuses to run at all.
    r = subprocess.run([ECHOD, "--listen", "127.0.0.1:0", "--user", "root"],
                       capture_output=True, timeout=10, preexec_fn=as_nobody)
    check(r.returncode == 1 and b"echod: --user root: " in r.stderr,
          "switch refused: %d %r" % (r.returncode, r.stderr))
    # A privileged port without privileges: one line that says why.
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        unprivileged = int(f.read())
    if unprivileged > 7:
        for opt in ("--listen", "--udp"):
            r = subprocess.run([ECHOD, opt, "127.0.0.1:7"], capture_output=True, timeout=10,
                               preexec_fn=as_nobody)
            err = r.stderr.decode()
            check(r.returncode == 1 and len(err.splitlines()) == 1 and
                  "Permission denied (ports below 1024 need root" in err,
                  "%s port 7 as nobody: %d %r" % (opt, r.returncode, err))


def unix_connect(d, path, timeout=10):
    """A client of the echod `d` serving `path`, once it is there (with
    --quiet nothing says so)."""
    deadline = time.monotonic() + timeout
    while True:
        c = socket.socket(socket.AF_UNIX)
        try:
            c.connect(path)
            return c
        except (FileNotFoundError, ConnectionRefusedError):
            c.close()
            check(d.alive() and time.monotonic() < deadline,
                  "%s not served; stderr: %r" % (path, d.stderr()))
            time.sleep(0.01)


def test_user_unix_cleanup():
    """--user with a Unix socket: the file is removed at exit although the
    user cannot reach it by its path (the parent directory is root's
    only), because the directory was opened before the switch. Where the
    user may not write to the directory, one line says it was left."""
    nobody = root_and_nobody()
    tmp = tempfile.mkdtemp(prefix="echod-user-")  # 0700, root's
    try:
        mine = os.path.join(tmp, "nobody")
        os.mkdir(mine, 0o755)
        os.chown(mine, nobody.pw_uid, nobody.pw_gid)
        path = os.path.join(mine, "echo.sock")
        with echod("--listen", "unix:" + path, "--user", "nobody") as d:
            with unix_connect(d, path) as c:
                roundtrip(c, b"as nobody, over a Unix socket")
            check(proc_ids(d.proc.pid)["Uid"] == [nobody.pw_uid] * 4, "not running as nobody")
            check(d.stop() == 0, "exit status")
            check(d.stderr() == "", "stderr: %r" % d.stderr())
        check(not os.path.exists(path), "socket file left after --user nobody and SIGTERM")
        # A directory only root may write to: the file stays, and echod says so.
        path = os.path.join(tmp, "echo.sock")
        with echod("--listen", "unix:" + path, "--user", "nobody") as d:
            with unix_connect(d, path) as c:
                roundtrip(c, b"x")
            check(d.stop() == 0, "exit status")
            check(d.stderr() == "echod: unix:%s: not removed: Permission denied\n" % path,
                  "stderr: %r" % d.stderr())
        check(os.path.exists(path), "the file went away nevertheless")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# --max-conns-per-ip


def connect_from(addr, src):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(addr)
    return s


def test_max_conns_per_ip():
    with echod("--listen", "127.0.0.1:0", "--max-conns-per-ip", "2", lines=1) as d:
        addr = d.addrs[0]
        c1, c2 = connect_from(addr, "127.0.0.1"), connect_from(addr, "127.0.0.1")
        roundtrip(c1, b"one")
        roundtrip(c2, b"two")
        c3 = connect_from(addr, "127.0.0.1")
        check(closed_by_peer(c3), "third connection from 127.0.0.1 served")
        c4 = connect_from(addr, "127.0.0.2")
        roundtrip(c4, b"other address")
        c1.close()
        # Once echod has seen c1 go, 127.0.0.1 has room again.
        for _ in range(200):
            st = d.stats()
            if "connections 2 open" in st:
                break
        check("connections 2 open" in st, st)
        c5 = connect_from(addr, "127.0.0.1")
        roundtrip(c5, b"room again")
        check(stat_field(st, "per-ip") == 1, st)
        for c in (c2, c3, c4, c5):
            c.close()


# --------------------------------------------------------------------------
# Unix stream sockets


def test_unix_stream():
    tmp = tempfile.mkdtemp(prefix="echod-unix-")
    path = os.path.join(tmp, "echo.sock")
    try:
        # A leftover socket file (bound, never removed) is replaced.
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
        with echod("--listen", "unix:" + path, quiet=False) as d:
            d.wait_stderr(r"listening on unix:%s \(%s\)$"
                          % (re.escape(path), re.escape(mode_label(MODE))))
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)
                echo_all(c, pattern(2 * MiB, 4))
            r = subprocess.run([ECHOD, "--listen", "unix:" + path], capture_output=True,
                               timeout=10)
            err = r.stderr.decode()
            check(r.returncode == 1 and err == "echod: --listen unix:%s: another process is "
                  "serving this socket\n" % path, "second echod: %d %r" % (r.returncode, err))
            # The second echod's look at the file is not a client of the first.
            line = d.stats()
            check(", 1 total;" in line,
                  "the probe was counted as a connection: %s" % line)
            check(d.stop() == 0, "exit status")
        check(not os.path.exists(path), "socket file left after a clean exit")
        # Anything but a socket is never replaced.
        with open(path, "w") as f:
            f.write("keep me")
        r = subprocess.run([ECHOD, "--listen", "unix:" + path], capture_output=True, timeout=10)
        check(r.returncode == 1 and b"is not a socket" in r.stderr, "%r" % r.stderr)
        with open(path) as f:
            check(f.read() == "keep me", "file changed")
        r = subprocess.run([ECHOD, "--listen", "unix:" + "x" * 200], capture_output=True,
                           timeout=10)
        check(r.returncode == 2 and b"too long" in r.stderr, "%r" % r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sighup_sigquit():
    """SIGHUP is logged and ignored: echod keeps serving (the connection it
    had and new ones), then SIGTERM drains and exits 0 and the socket file
    is gone. SIGQUIT exits at once, 0, and removes the file too."""
    tmp = tempfile.mkdtemp(prefix="echod-hup-")
    path = os.path.join(tmp, "echo.sock")
    try:
        with echod("--listen", "unix:" + path, quiet=False) as d:
            d.wait_stderr(r"listening on unix:")
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)
                roundtrip(c, b"before")
                d.signal(signal.SIGHUP)
                d.wait_stderr(r"^echod: SIGHUP: nothing to reload$")
                check(d.alive(), "echod died of SIGHUP")
                roundtrip(c, b"after, same connection")
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)
                roundtrip(c, b"after, new connection")
            check(d.stop() == 0, "exit status after SIGHUP then SIGTERM")
            check(d.stderr().count("SIGHUP") == 1, "SIGHUP said more than once")
        check(not os.path.exists(path), "socket file left after SIGHUP then SIGTERM")
        with echod("--listen", "unix:" + path, quiet=False) as d:
            d.wait_stderr(r"listening on unix:")
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            roundtrip(c, b"open when SIGQUIT comes")
            d.signal(signal.SIGQUIT)
            check(d.wait() == 0, "exit status after SIGQUIT")
            d.wait_stderr(r"^echod: SIGQUIT, exiting now$")
            c.close()
        check(not os.path.exists(path), "socket file left after SIGQUIT")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_help():
    r = subprocess.run([ECHOD, "--help"], capture_output=True, timeout=10)
    out = r.stdout.decode()
    for word in ("--udp HOST:PORT", "--udp-rate PPS", "--udp-burst N", "--udp-any-port",
                 "--max-conns-per-ip N", "--inetd", "--user NAME", "unix:PATH", "LISTEN_FDS",
                 "7, 11, 13, 17, 19, 37"):
        check(word in out, "%r not in --help" % word)
    for args in (["--max-conns-per-ip", "-1"], ["--user", ""], ["--udp-rate", "1e3"]):
        r = subprocess.run([ECHOD] + args, capture_output=True, timeout=10)
        check(r.returncode == 2 and r.stderr.startswith(b"echod: "), "%s: %r" % (args, r.stderr))


TESTS = [
    test_socket_activation,
    test_inetd_socketpair,
    test_inetd_tcp,
    test_inetd_errors,
    test_user,
    test_user_unix_cleanup,
    test_max_conns_per_ip,
    test_unix_stream,
    test_sighup_sigquit,
    test_help,
]


def main():
    global ECHOD, MODE
    (ECHOD,), MODE, named = command_line(__doc__)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return run_tests(TESTS, named, ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
