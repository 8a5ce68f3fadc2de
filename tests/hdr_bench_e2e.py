#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""hdr_bench_e2e.py - echo-bench --hdr-log from real runs against echod,
read back by HdrHistogram itself (Debian's libhdrhistogram-java, through
tests/hdr/ReadLog.java and the JRE's single-file source launcher).

  hdr_bench_e2e.py --reader ReadLog.java --client BIN --bench BIN
                   --fixtures DIR --echod BIN SCENARIO

Scenarios:
  log    one open-loop run of two threads writes a log (the default
         interval, 1 s); Java reads one interval per second, and its total
         count, p50, p99 and max agree with echo-bench's own --json summary within the
         histogram's precision (the count exactly: the log holds what the
         summary does, the outstanding messages charged up to the end).
  merge  two echo-bench processes at once against one echod, each with its
         own log, as two load-generating machines would; Java adds every
         interval of both: the merged count is the sum of the two
         summaries', and the merged percentiles lie between the two runs'.
Skips (77) without java >= 11, the jar, or an echo-bench built with zlib.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clients_e2e as ce  # noqa: E402
import hdr_java  # noqa: E402
from clients_e2e import check  # noqa: E402

READER = os.path.join(HERE, 'hdr', 'ReadLog.java')


def within(what, got_ns, want_us, exact_max=False):
    """got_ns (Java, a bucket's highest equivalent) against want_us (the
    JSON's microseconds, one decimal): equal up to the JSON's rounding,
    or, for the exact max, at most one bucket (1/1024) above it."""
    want_ns = want_us * 1000.0
    slack = 50.0 + (want_ns / 1024.0 if exact_max else 0.0)
    lo = want_ns - 50.0
    return check(lo <= got_ns <= want_ns + slack,
                 '{}: Java {} ns, echo-bench {} us'.format(what, got_ns, want_us))


def start_bench(d, log, rate, seconds, threads=1):
    argv = [ce.ARGS.bench, '--connect', ce.host_port(d), '--conns', '4', '--rate', str(rate),
            '--duration', str(seconds), '--warmup', '0', '--hdr-log', log, '--json',
            '--threads', str(threads)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_bench(p):
    """Waits for a run (bounded); its JSON summary, or None (skips where
    this echo-bench cannot write logs)."""
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        check(False, 'echo-bench ended within 60 s')
        return None
    if p.returncode == 2 and 'without zlib' in err:
        hdr_java.skip('echo-bench was built without zlib')
    check(p.returncode == 0, 'echo-bench exit 0, got {}: {}'.format(p.returncode, err.strip()))
    try:
        return json.loads(out)
    except ValueError:
        check(False, 'a JSON summary: {!r}'.format(out[:300]))
        return None


def read_logs(java, jar, logs):
    """ReadLog.java's rows: intervals (file, start ms, end ms, count, min,
    max, p0, p50, p90, p99, p99.9, p100) and the merged row (count ...)."""
    j = subprocess.run([java, '-cp', jar, READER] + logs, capture_output=True, text=True,
                       timeout=100)
    if j.returncode != 0:
        check(False, 'ReadLog.java exited {}: {}'.format(j.returncode, j.stderr.strip()))
        return [], None
    rows = [line.split() for line in j.stdout.splitlines()]
    ivals = [list(map(int, r[1:])) for r in rows if r[0] == 'interval']
    merged = [list(map(int, r[1:])) for r in rows if r[0] == 'merged'][0]
    return ivals, merged


def counted(summary):
    """What the summary's latencies cover: the echoes completed in the
    window and those outstanding at the end."""
    return summary['messages'] + summary['outstanding']


def check_header(log):
    with open(log) as f:
        head = [f.readline().rstrip('\n') for _ in range(4)]
    check(head[0] == '#[Histogram log format version 1.3]' and
          head[1].startswith('#[StartTime: ') and head[2].startswith('#[BaseTime: ') and
          head[3] == '"StartTimestamp","Interval_Length","Interval_Max",'
                     '"Interval_Compressed_Histogram"', 'the 1.3 header: {}'.format(head))


def log_errors(d):
    """A log that cannot be opened stops the run before it starts; one
    whose writes fail (/dev/full) ends it with exit 1 and one line."""
    base = ['--connect', ce.host_port(d), '--duration', '0.3', '--warmup', '0']
    rc, out, err, _ = ce.bench(*base, '--hdr-log', '/nonexistent/dir/run.hlog')
    check(rc == 1 and out == '' and
          err.startswith('echo-bench: --hdr-log /nonexistent/dir/run.hlog: No such file'),
          'an unopenable log: exit 1, one line: {!r}'.format(err))
    if os.path.exists('/dev/full'):
        rc, out, err, _ = ce.bench(*base, '--hdr-log', '/dev/full')
        check(rc == 1 and 'echo-bench: --hdr-log /dev/full: writing: No space left' in err,
              'a log that cannot be written: exit 1, said: {!r}'.format(err))


def scenario_log(_):
    java, jar = hdr_java.find_java()
    with tempfile.TemporaryDirectory() as tmp, ce.echod('epoll') as d:
        log = os.path.join(tmp, 'run.hlog')
        # Two threads: each line combines both threads' interval histograms.
        r = finish_bench(start_bench(d, log, 2000, 3, threads=2))
        if r is None:
            return
        check_header(log)
        ivals, merged = read_logs(java, jar, [log])
        log_errors(d)
    print('summary: {} messages + {} outstanding, latency {}'.format(
        r['messages'], r['outstanding'], r['latency_us']), file=sys.stderr)
    print('Java: {} intervals, merged {}'.format(len(ivals), merged), file=sys.stderr)
    check(len(ivals) == 3, 'one interval per second (the default): {}'.format(len(ivals)))
    starts = [iv[1] for iv in ivals]
    check(all(abs((iv[2] - iv[1]) - 1000) <= 1 for iv in ivals) and
          all(abs(b - a - 1000) <= 1 for a, b in zip(starts, starts[1:])),
          'intervals of 1 s back to back: {}'.format([(iv[1], iv[2]) for iv in ivals]))
    if merged is None:
        return
    check(merged[0] == counted(r), 'Java counts {}, the summary {}'.format(merged[0], counted(r)))
    lat = r['latency_us']
    within('p50', merged[4], lat['p50'])
    within('p99', merged[6], lat['p99'])
    within('max', merged[2], lat['max'], exact_max=True)


def scenario_merge(_):
    java, jar = hdr_java.find_java()
    with tempfile.TemporaryDirectory() as tmp, ce.echod('epoll') as d:
        logs = [os.path.join(tmp, 'a.hlog'), os.path.join(tmp, 'b.hlog')]
        procs = [start_bench(d, logs[0], 1000, 3), start_bench(d, logs[1], 3000, 3)]
        runs = [finish_bench(p) for p in procs]
        if None in runs:
            return
        ivals, merged = read_logs(java, jar, logs)
    print('Java: {} intervals, merged {}'.format(len(ivals), merged), file=sys.stderr)
    if merged is None:
        return
    check(sorted({iv[0] for iv in ivals}) == [0, 1] and len(ivals) == 6,
          'three intervals from each log: {}'.format([iv[:3] for iv in ivals]))
    want = counted(runs[0]) + counted(runs[1])
    check(merged[0] == want, 'merged count {} = {} + {}'.format(merged[0], counted(runs[0]),
                                                               counted(runs[1])))
    # The merged distribution lies between the two runs' (each value of a
    # percentile of the union is between the runs' values of it).
    for name, idx in (('p50', 4), ('p99', 6)):
        lo = min(x['latency_us'][name] for x in runs) * 1000 - 50
        hi = max(x['latency_us'][name] for x in runs) * 1000 + 50
        check(lo <= merged[idx] <= hi, 'merged {} {} ns within the runs\' [{}, {}]'.format(
            name, merged[idx], lo, hi))
    within('merged max', merged[2], max(x['latency_us']['max'] for x in runs), exact_max=True)
    check(merged[1] <= merged[4] <= merged[6] <= merged[2], 'min <= p50 <= p99 <= max')


SCENARIOS = {'log': scenario_log, 'merge': scenario_merge}


if __name__ == '__main__':
    ce.main(SCENARIOS)
