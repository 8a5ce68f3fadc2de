# SPDX-License-Identifier: MIT
"""A real echod process for the UDP and daemon end-to-end tests.

Shared by tests/echod_udp_e2e.py and tests/echod_daemon_e2e.py. An Echod is
a context manager: the process it started (and only that one) is always
killed on the way out. Readiness is polled for: the bound port-0 addresses
are read from echod's stdout, and stderr is searched as it grows.
"""
import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import time


class Skip(Exception):
    pass


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Echod:
    """echod with `args`; `lines` is how many port-0 addresses it prints on
    stdout (they are read into self.addrs as (host, port) tuples)."""

    def __init__(self, echod, backend, *args, lines=0, quiet=True, stdin=None, stdout=None,
                 env=None, preexec_fn=None, pass_fds=(), argv0=None):
        self.err = tempfile.TemporaryFile()
        self._pending = b""
        argv = list(argv0 or []) + [echod, "--backend", backend]
        if quiet:
            argv.append("--quiet")
        argv += list(args)
        self.proc = subprocess.Popen(argv, stdin=stdin,
                                     stdout=subprocess.PIPE if stdout is None else stdout,
                                     stderr=self.err, env=env, preexec_fn=preexec_fn,
                                     pass_fds=pass_fds)
        self.addrs = []
        try:
            for _ in range(lines):
                self.addrs.append(parse_addr(self._read_line(10)))
        except BaseException:
            self.__exit__()
            raise

    def _read_line(self, timeout):
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
                    fail("echod exited early (%s); stderr: %s" % (self.proc.poll(),
                                                                 self.stderr()))
                self._pending += chunk
        finally:
            sel.close()
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def wait_stderr(self, pattern, timeout=10, after=0):
        """Polls stderr (from offset `after`) until `pattern` matches."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr()
            m = re.search(pattern, text[after:], re.M)
            if m:
                return m
            if self.proc.poll() is not None or time.monotonic() > deadline:
                fail("echod stderr never matched %r: %s" % (pattern, text[-3000:]))
            time.sleep(0.005)

    def stats(self, kind="udp stats"):
        """Asks for statistics (SIGUSR1); returns the new line `echod: KIND: ...`."""
        before = len(self.stderr())
        self.proc.send_signal(signal.SIGUSR1)
        m = self.wait_stderr(r"^echod: %s: .*$" % kind, after=before)
        return m.group(0)

    def wait(self, timeout=10):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("echod did not exit within %ss; stderr: %s" % (timeout, self.stderr()[-2000:]))

    def stop(self, timeout=10):
        """SIGTERM, then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.err.close()


def stat_field(line, name):
    """The number after `name` in a statistics line."""
    m = re.search(re.escape(name) + r" (\d+)", line)
    check(m, "no %r in %r" % (name, line))
    return int(m.group(1))


def run_tests(tests, args):
    """Runs the named tests (all by default); returns the exit status
    (0 pass, 1 fail, 77 all skipped)."""
    chosen = [t for t in tests if not args or t.__name__ in args or t.__name__[5:] in args]
    failed = skipped = 0
    for t in chosen:
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
    if failed:
        return 1
    if skipped and skipped == len(chosen):
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
