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
import shutil
import subprocess
import sys
import tempfile
import time

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


def scenario_rate(_):
    """Open loop: the rate asked for and the one achieved are reported, and
    a schedule echo-bench cannot keep (100 million messages/s, the most it takes, on one
    connection: an -O2 build on an idle machine nearly keeps 20 million)
    gets a warning line and a `behind` field, exit status 0."""
    with ce.echod('epoll') as d:
        a = ce.host_port(d)
        rc, r, _, _ = bench_json('--connect', a, '--conns', '2', '--rate', '200', '--duration',
                                 '1', '--warmup', '0.2')
        if r is not None:
            check(rc == 0, 'a rate it can keep: exit 0')
            check(r.get('target_rate') == 200 and 150 <= r.get('achieved_rate', 0) <= 250,
                  'target_rate 200 and achieved_rate near it: {}'.format(r))
            check('behind' in r and r['behind'] is None, 'a rate it can keep: behind is null')
            check('schedule_lag_us' in r and r['schedule_lag_us']['max'] >= 0,
                  'the schedule lag is reported')
        argv = ['--connect', a, '--rate', '100000000', '--duration', '1', '--warmup', '0']
        rc, r, _, _ = bench_json(*argv)
        if r is not None:
            check(rc == 0, 'falling behind is a warning, not a failure: exit 0, got {}'.format(rc))
            check(r.get('achieved_rate', 1e9) < r.get('target_rate', 0),
                  'achieved_rate below target_rate: {}'.format(r))
            b = r.get('behind')
            check(isinstance(b, dict) and 0 <= b.get('unsent_share', -1) <= 1 and
                  isinstance(b.get('cpu_limited'), bool),
                  'behind says by how much and whether the CPU was the limit: {}'.format(b))
            # Behind means due messages left unsent at the end, or sends that
            # left late (median over 1 ms): a fast build on an idle machine
            # may catch up by the end (unsent_share 0.0) and still be late.
            if isinstance(b, dict) and b.get('unsent_share') == 0:
                check(r['schedule_lag_us']['p50'] > 1000,
                      'behind with nothing unsent: the median send was late: {}'.format(r))
        rc, out, _, _ = bench(*argv)
        check(re.search(r'^warning: echo-bench fell behind its schedule: \d+ of \d+ due '
                        r'message\(s\) not sent by the end \(\d+%\).*(its own CPU was the limit|'
                        r'not its own CPU)', out, re.M) is not None,
              'one warning line says it fell behind, by how much and why: ' + out)
        check(re.search(r'^rate +target 100000000 msg/s, achieved \d+ msg/s', out, re.M),
              'the text report has target and achieved rate')


def scenario_open_cpu(_):
    """The open loop sleeps until its due times instead of polling through
    the last millisecond (66% of a CPU at 1,000 messages/s before): below
    10% of a core at 1,000 messages/s over 10 connections, with sends at
    most 100 us late at the median. The machine is shared (a busy one
    wakes a thread late now and then), so one good run of five counts; a
    polling loop is far above the CPU bound in all of them."""
    with ce.echod('epoll') as d:
        seen = []
        for _ in range(5):
            rc, r, _, _ = bench_json('--connect', ce.host_port(d), '--conns', '10', '--rate',
                                     '1000', '--duration', '2', '--warmup', '0.5')
            if r is None or rc != 0 or 'schedule_lag_us' not in r:
                check(False, 'echo-bench --rate 1000 reports its schedule lag: {}'.format(r))
                return
            seen.append((r['busy'], r['schedule_lag_us']['p50']))
            if r['busy'] < 0.10 and r['schedule_lag_us']['p50'] < 100:
                break
        print('busy, schedule lag p50 (us): {}'.format(seen), file=sys.stderr)
        check(any(b < 0.10 and lag < 100 for b, lag in seen),
              'below 10% busy with a median schedule lag under 100 us: {}'.format(seen))


def scenario_connect_timeout(_):
    """A listener that never accepts (its accept queue full, so SYNs are
    dropped): the run ends after --connect-timeout with exit 1 and a line
    that names the limit (it took 10 s plus the run before)."""
    with fixture('no_accept_server.py') as srv:
        rc, _, err, took = bench('--connect', srv.address, '--duration', '1',
                                 '--connect-timeout', '1')
        check(rc == 1, '--connect-timeout 1 against a listener that never accepts: exit 1, '
              'got {}'.format(rc))
        check(took < 3.5, 'the run ends about 1 s after it started, not {:.1f} s later'.format(took))
        check(re.search(r'^echo-bench: .*connect failure.*not connected within '
                        r'--connect-timeout 1 s$', err, re.M) is not None,
              'a line names the connect timeout: ' + err)
        rc, r, _, took = bench_json('--connect', srv.address, '--conns', '3', '--duration', '5',
                                    '--connect-timeout', '0.5')
        check(rc == 1 and r is not None and r['connect_failures'] == 3 and took < 3,
              'three connects fail after 0.5 s, the run does not go on for --duration')


def scenario_unix(_):
    """echo-bench --connect unix:PATH against echod on a Unix-domain stream
    socket, closed and open loop; a path nobody serves is a connect
    failure (exit 1), not a usage error."""
    tmp = tempfile.mkdtemp(prefix='bench-unix-')
    path = os.path.join(tmp, 'echo.sock')
    try:
        with ce.Echod(ce.ARGS.echod, 'epoll', listen='unix:' + path, quiet=False) as d:
            d.wait_stderr(r'listening on unix:')
            for extra in (['--conns', '4', '--depth', '2'], ['--conns', '2', '--rate', '500']):
                rc, r, _, _ = bench_json('--connect', 'unix:' + path, '--duration', '1',
                                         '--warmup', '0.2', '--size', '1000', *extra)
                check(rc == 0 and r is not None and r['errors'] == 0 and r['messages'] > 0 and
                      r['connect'] == 'unix:' + path,
                      'echo-bench {} against echod on unix:PATH: every byte back'.format(extra))
        rc, _, err, _ = bench('--connect', 'unix:' + path, '--duration', '0.5',
                              '--connect-timeout', '1')
        check(rc == 1 and 'connect' in err, 'nobody serves the path: exit 1, a connect failure: '
              + err)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(tmp)


def ss_lines(dst):
    """`ss` lines (TOS and socket memory) of the TCP sockets connected to
    dst (HOST:PORT): echo-bench's side of its connections."""
    p = subprocess.run(['ss', '-tnHO', '--tos', '-m', 'state', 'established', 'dst', dst],
                       capture_output=True, text=True, timeout=10)
    return p.stdout.splitlines() if p.returncode == 0 else []


def scenario_sockopts(_):
    """--sndbuf, --rcvbuf and --tos reach every connection (read back with
    ss(8) during the run: the kernel doubles the buffer sizes); --nodelay
    off with small messages still gets every byte back; the TCP
    retransmissions are reported (0 on a quiet loopback)."""
    with ce.echod('epoll') as d:
        a = ce.host_port(d)
        rc, r, _, _ = bench_json('--connect', a, '--nodelay', 'off', '--size', '10', '--depth',
                                 '4', '--conns', '2', '--duration', '1', '--warmup', '0')
        check(rc == 0 and r is not None and r['errors'] == 0 and r['messages'] > 0,
              '--nodelay off: every byte comes back')
        # Usually 0 on loopback, but a starved machine makes TCP send tail
        # loss probes, which count: a whole number is what can be required.
        check(r is not None and isinstance(r.get('retransmits'), int) and r['retransmits'] >= 0,
              'retransmits reported: {}'.format(r and r.get('retransmits')))
        if shutil.which('ss') is None:
            print('(ss(8) not installed: the socket options are not read back)', file=sys.stderr)
            return
        argv = [ce.ARGS.bench, '--connect', a, '--conns', '2', '--sndbuf', '100000', '--rcvbuf',
                '150000', '--tos', '32', '--duration', '3', '--warmup', '0', '--rate', '100']
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lines, deadline = [], time.monotonic() + 5
            while len(lines) < 2 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)  # ss has nothing to wait on; bounded by the deadline
                lines = ss_lines(a)
            check(len(lines) == 2, 'ss shows the 2 connections: {}'.format(lines))
            for line in lines:
                check('tos:0x20' in line, '--tos 32 on the connection: ' + line)
                check('tb200000' in line and 'rb300000' in line,
                      '--sndbuf 100000 and --rcvbuf 150000 on the connection (doubled): ' + line)
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        check(proc.returncode == 0, 'the tuned run exits 0: ' + err.decode())
        check(re.search(r'TCP retransmits \d+$', out.decode(), re.M) is not None,
              'the text report has the TCP retransmits')


SCENARIOS = {
    'stall': scenario_stall,
    'rate': scenario_rate,
    'open-cpu': scenario_open_cpu,
    'connect-timeout': scenario_connect_timeout,
    'unix': scenario_unix,
    'sockopts': scenario_sockopts,
}


if __name__ == '__main__':
    ce.main(SCENARIOS)
