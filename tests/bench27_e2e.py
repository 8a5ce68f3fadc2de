#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench27_e2e.py: end-to-end tests of echo-bench's latency over time
# (--interval), connection churn (--churn), many source addresses
# (--source) and --threads auto, against echod; the helpers are those of
# tests/clients_e2e.py.
#   bench27_e2e.py --client BIN --bench BIN --fixtures DIR [--echod BIN] SCENARIO
# Exit 0 = pass, 1 = fail, 77 = skipped.
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients_e2e as ce  # noqa: E402
from clients_e2e import bench, check  # noqa: E402


def json_lines(out):
    """The JSON objects of --interval --json output, one per line."""
    objs = []
    for line in out.splitlines():
        try:
            objs.append(json.loads(line))
        except ValueError:
            check(False, 'every stdout line is a JSON object: {!r}'.format(line[:200]))
    return objs


def wait_line(proc, timeout):
    """Waits (bounded) for the first byte on proc's stdout; True if it came."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready)


def scenario_interval_stall(_):
    """The acceptance test of latency over time: echod is stopped for
    500 ms in the middle of an open-loop run; the interval lines show the
    stall (that interval's p99 >= 400 ms) and the summary's max is
    >= 500 ms, because latency counts from the scheduled send time."""
    with ce.echod('epoll') as d:
        argv = [ce.ARGS.bench, '--connect', ce.host_port(d), '--conns', '4', '--rate', '2000',
                '--duration', '4', '--warmup', '0', '--interval', '0.5', '--json']
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # The first interval line says traffic is flowing: stall now.
            check(wait_line(proc, 10), 'an interval line within 10 s')
            d.signal(signal.SIGSTOP)
            t0 = time.monotonic()
            try:
                # 500 ms at least, measured (sleep may end a hair early).
                while time.monotonic() - t0 < 0.502:
                    time.sleep(0.502 - (time.monotonic() - t0))
            finally:
                d.signal(signal.SIGCONT)
            stalled = time.monotonic() - t0
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    objs = json_lines(out.decode())
    print('stalled {:.3f} s; stderr: {}'.format(stalled, err.decode()), file=sys.stderr)
    check(proc.returncode == 0, 'exit 0, got {}'.format(proc.returncode))
    if len(objs) < 2:
        check(False, 'interval lines and a summary: {}'.format(out[:300]))
        return
    summary, ivals = objs[-1], objs[:-1]
    check('connect' in summary and all('interval' in o for o in ivals),
          'the interval lines come first, the summary object last')
    check(7 <= len(ivals) <= 9, '8 intervals of 0.5 s in 4 s, got {}'.format(len(ivals)))
    p99s = [o['latency_us']['p99'] for o in ivals]
    print('interval p99 (us): {}'.format(p99s), file=sys.stderr)
    print('summary max (us): {}'.format(summary['latency_us']['max']), file=sys.stderr)
    check(max(p99s) >= 400000, 'an interval shows the stall: p99 >= 400 ms: {}'.format(p99s))
    check(sum(1 for p in p99s if p >= 400000) <= 2, 'the stall is in at most 2 intervals')
    check(summary['latency_us']['max'] >= 500000,
          'the summary max >= 500 ms: {}'.format(summary['latency_us']))
    total = sum(o['messages'] for o in ivals)
    check(abs(total - summary['messages']) <= 0.01 * summary['messages'] + 8,
          'the intervals add up to the summary: {} vs {}'.format(total, summary['messages']))
    check(all(set(o['latency_us']) == {'p50', 'p99', 'p99_9', 'max'} and 'errors' in o and
              'outstanding' in o and 'messages_per_s' in o for o in ivals),
          'each interval has messages/s, p50/p99/p99.9/max, errors, outstanding')


def scenario_interval_text(_):
    """Without --json, the interval lines are text on stderr (stdout keeps
    the report); warm-up intervals are marked; bad values are usage
    errors."""
    with ce.echod('epoll') as d:
        rc, out, err, _ = bench('--connect', ce.host_port(d), '--duration', '1', '--warmup',
                                '0.5', '--interval', '0.25')
        check(rc == 0, 'exit 0')
        lines = [l for l in err.splitlines() if re.match(r'^echo-bench: +[\d.]+ s', l)]
        check(5 <= len(lines) <= 7, '6 lines of 0.25 s in 1.5 s: {}'.format(lines))
        pat = (r'^echo-bench: +[\d.]+ s( \(warm-up\))?  \d+ msg/s  p50 [\d.]+ [um]s  p99 [\d.]+ '
               r'[um]s  p99\.9 [\d.]+ [um]s  max [\d.]+ [um]s  errors \d+  outstanding \d+$')
        check(all(re.match(pat, l) for l in lines), 'the line format: {}'.format(lines))
        check(sum('(warm-up)' in l for l in lines) == 2, 'two warm-up intervals marked')
        check(out.startswith('echo-bench: ') and 'latency' in out, 'the report on stdout')
        check('msg/s  p50' not in out, 'no interval line on stdout')
        rc, out, err, _ = bench('--connect', ce.host_port(d), '--duration', '0.5', '--json')
        check(rc == 0 and len(out.strip().splitlines()) == 1,
              '--json without --interval: only the summary on stdout')
    for bad in ('0', '0.001', 'x'):
        rc, _, err, _ = bench('--interval', bad)
        check(rc == 2 and err.startswith('echo-bench: --interval'),
              '--interval {}: a usage error: {}'.format(bad, err))


SCENARIOS = {
    'interval-stall': scenario_interval_stall,
    'interval-text': scenario_interval_text,
}


def main():
    ce.SCENARIOS.update(SCENARIOS)
    ce.main()


if __name__ == '__main__':
    main()
