#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of echod's binary upgrade (SIGUSR2, apps/echod/upgrade.h).

Usage: upgrade_e2e.py ECHOD ECHO_BENCH MODE [TEST...]

MODE is a loop backend (epoll, poll, select, uring) or engine-uring, or
one of them with -w2 (--workers 2: every worker's sockets are handed over;
see tests/echod_proc.py). Each test runs echod from a copy in a temporary
directory, so that the test can replace the file as a package upgrade does:
with a new copy (the upgrade must work), or with a script that fails (the
old echod must keep serving and say so in one line).

The new echod is the old one's child. This script makes itself a child
subreaper (prctl), so that when the old echod exits the new one is
re-parented here: its exit status is then waited for like the old one's.
It learns the new PID from the old echod's line "new echod (pid N) serving",
and ends it by that PID.
Exit status: 0 pass, 1 fail, 77 skip.
"""
import contextlib
import ctypes
import errno
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import (DEFAULT_TIMEOUT, Echod, Skip, check, client_backend,  # noqa: E402
                        closed_by_peer, connect, roundtrip, run_tests, workers_of)

ECHOD = BENCH = MODE = None
PR_SET_CHILD_SUBREAPER = 36
SERVING = r"^echod: upgrade: new echod \(pid (\d+)\) serving after ([\d.]+) ms; " \
          r"draining (\d+) connections$"


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise Skip("prctl(PR_SET_CHILD_SUBREAPER): errno %d" % ctypes.get_errno())


def install(src, dst):
    """Puts a copy of `src` at `dst` the way a package manager does: a new
    file renamed over the old one (the running binary's inode stays)."""
    tmp = dst + ".new"
    shutil.copy(src, tmp)
    os.chmod(tmp, 0o755)
    os.rename(tmp, dst)


def install_script(text, dst):
    tmp = dst + ".new"
    with open(tmp, "w") as f:
        f.write("#!/bin/sh\n" + text)
    os.chmod(tmp, 0o755)
    os.rename(tmp, dst)


def wait_pid(pid, timeout):
    """The exit status of `pid` (our child, or re-parented to us); killed
    and failed after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            check(False, "pid %d did not exit within %ss" % (pid, timeout))
        time.sleep(0.01)


def release(fifo, timeout=DEFAULT_TIMEOUT):
    """Writes a line into `fifo` once its reader (the fake new echod) has
    opened it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            check(e.errno == errno.ENXIO and time.monotonic() < deadline,
                  "the script never opened %s: %s" % (fifo, e))
            time.sleep(0.01)
    os.write(fd, b"go\n")
    os.close(fd)


@contextlib.contextmanager
def echod_from_copy(*args, **kw):
    """An Echod (not --quiet) run from a copy of the binary in a temporary
    directory (readable by all: --user runs it too), which the test may
    replace. Yields (echod, directory, the copy's path)."""
    tmp = tempfile.mkdtemp(prefix="echod-upgrade-")
    os.chmod(tmp, 0o755)
    binary = os.path.join(tmp, "echod")
    install(ECHOD, binary)
    try:
        with Echod(binary, MODE, *args, quiet=False, **kw) as d:
            yield d, tmp, binary
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def still_serving(d):
    """The old echod echoes, and stops with status 0."""
    s = connect(d.port)
    roundtrip(s, b"still here")
    s.close()
    check(d.stop() == 0, "exit status")


def stderr_match(d, pattern, after, timeout=DEFAULT_TIMEOUT):
    """Polls the shared stderr for what the new echod says (wait_stderr()
    gives up once the old one has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, d.stderr()[after:], re.M)
        if m:
            return m
        check(time.monotonic() < deadline, "no %r on stderr" % pattern)
        time.sleep(0.01)


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def bench(port, *args):
    return subprocess.Popen([BENCH, "--connect", "127.0.0.1:%d" % port,
                             "--backend", client_backend(MODE), "--json", "--warmup", "0"]
                            + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def bench_result(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    check(p.returncode == 0, "echo-bench exited %d: %s" % (p.returncode, err.decode()[-2000:]))
    return json.loads(out.decode().strip().splitlines()[-1])


def total_served(d):
    """Connections the old echod has accepted so far (SIGUSR1)."""
    m = re.search(r"connections \d+ open, (\d+) total", d.stats())
    check(m, "no total in the stats line")
    return int(m.group(1))


def workers():
    return workers_of(MODE)[1]


def check_every_worker_serves(d, pid):
    """With workers: 200 connections to the new echod, then its SIGUSR1
    lines show each worker has accepted some."""
    if workers() == 1:
        return
    for i in range(200):
        s = connect(d.port)
        roundtrip(s, b"spread %d" % i)
        s.close()
    before = len(d.stderr())
    os.kill(pid, signal.SIGUSR1)
    for w in range(1, workers() + 1):
        m = stderr_match(d, r"^echod: stats: worker %d: connections \d+ open, (\d+) total" % w,
                         before)
        print("new echod, worker %d: %s connections" % (w, m.group(1)))
        check(int(m.group(1)) > 0, "worker %d of the new echod accepted nothing" % w)


def test_upgrade_under_load():
    """The binary is replaced on disk, then SIGUSR2 while echo-bench opens
    200 connections/s (5 echoes each) and 4 others echo 1,000 messages/s
    for the whole time: no refused, reset or failed connection, every byte
    echoed right, the new PID serving afterwards, the old one gone with
    status 0, the Unix socket file still there."""
    tmp = tempfile.mkdtemp(prefix="echod-upgrade-")
    binary, path = os.path.join(tmp, "echod"), os.path.join(tmp, "s")
    install(ECHOD, binary)
    new_pid = None
    try:
        with Echod(binary, MODE, "--grace", "20", "--udp", "127.0.0.1:0", "--agent",
                   "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--listen", "unix:" + path,
                   lines=4, quiet=False, timeout=20) as d:
            churn = bench(d.port, "--churn", "200/s", "--per-conn", "5", "--conns", "100",
                          "--duration", "4")
            steady = bench(d.port, "--conns", "4", "--rate", "1000", "--duration", "4")
            deadline = time.monotonic() + DEFAULT_TIMEOUT
            while total_served(d) < 50:  # both are under way
                check(time.monotonic() < deadline, "echo-bench did not get going")
                time.sleep(0.05)
            install(ECHOD, binary)  # the "new version"
            d.signal(signal.SIGUSR2)
            m = d.wait_stderr(SERVING, timeout=20)
            new_pid = int(m.group(1))
            print("hand-over %s ms, %s connections draining" % (m.group(2), m.group(3)))
            check(new_pid != d.proc.pid, "the same pid")
            status = d.wait(timeout=30)  # the old one, after its connections end
            check(status == 0, "old echod exited %s: %s" % (status, d.stderr()[-2000:]))
            for name, b in (("churn", churn), ("steady", steady)):
                r = bench_result(b)
                failures = r.get("churn", {}).get("failures", {})
                check(r["errors"] == 0 and r["connect_failures"] == 0 and r["timed_out"] == 0
                      and not any(failures.values()),
                      "%s: errors in %s" % (name, json.dumps(r)))
                check(r["messages"] > 0, "%s echoed nothing" % name)
                print("%s: %d messages, %s" % (name, r["messages"],
                                               json.dumps(r.get("churn", {}).get("failures"))))
            # churn's connections after the hand-over went to the new one.
            before = len(d.stderr())
            os.kill(new_pid, signal.SIGUSR1)
            m = stderr_match(d, r"^echod: stats: .*connections \d+ open, (\d+) total", before)
            check(int(m.group(1)) > 0, "the new echod accepted none of echo-bench's connections")
            check_every_worker_serves(d, new_pid)
            # The new one serves the same port, the agent's and the socket file.
            s = connect(d.port)
            roundtrip(s, b"after the upgrade")
            s.close()
            u = socket.socket(socket.AF_UNIX)
            u.settimeout(DEFAULT_TIMEOUT)
            u.connect(path)
            roundtrip(u, b"unix too")
            u.close()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as g:
                g.settimeout(DEFAULT_TIMEOUT)
                g.sendto(b"datagram", d.addrs[1])
                check(g.recv(100) == b"datagram", "udp after the upgrade")
            a = connect(d.addrs[2][1])
            check(a.recv(64).startswith(b"up"), "the agent does not answer")
            a.close()
            m = connect(d.addrs[3][1])
            m.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            check(m.recv(64).startswith(b"HTTP/1.1 200"), "--metrics does not answer")
            m.close()
            os.kill(new_pid, signal.SIGTERM)
            check(wait_pid(new_pid, 20) == 0, "new echod's exit status")
            new_pid = None
            check(not os.path.exists(path), "the new echod left its socket file")
    finally:
        if new_pid:
            kill_quietly(new_pid)
        shutil.rmtree(tmp, ignore_errors=True)


def test_failed_start():
    """The file is replaced by a script that exits 1: the old echod says so
    in one line, reaps it and keeps serving."""
    with echod_from_copy() as (d, tmp, binary):
        install_script("exit 1\n", binary)
        d.signal(signal.SIGUSR2)
        m = d.wait_stderr(r"^echod: upgrade failed: new echod \(pid (\d+)\) exited with "
                          r"status 1; still serving$")
        check(not os.path.exists("/proc/%s" % m.group(1)), "the failed child is not reaped")
        check(d.stderr().count("upgrade failed") == 1, "more than one line: " + d.stderr())
        still_serving(d)


def test_second_sigusr2_refused():
    """SIGUSR2 while the new echod has not said it serves is refused in one
    line; the first upgrade's failure (exit 3) is then said."""
    with echod_from_copy() as (d, tmp, binary):
        fifo = os.path.join(tmp, "go")
        os.mkfifo(fifo)
        install_script("read x < %s\nexit 3\n" % fifo, binary)
        d.signal(signal.SIGUSR2)
        d.wait_stderr(r"^echod: SIGUSR2: starting .* \(pid \d+\) with %d sockets$" % workers())
        d.signal(signal.SIGUSR2)
        d.wait_stderr(r"^echod: SIGUSR2 refused: an upgrade is in progress "
                      r"\(new echod pid \d+\)$")
        release(fifo)
        d.wait_stderr(r"^echod: upgrade failed: new echod \(pid \d+\) exited with status 3; "
                      r"still serving$")
        still_serving(d)


def upgrade(d):
    """SIGUSR2, then the new echod's pid once it serves; the old one's exit
    status is checked to be 0."""
    d.signal(signal.SIGUSR2)
    pid = int(d.wait_stderr(SERVING).group(1))
    status = d.wait()
    if status != 0:
        kill_quietly(pid)
        check(False, "old echod exited %s: %s" % (status, d.stderr()[-2000:]))
    return pid


@contextlib.contextmanager
def upgraded(d):
    """upgrade(d); yields the new echod's pid, and ends it on the way out:
    SIGTERM and status 0 (killed if the block failed)."""
    pid = upgrade(d)
    try:
        yield pid
    except BaseException:
        kill_quietly(pid)
        raise
    os.kill(pid, signal.SIGTERM)
    check(wait_pid(pid, 20) == 0, "new echod's exit status")


def test_silent_start():
    """A new binary that never says it serves is killed after 10 s, said in
    one line; the old echod never stopped serving. (10 s of waiting: run in
    one readiness mode and the completion engine, the timer being the
    policy's, the same in every mode, and epoll-w2: the main thread's loop.)"""
    if MODE not in ("epoll", "engine-uring", "epoll-w2"):  # with workers: the main thread's
        raise Skip("run in epoll, engine-uring and epoll-w2 only (a 10 s wait)")
    with echod_from_copy() as (d, tmp, binary):
        install_script("exec sleep 60\n", binary)
        d.signal(signal.SIGUSR2)
        m = d.wait_stderr(r"^echod: SIGUSR2: starting .* \(pid (\d+)\)")
        s = connect(d.port)
        roundtrip(s, b"served meanwhile")
        s.close()
        d.wait_stderr(r"^echod: upgrade failed: new echod \(pid %s\) did not say it serves "
                      r"within 10 s \(killed\); still serving$" % m.group(1), timeout=30)
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while os.path.exists("/proc/%s" % m.group(1)):  # reaped: no zombie left
            check(time.monotonic() < deadline, "the killed child is not reaped")
            time.sleep(0.01)
        check(d.stderr().count("upgrade failed") == 1, "more than one line: " + d.stderr())
        still_serving(d)


def test_settings_kept():
    """A proxy=v1 listener is still one after the upgrade: the handed-over
    socket was matched to its --listen, settings included."""
    with Echod(ECHOD, MODE, listen="127.0.0.1:0,proxy=v1", lines=1, quiet=False) as d:
        with upgraded(d):
            s = connect(d.port)
            s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 4242 10000\r\n")
            roundtrip(s, b"behind a balancer")
            s.close()
            s = connect(d.port)
            s.sendall(b"no header here\r\n")
            check(closed_by_peer(s), "a connection without a header was served")
            s.close()


def test_other_command_line():
    """The new binary is started with another --listen: it says which
    socket does not match and exits 1; the old one keeps serving."""
    if workers() > 1:
        raise Skip("with workers: test_other_worker_count")
    with echod_from_copy() as (d, tmp, binary):
        install_script('exec "%s" --listen unix:%s/other\n' % (ECHOD, tmp), binary)
        d.signal(signal.SIGUSR2)
        d.wait_stderr(r"^echod: upgrade: --listen unix:\S+/other: the old echod passed "
                      r"127\.0\.0\.1:%d \(fd 3\) in its place$" % d.port)
        d.wait_stderr(r"^echod: upgrade failed: new echod \(pid \d+\) exited with status 1; "
                      r"still serving$")
        still_serving(d)


def test_other_worker_count():
    """With workers: a new echod with another --workers (3) would leave
    sockets untaken (or take fewer than it needs): it says so in one line
    and exits 1; the old one keeps serving."""
    if workers() == 1:
        raise Skip("--workers 2 modes only")
    with echod_from_copy() as (d, tmp, binary):
        install_script('exec "%s" "$@" --workers 3\n' % ECHOD, binary)
        d.signal(signal.SIGUSR2)
        d.wait_stderr(r"^echod: upgrade: the old echod passed 2 sockets, this command line "
                      r"\(--workers 3\) takes 3: start it with the same options and --workers$")
        d.wait_stderr(r"^echod: upgrade failed: new echod \(pid \d+\) exited with status 1; "
                      r"still serving$")
        still_serving(d)


def test_user():
    """echod started as root with --user nobody: the new echod, started by
    the old one as nobody, keeps serving as nobody (it cannot, and need
    not, switch again)."""
    if os.geteuid() != 0:
        raise Skip("--user needs root")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user 'nobody'")
    with echod_from_copy("--user", "nobody") as (d, tmp, binary):
        with upgraded(d) as pid:
            with open("/proc/%d/status" % pid) as f:
                uid = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
            check(uid == [str(nobody.pw_uid)] * 4, "uids of the new echod: %s" % uid)
            s = connect(d.port)
            roundtrip(s, b"served as nobody")
            s.close()


def test_socket_activated():
    """An echod started by socket activation hands its sockets over plain
    (as it was given them) and its --agent by role."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]

    def child():
        os.dup2(tcp.fileno(), 3)  # no CLOEXEC on the copy

    wrapper = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"]
    try:
        with Echod(ECHOD, MODE, "--agent", "127.0.0.1:0", listen=None, lines=1, quiet=False,
                   env={"LISTEN_FDS": "1", "LISTEN_FDNAMES": "echo"}, preexec_fn=child,
                   pass_fds=(3,), argv0=wrapper) as d:
            tcp.close()  # echod's copy is the one left
            with upgraded(d) as pid:
                d.wait_stderr(r"^echod: listening on stream 127\.0\.0\.1:%d \(fd 3, passed\)"
                              % port)
                check(d.stderr().count("upgrade: serving (pid %d)" % pid) == 1, d.stderr())
                s = connect(port)
                roundtrip(s, b"activated, then upgraded")
                s.close()
                a = connect(d.port)  # the agent
                check(a.recv(64).startswith(b"up"), "the agent does not answer")
                a.close()
    finally:
        tcp.close()


TESTS = [test_upgrade_under_load, test_failed_start, test_second_sigusr2_refused,
         test_silent_start, test_settings_kept, test_other_command_line,
         test_other_worker_count, test_user, test_socket_activated]


def main():
    global ECHOD, BENCH, MODE
    args = sys.argv[1:]
    if len(args) < 3:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    ECHOD, BENCH, MODE = args[0], args[1], args[2]
    try:
        become_subreaper()
    except Skip as e:
        print("skip all: %s" % e)
        return 77
    return run_tests(TESTS, args[3:], ECHOD, MODE)


if __name__ == "__main__":
    sys.exit(main())
