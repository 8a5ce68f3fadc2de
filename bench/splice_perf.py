#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Share of the echo server's CPU spent copying payload, per splice_echo mode.

    bench/splice_perf.py build/release [--sizes 16384,65536,262144] [--seconds 3]

runs bench/splice_echo for one cell at a time under `perf record -g -e
cpu-clock` (hardware counters are not available in these VMs) and counts
the samples of the server (the process `splice_echo` and its io_uring
workers `iou-wrk-*`) whose call chain contains a copy function (the
payload copies: copy_user_*, rep_movs_*, memcpy_*, _copy_to/from_iter,
skb_copy_*, copy_page_*, linear_to_page). A call chain, not the leaf:
in a VM, interrupt-disabled time is charged to pvm_irq_enable and such.
The client (`se-client`) is counted apart; on loopback each side's send
also runs the other side's TCP receive, so some of the copies the server
is charged for are skb work done for the client and the other way around.

    bench/splice_perf.py build/release --echod [--sizes 262144] [--modes off,on]

does the same for echod itself (--engine loop --backend epoll --splice
MODE) under echo-bench with 10 clients (S4, S6 at 256 KiB): perf follows
echod's process only, so only the server's share is given.
"""
import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

COPY = re.compile(r"^(copy_user|rep_movs|memcpy|__memcpy|_copy_to_iter|_copy_from_iter|"
                  r"skb_copy_datagram|skb_copy_bits|copy_page_to_iter|copy_page_from_iter|"
                  r"linear_to_page|copy_to_user|copy_from_user)")
HZ = 4000
MODES = ["copy", "splice64", "splice256", "uring64", "uring256"]


def classify(script_out):
    """samples and copy samples per side, and the copy frames seen."""
    counts = collections.Counter()
    frames = collections.Counter()
    for block in script_out.split("\n\n"):
        lines = [ln for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        comm = lines[0].split()[0]
        side = "client" if comm.startswith("se-client") else "server"
        syms = [ln.split()[1].split("+")[0] for ln in lines[1:] if len(ln.split()) > 1]
        counts[side] += 1
        hit = [s for s in syms if COPY.match(s)]
        if hit:
            counts[side + "_copy"] += 1
            if side == "server":
                frames[hit[-1]] += 1  # the outermost copy function of the chain
    return counts, frames


def run(build, mode, size, seconds):
    exe = os.path.join(build, "bench", "splice_echo")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        cells = subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", str(HZ), "-o", data,
                        "--", exe, "--rounds", "1", "--duration", str(seconds * 1000),
                        "--sizes", str(size), "--modes", mode],
                       check=True, capture_output=True, text=True).stdout
        row = [ln.split("\t") for ln in cells.splitlines() if ln and ln[0].isdigit()][0]
        msgs = float(row[3]) * seconds
        out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"],
                             check=True, capture_output=True, text=True).stdout
    return classify(out) + (msgs,)


def run_echod(build, mode, size, seconds):
    """echod --splice MODE under echo-bench, 10 clients of `size` bytes."""
    echod = subprocess.Popen([os.path.join(build, "apps", "echod", "echod"), "--listen",
                              "127.0.0.1:0", "--engine", "loop", "--backend", "epoll",
                              "--splice", mode, "--quiet"], stdout=subprocess.PIPE, text=True)
    addr = echod.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        perf = subprocess.Popen(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", str(HZ),
                                 "-o", data, "-p", str(echod.pid)])
        try:
            bench = subprocess.run([os.path.join(build, "apps", "echo-bench", "echo-bench"),
                                    "--connect", addr, "--conns", "10", "--size", str(size),
                                    "--duration", str(seconds), "--json"],
                                   check=True, capture_output=True, text=True).stdout
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            echod.send_signal(signal.SIGTERM)
            echod.wait()
        msgs = json.loads(bench.splitlines()[0])["messages"]
        out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"],
                             check=True, capture_output=True, text=True).stdout
    return classify(out) + (msgs,)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--sizes", default="16384,65536,262144")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--echod", action="store_true", help="echod --splice MODE instead")
    args = ap.parse_args()
    if args.echod and args.modes == ",".join(MODES):
        args.modes = "off,on"
    print("| size B | mode | server samples | server us/msg (perf) | server copy share | "
          "server copy us/msg | client copy share | top server copy frames |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for mode in args.modes.split(","):
            c, frames, msgs = (run_echod if args.echod else run)(args.build, mode, int(size),
                                                                  args.seconds)
            us = c["server"] / HZ * 1e6 / msgs
            copy_us = c["server_copy"] / HZ * 1e6 / msgs
            top = ", ".join(f"{f} {n}" for f, n in frames.most_common(3))
            srv = c["server_copy"] / max(c["server"], 1)
            cli = c["client_copy"] / max(c["client"], 1)
            print(f"| {size} | {mode} | {c['server']} | {us:.1f} | {srv:.1%} | {copy_us:.1f} | "
                  f"{cli:.1%} | {top} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
