#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# client_e2e.py: end-to-end tests of echo-client on its own (its options,
# its output, its limits), against echod and the fixtures' servers; the
# tests that share scenarios with echo-bench are in tests/clients_e2e.py.
#   client_e2e.py --client BIN --fixtures DIR [--echod BIN] SCENARIO
# Every server listens on loopback port 0 (or a Unix socket in a fresh
# directory); every wait is bounded; only processes started here are
# stopped, by their PID. Exit 0 = pass, 1 = fail, 77 = skipped.
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clients_e2e import Server  # noqa: E402
from echod_proc import Skip  # noqa: E402

ARGS = None
FAILURES = []
TRY_HELP = "Try 'echo-client --help' for more information."


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print('FAILED: ' + what, file=sys.stderr)
    return cond


def client(*args, timeout=30, stdin_data=None, stdin=None):
    """Runs echo-client; returns (exit status, stdout bytes, stderr text)."""
    argv = [ARGS.client] + list(args)
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=stdin_data, stdin=stdin, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        check(False, '{} did not finish within {} s'.format(' '.join(argv), timeout))
        return None, b'', ''
    err = p.stderr.decode(errors='replace')
    shown = ' '.join(a if len(a) < 80 else a[:60] + '...' for a in argv)
    print('$ {}  -> {} in {:.2f} s, {} bytes on stdout'.format(
        shown, p.returncode, time.monotonic() - t0, len(p.stdout)), file=sys.stderr)
    if err:
        print('  ' + err.rstrip()[-2000:].replace('\n', '\n  '), file=sys.stderr)
    return p.returncode, p.stdout, err


def fixture(name, *args):
    return Server([sys.executable, os.path.join(ARGS.fixtures, name)] + list(args), name)


def usage_error_ok(args, needle):
    """A bad command line: exit 2, the reason on one line, then where to look."""
    rc, out, err = client(*args)
    lines = err.splitlines()
    check(rc == 2, '{}: exit 2 ({})'.format(args, rc))
    check(out == b'', '{}: nothing on stdout'.format(args))
    if check(len(lines) == 2, '{}: two lines on stderr: {!r}'.format(args, err)):
        check(lines[0].startswith('echo-client: ') and needle in lines[0],
              '{}: "{}" names "{}"'.format(args, lines[0], needle))
        check(lines[1] == TRY_HELP, '{}: the second line is "{}"'.format(args, TRY_HELP))


def scenario_usage():
    for args, needle in ((['--sockets', '0'], '--sockets'), (['--delay', 'soon'], '--delay'),
                         (['--bogus'], "'--bogus'"), (['--connect', 'nocolon'], 'HOST:PORT'),
                         (['--backend', 'kqueue'], 'kqueue'), (['--quiet=1'], '--quiet'),
                         (['a', '-'], 'only part')):
        usage_error_ok(args, needle)
    rc, out, err = client('--help')
    check(rc == 0 and out.startswith(b'usage: echo-client') and err == '',
          '--help prints the usage on stdout and exits 0')


SCENARIOS = {
    'usage': scenario_usage,
}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--client', required=True)
    ap.add_argument('--fixtures', required=True)
    ap.add_argument('--echod')
    ap.add_argument('scenario', choices=sorted(SCENARIOS))
    ARGS = ap.parse_args()
    try:
        SCENARIOS[ARGS.scenario]()
    except Skip as e:
        print('SKIP: {}'.format(e), file=sys.stderr)
        sys.exit(77)
    if FAILURES:
        print('{} check(s) FAILED'.format(len(FAILURES)), file=sys.stderr)
        sys.exit(1)
    print('all checks passed', file=sys.stderr)


if __name__ == '__main__':
    main()
