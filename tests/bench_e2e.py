#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench_e2e.py: end-to-end tests of echo-bench's report against servers
# that stall, never accept, or are echod on a Unix socket; the helpers
# (servers that print their address, bounded runs, echod) are those of
# tests/clients_e2e.py.
#   bench_e2e.py --client BIN --bench BIN --fixtures DIR [--echod BIN] SCENARIO
# Exit 0 = pass, 1 = fail, 77 = skipped.
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients_e2e as ce  # noqa: E402
from clients_e2e import bench, check, fixture  # noqa: E402


def bench_json(*args, **kw):
    """Runs echo-bench --json; returns (exit status, report or None, stderr, seconds)."""
    rc, out, err, took = bench(*args, '--json', **kw)
    try:
        return rc, json.loads(out), err, took
    except ValueError:
        check(False, 'echo-bench --json prints one JSON object, got: ' + out[:300])
        return rc, None, err, took


def scenario_stall(_):
    """A server that echoes the first 1 MiB of each connection, then reads
    without answering: what is outstanding at the end counts, in the
    latency, as `outstanding`, and against --timeout."""
    with fixture('stall_echo_server.py') as srv:
        for loop, extra in (('open', ['--rate', '1000']), ('closed', [])):
            base = ['--connect', srv.address, '--size', '1000', '--duration', '3', '--warmup', '0']
            rc, r, err, _ = bench_json(*base, *extra)
            if r is None:
                continue
            what = '{} loop against a server silent for the last ~2 s: '.format(loop)
            check(rc == 0, what + 'exit 0 while no wait exceeds --timeout (5 s), got {}'.format(rc))
            check(r.get('outstanding', 0) >= 1, what + 'outstanding >= 1: {}'.format(r))
            check(r['latency_us']['max'] >= 1.5e6,
                  what + 'max latency shows the stall (>= 1.5 s): {}'.format(r['latency_us']))
            check(r['errors'] == 0 and r.get('timed_out') == 0, what + 'no error, none timed out')
            rc, out, err, _ = bench(*base, *extra, '--timeout', '1')
            check(rc == 1, what + '--timeout 1: exit 1, got {}'.format(rc))
            check(re.search(r'^echo-bench: \d+ message\(s\) waited longer than --timeout 1 s', err,
                            re.M) is not None, what + '--timeout 1: a line says why: ' + err)
            check(re.search(r'outstanding at the end [1-9]', out) is not None,
                  what + 'the text report counts the outstanding messages')


SCENARIOS = {
    'stall': scenario_stall,
}


def main():
    ce.SCENARIOS.update(SCENARIOS)
    ce.main()


if __name__ == '__main__':
    main()
