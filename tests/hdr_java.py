#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""hdr_java.py - echo-bench's HdrHistogram logs read by HdrHistogram itself.

tests/hdr_write.c writes interval logs with echo-bench's writer
(apps/echo-bench/hdr_log.c) from values chosen here and prints what the C
histogram computes; tests/hdr/ReadLog.java reads the same logs with Debian's
libhdrhistogram-java (HistogramLogReader) and prints what Java finds. Both
must agree: counts, timestamps and percentiles exactly (same layout, same
getValueAtPercentile), min and max within one bucket (the C side keeps them
exact, Java reports bucket ends), Interval_Max as Java's max in ms. Each
C percentile is also checked against the exact one from the sorted values,
within the histogram's precision (1/1024), so two equally wrong sides fail.

Cases: intervals (random latencies 1 us .. 60 s, an empty interval; the
log also goes through HistogramLogProcessor, whose counts and total
percentiles must match),
edges (bucket boundaries, 0, the clamp above 60 s, big counts, long zero
runs), merge (two logs from two writers with different start times, merged
by the Java library and by hdr_merge). Skips (77) without java >= 11, the
jar (HDRHISTOGRAM_JAR, default /usr/share/java/hdrhistogram.jar) or zlib.
"""
import argparse
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HIGHEST = 60_000_000_000
PERCENTILES = [0, 50, 90, 99, 99.9, 100]


def skip(why):
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(77)


def fail(why):
    print(f"FAIL: {why}", file=sys.stderr)
    sys.exit(1)


def find_java():
    java = shutil.which("java")
    if not java:
        skip("java not found (apt-get install default-jre-headless)")
    jar = os.environ.get("HDRHISTOGRAM_JAR", "/usr/share/java/hdrhistogram.jar")
    if not os.path.exists(jar):
        skip(f"{jar} not found (apt-get install libhdrhistogram-java)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(m.group(1)) if m else 0
    if major == 1 and m.group(2):  # "1.8.0" style
        major = int(m.group(2))
    if major < 11:
        skip(f"java {major} cannot run a single source file (needs 11+)")
    return java, jar


def lognormal_ns(rng):
    """Latencies spread from about 1 us to beyond 60 s."""
    return int(min(math.exp(rng.uniform(math.log(1000), math.log(6.5e10))), 2**40))


def case_intervals(rng):
    lines = []
    for i in range(6):
        n = 0 if i == 3 else rng.choice([1, 7, 1000, 5000])
        lines.append((0, float(i), 1.0, [lognormal_ns(rng) for _ in range(n)]))
    return [1796609871.25], lines


def case_edges(rng):
    edges = [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 2050, 4095, 4096, 4097]
    edges += [(1 << b) + d for b in range(12, 37) for d in (-1, 0, 1)]
    edges += [HIGHEST - 1, HIGHEST, HIGHEST + 1, 100_000_000_000]
    lines = [(0, 0.0, 1.0, edges),
             (0, 1.0, 1.0, [5000] * 70000 + [1]),  # 3-byte count
             (0, 2.5, 0.5, [0, HIGHEST]),  # one long zero run
             (0, 3.0, 1.0, [7]),
             (0, 4.0, 1.0, list(range(1, 41001)))]  # p99.9's rank is 40959 + an ulp
    return [1800000000.0], lines


def case_merge(rng):
    lines = []
    for log in (0, 1):
        for i in range(4):
            scale = 1.0 if log == 0 else 3.0  # two machines, different latencies
            values = [int(lognormal_ns(rng) * scale) for _ in range(rng.randint(100, 3000))]
            lines.append((log, i + 0.125 * log, 1.0, values))
    return [1796609871.0, 1796609871.75], lines


def exact_percentile(sorted_values, p):
    """HdrHistogram's rank: ceil(p' * n / 100), p' one ulp below p."""
    n = len(sorted_values)
    rank = max(1, math.ceil(math.nextafter(p, -math.inf) * n / 100.0))
    return sorted_values[rank - 1]


def check_precision(what, got, exact, p):
    """got is exact's bucket end: at most 1/1024 of exact away from it."""
    slack = exact // 1024 + (1 if exact >= 2048 else 0)
    ok = exact - slack <= got <= exact if p == 0 else exact <= got <= exact + slack
    if not ok:
        fail(f"{what}: {got} is not within the precision of the exact {exact}")


def parse_c(out):
    rows = [line.split() for line in out.splitlines()]
    intervals = [list(map(int, r[1:])) for r in rows if r[0] == "interval"]
    merged = [list(map(int, r[1:])) for r in rows if r[0] == "merged"][0]
    return intervals, merged


def parse_java(out):
    rows = [line.split() for line in out.splitlines()]
    intervals = [list(map(int, r[1:])) for r in rows if r[0] == "interval"]
    merged = [list(map(int, r[1:])) for r in rows if r[0] == "merged"][0]
    return intervals, merged


def compare_stats(what, c, j, values):
    """c: COUNT MIN MAX P..., j: the same from Java, values: the raw data."""
    if c[0] != j[0] or c[0] != len(values):
        fail(f"{what}: count C {c[0]}, Java {j[0]}, recorded {len(values)}")
    if c[3:] != j[3:]:
        fail(f"{what}: percentiles {PERCENTILES}: C {c[3:]}, Java {j[3:]}")
    if not values:
        if c[1:3] != [0, 0] or j[1:3] != [0, 0]:
            fail(f"{what}: empty but min/max C {c[1:3]}, Java {j[1:3]}")
        return
    clamped = sorted(min(v, HIGHEST) for v in values)
    if c[1] != clamped[0] or c[2] != clamped[-1]:
        fail(f"{what}: C min/max {c[1:3]}, recorded {clamped[0]}/{clamped[-1]}")
    check_precision(f"{what} Java min", j[1], c[1], 0)
    check_precision(f"{what} Java max", j[2], c[2], 100)
    for p, got in zip(PERCENTILES, c[3:]):
        check_precision(f"{what} p{p}", got, exact_percentile(clamped, p), p)


def check_log_text(path, java_rows):
    """Interval_Max is Java's getMaxValue() in ms, as HistogramLogWriter."""
    with open(path) as f:
        text = f.read().splitlines()
    if text[0] != "#[Histogram log format version 1.3]":
        fail(f"{path}: first line {text[0]!r}")
    data = [line.split(",") for line in text if re.match(r"^[0-9]", line)]
    if len(data) != len(java_rows):
        fail(f"{path}: {len(data)} interval lines, Java read {len(java_rows)}")
    for fields, j in zip(data, java_rows):
        if fields[2] != f"{j[5] / 1e6:.3f}":
            fail(f"{path}: Interval_Max {fields[2]}, Java's max {j[5]} ns")


def check_processor(java, jar, log, c_intervals, c_merged):
    """HistogramLogProcessor (the tool users run on logs) reads the log:
    per-interval counts, running totals and total percentiles in ms."""
    out = log + ".csv"
    cmd = [java, "-cp", jar, "org.HdrHistogram.HistogramLogProcessor",
           "-i", log, "-o", out, "-csv"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=100)
    if p.returncode != 0 or not os.path.exists(out):
        fail(f"HistogramLogProcessor exited {p.returncode}: {p.stderr.strip()}")
    with open(out) as f:
        rows = [line.split(",") for line in f if re.match(r"^[0-9]", line)]
    if [int(r[1]) for r in rows] != [c[1] for c in c_intervals]:
        fail(f"HistogramLogProcessor interval counts {[r[1] for r in rows]}")
    last = rows[-1]  # Total_Count, Total_50%, 90%, 99%, 99.9%, ..., Total_Max
    totals = [float(x) for x in last[6:10]]
    want = [c_merged[i] / 1e6 for i in (4, 5, 6, 7)]  # p50 p90 p99 p99.9
    if int(last[5]) != c_merged[0] or any(abs(a - b) > 0.0015 for a, b in zip(totals, want)):
        fail(f"HistogramLogProcessor totals {last[5:10]}, C {c_merged[0]} {want} ms")


def run(args):
    if not args.writer:
        skip("echo-bench was built without zlib: no HdrHistogram log to test")
    java, jar = find_java()
    rng = random.Random(27)
    epochs, lines = {"intervals": case_intervals, "edges": case_edges,
                     "merge": case_merge}[args.case](rng)
    with tempfile.TemporaryDirectory() as tmp:
        logs = [os.path.join(tmp, f"run{i}.hlog") for i in range(len(epochs))]
        stdin = "".join(f"{log} {start} {length} {' '.join(map(str, vals))}\n"
                        for log, start, length, vals in lines)
        cmd = [args.writer] + [f"{p}@{e}" for p, e in zip(logs, epochs)]
        c = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if c.returncode != 0:
            fail(f"hdr_write exited {c.returncode}: {c.stderr.strip()}")
        j = subprocess.run([java, "-cp", jar, args.reader] + logs,
                           capture_output=True, text=True, timeout=100)
        if j.returncode != 0:
            fail(f"ReadLog.java exited {j.returncode}: {j.stderr.strip()}")
        c_intervals, c_merged = parse_c(c.stdout)
        j_intervals, j_merged = parse_java(j.stdout)
        if len(j_intervals) != len(lines):
            fail(f"Java read {len(j_intervals)} intervals, {len(lines)} were written")
        for i, log in enumerate(logs):
            check_log_text(log, [r for r in j_intervals if r[0] == i])
        order = sorted(range(len(lines)), key=lambda k: lines[k][0])  # Java reads file by file
        for k, jrow in zip(order, j_intervals):
            log, start, length, values = lines[k]
            want_start = int((epochs[log] + start) * 1000)
            if jrow[0] != log or abs(jrow[1] - want_start) > 1 or \
                    abs(jrow[2] - jrow[1] - length * 1000) > 1:
                fail(f"interval {k}: Java has file {jrow[0]} {jrow[1]}..{jrow[2]} ms, "
                     f"written: file {log} start {want_start} ms length {length} s")
            compare_stats(f"interval {k}", c_intervals[k][1:], jrow[3:], values)
        compare_stats("merged", c_merged, j_merged, [v for line in lines for v in line[3]])
        if args.case == "intervals":
            check_processor(java, jar, logs[0], c_intervals, c_merged)
    print(f"{args.case}: {len(lines)} intervals in {len(epochs)} log(s), "
          f"{c_merged[0]} values: C and Java agree (p99.9 {c_merged[7]} ns)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reader", required=True, help="tests/hdr/ReadLog.java")
    ap.add_argument("--writer", help="the hdr_write test program (absent without zlib)")
    ap.add_argument("case", choices=["intervals", "edges", "merge"])
    run(ap.parse_args())


if __name__ == "__main__":
    main()
