# SPDX-License-Identifier: MIT
"""Real echod processes and TCP clients for the end-to-end tests.

Shared by the scripts that run echod (tests/echod_e2e.py, reliability_e2e.py,
...), with their command line and verdicts (command_line(), run_tests(),
run_one()). An Echod is a context manager: the process it
started (and only that one) is always killed and reaped on the way out.
Readiness is polled for: the bound port-0 addresses are read from echod's
stdout, and stderr is searched as it grows.

A test runs in a MODE: a readiness backend of the loop (epoll, poll, select,
uring: `echod --engine loop --backend MODE`) or `engine-uring`, the io_uring
completion engine (`echod --engine uring`). The engine is always named, so
that a mode tests what it names whatever echod's default (--engine auto). mode_args() gives echod's options for a
mode, mode_label() what echod calls it in its own lines. A test that only
makes sense for one backend compares the mode with that backend's name, so
an engine counts as "not that backend".

A mode the kernel refuses at run time (io_uring disabled by a sysctl or a
seccomp filter: echod exits 1 with `echod: --engine uring: not available
on this system`) raises Skip when an Echod starts, which every script
reports as exit 77; require_mode() asks once, before a script's tests, so
that tests that do not go through an Echod's start-up are skipped too.

Every wait has a deadline; DEFAULT_TIMEOUT (seconds) is the one default of
the client helpers and of the waits on echod.
"""
import argparse
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

DEFAULT_TIMEOUT = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Modes that select an engine rather than a backend: mode -> (--engine NAME,
# --backend NAME or None, more options). engine-uring-poll runs the engine as
# the guest of a poll loop (the loop watches the ring), instead of owning an
# epoll loop's wait; engine-uring-spin receives by spinning from the start
# (--spin-receive on), the path it otherwise takes only when saturated.
ENGINES = {
    "engine-uring": ("uring", None, []),
    "engine-uring-w2": ("uring", None, ["--workers", "2"]),
    "engine-uring-wauto": ("uring", None, ["--workers", "auto"]),
    "engine-uring-poll": ("uring", "poll", []),
    "engine-uring-spin": ("uring", None, ["--spin-receive", "on"]),
}
# A mode ending in -w2 (epoll-w2, engine-uring-w2) is the same mode with
# `--workers 2`: two threads, each with its own loop, engine and SO_REUSEPORT
# listener. One ending in -wauto is the mode with `--workers auto`: a worker
# per CPU in echod's affinity mask (the one it inherits from the test).
W2 = "-w2"
WAUTO = "-wauto"


def workers_of(mode):
    """(the mode without -w2 or -wauto, the workers it asks for)."""
    if mode.endswith(W2):
        return mode[:-len(W2)], 2
    if mode.endswith(WAUTO):
        return mode[:-len(WAUTO)], len(os.sched_getaffinity(0))
    return mode, 1


# What echod says, before exiting 1, when the kernel refuses the mode's
# interface (ENOSYS, EPERM): the test cannot run here.
UNAVAILABLE = re.compile(r"^echod: --(?:engine|backend) \S+: not available on this system.*$",
                         re.M)


class Skip(Exception):
    pass


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


# --------------------------------------------------------------------------
# modes


# A mode ending in SPLICED ("epoll-splice") is the mode before it with
# `--splice on`: every connection echoed through pipes (--engine loop).
SPLICED = "-splice"


def base_mode(mode):
    """The mode without its -splice suffix."""
    return mode[:-len(SPLICED)] if mode.endswith(SPLICED) else mode


def mode_args(mode):
    """echod's options for a mode: `--engine uring` for engine-uring (plus
    `--backend poll` for engine-uring-poll), `--engine loop --backend MODE`
    for anything else; `--splice on` after them for MODE-splice."""
    if mode.endswith(SPLICED):
        return mode_args(base_mode(mode)) + ["--splice", "on"]
    if mode in ENGINES:
        engine, backend, more = ENGINES[mode]
        return ["--engine", engine] + (["--backend", backend] if backend else []) + more
    base, workers = workers_of(mode)
    if base != mode:
        return mode_args(base) + ["--workers", "auto" if mode.endswith(WAUTO) else str(workers)]
    if mode == "auto":
        return ["--engine", "auto"]  # tests/echod_auto_e2e.py: what it chooses
    return ["--engine", "loop", "--backend", mode]


def mode_label(mode):
    """What echod calls the mode in `listening on ... (LABEL)` and
    `echod: stats: LABEL; ...`: "backend epoll", "engine uring"."""
    mode = base_mode(mode)
    if mode in ENGINES:
        return "engine " + ENGINES[mode][0]
    return "backend " + workers_of(mode)[0]


def require_mode(echod, mode, timeout=30):
    """Raises Skip if this system refuses `mode` at run time: echod, started
    in it on 127.0.0.1:0, exits saying it is not available. Any other
    outcome (it serves, fails otherwise, or is slow under a wrapper) is left
    for the tests to find."""
    try:
        with Echod(echod, mode, may_exit=True, timeout=timeout):
            pass
    except AssertionError:
        pass


def sanitized(echod):
    """True if echod is an ASan build: the runtime's symbols are in the binary."""
    with open(echod, "rb") as f:
        return b"__asan_init" in f.read()


def raise_nofile(want):
    """Raises RLIMIT_NOFILE to `want` here, or Skip if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        raise Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def client_backend(mode):
    """The loop backend for a client (echo-bench, echo-client) in a test of
    `mode`: the same backend, or auto for an engine (clients have none)."""
    mode = base_mode(mode)
    return "auto" if mode in ENGINES else workers_of(mode)[0]


# --------------------------------------------------------------------------
# echod processes


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Echod:
    """One echod process: `echod MODE-OPTIONS [--listen LISTEN] [--quiet] ARGS`.

    listen   --listen address (None: no --listen option)
    lines    how many port-0 addresses echod prints on stdout, read into
             self.addrs as (host, port); self.host and self.port are the
             first (None if there is none). Default: 1 if `listen` ends in
             ":0", else 0.
    may_exit if echod exits before printing them, leave them out (self.port
             None) rather than fail: for start-up failure tests. Either
             way, an exit because the mode is not available here raises
             Skip
    nofile   RLIMIT_NOFILE (soft) in the child
    fill_fds (lo, hi): the child inherits /dev/null on descriptors lo..hi-1
    env      variables merged over os.environ
    stdin, stdout, pass_fds, preexec_fn: as subprocess.Popen (stdout
             defaults to a pipe, which the addresses are read from)
    argv0    words before echod's own (a shell that execs "$@", say)
    timeout  seconds for the addresses to appear, and stop()'s and wait()'s
             default

    IOMUX_ECHOD_WRAPPER in the environment (e.g. "valgrind --leak-check=full
    --error-exitcode=1") runs echod under a tool: its words go right before
    echod's path (after argv0), so the process is still the one signalled.
    """

    def __init__(self, echod, mode, *args, listen="127.0.0.1:0", lines=None, may_exit=False,
                 quiet=True, nofile=None, fill_fds=None, env=None, stdin=None, stdout=None,
                 pass_fds=(), preexec_fn=None, argv0=None, timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.err = tempfile.TemporaryFile()
        self._pending = b""
        self.addrs = []
        self.host = self.port = None
        wrapper = os.environ.get("IOMUX_ECHOD_WRAPPER", "").split()
        argv = list(argv0 or []) + wrapper + [echod] + mode_args(mode)
        if listen:
            argv += ["--listen", listen]
        if quiet:
            argv.append("--quiet")
        argv += list(args)
        if lines is None:
            lines = 1 if listen and listen.endswith(":0") else 0
        full_env = None
        if env is not None:
            full_env = dict(os.environ)
            full_env.update(env)

        child = None
        if nofile is not None or fill_fds is not None or preexec_fn is not None:
            def child():
                # Runs in the child before exec: limits and extra descriptors.
                if nofile is not None:
                    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
                if fill_fds is not None:
                    lo, hi = fill_fds
                    null = os.open("/dev/null", os.O_RDONLY)
                    for fd in range(lo, hi):
                        if fd != null:
                            os.dup2(null, fd)
                    if not lo <= null < hi:
                        os.close(null)
                if preexec_fn is not None:
                    preexec_fn()

        try:
            self.proc = subprocess.Popen(argv, stdin=stdin,
                                         stdout=subprocess.PIPE if stdout is None else stdout,
                                         stderr=self.err, env=full_env, preexec_fn=child,
                                         close_fds=fill_fds is None, pass_fds=pass_fds)
        except BaseException:
            self.err.close()
            raise
        try:
            for _ in range(lines):
                line = self._read_line(timeout)
                if line is None:
                    self._skip_if_unavailable()
                    if may_exit:
                        break
                    fail("echod exited early (%s); stderr: %s" % (self.proc.poll(),
                                                                 self.stderr()))
                self.addrs.append(parse_addr(line))
        except BaseException:
            self.__exit__()
            raise
        if self.addrs:
            self.host, self.port = self.addrs[0]

    def _read_line(self, timeout):
        """The next line on echod's stdout, or None at end of file."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while b"\n" not in self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    fail("echod printed no address within %ss; stderr: %s" % (timeout,
                                                                              self.stderr()))
                chunk = os.read(fd, 4096)
                if not chunk:
                    return None
                self._pending += chunk
        finally:
            sel.close()
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def _skip_if_unavailable(self):
        """Raises Skip if echod exited (or is exiting: its stdout was closed)
        saying the mode is not available on this system."""
        try:
            self.proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            return
        m = UNAVAILABLE.search(self.stderr())
        if m:
            raise Skip(m.group(0))

    def stderr(self):
        """All echod has written to stderr so far. Read with pread: echod's
        stderr shares this file's offset, so a seek here while echod writes
        would make it overwrite what it wrote before."""
        fd = self.err.fileno()
        size = os.fstat(fd).st_size
        data = bytearray()
        while len(data) < size:
            chunk = os.pread(fd, size - len(data), len(data))
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")

    def wait_stderr(self, pattern, timeout=DEFAULT_TIMEOUT, after=0):
        """Polls stderr (from offset `after`) until `pattern` matches (re.M);
        returns the match. Fails at the deadline or when echod has exited
        without printing it."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll()
            text = self.stderr()
            m = re.search(pattern, text[after:], re.M)
            if m:
                return m
            if exited is not None:
                self._skip_if_unavailable()
                fail("echod exited (%s) and its stderr never matched %r: %s"
                     % (exited, pattern, text[-3000:]))
            if time.monotonic() > deadline:
                fail("echod stderr did not match %r within %ss: %s" % (pattern, timeout,
                                                                        text[-3000:]))
            time.sleep(0.005)

    def stats(self, timeout=DEFAULT_TIMEOUT, kind="stats"):
        """Asks for statistics (SIGUSR1); returns the new, complete line
        `echod: KIND: ...` ("stats", or "udp stats"), without its newline."""
        before = len(self.stderr())
        self.signal(signal.SIGUSR1)
        m = self.wait_stderr(r"^echod: %s: [^\n]*\n" % re.escape(kind), timeout, after=before)
        return m.group(0).rstrip("\n")

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        """Sends sig to this echod (nothing once it has been reaped)."""
        self.proc.send_signal(sig)

    def wait(self, timeout=None):
        """The exit status; killed, reaped and failed after timeout."""
        timeout = self.timeout if timeout is None else timeout
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("echod did not exit within %ss; stderr: %s" % (timeout, self.stderr()[-2000:]))

    def stop(self, timeout=None):
        """SIGTERM, then the exit status (killed and failed after timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def nfds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.err.closed:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.err.close()


def counters(d, pattern, fields, what):
    """The `what` counters that `pattern` finds in d's statistics line, by name."""
    line = d.stats()
    m = pattern.search(line)
    check(m, "no %s counters in %r" % (what, line))
    return dict(zip(fields, (int(x) for x in m.groups())))


def wait_counters(d, pattern, fields, what, want, timeout=DEFAULT_TIMEOUT):
    """Polls until the counters named in `want` have those values; returns all."""
    deadline = time.monotonic() + timeout
    while True:
        got = counters(d, pattern, fields, what)
        if all(got[k] == v for k, v in want.items()):
            return got
        if time.monotonic() > deadline:
            fail("%s counters %s, wanted %s" % (what, got, want))
        time.sleep(0.02)


def check_usage_error(command, args, want):
    """`command + args` (echod and its mode's options) is a usage error:
    exit 2, and stderr starts `echod: ` and names `want`."""
    r = subprocess.run(command + args, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    err = r.stderr.decode()
    check(r.returncode == 2 and err.startswith("echod: ") and want in err,
          "%s: exit %d, %r" % (args, r.returncode, err))


def stat_field(line, name):
    """The number after `name` in a statistics line ("idle closed 3")."""
    m = re.search(re.escape(name) + r" (\d+)", line)
    check(m, "no %r in %r" % (name, line))
    return int(m.group(1))


# --------------------------------------------------------------------------
# TCP clients


def connect(port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        s.close()
        raise
    return s


def recv_exact(s, n, timeout=DEFAULT_TIMEOUT):
    s.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            fail("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def try_clients(port, n, timeout=2):
    """Connects n clients one after the other, each echoing once: (the
    sockets served, kept open; how many were refused or closed)."""
    served, refused = [], 0
    for i in range(n):
        s = connect(port)
        try:
            roundtrip(s, b"x%d" % i, timeout=timeout)
            served.append(s)
        except (AssertionError, ConnectionResetError, BrokenPipeError, socket.timeout):
            refused += 1
            s.close()
    return served, refused


def roundtrip(s, data, timeout=DEFAULT_TIMEOUT):
    s.settimeout(timeout)
    s.sendall(data)
    got = recv_exact(s, len(data), timeout)
    check(got == data, "echo differs")


def closed_by_peer(s, timeout=DEFAULT_TIMEOUT):
    """True if the peer closed (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# --------------------------------------------------------------------------
# running tests


def command_line(doc, programs=1):
    """Reads `PROGRAM... MODE [TEST...]` from the command line: (the
    programs' absolute paths, MODE, the tests named). With fewer arguments
    it prints doc (the usage) and exits 2."""
    args = sys.argv[1:]
    if len(args) <= programs:
        print(doc, file=sys.stderr)
        sys.exit(2)
    return [os.path.abspath(p) for p in args[:programs]], args[programs], args[programs + 1:]


def mode_available(echod, mode):
    """False, after a `skip all` line, if this system refuses `mode`."""
    try:
        require_mode(echod, mode)
    except Skip as e:
        print("skip all: %s" % e, flush=True)
        return False
    return True


def run_tests(tests, args, echod=None, mode=None):
    """Runs the named tests (all by default); returns the exit status
    (0 pass, 1 fail, 77 all skipped). Given echod and mode, none runs (77)
    if the mode is not available here (mode_available())."""
    if echod is not None and not mode_available(echod, mode):
        return 77
    chosen = select_tests(tests, args)
    failed, skipped = run_each(chosen)
    return exit_status(failed, skipped, len(chosen))


def select_tests(tests, args):
    """The tests named in args ("test_x" or "x"), or all when none is."""
    return [t for t in tests if not args or t.__name__ in args or t.__name__[5:] in args]


def run_each(tests):
    """Runs each test, printing ok/skip/FAIL and its time; returns
    (failed, skipped)."""
    failed = skipped = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print("ok   %-28s %.2fs" % (t.__name__, time.monotonic() - start), flush=True)
        except Skip as e:
            skipped += 1
            print("skip %-28s %s" % (t.__name__, e), flush=True)
        except Exception as e:
            failed += 1
            print("FAIL %-28s %s: %s" % (t.__name__, type(e).__name__, e), flush=True)
    return failed, skipped


def one_test_parser(doc, tests):
    """The command line of a script that runs one of `tests` per process:
    `--echod ECHOD [OPTIONS] TEST MODE`; the script adds its options."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--echod", required=True)
    ap.add_argument("test", choices=sorted(tests))
    ap.add_argument("mode", metavar="MODE")
    return ap


def run_one(name, test, echod=None, mode=None):
    """Runs one test of a script that runs one per process, printing its
    verdict and time (a traceback if it fails); returns the exit status:
    0 pass, 1 fail, 77 skipped. Given echod and mode, it is skipped if the
    mode is not available here (require_mode())."""
    start = time.monotonic()
    try:
        if echod is not None:
            require_mode(echod, mode)
        test()
    except Skip as e:
        print("SKIP %s: %s" % (name, e), flush=True)
        return 77
    except Exception as e:
        traceback.print_exc()
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        return 1
    print("ok   %s %.1fs" % (name, time.monotonic() - start), flush=True)
    return 0


def exit_status(failed, skipped, total):
    """1 if any failed, 77 if every one was skipped, else 0."""
    if failed:
        return 1
    if skipped and skipped == total:
        return 77
    return 0


def udp_socket(host, port=0, family=None):
    """A UDP socket bound to (host, port), with a receive timeout."""
    family = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
    except PermissionError:
        s.close()
        raise Skip("cannot bind %s:%d (not root)" % (host, port))
    s.settimeout(5)
    return s
