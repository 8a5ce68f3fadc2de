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
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clients_e2e import Server  # noqa: E402
from echod_proc import Echod, Skip  # noqa: E402

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
                         (['a', '-'], 'only part'), (['--connect', 'unix:'], 'unix:PATH'),
                         (['--connect', 'unix:/' + 'x' * 200], 'path too long')):
        usage_error_ok(args, needle)
    rc, out, err = client('--help')
    check(rc == 0 and out.startswith(b'usage: echo-client') and err == '',
          '--help prints the usage on stdout and exits 0')


def need_echod():
    if not ARGS.echod:
        raise Skip('echod is not built')


def last_line(err):
    return err.rstrip().splitlines()[-1] if err.strip() else ''


def scenario_select_limit():
    """More sockets than select can watch: the reason says so, in echod's
    words, and names the backends that can; poll then does the same run."""
    need_echod()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2400:
        raise Skip('RLIMIT_NOFILE hard limit {} < 2400'.format(hard))
    # For echod (1,100 clients) and echo-client (which raises its own).
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2400), hard))
    with Echod(ARGS.echod, 'poll', nofile=2400) as d:
        address = '127.0.0.1:{}'.format(d.port)
        rc, out, err = client('--connect', address, '--backend', 'select', '--sockets', '1100',
                              '--quiet')
        check(rc == 1, '--backend select with 1,100 sockets exits 1 ({})'.format(rc))
        check(re.fullmatch(r'echo-client: watching socket \d+: fd 1024 is beyond what select '
                           r'can watch \(FD_SETSIZE 1024\): use --backend poll or epoll',
                           last_line(err)) is not None,
              'the reason names select\'s limit and the way out: ' + last_line(err))
        check(len(err.splitlines()) == 1, 'one line on stderr with --quiet')
        rc, out, err = client('--connect', address, '--backend', 'poll', '--sockets', '1100',
                              '--quiet', 'x')
        check(rc == 0 and err == '', '--backend poll with 1,100 sockets exits 0 ({})'.format(rc))


def scenario_unix():
    """unix:PATH, against echod serving a Unix-domain stream socket."""
    need_echod()
    tmp = tempfile.mkdtemp(prefix='echo-client-unix-')
    path = os.path.join(tmp, 'echo.sock')
    try:
        with Echod(ARGS.echod, 'poll', listen='unix:' + path, quiet=False) as d:
            d.wait_stderr(r'listening on unix:')
            rc, out, err = client('--connect', 'unix:' + path, '--sockets', '3')
            check(rc == 0, 'echo-client exits 0 against echod on unix:PATH ({})'.format(rc))
            check(err.startswith('connecting to unix:{}\n'.format(path)),
                  'the trace says where it connects')
            for part in ('This is the message. ', 'It will be sent ', 'in parts.'):
                check(err.count("sending b'{}'".format(part)) == 3, '3 sockets send ' + part)
            check(err.count('closing socket (socket ') == 3, 'sockets named (socket N)')
            big = ''.join(chr(ord('a') + i % 26) for i in range(300000))
            rc, _, _ = client('--connect', 'unix:' + path, '--sockets', '10', '--quiet', '-',
                              stdin_data='{}\n{}\n'.format(big, big[:1000]).encode())
            check(rc == 0, '300 kB parts on 10 Unix sockets exit 0')
        rc, _, err = client('--connect', 'unix:' + path)
        check(rc == 1 and last_line(err) == 'echo-client: connecting to unix:{}: {}'.format(
            path, os.strerror(2) if not os.path.exists(path) else os.strerror(111)),
            'nobody serving the path: exit 1, one clear line: ' + last_line(err))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SCENARIOS = {
    'usage': scenario_usage,
    'select-limit': scenario_select_limit,
    'unix': scenario_unix,
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
