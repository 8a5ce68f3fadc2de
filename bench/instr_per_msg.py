#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""instr_per_msg.py - echod's user-space instructions per echoed message,
counted by callgrind: a figure that does not move with the machine's load,
for changes too small for this shared machine's timings (a few percent,
when paired rounds swing by tens).

    bench/instr_per_msg.py BUILD_DIR --label NAME [--label NAME ...]
        [--scenarios S1,S2,S3] [--short 1] [--long 3] [--out FILE]

Each label is a server configuration (CONFIGS below). For each label and
scenario, echod runs under `valgrind --tool=callgrind` twice, against
echo-bench for --short and then --long seconds (no warm-up), and the
figure is the slope: (instructions of the long run - of the short run) /
(messages of the long run - of the short one). Start-up, connection
set-up and exit are the same in both runs and cancel out. Under callgrind
echod runs tens of times slower, so echo-bench waits on it: what is
counted is echod's own work per message, not its speed. System calls are
not counted here (bench/compare.py counts them with perf). A long run
that echoes no more than the short one (a busy machine) is run again for
twice as long, twice at most.

One JSON line per label and scenario goes to --out (default: stdout only).
Only processes started here are signalled, by their PID.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

SCENARIOS = {
    "S1": ["--conns", "1", "--size", "64"],
    "S2": ["--conns", "100", "--size", "64"],
    "S3": ["--conns", "1000", "--size", "64"],
    "S4": ["--conns", "10", "--size", "16384"],
}

# The configurations compared: echod's options, and which of its listeners
# echo-bench uses (the index of the address echod prints).
CONFIGS = {
    "epoll": (["--engine", "loop", "--backend", "epoll"], 0),
    "epoll-splice-off": (["--engine", "loop", "--backend", "epoll", "--splice", "off"], 0),
    "epoll-splice-auto": (["--engine", "loop", "--backend", "epoll", "--splice", "auto"], 0),
    # A clean listener next to one with faults (issue 26): the first is measured.
    "epoll-beside-faults": (["--engine", "loop", "--backend", "epoll", "--listen", "127.0.0.1:0",
                             "--listen", "127.0.0.1:0,delay=50,reset-after=4096"], 0),
}


def start_echod(build, opts, out_file):
    echod = os.path.join(build, "apps/echod/echod")
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out_file, echod]
    if "--listen" not in opts:
        argv += ["--listen", "127.0.0.1:0"]
    argv += opts + ["--quiet"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addrs = []
    want = opts.count("--listen") or 1
    deadline = time.monotonic() + 60
    while len(addrs) < want and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        addrs.append(line.strip())
    if len(addrs) < want:
        p.kill()
        p.wait()
        raise RuntimeError("echod under callgrind printed no address: " + p.stderr.read()[-500:])
    return p, addrs


def instructions(out_file):
    with open(out_file) as f:
        for line in f:
            m = re.match(r"(summary|totals): (\d+)", line)
            if m:
                return int(m.group(2))
    raise RuntimeError("no totals in " + out_file)


def one_run(args, opts, index, scen, seconds, tmp):
    out_file = os.path.join(tmp, "callgrind.out")
    p, addrs = start_echod(args.build, opts, out_file)
    try:
        bench = os.path.join(args.build, "apps/echo-bench/echo-bench")
        r = subprocess.run([bench, "--connect", addrs[index], "--duration", str(seconds),
                            "--warmup", "0", "--json"] + SCENARIOS[scen],
                           capture_output=True, text=True, timeout=seconds + 120)
        report = json.loads(r.stdout.splitlines()[0])
        if r.returncode != 0 or report.get("errors"):
            raise RuntimeError("echo-bench: rc %d %s" % (r.returncode, r.stderr[-300:]))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(120)
    return instructions(out_file), report["messages"]


def long_run(args, label, scen, short_messages, tmp):
    """The long run, which must echo more than the short one for a slope:
    on a busy machine (callgrind is slow) it may not, so it is tried again
    for twice as long, twice at most."""
    opts, index = CONFIGS[label]
    seconds = args.long
    for _ in range(3):
        i2, m2 = one_run(args, opts, index, scen, seconds, tmp)
        if m2 > short_messages:
            return i2, m2
        seconds *= 2
    sys.exit("instr_per_msg.py: %s %s: the long run (%.1f s) echoed no more than the short one "
             "(%d, %d)" % (label, scen, seconds / 2, short_messages, m2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("--label", action="append", required=True, choices=sorted(CONFIGS))
    ap.add_argument("--scenarios", default="S1,S2,S3")
    ap.add_argument("--short", type=float, default=1.0)
    ap.add_argument("--long", type=float, default=3.0)
    ap.add_argument("--out")
    args = ap.parse_args()
    scens = args.scenarios.split(",")
    for s in scens:
        if s not in SCENARIOS:
            sys.exit("instr_per_msg.py: unknown scenario %s (%s)" % (s, ",".join(SCENARIOS)))
    out = open(args.out, "a") if args.out else None
    with tempfile.TemporaryDirectory() as tmp:
        for scen in scens:
            for label in args.label:
                opts, index = CONFIGS[label]
                i1, m1 = one_run(args, opts, index, scen, args.short, tmp)
                i2, m2 = long_run(args, label, scen, m1, tmp)
                rec = {"label": label, "scenario": scen, "options": opts,
                       "short": {"instructions": i1, "messages": m1},
                       "long": {"instructions": i2, "messages": m2},
                       "instructions_per_msg": (i2 - i1) / (m2 - m1)}
                print("%-20s %s %10.1f instructions/msg (%d and %d messages)"
                      % (label, scen, rec["instructions_per_msg"], m1, m2), flush=True)
                if out:
                    out.write(json.dumps(rec) + "\n")
    if out:
        out.close()


if __name__ == "__main__":
    main()
