#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# clients_e2e.py: end-to-end tests of echo-client and echo-bench against
# real servers: echod in each mode (a loop backend, or engine-uring: see
# tests/echod_proc.py), the seed's Python select and poll servers
# (tests/fixtures), and a server that misbehaves on purpose.
#   clients_e2e.py --client BIN --bench BIN --fixtures DIR [--echod BIN] SCENARIO [ARG]
# Every server listens on 127.0.0.1 port 0 and prints its address; every
# wait is bounded; only processes started here are stopped, by their PID.
# Exit 0 = pass, 1 = fail, 77 = skipped.
import argparse
import json
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echod_proc import Echod, Skip, client_backend, mode_args  # noqa: E402

ARGS = None
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print('FAILED: ' + what, file=sys.stderr)
    return cond


class Server:
    """A server process that prints HOST:PORT as its first stdout line."""

    def __init__(self, argv, what):
        self.what = what
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = b''
        deadline = time.monotonic() + 10
        fd = self.proc.stdout.fileno()
        # Poll for the address line rather than sleeping for it.
        while not line.endswith(b'\n'):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError('{} did not print its address'.format(what))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 256)
                if not chunk:
                    self.stop()
                    raise RuntimeError('{} closed stdout without an address'.format(what))
                line += chunk
        self.address = line.split(b'\n')[0].decode().strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def fixture(name, *args):
    return Server([sys.executable, os.path.join(ARGS.fixtures, name)] + list(args), name)


def echod(mode, listen='127.0.0.1:0'):
    """An echod_proc.Echod in a mode (a backend, or engine-uring) on
    `listen`; it raises Skip where the mode is not available, and fails if
    echod does not start. Its address is host_port(d)."""
    return Echod(ARGS.echod, mode, listen=listen, quiet=False)


def host_port(d):
    return '[{}]:{}'.format(d.host, d.port) if ':' in d.host else '{}:{}'.format(d.host, d.port)


def run_tool(argv, timeout=20, stdin_data=None, stdin=None):
    """Runs a tool, showing the command, its status and its stderr;
    returns (exit status, stdout bytes, stderr text, seconds). A tool still
    running at `timeout` is a failed check (status None)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=stdin_data, stdin=stdin, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        check(False, '{} did not finish within {} s'.format(' '.join(argv), timeout))
        return None, b'', '', timeout
    took = time.monotonic() - t0
    err = p.stderr.decode(errors='replace')
    shown = ' '.join(a if len(a) < 80 else a[:60] + '...' for a in argv)
    print('$ {}  -> {} in {:.2f} s, {} bytes on stdout'.format(
        shown, p.returncode, took, len(p.stdout)), file=sys.stderr)
    if err:
        print('  ' + err.rstrip()[-3000:].replace('\n', '\n  '), file=sys.stderr)
    return p.returncode, p.stdout, err, took


def run(argv, timeout=20, stdin_data=None):
    """Runs a tool; returns (exit status, stdout, stderr, seconds)."""
    rc, out, err, took = run_tool(argv, timeout, stdin_data)
    return rc, out.decode(errors='replace'), err, took


def client(*args, **kw):
    return run([ARGS.client] + list(args), **kw)


def bench(*args, **kw):
    return run([ARGS.bench] + list(args), **kw)


def seed_story_ok(err, parts, sockets):
    """The seed's story: connecting, then sending/received per socket."""
    ok = check(err.startswith('connecting to 127.0.0.1 port '), 'story starts with connecting')
    for part in parts:
        text = "sending b'{}'".format(part)
        ok &= check(err.count(text) == sockets, '{} x "{}"'.format(sockets, text))
    ok &= check(err.count('closing socket (') == sockets, 'one closing line per socket')
    received = ''.join(line.split(': received ', 1)[1]
                       for line in err.splitlines() if ': received ' in line)
    ok &= check(received.count("b'") >= len(parts), 'received lines present')
    return ok


DEFAULT_PARTS = ['This is the message. ', 'It will be sent ', 'in parts.']
SLOW_PARTS = ['Part one of the message.', 'Part two of the message.']


def scenario_seed(name):
    """echo-client against a seed Python server: the multi-socket client,
    the slow client (delays shortened to keep the test quick), and parts
    from stdin. Each run gets a fresh server: the seed's select server
    dies with a KeyError when a client closes while its socket is still in
    `outputs` (it deletes the queue in the readable loop, then looks it up
    in the writable loop of the same iteration), which our client does on
    every run once it has its echo."""
    with fixture(name, '0') as srv:
        rc, _, err, _ = client('--connect', srv.address)
        check(rc == 0, 'multi-socket client exits 0 against ' + name)
        seed_story_ok(err, DEFAULT_PARTS, 2)
    with fixture(name, '0') as srv:
        rc, _, err, took = client('--connect', srv.address, '--sockets', '1', '--connect-delay',
                                  '0.2', '--delay', '0.3', *SLOW_PARTS)
        check(rc == 0, 'slow client exits 0 against ' + name)
        check(took >= 0.5, 'the delays were honoured ({:.2f} s >= 0.5 s)'.format(took))
        seed_story_ok(err, SLOW_PARTS, 1)
    with fixture(name, '0') as srv:
        rc, _, err, _ = client('--connect', srv.address, '--sockets', '5', '--quiet', '-',
                               stdin_data=b'first line\n\nsecond line\n')
        check(rc == 0, 'parts from stdin exit 0 against ' + name)
        check(err == '', '--quiet prints nothing on success')


def scenario_echod(mode):
    """echo-client and echo-bench against echod in one mode. The clients
    use the same backend, or their default (auto) against an engine."""
    if not ARGS.echod:
        print('SKIP: echod is not built', file=sys.stderr)
        sys.exit(77)
    backend = client_backend(mode)
    what = 'echod ' + ' '.join(mode_args(mode))
    with echod(mode) as srv:
        address = host_port(srv)
        rc, _, err, _ = client('--connect', address, '--backend', backend)
        check(rc == 0, 'echo-client exits 0 against ' + what)
        seed_story_ok(err, DEFAULT_PARTS, 2)
        # Big parts on many sockets: partial writes and reads on both sides.
        big = ''.join(chr(ord('a') + i % 26) for i in range(300000))
        lines = '{}\nx\n{}\n'.format(big, big[:70000]).encode()
        rc, _, _, _ = client('--connect', address, '--sockets', '20', '--quiet', '--backend',
                             backend, '-', stdin_data=lines)
        check(rc == 0, 'echo-client with 300 kB parts on 20 sockets exits 0')
        rc, out, _, _ = bench('--connect', address, '--conns', '10', '--depth', '4',
                              '--duration', '1', '--warmup', '0.2', '--json', '--backend', backend)
        check(rc == 0, 'echo-bench exits 0 against ' + what)
        try:
            r = json.loads(out)
        except ValueError:
            check(False, 'echo-bench --json prints one JSON object, got: ' + out[:200])
            return
        check(r['errors'] == 0, 'echo-bench reports 0 errors')
        check(r['connect_failures'] == 0, 'echo-bench reports 0 connect failures')
        check(r['messages_per_s'] > 0, 'echo-bench reports a non-zero rate')
        check(r['latency_us']['p50'] > 0, 'echo-bench reports a latency')
        cpu_figures_ok(r)
        if backend == 'auto':  # it reports the backend auto chose
            check(bool(r['backend']) and r['backend'] != 'auto',
                  'echo-bench names the backend it chose ({})'.format(r['backend']))
        else:
            check(r['backend'] == backend, 'echo-bench used backend ' + backend)
    # IPv6, where this machine has a loopback for it.
    try:
        srv6 = echod(mode, '[::1]:0')
    except AssertionError as e:
        print('(no IPv6 loopback here: the [::1] part is skipped: {})'.format(e), file=sys.stderr)
        return
    with srv6:
        rc, _, err, _ = client('--connect', host_port(srv6), '--sockets', '1', '--backend',
                               backend, 'over IPv6')
        check(rc == 0, 'echo-client exits 0 over IPv6')
        check("('::1', " in err and ", 0, 0): sending b'over IPv6'" in err,
              'IPv6 socket names are printed the way Python prints them')


def expect_client_failure(mode, needle, after='5', timeout_arg='3', max_s=8.0):
    with fixture('bad_echo_server.py', mode, after) as srv:
        rc, _, err, took = client('--connect', srv.address, '--timeout', timeout_arg)
        check(rc == 1, 'echo-client exits 1 against a server that does "{}"'.format(mode))
        last = err.rstrip().splitlines()[-1] if err.strip() else ''
        check(last.startswith('echo-client: ') and needle in last,
              'last line "{}" is a clear reason containing "{}"'.format(last, needle))
        check(took < max_s, 'gave up within {} s ({:.2f} s)'.format(max_s, took))


def scenario_bad(mode):
    if mode == 'close':
        expect_client_failure('close', 'closed the connection early')
    elif mode == 'reset':
        expect_client_failure('reset', 'reset')
    elif mode == 'corrupt':
        expect_client_failure('corrupt', 'mismatch', after='7')
    elif mode == 'silent':
        expect_client_failure('silent', 'timed out', timeout_arg='1', max_s=4.0)
    elif mode == 'extra':
        expect_client_failure('extra', 'more than were sent')
    elif mode == 'refused':
        # A port that was free a moment ago: bound, never listened on.
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        rc, _, err, took = client('--connect', '127.0.0.1:{}'.format(port))
        s.close()
        check(rc == 1, 'echo-client exits 1 when the connection is refused')
        check('refused' in err, 'the reason says refused')
        check(took < 5, 'quickly')
    else:
        raise SystemExit('unknown bad mode ' + mode)


def bench_bad_server(how, at, conns, why):
    """echo-bench --json against bad_echo_server.py HOW AT: it exits 1 with
    one error per connection; returns (its report, stderr, seconds)."""
    with fixture('bad_echo_server.py', how, at) as srv:
        rc, out, err, took = bench('--connect', srv.address, '--conns', str(conns), '--duration',
                                   '1', '--warmup', '0', '--json')
    check(rc == 1, 'echo-bench exits 1 ' + why)
    r = json.loads(out)
    check(r['errors'] == conns, 'one error per connection ({} reported)'.format(r['errors']))
    return r, err, took


def scenario_bench_corrupt(_):
    """echo-bench against a server that flips one byte per connection."""
    r, err, _ = bench_bad_server('corrupt', '1000', 3, 'against a corrupting server')
    check('byte 1000 of the stream is wrong' in (r['first_error'] or ''),
          'the first error names the byte')
    check('error' in err, 'stderr says so too')


def scenario_bench_close(_):
    _, _, took = bench_bad_server('close', '100', 2, 'when the server closes early')
    check(took < 10, 'within the run time')


def scenario_bench_modes(_):
    """The other modes against the correct Python echo (threads, so it
    keeps up): open loop, threads, idle connections, slow and never-reading
    readers, paced connects."""
    with fixture('bad_echo_server.py', 'echo') as srv:
        a = srv.address
        rc, out, _, _ = bench('--connect', a, '--conns', '4', '--rate', '400', '--duration', '1',
                              '--warmup', '0', '--json')
        r = json.loads(out) if rc is not None else {}
        check(rc == 0 and r.get('mode') == 'open', 'open loop runs')
        # 400/s for 1 s: the schedule, not the server, sets the count.
        check(150 <= r.get('messages', 0) <= 420, 'open loop keeps its rate')
        rc, out, _, _ = bench('--connect', a, '--conns', '4', '--threads', '2', '--idle', '20',
                              '--connect-rate', '200', '--duration', '0.5', '--warmup', '0',
                              '--json')
        r = json.loads(out) if rc is not None else {}
        check(rc == 0 and r.get('threads') == 2 and r.get('idle') == 20,
              'threads + idle + paced connects run')
        rc, out, _, _ = bench('--connect', a, '--read-delay', '50', '--size', '100000',
                              '--duration', '0.5', '--warmup', '0', '--json')
        r = json.loads(out) if rc is not None else {}
        check(rc == 0 and r.get('messages', 0) >= 1, 'a slow reader still completes messages')
        rc, out, _, _ = bench('--connect', a, '--never-read', '--duration', '0.5', '--warmup',
                              '0', '--json')
        r = json.loads(out) if rc is not None else {}
        took = r.get('never_read_bytes', {}).get('min', 0)
        check(rc == 0 and took > 0, 'never-read reports what the server took ({})'.format(took))
        # A light load costs light CPU: the main thread naps while the workers
        # run (it once spun on the clock when stderr was not a terminal, as
        # here, halving what the load generator could drive). CPU time, not
        # wall-clock: 20 messages/s for 2.5 s need a few milliseconds; a
        # spinning thread takes most of the 2.5 s.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        rc, out, _, _ = bench('--connect', a, '--rate', '20', '--duration', '2.5', '--warmup',
                              '0', '--json')
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        check(rc == 0 and cpu < 0.5,
              'a 2.5 s run at 20 messages/s takes little CPU ({:.2f} s)'.format(cpu))


def cpu_figures_ok(r):
    """echo-bench's own CPU in its report: present, and consistent with its
    messages and its window (cpu_s is printed to the millisecond, busy to
    the percent)."""
    cpu, msgs, win = r.get('cpu_s'), r.get('messages', 0), r.get('duration_s', 0)
    if cpu is None or 'busy' not in r or 'cpu_us_per_msg' not in r:
        check(False, 'echo-bench --json reports cpu_s, cpu_us_per_msg and busy')
        return
    lanes = min(r['threads'], r.get('cpus', 0))
    check(lanes >= 1, 'echo-bench --json reports the CPUs it may use ({})'.format(r.get('cpus')))
    lanes = max(lanes, 1)
    check(0 < cpu <= win * lanes * 1.05,
          'its CPU time is within its threads\' time ({} s in {} s)'.format(cpu, win))
    # busy is rounded to the whole percent (the verdict on 95% agrees with it)
    check(abs(r['busy'] - cpu / (win * lanes)) <= 0.0051,
          'busy ({}) is its CPU time over its threads\' time'.format(r['busy']))
    if msgs:
        per = cpu * 1e6 / msgs
        check(abs(r['cpu_us_per_msg'] - per) <= 0.0006e6 / msgs + 0.001,
              'cpu_us_per_msg ({}) is its CPU time per message ({:.3f})'.format(
                  r['cpu_us_per_msg'], per))


def scenario_bench_cpu(_):
    """echo-bench says how busy it was, so that a run where the load
    generator is the bottleneck can be told from one where the server is."""
    with fixture('bad_echo_server.py', 'echo') as srv:
        a = srv.address
        rc, out, _, _ = bench('--connect', a, '--conns', '4', '--depth', '2', '--duration', '1',
                              '--warmup', '0.2', '--json')
        check(rc == 0, 'echo-bench exits 0 against the Python echo')
        r = json.loads(out) if rc == 0 else {}
        cpu_figures_ok(r)
        # A reader that pauses 50 ms after each read sleeps nearly all the time.
        rc, out, _, _ = bench('--connect', a, '--read-delay', '50', '--duration', '1',
                              '--warmup', '0', '--json')
        r = json.loads(out) if rc == 0 else {}
        check(rc == 0 and 0 <= r.get('busy', -1) < 0.3,
              'a slow reader is reported mostly idle (busy {})'.format(r.get('busy')))
        rc, out, _, _ = bench('--connect', a, '--read-delay', '50', '--duration', '1',
                              '--warmup', '0')
        check(rc == 0 and re.search(r'^echo-bench CPU [0-9.]+ s in [0-9.]+ s, 1 thread\(s\) on '
                                    r'[0-9]+ CPU\(s\): [0-9]+% busy, [0-9.]+ us per message$',
                                    out, re.M),
              'the text report has the CPU line: ' + out[-300:])
        check('note: echo-bench was at its limit' not in out,
              'no note that it was at its limit when it was not')
        # Two threads held to one CPU share it: busy is over that one CPU.
        one = sorted(os.sched_getaffinity(0))[0]
        if shutil.which('taskset') is None:
            check(False, 'taskset (util-linux) is needed to hold echo-bench to one CPU')
            return
        rc, out, _, _ = run(['taskset', '-c', str(one), ARGS.bench, '--connect', a, '--conns',
                             '4', '--threads', '2', '--duration', '1', '--warmup', '0.2',
                             '--json'])
        r = json.loads(out) if rc == 0 else {}
        check(rc == 0 and r.get('cpus') == 1 and r.get('threads') == 2,
              'two threads on one CPU report 1 usable CPU ({})'.format(r.get('cpus')))
        cpu_figures_ok(r)
    # Against echod, flat out: the note is printed exactly when it was at
    # least 95% busy (whether it is depends on this machine).
    if ARGS.echod:
        with echod('poll') as d:
            rc, out, _, _ = bench('--connect', host_port(d), '--conns', '10', '--size', '16384',
                                  '--duration', '1', '--warmup', '0.2')
            m = re.search(r'CPU ([0-9.]+) s in ([0-9.]+) s, 1 thread', out)
            check(rc == 0 and m is not None, 'echo-bench reports its CPU against echod')
            if m:
                busy = float(m.group(1)) / float(m.group(2))
                noted = 'note: echo-bench was at its limit' in out
                if abs(busy - 0.95) < 0.006:
                    print('(busy {:.3f}: too close to 95% for the printed figures to decide '
                          'whether the note is due; not checked)'.format(busy), file=sys.stderr)
                else:
                    check(noted == (busy >= 0.95),
                          'the at-its-limit note is there exactly when busy >= 95% '
                          '(busy {:.3f}, note {})'.format(busy, noted))


def scenario_spin_auto(_):
    """--spin-receive auto, the engine's default, under echo-bench flat out
    at 10 clients of 16 KiB: every byte is verified. Whether echod is
    saturated depends on this machine, so it is measured (its CPU time from
    /proc over the run): at 92 % or more on average, some 100 ms epoch was
    at 90 % or more, and spinning must have started. Once the clients are
    gone it must stop (no clients: never spin), whatever happened before."""
    with echod('engine-uring') as d:
        cpu0, t0 = d.cpu_seconds(), time.monotonic()
        rc, out, _, _ = bench('--connect', host_port(d), '--conns', '10', '--size', '16384',
                              '--duration', '2', '--warmup', '0', '--json')
        share = (d.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        check(rc == 0, 'echo-bench verifies every byte against the engine flat out')
        line = d.stats()
        m = re.search(r'spinning (now|not now), started (\d+) times', line)
        if not check(m is not None, 'the statistics say whether it spins: ' + line):
            return
        started = int(m.group(2))
        print('echod used {:.0%} of a CPU; spinning started {} time(s)'.format(share, started),
              file=sys.stderr)
        if share >= 0.92:
            check(started >= 1, 'saturated ({:.0%}) and never spun: {}'.format(share, line))
        else:
            print('(not saturated on this machine: whether it had to spin is not checked)',
                  file=sys.stderr)
        deadline = time.monotonic() + 5
        while 'spinning now' in line and time.monotonic() < deadline:
            time.sleep(0.05)  # two 100 ms epochs at most; nothing to poll for
            line = d.stats()
        check('spinning not now' in line, 'still spinning with no clients: ' + line)


def scenario_usage(_):
    """Bad command lines: exit 2 with the reason and the --help line
    (echo-client's cases are in tests/client_e2e.py, scenario usage)."""
    bench_usage_errors()
    for tool in (client, bench):
        rc, out, _, _ = tool('--help')
        check(rc == 0 and out.startswith('usage:'), '--help prints the usage and exits 0')


def bench_usage_errors():
    """echo-bench's usage errors: exit 2, the reason in one line
    "echo-bench: ...", then the line that points at --help."""
    for args in (['--conns', 'many'], ['--size', '0'], ['--udp', '--idle', '3'],
                 ['--connect', '1.2.3.4:99999'], ['--bogus'], ['--depth'],
                 ['--connect', 'unix:/tmp/x.sock', '--udp']):
        rc, _, err, _ = bench(*args)
        lines = err.strip().splitlines()
        check(rc == 2, '{} exits 2'.format(args))
        check(len(lines) == 2 and lines[0].startswith('echo-bench: ') and
              lines[1] == "Try 'echo-bench --help' for more information.",
              '{}: "echo-bench: reason" then the --help line, got {!r}'.format(args, err))


SCENARIOS = {
    'seed': scenario_seed,
    'echod': scenario_echod,
    'bad': scenario_bad,
    'bench-corrupt': scenario_bench_corrupt,
    'bench-close': scenario_bench_close,
    'bench-modes': scenario_bench_modes,
    'bench-cpu': scenario_bench_cpu,
    'spin-auto': scenario_spin_auto,
    'usage': scenario_usage,
}


def run_scenario(scenario, *args):
    """Runs a scenario; returns the exit status: 77 if it raised Skip, 1 if
    a check failed, else 0."""
    try:
        scenario(*args)
    except Skip as e:
        print('SKIP: {}'.format(e), file=sys.stderr)
        return 77
    if FAILURES:
        print('{} check(s) FAILED'.format(len(FAILURES)), file=sys.stderr)
        return 1
    print('all checks passed', file=sys.stderr)
    return 0


def main(more_scenarios=None):
    """The command line of this script, and of those that add scenarios to
    it (tests/bench_e2e.py, ...)."""
    global ARGS
    SCENARIOS.update(more_scenarios or {})
    ap = argparse.ArgumentParser()
    ap.add_argument('--client', required=True)
    ap.add_argument('--bench', required=True)
    ap.add_argument('--fixtures', required=True)
    ap.add_argument('--echod')
    ap.add_argument('scenario', choices=sorted(SCENARIOS))
    ap.add_argument('arg', nargs='?', default='')
    ARGS = ap.parse_args()
    sys.exit(run_scenario(SCENARIOS[ARGS.scenario], ARGS.arg))


if __name__ == '__main__':
    main()
