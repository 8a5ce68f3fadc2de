#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tls_bench.py - echod's TLS listeners against socat and ncat (issue 25).

Scenarios (echo-bench --tls --tls-version 1.3, every byte checked):
  T1  1 connection, 64 B, depth 1 (latency)
  T2  100 connections, 64 B
  T4  10 connections, 16 KiB; plain-TCP echod too, for the TLS/plain CPU
  TH  new TLS 1.3 connections per second (--churn, one 64 B echo each,
      at most 8 open), full handshakes; THR the same with --tls-resume

Servers: echod with a TLS listener on each engine (--engine loop and
--engine uring, whose readiness side engine serves TLS), `socat
OPENSSL-LISTEN:PORT,...,fork PIPE` and `ncat --ssl ... --exec /bin/cat`.
The certificates (a test CA and an EC P-256 server certificate) are made
with the openssl tool in a temporary directory for each run.

As in compare.py (whose Server, Sampler and run_bench this reuses): the
servers run in a new random order in every round, pinned to CPU 0 with
echo-bench on CPU 1; the server's CPU time is sampled every 50 ms and
interpolated over echo-bench's measured window. socat and ncat fork a
process per connection (ncat's runs cat, socat's does the TLS): their
CPU is the parent's, plus every live descendant's, plus the children's
already reaped (cutime+cstime in /proc/PID/stat).

Each trial is one JSON line; --summary FILE prints the medians as the
markdown table of docs/benchmarks.md. Only processes started here (and
their children) are signalled, by PID.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import compare  # noqa: E402  (Server, Sampler, run_bench, pin, machine_facts)
import tls_e2e  # noqa: E402  (make_certs, free_port)

# As fast as the server takes them: 8 handshakes in flight at a time.
CHURN = ["--churn", "1000000", "--conns", "8", "--per-conn", "1"]
SCENARIOS = {
    "T1": {"title": "1 connection, 64 B, depth 1 (latency)", "args": ["--conns", "1", "--size", "64"]},
    # Paced connects: socat listens with a backlog of 5 by default.
    "T2": {"title": "100 connections, 64 B",
           "args": ["--conns", "100", "--size", "64", "--connect-rate", "200"]},
    "T4": {"title": "10 connections, 16 KiB", "args": ["--conns", "10", "--size", "16384"]},
    "TH": {"title": "new TLS 1.3 connections/s, full handshakes", "args": CHURN},
    "THR": {"title": "new TLS 1.3 connections/s, resumed (--tls-resume)",
            "args": CHURN + ["--tls-resume"]},
}
TLS_ALL = ["T1", "T2", "T4", "TH", "THR"]


def servers(build, certs):
    """(name, argv with {port} where the server needs one, TLS?, scenarios)."""
    echod = os.path.join(build, "apps/echod/echod")
    cert, key = certs("server.pem"), certs("server.key")
    tls = f"127.0.0.1:0,tls-cert={cert},tls-key={key}"
    return [
        ("echod-loop", [echod, "--engine", "loop", "--backend", "epoll", "--listen", tls, "--quiet"],
         True, TLS_ALL),
        ("echod-uring", [echod, "--engine", "uring", "--listen", tls, "--quiet"], True, TLS_ALL),
        ("socat", ["socat", f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,cert={cert},key={key},"
                   "verify=0,fork,reuseaddr", "PIPE"], True, TLS_ALL),
        ("ncat", ["ncat", "--ssl", "--ssl-cert", cert, "--ssl-key", key, "-l", "-k", "-m", "10000",
                  "--exec", "/bin/cat", "127.0.0.1", "{port}"], True, TLS_ALL),
        # Plain TCP at T4: the denominator of the TLS/plain CPU ratio.
        ("echod-loop-plain", [echod, "--engine", "loop", "--backend", "epoll", "--listen",
                              "127.0.0.1:0", "--quiet"], False, ["T4"]),
        ("echod-uring-plain", [echod, "--engine", "uring", "--listen", "127.0.0.1:0", "--quiet"],
         False, ["T4"]),
    ]


def proc_tree(oldest):
    """{ppid: [pid, ...]} of the live processes from PID `oldest` up (a
    fork server's children come after it unless PIDs wrap; zombies left
    out: their time shows in the parent's cutime once reaped)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) < oldest:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            kids.setdefault(int(ppid), []).append(int(d))
    return kids


def schedstat_ns(pid):
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return 0


class ForkServer(compare.Server):
    """A server on a port we chose, that prints nothing and forks per
    connection: ready once it accepts; its CPU counts its children's."""

    def __init__(self, argv, pin0, log_path):
        self.port = tls_e2e.free_port()
        self.children = set()
        self.cpu_max = 0
        super().__init__([a.replace("{port}", str(self.port)) for a in argv], pin0, log_path)

    def _read_addr(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return f"127.0.0.1:{self.port}"
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("not listening after 10 s")

    def descendants(self):
        tree, out, todo = proc_tree(self.pid), [], [self.pid]
        while todo:
            for c in tree.get(todo.pop(), []):
                out.append(c)
                todo.append(c)
        self.children.update(out)
        return out

    def cpu_ns(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            reaped = (int(fields[13]) + int(fields[14])) * 1e9 / compare.HZ
        except (OSError, IndexError, ValueError):
            return None
        now = schedstat_ns(self.pid) + reaped + sum(schedstat_ns(p) for p in self.descendants())
        # Between a child's exit and its reaping its time is nowhere: hold
        # the last figure until the parent's cutime has it.
        self.cpu_max = max(self.cpu_max, now)
        return self.cpu_max

    def stop(self):
        super().stop()
        # Children still serving a connection are ours too: by PID only.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in self.children):
            time.sleep(0.05)
        for p in self.children:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def trial(args, name, argv, is_tls, scen, rnd, bench):
    rec = {"kind": "trial", "server": name, "scenario": scen, "round": rnd, "tls": is_tls}
    log = os.path.join(args.tmp, f"{name}.{scen}.log")
    cls = ForkServer if "{port}" in " ".join(argv) else compare.Server
    try:
        srv = cls(argv, args.pin0, log)
    except (RuntimeError, OSError) as e:
        rec["status"] = f"server failed to start: {e}"
        return rec
    client = SCENARIOS[scen]["args"] + (["--tls", "--tls-ca", args.certs("ca.pem"),
                                         "--tls-version", "1.3"] if is_tls else [])
    try:
        sampler = compare.Sampler(srv)
        sampler.start()
        report, t_rep, rc, err = compare.run_bench(bench, args.pin1, srv.addr, client, args.duration,
                                                   args.warmup, args.duration + args.warmup + 60)
        sampler.halt.set()
        sampler.join()
        # One sample past the window's end for certain: on a loaded machine
        # the sampling thread can fall behind.
        cpu = srv.cpu_ns()
        if cpu is not None:
            sampler.samples.append((time.monotonic(), cpu))
    finally:
        srv.stop()
    rec["bench_rc"] = rc
    if report is None:
        rec["status"] = "no report: " + err.strip().replace("\n", " | ")
        return rec
    rec["status"] = "ok" if rc == 0 else "errors"
    rec["bench"] = report
    win = report.get("duration_s", 0)
    # TH/THR: per new connection; otherwise per echoed message.
    units = report["churn"]["connects_per_s"] * win if "churn" in report else report.get("messages", 0)
    rec["units"] = units
    if t_rep and win > 0 and units > 0:
        a, b = sampler.cpu_at(t_rep - win), sampler.cpu_at(t_rep)
        if a is not None and b is not None:
            rec["server_cpu_s"] = (b - a) / 1e9
            rec["cpu_us_per_unit"] = (b - a) / 1e3 / units
    return rec


def aes_gcm_speed():
    """openssl speed's bytes/s at 16 KiB blocks, per cipher."""
    out = {}
    for cipher in ("aes-128-gcm", "aes-256-gcm"):
        r = subprocess.run(["openssl", "speed", "-evp", cipher, "-seconds", "1", "-bytes", "16384"],
                           capture_output=True, text=True, timeout=60)
        for line in r.stdout.splitlines():
            if line.upper().startswith(cipher.upper()) and line.rstrip().endswith("k"):
                out[cipher] = float(line.split()[-1][:-1]) * 1000  # openssl's "k" is 1000 bytes
    return out


def median(recs, key):
    vals = [r[key] for r in recs if key in r]
    return statistics.median(vals) if vals else None


def summary(path):
    """The medians per scenario and server, as markdown."""
    recs = [json.loads(ln) for ln in open(path)]
    trials = [r for r in recs if r.get("kind") == "trial" and r.get("status") == "ok"]
    for r in recs:
        if r.get("kind") == "aes":
            for c, v in r["bytes_per_s"].items():
                print(f"{c}: {v / 1e6:.0f} MB/s at 16 KiB; encrypt + decrypt of 16 KiB "
                      f"{2 * 16384 / v * 1e6:.2f} us")
    print("| scenario | server | msg/s or conn/s | p50 us | p99 us | server CPU us/unit | rounds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for s in SCENARIOS:
        by = {}
        for r in trials:
            if r["scenario"] == s:
                by.setdefault(r["server"], []).append(r)
        for name, rs in sorted(by.items()):
            rate = statistics.median(
                r["bench"]["churn"]["connects_per_s"] if "churn" in r["bench"] else
                r["bench"]["messages_per_s"] for r in rs)
            p50 = statistics.median(r["bench"]["latency_us"]["p50"] for r in rs)
            p99 = statistics.median(r["bench"]["latency_us"]["p99"] for r in rs)
            cpu = median(rs, "cpu_us_per_unit")
            res = ""
            if "tls" in rs[0]["bench"] and s.startswith("TH"):
                res = " (%d/%d resumed)" % (rs[0]["bench"]["tls"]["resumed"],
                                            rs[0]["bench"]["tls"]["handshakes"])
            print(f"| {s} | {name}{res} | {rate:.0f} | {p50:.0f} | {p99:.0f} | "
                  f"{cpu if cpu is None else round(cpu, 2)} | {len(rs)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", nargs="?", help="build tree (build/release)")
    ap.add_argument("--quick", action="store_true", help="1 round, 0.5 s trials: for iterating")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--servers", help="comma-separated subset of server names")
    ap.add_argument("--scenarios", help="comma-separated subset of " + ",".join(SCENARIOS))
    ap.add_argument("--out", help="results file (default bench/results/new/tls-<stamp>.jsonl)")
    ap.add_argument("--summary", metavar="FILE", help="print the table of a results file and exit")
    args = ap.parse_args()
    if args.summary:
        return summary(args.summary)
    if not args.build:
        ap.error("the build tree is required")
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 0.5, 0.2
    if shutil.which("openssl") is None:
        sys.exit("tls_bench.py: the openssl tool is needed for the certificates")
    bench = os.path.join(args.build, "apps/echo-bench/echo-bench")
    compare.raise_nofile()
    args.pin0, args.pin1 = compare.pin(0), compare.pin(1)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = args.out or os.path.join(HERE, "results", "new", f"tls-{stamp}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="iomux-tls-bench-") as tmp, open(path, "w") as out:
        args.tmp, args.certs = tmp, tls_e2e.make_certs(tmp)
        srv = []
        for s in servers(args.build, args.certs):
            if args.servers and s[0] not in args.servers.split(","):
                continue
            if shutil.which(s[1][0]) is None:
                print(f"tls_bench.py: {s[0]}: {s[1][0]} not found: skipped", file=sys.stderr)
            else:
                srv.append(s)
        scen = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
        seed = random.SystemRandom().randrange(1 << 31)
        rng = random.Random(seed)
        facts = compare.machine_facts(args.build)
        facts.update({"rounds": args.rounds, "seed": seed, "duration_s": args.duration,
                      "warmup_s": args.warmup, "pinned": bool(args.pin0 and args.pin1),
                      "command": " ".join(["bench/tls_bench.py"] + sys.argv[1:])})
        out.write(json.dumps(facts) + "\n")
        out.write(json.dumps({"kind": "aes", "bytes_per_s": aes_gcm_speed()}) + "\n")
        for rnd in range(1, args.rounds + 1):
            for s in scen:
                order = [x for x in srv if s in x[3]]
                rng.shuffle(order)
                for name, argv, is_tls, _ in order:
                    rec = trial(args, name, argv, is_tls, s, rnd, bench)
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    b = rec.get("bench", {})
                    rate = b["churn"]["connects_per_s"] if "churn" in b else b.get("messages_per_s", 0)
                    print(f"round {rnd} {s:3s} {name:18s} {rec['status'][:30]:8s} {rate:9.0f}/s "
                          f"{rec.get('cpu_us_per_unit', 0):8.2f} us server CPU each, echo-bench "
                          f"{100 * b.get('busy', 0):3.0f}% busy", flush=True)
    print(f"tls_bench.py: results in {os.path.abspath(path)}")


if __name__ == "__main__":
    main()
