#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""splice_ratios.py - echod --splice's CPU per message against --splice off
and the lean epoll reference, from a compare.py results file.

    bench/compare.py build/release --servers \\
        lean-epoll,echod-epoll,echod-epoll-splice-off,echod-epoll-splice-on \\
        --scenarios S1,S2,S3,S4,S6
    bench/splice_ratios.py bench/results/new/<stamp>.jsonl

For each scenario and server: the median server CPU per message (µs) and
messages/s over the rounds, and the median of the per-round ratios to
echod --splice off and to lean-epoll in the same round (paired: the
figure that survives a shared machine's drift). echod-epoll is --splice
auto, the default. With the io_uring engine's servers in the file
(echod-engine-uring, its copy, and echod-engine-uring-splice-on), a third
ratio: to echod-engine-uring in the same round.
"""
import json
import statistics
import sys
from collections import defaultdict

OFF, LEAN, URING = "echod-epoll-splice-off", "lean-epoll", "echod-engine-uring"
SERVERS = [LEAN, OFF, "echod-epoll", "echod-epoll-splice-on", URING,
           "echod-engine-uring-splice-on"]


def main():
    cpu = defaultdict(dict)  # (scenario, round) -> server -> µs/msg
    rate = defaultdict(list)  # (scenario, server) -> msgs/s
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r.get("kind") != "trial" or r.get("status") != "ok" or "cpu_us_per_msg" not in r:
            continue
        cpu[(r["scenario"], r["round"])][r["server"]] = r["cpu_us_per_msg"]
        rate[(r["scenario"], r["server"])].append(r["bench"]["messages_per_s"])
    scens = sorted({s for s, _ in cpu})
    print("scenario  server                        us/msg   msgs/s   vs off  vs lean  vs uring"
          "  (rounds)")
    for s in scens:
        rounds = [v for (sc, _), v in cpu.items() if sc == s]
        for srv in SERVERS:
            mine = [r[srv] for r in rounds if srv in r]
            if not mine:
                continue
            med = statistics.median

            def paired(base):
                ratios = [r[srv] / r[base] for r in rounds if srv in r and base in r]
                return "%.3f" % med(ratios) if ratios else "-"

            print("%-9s %-29s %6.2f %8.0f   %6s   %6s   %6s  (%d)" % (
                s, srv, med(mine), med(rate[(s, srv)]), paired(OFF), paired(LEAN),
                paired(URING), len(mine)))


if __name__ == "__main__":
    main()
