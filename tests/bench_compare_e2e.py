#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench_compare_e2e.py: bench/compare.py's options and its --workers rows
# (issue 23), run for real in quick mode against the build's echod, and
# bench/scale.sh for one short round.
#   bench_compare_e2e.py --source DIR --build DIR usage|workers|scale
# Exit 0 = pass, 1 = fail, 77 = skipped. Nothing here judges performance:
# the checks are on what the results file records.
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def check(ok, what):
    if not ok:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def compare(a, *argv):
    return subprocess.run([sys.executable, os.path.join(a.source, "bench/compare.py"), *argv],
                          capture_output=True, text=True, timeout=240)


def usage(a):
    r = compare(a, "--help")
    check(r.returncode == 0, "--help exits 0")
    check("--servers" in r.stdout and "echod-engine-uring-w2" in r.stdout,
          "--help names --servers and the --workers rows")
    r = compare(a, a.build, "--servers", "echod-epoll-w2,no-such-server", "--rounds", "1")
    err = r.stderr.strip().splitlines()
    check(r.returncode != 0 and err and "no-such-server" in err[-1],
          f"an unknown --servers name is refused in one line (rc {r.returncode}, {err[-1:]})")
    r = compare(a, a.build, "--scenarios", "S2,S9", "--rounds", "1")
    err = r.stderr.strip().splitlines()
    check(r.returncode != 0 and err and "S9" in err[-1], "an unknown --scenarios name is refused")


def workers(a):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.jsonl")
        rows = ["echod-epoll-w1", "echod-epoll-w2"]
        if len(os.sched_getaffinity(0)) >= 2:  # --steer cpu pins 2 workers
            rows.append("echod-epoll-w2-steer")
        r = compare(a, a.build, "--quick", "--servers", ",".join(rows),
                    "--scenarios", "S1,S2", "--out", out)
        check(r.returncode == 0, f"compare.py --quick runs (rc {r.returncode}: {r.stderr[-300:]})")
        with open(out) as f:
            recs = [json.loads(line) for line in f]
        trials = {(t["server"], t["scenario"]): t for t in recs if t.get("kind") == "trial"}
        check(len(trials) == 2 * len(rows), f"one trial per row and scenario ({sorted(trials)})")
        for (name, scen), t in sorted(trials.items()):
            want = 1 if scen == "S1" else 2
            check(t["status"] == "ok", f"{name} {scen}: {t['status']}")
            check(t.get("placement") == f"unpinned, echo-bench --threads {want}",
                  f"{name} {scen}: placement recorded ({t.get('placement')})")
            check(t["bench"].get("threads") == want, f"{name} {scen}: echo-bench ran {want} threads")
            check(t.get("cpu_us_per_msg", 0) > 0, f"{name} {scen}: CPU per message measured")
            check(t.get("sleeps_per_kmsg", -1) >= 0, f"{name} {scen}: sleeps per message measured")
        for scen in ("S1", "S2"):
            t = trials[("echod-epoll-w2", scen)]
            # The main thread and 2 workers (io_uring may add its own).
            check(t["threads_max"] >= 3, f"echod-epoll-w2 {scen}: {t['threads_max']} threads seen")
        t = trials[("echod-epoll-w2", "S2")]
        # Counting the leader thread alone, which only takes signals, would
        # give next to nothing of the whole run's utime+stime (all threads).
        whole = t["user_s"] + t["sys_s"]
        check(whole > 0 and t["server_cpu_s"] > 0.02 * whole,
              f"the workers' CPU time is counted ({t['server_cpu_s']:.3f} s of {whole:.3f} s)")
        facts = recs[0]
        check(facts.get("argv", "").startswith("bench/compare.py ")
              and os.path.abspath(a.source) + "/" not in facts["argv"],
              f"the machine line records the command line, relative to the tree ({facts.get('argv')})")
        rep = subprocess.run([sys.executable, os.path.join(a.source, "bench/report.py"), out,
                              "--out-dir", tmp], capture_output=True, text=True, timeout=60)
        check(rep.returncode == 0, f"report.py reads the file ({rep.stderr[-300:]})")
        with open(os.path.join(tmp, "benchmarks.md")) as f:
            md = f.read()
        check("`--workers 2` against `--workers 1`" in md and "| echod-epoll | 2 | S2 |" in md,
              "report.py writes the paired --workers table")
        if "echod-epoll-w2-steer" in rows:
            check("| echod-epoll | 2, --steer cpu | S2 |" in md, "and the --steer cpu rows")


def scale_run(a, **env):
    e = dict(os.environ, SCALE_ROUNDS="1", SCALE_SECS="1", SCALE_CONNS="2", **env)
    r = subprocess.run(["sh", os.path.join(a.source, "bench/scale.sh"), a.build, "2"],
                       capture_output=True, text=True, timeout=120, env=e)
    check(r.returncode == 0, f"scale.sh {env} runs (rc {r.returncode}: {r.stderr[-300:]})")
    return r.stdout.splitlines()


def scale(a):
    """One round of workers 1 and 2: a line per run and one per worker
    count, each with messages/s, CPU per message and sleeps measured."""
    pat = re.compile(r"^workers (\d): msgs/s (\d+) \(x[\d.]+ of 1 worker\), server CPU per "
                     r"message ([\d.]+) us \(x[\d.]+ of 1\), ([\d.]+) sleeps per 1000 messages$")
    lines = scale_run(a)
    rows = [m.groups() for m in map(pat.match, lines) if m]
    check([w for w, *_ in rows] == ["1", "2"], f"a median line per worker count: {lines}")
    for w, rate, cpu, sleeps in rows:
        check(int(rate) > 0 and float(cpu) > 0, f"workers {w}: {rate} msgs/s, {cpu} us CPU/msg")
        check(float(sleeps) >= 0, f"workers {w}: {sleeps} sleeps per 1000 messages")
    check(sum(ln.startswith("round 1: workers ") for ln in lines) == 2, "a line per run")
    if len(os.sched_getaffinity(0)) < 2:
        print("skip: SCALE_STEER=1 needs 2 CPUs")
        return
    lines = scale_run(a, SCALE_STEER="1")
    check(any(ln.startswith("steer cpu/none: msgs/s x") for ln in lines),
          f"SCALE_STEER=1 pairs --steer cpu with --steer none: {lines}")
    check(sum(" sleeps/1000 msgs" in ln for ln in lines) == 2, "a line per steering run")


def instr(a):
    """bench/instr_per_msg.py: refuses an unknown scenario, and counts a
    positive figure per message for two labels (callgrind; skipped without
    valgrind)."""
    script = os.path.join(a.source, "bench/instr_per_msg.py")
    r = subprocess.run([sys.executable, script, a.build, "--label", "epoll", "--scenarios", "S9"],
                       capture_output=True, text=True, timeout=60)
    err = r.stderr.strip().splitlines()
    check(r.returncode != 0 and err and "S9" in err[-1], f"an unknown scenario is refused ({err[-1:]})")
    if not shutil.which("valgrind") or a.sanitized:
        print("SKIP: " + ("a sanitizer build (valgrind cannot run it)" if a.sanitized else "no valgrind"))
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "i.jsonl")
        r = subprocess.run([sys.executable, script, a.build, "--label", "epoll", "--label",
                            "epoll-beside-faults", "--scenarios", "S1", "--short", "0.3", "--long",
                            "1.0", "--out", out], capture_output=True, text=True, timeout=240)
        check(r.returncode == 0, f"instr_per_msg.py runs (rc {r.returncode}: {r.stderr[-300:]})")
        with open(out) as f:
            recs = [json.loads(line) for line in f]
        check([x["label"] for x in recs] == ["epoll", "epoll-beside-faults"], "a record per label")
        for x in recs:
            check(x["long"]["messages"] > x["short"]["messages"] > 0
                  and x["instructions_per_msg"] > 0,
                  f"{x['label']}: {x['instructions_per_msg']:.1f} instructions per message")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--sanitized", action="store_true")
    ap.add_argument("case", choices=["usage", "workers", "scale", "instr"])
    a = ap.parse_args()
    for exe in ("apps/echod/echod", "apps/echo-bench/echo-bench"):
        if not os.path.exists(os.path.join(a.build, exe)):
            print(f"SKIP: {exe} not built")
            sys.exit(77)
    if not os.path.isdir("/proc/self/task"):
        print("SKIP: no /proc")
        sys.exit(77)
    {"usage": usage, "workers": workers, "scale": scale, "instr": instr}[a.case](a)


if __name__ == "__main__":
    main()
