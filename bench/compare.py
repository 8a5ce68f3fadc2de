#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""compare.py - echod against the servers users would pick instead (issue 6).

Runs scenarios S1..S6 against every server (echod on each backend, the
reference peers in bench/peers/, the seed's Python servers), interleaving
the servers round by round so that drift on a shared machine hits all of
them alike. Each trial starts a fresh server on a fresh port, pinned to
CPU 0, with echo-bench pinned to CPU 1. Besides echo-bench's own figures
(messages/s, latency percentiles, every byte checked) it records two
figures that do not depend on how busy the machine is:

  * server CPU time per message: the server's utime+stime from
    /proc/PID/stat, sampled every 50 ms and interpolated over exactly
    echo-bench's measured window;
  * system calls per echoed message: `perf stat -e raw_syscalls:sys_enter`
    (or `strace -c -f` when perf cannot) attached to the server, over a
    full run minus a run that only connects and disconnects, so that
    connection set-up is not charged to the messages.

The --workers rows (issue 23) are placed differently: the server may run
on both CPUs and echo-bench runs 2 threads (at most one per connection),
unpinned, so that a second worker has a CPU and connections to take. Their
-w1 twins run the same way with one worker: compare -w2 with -w1, not with
the pinned rows. The -w2-steer rows are the -w2 ones with --steer cpu
(each worker pinned to a CPU, connections steered to the worker on the CPU
that received them), placed the same way. The server's CPU time is summed
over all its threads, and so are the times its threads went to sleep
(voluntary context switches, per 1,000 messages: the wake-ups paid for).

S5 also gives the user-space memory per idle connection: the server's RSS
while the 10,100 connections are open, minus its RSS after a short warm-up
with one connection, divided by the connections.

Every trial is one JSON line in bench/results/new/<stamp>.jsonl; report.py
turns a results file into docs/benchmarks.md and the SVG charts.

Only processes started here are ever signalled, by their PID.
"""
import argparse
import json
import os
import platform
import random
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HZ = os.sysconf("SC_CLK_TCK")
# The readiness waits, counted apart from the per-message system calls.
WAITS = ["epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6"]

SCENARIOS = {
    "S1": {"title": "1 connection, 64 B, depth 1 (latency)", "args": ["--conns", "1", "--size", "64"]},
    "S2": {"title": "100 connections, 64 B", "args": ["--conns", "100", "--size", "64"]},
    "S3": {
        "title": "1,000 connections, 64 B (paced connects)",
        "args": ["--conns", "1000", "--size", "64", "--connect-rate", "5000"],
    },
    "S4": {"title": "10 connections, 16 KiB (throughput)", "args": ["--conns", "10", "--size", "16384"]},
    "S5": {
        "title": "10,000 idle + 100 active connections, 64 B (C10K)",
        "args": ["--conns", "100", "--idle", "10000", "--size", "64", "--connect-rate", "10000"],
    },
    # Large messages, where echod --splice pays (issue 28, docs/splice.md).
    "S6": {"title": "10 connections, 256 KiB (large messages)",
           "args": ["--conns", "10", "--size", "262144"]},
}


def servers(build):
    """Every server we know, with its command line (port 0) and the
    scenarios it takes part in; missing binaries are skipped later."""
    echod = os.path.join(build, "apps/echod/echod")
    py = sys.executable
    fix = os.path.join(ROOT, "tests/fixtures")
    peers = os.path.join(build, "bench")
    all_s = list(SCENARIOS)

    def echod_cmd(*opts):
        return [echod, "--listen", "127.0.0.1:0"] + list(opts) + ["--quiet"]

    out = [
        ("lean-epoll", [os.path.join(peers, "peer_lean_epoll"), "0"], all_s),
        # Each names its engine: echod's default (--engine auto) would
        # otherwise choose for them.
        ("echod-epoll", echod_cmd("--engine", "loop", "--backend", "epoll"), all_s),
        # --splice (issue 28): echod-epoll is auto, the default; off and on
        # beside it, for the ratios of docs/splice.md.
        ("echod-epoll-splice-off", echod_cmd("--engine", "loop", "--backend", "epoll",
                                             "--splice", "off"), all_s),
        ("echod-epoll-splice-on", echod_cmd("--engine", "loop", "--backend", "epoll",
                                            "--splice", "on"), all_s),
        ("echod-poll", echod_cmd("--engine", "loop", "--backend", "poll"), all_s),
        ("echod-select", echod_cmd("--engine", "loop", "--backend", "select"), all_s),
        ("echod-uring", echod_cmd("--engine", "loop", "--backend", "uring"), all_s),
        # The io_uring completion engine (issue 9), next to the readiness
        # backends it has to beat.
        ("echod-engine-uring", echod_cmd("--engine", "uring"), all_s),
        # --splice on with the io_uring engine (IORING_OP_SPLICE); its
        # --splice auto is off (docs/design.md): echod-engine-uring is the copy.
        ("echod-engine-uring-splice-on", echod_cmd("--engine", "uring", "--splice", "on"), all_s),
        # Without batched waits (--batch-wait 0): a wake-up per receive.
        ("echod-engine-uring-nobatch", echod_cmd("--engine", "uring", "--batch-wait", "0"), all_s),
        # The same with --busy-poll: spins instead of sleeping, for CPU.
        ("echod-engine-uring-busy", echod_cmd("--engine", "uring", "--busy-poll", "50"), all_s),
        # A clean listener (measured) next to a fault listener (issue 26):
        # paired with echod-epoll and echod-engine-uring, faults must cost
        # the clean one nothing.
        ("echod-epoll-faults", echod_cmd("--engine", "loop", "--backend", "epoll", "--listen",
                                         "127.0.0.1:0,delay=50,reset-after=4096"), ["S2"]),
        ("echod-engine-uring-faults", echod_cmd("--engine", "uring", "--listen",
                                                "127.0.0.1:0,delay=50,reset-after=4096"), ["S2"]),
        # --workers (issue 23), placed as placement() says: 2 workers against
        # 1, both engines, the same placement and load for both.
        ("echod-epoll-w1", echod_cmd("--engine", "loop", "--backend", "epoll", "--workers", "1"), all_s),
        ("echod-epoll-w2", echod_cmd("--engine", "loop", "--backend", "epoll", "--workers", "2"), all_s),
        ("echod-engine-uring-w1", echod_cmd("--engine", "uring", "--workers", "1"), all_s),
        ("echod-engine-uring-w2", echod_cmd("--engine", "uring", "--workers", "2"), all_s),
        # The same 2 workers pinned, each connection steered to the worker on
        # the CPU that received it (--steer cpu): compared with -w1 too.
        ("echod-epoll-w2-steer", echod_cmd("--engine", "loop", "--backend", "epoll", "--workers", "2",
                                           "--steer", "cpu"), all_s),
        ("echod-engine-uring-w2-steer", echod_cmd("--engine", "uring", "--workers", "2",
                                                  "--steer", "cpu"), all_s),
        ("libuv", [os.path.join(peers, "peer_uv"), "0"], all_s),
        ("libev", [os.path.join(peers, "peer_ev"), "0"], all_s),
        ("libevent", [os.path.join(peers, "peer_event"), "0"], all_s),
        # The seed as written: select() cannot go past 1,024 fds and
        # listen(5) cannot take a 10,000-connection burst, so S5 is not run.
        ("seed-select.py", [py, os.path.join(fix, "select_echo_server.py"), "0"], ["S1", "S2", "S3", "S4"]),
        ("seed-poll.py", [py, os.path.join(fix, "poll_echo_server.py"), "0"], ["S1", "S2", "S3", "S4"]),
    ]
    avail = []
    for name, argv, scen in out:
        prog = argv[1] if argv[0] == py else argv[0]
        if os.path.exists(prog):
            avail.append((name, argv, scen))
        else:
            print(f"compare.py: {name}: {prog} not built (library missing?): skipped", file=sys.stderr)
    return avail


def pin(cpu):
    if shutil.which("taskset") and subprocess.run(["taskset", "-c", str(cpu), "true"]).returncode == 0:
        return ["taskset", "-c", str(cpu)]
    return []


# echo-bench threads for the --workers rows: one per worker of the -w2 rows.
SPREAD_THREADS = 2


def placement(argv, scen_args, pin0, pin1):
    """(server's taskset prefix, echo-bench's, echo-bench's extra options).
    The --workers rows are not pinned and echo-bench runs SPREAD_THREADS
    threads (at most one per connection it opens); every other server runs
    on CPU 0 against one echo-bench thread on CPU 1."""
    if "--workers" not in argv:
        return pin0, pin1, []
    opt = dict(zip(scen_args[::2], scen_args[1::2]))
    return [], [], ["--threads", str(min(SPREAD_THREADS, int(opt["--conns"])))]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """A server process we started; stopped by its own PID only."""

    def __init__(self, argv, pin0, log_path):
        self.log = open(log_path, "w")
        # taskset execs the server, so Popen's PID is the server's.
        self.proc = subprocess.Popen(pin0 + argv, stdout=subprocess.PIPE, stderr=self.log,
                                     preexec_fn=raise_nofile)
        self.pid = self.proc.pid
        self.addr = self._read_addr()

    def _read_addr(self):
        r, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not r:
            self.stop()
            raise RuntimeError("server did not print its address")
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            self.stop()
            raise RuntimeError("server exited before printing its address")
        return line

    def threads(self):
        try:
            return os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return []

    def cpu_ns(self):
        """CPU time used so far: the schedstat of every thread of the
        process in nanoseconds (the clock-tick figures of /proc/PID/stat
        are too coarse for a 1 s window; /proc/PID/schedstat is the main
        thread's alone, which missed --workers' threads and the io-wq
        workers that run echod's IORING_OP_SPLICE), else utime+stime from
        /proc/PID/stat."""
        try:
            total = 0
            for tid in self.threads():
                try:
                    with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                        total += int(f.read().split()[0])
                except OSError:
                    pass  # a thread that ended between the listing and the read
            if total:
                return total
        except (OSError, IndexError, ValueError):
            pass
        us = self.cpu_split()
        return None if us is None else (us[0] + us[1]) * 1e9 / HZ

    def sleeps(self):
        """Times the server's threads went to sleep so far (voluntary
        context switches, summed over /proc/PID/task): each is a wake-up
        paid for later."""
        total = 0
        for tid in self.threads():
            try:
                with open(f"/proc/{self.pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                pass  # a thread that ended between the listing and the read
        return total

    def cpu_split(self):
        """(utime, stime) in clock ticks, from /proc/PID/stat."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]), int(fields[12])
        except (OSError, IndexError):
            return None

    def rss_kb(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def nfds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Sampler(threading.Thread):
    """Samples a server's CPU time and RSS every 50 ms."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.samples = []  # (monotonic time, CPU ns, sleeps)
        self.rss_max = 0
        self.threads_max = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t = time.monotonic()
            cpu = self.server.cpu_ns()
            rss = self.server.rss_kb()
            if cpu is not None:
                self.samples.append((t, cpu, self.server.sleeps()))
            if rss:
                self.rss_max = max(self.rss_max, rss)
            self.threads_max = max(self.threads_max, len(self.server.threads()))
            self.halt.wait(0.05)

    def cpu_at(self, t, k=1):
        """Sample k (1: CPU ns, 2: sleeps) at time t, interpolated."""
        s = [(x[0], x[k]) for x in self.samples]
        if not s:
            return None
        if t <= s[0][0]:
            return s[0][1]
        for (t0, v0), (t1, v1) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
        return s[-1][1]


def run_bench(bench, pin1, addr, scen_args, duration, warmup, timeout, extra=()):
    """Runs echo-bench; returns (json or None, time its report appeared, rc, stderr tail)."""
    argv = pin1 + [bench, "--connect", addr, "--json", "--duration", str(duration),
                   "--warmup", str(warmup)] + scen_args + list(extra)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=raise_nofile)
    report, t_report = None, None
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            if t_report is None:
                t_report = time.monotonic()
            buf += chunk
        elif p.poll() is not None:
            break
    if p.poll() is None and time.monotonic() >= deadline:
        p.kill()
    _, err = p.communicate()
    try:
        report = json.loads(buf.decode().strip().splitlines()[0]) if buf.strip() else None
    except (ValueError, IndexError):
        report = None
    return report, t_report, p.returncode, err.decode(errors="replace")[-400:]


def wait_fds(server, at_most, limit_s):
    t0 = time.monotonic()
    while server.nfds() > at_most and time.monotonic() - t0 < limit_s:
        time.sleep(0.02)


def trial(args, name, argv, scen, rnd, pin0, pin1, bench):
    log = os.path.join(args.tmp, f"{name}.{scen}.log")
    rec = {"kind": "trial", "server": name, "scenario": scen, "round": rnd}
    pin0, pin1, extra = placement(argv, SCENARIOS[scen]["args"], pin0, pin1)
    if extra:
        rec["placement"] = "unpinned, echo-bench " + " ".join(extra)
    try:
        srv = Server(argv, pin0, log)
    except (RuntimeError, OSError) as e:
        rec["status"] = f"server failed to start: {e}"
        return rec
    try:
        if scen == "S5":
            # Warm the server's buffers with one connection, so that the
            # RSS baseline already holds what does not grow per connection.
            warm = ["--conns", "1", "--size", "64"]
            run_bench(bench, pin1, srv.addr, warm, 0.2, 0, 20, placement(argv, warm, [], [])[2])
            time.sleep(0.1)
            rec["rss_base_kb"] = srv.rss_kb()
        split0 = srv.cpu_split()
        sampler = Sampler(srv)
        sampler.start()
        report, t_rep, rc, err = run_bench(bench, pin1, srv.addr, SCENARIOS[scen]["args"],
                                           args.duration, args.warmup, args.duration + args.warmup + 60,
                                           extra)
        sampler.halt.set()
        sampler.join()
        split1 = srv.cpu_split()
        if split0 and split1:
            # Whole-run user/system split, for telling our code from the kernel's.
            rec["user_s"] = (split1[0] - split0[0]) / HZ
            rec["sys_s"] = (split1[1] - split0[1]) / HZ
        rec["bench_rc"] = rc
        rec["threads_max"] = sampler.threads_max
        if report is None:
            rec["status"] = "no report: " + err.strip().replace("\n", " | ")
        else:
            rec["status"] = "ok" if rc == 0 else "errors"
            rec["bench"] = report
            if rc != 0:
                rec["bench_stderr"] = err.strip().splitlines()[-1] if err.strip() else ""
            win = report.get("duration_s", 0)
            msgs = report.get("messages", 0)
            if t_rep and win > 0 and msgs > 0:
                a = sampler.cpu_at(t_rep - win)
                b = sampler.cpu_at(t_rep)
                if a is not None and b is not None:
                    rec["server_cpu_s"] = (b - a) / 1e9
                    rec["cpu_us_per_msg"] = (b - a) / 1e3 / msgs
                    z0, z1 = sampler.cpu_at(t_rep - win, 2), sampler.cpu_at(t_rep, 2)
                    rec["sleeps_per_kmsg"] = (z1 - z0) * 1000 / msgs
            if scen == "S5" and rec.get("rss_base_kb"):
                # Per connection actually held: select refuses past its limit.
                conns = report.get("conns", 0) + report.get("idle", 0) - report.get("idle_closed", 0)
                rec["rss_max_kb"] = sampler.rss_max
                rec["bytes_per_conn"] = (sampler.rss_max - rec["rss_base_kb"]) * 1024 / conns
    finally:
        srv.stop()
    # What the server said (echod's refusal lines under select in S5).
    try:
        with open(log) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        if lines and name.startswith("echod"):
            rec["server_log"] = lines[:3]
    except OSError:
        pass
    return rec


def syscall_counter():
    """perf if it can count the raw_syscalls tracepoint here, else strace."""
    if shutil.which("perf"):
        r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"],
                           capture_output=True, text=True)
        if r.returncode == 0 and "raw_syscalls" in r.stderr and "not supported" not in r.stderr:
            return "perf"
    if shutil.which("strace"):
        return "strace"
    return None


def count_syscalls(args, tool, argv, scen_args, duration, pin0, pin1, bench, name):
    """System calls a fresh server makes during one echo-bench run (set-up,
    traffic and teardown), and the messages echo-bench counted."""
    out = os.path.join(args.tmp, f"{name}.sys")
    pin0, pin1, extra = placement(argv, scen_args, pin0, pin1)
    srv = Server(argv, pin0, os.path.join(args.tmp, f"{name}.sys.log"))
    base_fds = srv.nfds()
    if tool == "perf":
        events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{w}" for w in WAITS]
        cmd = ["perf", "stat", "-x,", "-o", out, "-e", ",".join(events), "-p", str(srv.pid)]
    else:
        cmd = ["strace", "-c", "-f", "-o", out, "-p", str(srv.pid)]
    counter = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # let it attach
    try:
        report, _, rc, _ = run_bench(bench, pin1, srv.addr, scen_args, duration, 0, duration + 60, extra)
        wait_fds(srv, base_fds, 5)  # the server has seen every close
        time.sleep(0.1)
    finally:
        counter.send_signal(signal.SIGINT)
        try:
            counter.wait(10)
        except subprocess.TimeoutExpired:
            counter.kill()
            counter.wait()
        srv.stop()
    n, waits = None, 0
    try:
        with open(out) as f:
            text = f.read()
        for line in text.splitlines():
            if tool == "perf":
                f = line.split(",")
                if len(f) < 3 or not f[0].strip().isdigit():
                    continue
                if f[2] == "raw_syscalls:sys_enter":
                    n = int(f[0])
                elif f[2].startswith("syscalls:sys_enter_") and f[2][19:] in WAITS:
                    waits += int(f[0])
            else:
                f = line.split()
                if f and f[-1] == "total":
                    n = int(f[2])
                elif f and f[-1] in WAITS:
                    waits += int(f[3])
    except (OSError, ValueError):
        pass
    msgs = report.get("messages", 0) if report else 0
    return n, waits, msgs


def syscall_trial(args, tool, name, argv, scen, pin0, pin1, bench):
    rec = {"kind": "syscalls", "server": name, "scenario": scen, "tool": tool}
    sargs = SCENARIOS[scen]["args"]
    # The set-up run opens and closes the same connections with (almost) no
    # traffic: one active connection for 1 ms, the others idle.
    opt = dict(zip(sargs[::2], sargs[1::2]))
    total = int(opt["--conns"]) + int(opt.get("--idle", 0))
    setup_args = ["--conns", "1", "--idle", str(total - 1), "--size", opt["--size"]]
    if "--connect-rate" in opt:
        setup_args += ["--connect-rate", opt["--connect-rate"]]

    def counted(scen_args, duration):
        # perf occasionally misses the attach on a loaded machine: retry.
        for _ in range(3):
            n, w, m = count_syscalls(args, tool, argv, scen_args, duration, pin0, pin1, bench, name)
            if n is not None:
                return n, w, m
        return None, 0, 0

    try:
        # Several full runs: the count follows the batch size, which follows
        # how busy the machine is during that one run.
        fulls = [counted(sargs, args.sys_duration) for _ in range(args.sys_runs)]
        setup, w_setup, m_setup = counted(setup_args, 0.001)
    except (RuntimeError, OSError) as e:
        rec["status"] = f"failed: {e}"
        return rec
    full, w_full, m_full = fulls[0]
    rec.update({"syscalls_full": full, "messages_full": m_full, "syscalls_setup": setup,
                "messages_setup": m_setup})
    per_msg, waits = [], []
    for n, w, m in fulls:
        if n is not None and setup is not None and m > m_setup:
            per_msg.append((n - setup) / (m - m_setup))
            # Waits are amortised over however many messages one wake-up
            # finds, which depends on the load; the rest is per-message work.
            waits.append((w - w_setup) / (m - m_setup))
    if per_msg:
        rec["syscalls_per_msg"] = statistics.median(per_msg)
        rec["waits_per_msg"] = statistics.median(waits)
        rec["runs_per_msg"] = per_msg
        rec["status"] = "ok"
    else:
        rec["status"] = "no count"
    return rec


def machine_facts(build):
    facts = {"kind": "machine", "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
             "kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts["loadavg"] = os.getloadavg()[0]
    cc = subprocess.run(["cc", "--version"], capture_output=True, text=True)
    facts["cc"] = cc.stdout.splitlines()[0] if cc.returncode == 0 and cc.stdout else "?"
    libs = {}
    for pc in ["libuv", "libevent"]:
        r = subprocess.run(["pkg-config", "--modversion", pc], capture_output=True, text=True)
        if r.returncode == 0:
            libs[pc] = r.stdout.strip()
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libev-dev"], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout:
        libs["libev"] = r.stdout.strip()
    facts["libs"] = libs
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        facts["git"] = head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except OSError:
        pass
    return facts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", help="build tree (build/release)")
    ap.add_argument("--quick", action="store_true", help="1 round, 1 s trials: for iterating")
    # Seven short rounds rather than three long ones: on a shared machine the
    # noise comes in bursts, and more rounds give the median more to reject.
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--sys-duration", type=float, default=2.0)
    ap.add_argument("--sys-runs", type=int, default=3,
                    help="full runs per system-call count; the median is reported (default 3)")
    ap.add_argument("--servers", help="comma-separated subset of server names (the --workers rows: "
                    "echod-epoll-w1,echod-epoll-w2,echod-engine-uring-w1,echod-engine-uring-w2, and "
                    "with --steer cpu echod-epoll-w2-steer,echod-engine-uring-w2-steer)")
    ap.add_argument("--scenarios", help="comma-separated subset of S1..S6")
    ap.add_argument("--out", help="results file (default bench/results/new/<stamp>.jsonl, not recorded)")
    ap.add_argument("--seed", type=int, help="seed of the trial order (default: a random one, recorded)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup, args.sys_duration, args.sys_runs = 1, 1.0, 0.3, 1.0, 1

    bench = os.path.join(args.build, "apps/echo-bench/echo-bench")
    if not os.path.exists(bench):
        sys.exit(f"compare.py: {bench} not built")
    raise_nofile()
    pin0, pin1 = pin(0), pin(1)
    if not pin0 or not pin1:
        print("compare.py: not pinned (no taskset, or CPUs 0/1 not allowed)", file=sys.stderr)
    srv = servers(args.build)
    if args.servers:
        want = args.servers.split(",")
        unknown = sorted(set(want) - {s[0] for s in srv})
        if unknown:
            sys.exit(f"compare.py: --servers: {','.join(unknown)}: unknown or not built")
        srv = [s for s in srv if s[0] in want]
    scen = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    if set(scen) - set(SCENARIOS):
        sys.exit(f"compare.py: --scenarios: {','.join(sorted(set(scen) - set(SCENARIOS)))}: unknown")

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = args.out or os.path.join(HERE, "results", "new", f"{stamp}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    args.tmp = os.path.join("/tmp", f"iomux-bench-{os.getpid()}")
    os.makedirs(args.tmp, exist_ok=True)
    facts = machine_facts(args.build)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    order_rng = random.Random(seed)
    facts.update({"rounds": args.rounds, "order": "shuffled", "seed": seed,
                  "duration_s": args.duration, "warmup_s": args.warmup, "sys_runs": args.sys_runs,
                  "pinned": bool(pin0 and pin1), "command": " ".join(["make", "bench"] +
                                                                       (["BENCH_QUICK=1"] if args.quick else [])),
                  # Relative to the tree: a recorded file names no machine's paths.
                  "argv": " ".join(["bench/compare.py"] + [a.replace(ROOT + "/", "") for a in sys.argv[1:]])})
    t_start = time.monotonic()
    with open(path, "w") as out:
        def emit(rec):
            out.write(json.dumps(rec) + "\n")
            out.flush()

        emit(facts)
        # The servers run in a new random order in every round and
        # scenario, so that neither a position (first after a scenario
        # change, right after the slow Python servers) nor a neighbour (two
        # io_uring servers one after the other) always falls on the same
        # server. The seed is recorded: `--seed` replays the order.
        for rnd in range(1, args.rounds + 1):
            for s in scen:
                order = list(srv)
                order_rng.shuffle(order)
                for name, argv, scens in order:
                    if s not in scens:
                        continue
                    rec = trial(args, name, argv, s, rnd, pin0, pin1, bench)
                    emit(rec)
                    b = rec.get("bench", {})
                    extra = f" {rec['bytes_per_conn']:.0f} B/conn" if "bytes_per_conn" in rec else ""
                    if "busy" in b:  # at 95 % or more the load generator is the limit
                        extra += f"  echo-bench {100 * b['busy']:3.0f}% busy"
                    print(f"round {rnd} {s} {name:15s} {rec['status']:8.8s} "
                          f"{b.get('messages_per_s', 0):10.0f} msg/s  "
                          f"{rec.get('cpu_us_per_msg', 0):6.2f} us/msg{extra}", flush=True)
        tool = syscall_counter()
        if tool is None:
            print("compare.py: neither perf nor strace: no system call counts", file=sys.stderr)
        else:
            for s in [x for x in ("S2", "S3") if x in scen]:
                for name, argv, scens in srv:
                    if s not in scens:
                        continue
                    rec = syscall_trial(args, tool, name, argv, s, pin0, pin1, bench)
                    emit(rec)
                    print(f"syscalls {s} {name:15s} {rec.get('syscalls_per_msg', float('nan')):.3f} per msg, "
                          f"{rec.get('waits_per_msg', float('nan')):.3f} of them waits ({tool})", flush=True)
        emit({"kind": "end", "elapsed_s": time.monotonic() - t_start})
    shutil.rmtree(args.tmp, ignore_errors=True)
    print(f"compare.py: results in {os.path.abspath(path)}")
    return path


if __name__ == "__main__":
    main()
