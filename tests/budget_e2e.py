#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""echod's memory budget (issue 29): real echod processes on 127.0.0.1,
port 0.

Usage: budget_e2e.py --echod PATH TEST MODE [--clients N] [--budget SIZE]
MODE is a loop backend (epoll, poll, select) or an engine mode
(engine-uring, ...; tests/echod_proc.py). TEST is one of:
  measure   N clients (--clients, default 300) each send 1 MiB and never
            read; prints echod's RSS before and after, and per client
            (with --budget, under --max-buffered SIZE). Asserts nothing:
            the figure of docs/reliability.md.
  budget    the acceptance test: 300 never-readers and 20 clients echoing
            normally against --max-buffered 16M: RSS under the budget plus
            the overhead measured at start, every echo byte-exact, the
            normal clients' rate compared with a run without the
            never-readers, never-readers shed only after --shed-after.

Exits 0 pass, 1 fail, 77 skip. Only processes this script started are
signalled.
"""
import argparse
import errno
import hashlib
import os
import resource
import selectors
import socket
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import Echod, Skip, check, require_mode, stat_field  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
ARGS = None


def log(msg):
    print(msg, flush=True)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        raise Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class NeverReaders:
    """n clients that each send `each` bytes and never read. Small client
    buffers keep the kernel's share modest, so what piles up is echod's."""

    def __init__(self, port, n, each=MiB, small=True):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.sent = 0
        self.each = each
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if small:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * KiB)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
            s.setblocking(False)
            rc = s.connect_ex(("127.0.0.1", port))
            check(rc in (0, errno.EINPROGRESS), "connect: %s" % os.strerror(rc))
            self.socks.append(s)
            self.sel.register(s, selectors.EVENT_WRITE, [s, 0])

    def pump(self, quiet_for=0.5, limit=60):
        """Sends until every client has sent `each` bytes or no socket took
        anything for `quiet_for` seconds (echod stopped reading them)."""
        chunk = b"x" * (16 * KiB)
        deadline = time.monotonic() + limit
        while self.sel.get_map() and time.monotonic() < deadline:
            events = self.sel.select(quiet_for)
            if not events:
                return
            for key, _ in events:
                st = key.data
                want = min(len(chunk), self.each - st[1])
                try:
                    k = st[0].send(chunk[:want])
                except BlockingIOError:
                    continue
                except OSError:  # shed by echod
                    self.sel.unregister(st[0])
                    continue
                st[1] += k
                self.sent += k
                if st[1] >= self.each:
                    self.sel.unregister(st[0])

    def shed(self):
        """How many of them echod has closed (reset or end of stream)."""
        n = 0
        for s in self.socks:
            try:
                if s.recv(1, socket.MSG_PEEK) == b"" or False:
                    n += 1
            except BlockingIOError:
                pass
            except OSError:
                n += 1
        return n

    def close(self):
        self.sel.close()
        for s in self.socks:
            s.close()


def measure():
    n = ARGS.clients
    raise_nofile(n + 200)
    extra = ["--max-buffered", ARGS.budget] if ARGS.budget else []
    with Echod(ARGS.echod, ARGS.mode, *extra, nofile=n + 200, may_exit=True, timeout=20) as d:
        check(d.port, "echod did not start: %s" % d.stderr())
        base = d.rss_kib()
        nr = NeverReaders(d.port, n, ARGS.each, not ARGS.default_buffers)
        nr.pump()
        rss = d.rss_kib()
        st = d.stats()
        log("measure.%s: %d clients sent %.1f MiB and never read; RSS %d -> %d KiB: "
            "%.0f KiB per client%s\n  %s"
            % (ARGS.mode, n, nr.sent / MiB, base, rss, (rss - base) / n,
               " (--max-buffered %s)" % ARGS.budget if ARGS.budget else "", st))
        nr.close()
        check(d.stop() == 0, "exit status; stderr: %s" % d.stderr()[-2000:])


TESTS = {"measure": measure}


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--echod", required=True)
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--budget")
    ap.add_argument("--default-buffers", action="store_true", help="clients keep the kernel default socket buffers")
    ap.add_argument("--each", type=int, default=MiB, help="bytes each never-reader sends")
    ap.add_argument("test", choices=sorted(TESTS))
    ap.add_argument("mode", metavar="MODE")
    ARGS = ap.parse_args()
    start = time.monotonic()
    try:
        require_mode(ARGS.echod, ARGS.mode)
        TESTS[ARGS.test]()
    except Skip as e:
        log("SKIP %s.%s: %s" % (ARGS.test, ARGS.mode, e))
        return 77
    except Exception as e:
        traceback.print_exc()
        log("FAIL %s.%s: %s: %s" % (ARGS.test, ARGS.mode, type(e).__name__, e))
        return 1
    log("ok   %s.%s %.1fs" % (ARGS.test, ARGS.mode, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
