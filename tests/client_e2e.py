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
import ctypes
import errno
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clients_e2e import Server, check, run_scenario, run_tool  # noqa: E402
from echod_proc import Echod, Skip, raise_nofile  # noqa: E402

ARGS = None
TRY_HELP = "Try 'echo-client --help' for more information."


def client(*args, timeout=30, stdin_data=None, stdin=None):
    """Runs echo-client; returns (exit status, stdout bytes, stderr text)."""
    return run_tool([ARGS.client] + list(args), timeout, stdin_data, stdin)[:3]


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
                         (['--connect', 'unix:/' + 'x' * 200], 'path too long'),
                         (['--file', '-', 'part'], 'PART'),
                         (['--file', '-', '--sockets', '2'], '--sockets'),
                         (['--file', '-', '--delay', '1'], '--delay'), (['--file', ''], '--file'),
                         (['--nodelay', 'maybe'], 'off, on'), (['--tos', '256'], '--tos'),
                         (['--sndbuf', '0'], '--sndbuf'), (['--rcvbuf', '2G'], '--rcvbuf')):
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
    raise_nofile(2400)  # for echod (1,100 clients) and echo-client (which raises its own)
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


def scenario_output():
    """stdout holds what was echoed (the first socket's echo, once), stderr
    the seed's trace; so the tool composes in a pipeline."""
    need_echod()
    with Echod(ARGS.echod, 'poll') as d:
        address = '127.0.0.1:{}'.format(d.port)
        for sockets in ('1', '3'):
            rc, out, err = client('--connect', address, '--sockets', sockets, 'one ', 'two')
            check(rc == 0, 'exit 0 with {} socket(s)'.format(sockets))
            check(out == b'one two', 'stdout is exactly the echo, once: {!r}'.format(out))
            check(err.startswith('connecting to 127.0.0.1 port ') and
                  err.count("sending b'one '") == int(sockets) and
                  err.count('closing socket (') == int(sockets), 'stderr has the trace')
        rc, out, err = client('--connect', address, '--quiet')
        check(rc == 0 and out == b'This is the message. It will be sent in parts.' and err == '',
              '--quiet: the echo of the seed\'s parts on stdout, nothing on stderr')
    with fixture('bad_echo_server.py', 'corrupt', '7') as srv:
        rc, out, err = client('--connect', srv.address, '--sockets', '1', '--quiet')
        check(rc == 1 and 'mismatch' in last_line(err), 'a corrupted echo exits 1')
        check(out == b'This is', 'stdout stops before the wrong byte: {!r}'.format(out))


def scenario_file():
    """--file FILE and --file -: one stream, echoed byte-exact to stdout,
    with memory that does not grow with the file."""
    need_echod()
    tmp = tempfile.mkdtemp(prefix='echo-client-file-')
    try:
        data = os.urandom(5 * 1024 * 1024)
        path = os.path.join(tmp, 'random')
        with open(path, 'wb') as f:
            f.write(data)
        empty = os.path.join(tmp, 'empty')
        open(empty, 'wb').close()
        with Echod(ARGS.echod, 'poll') as d:
            address = '127.0.0.1:{}'.format(d.port)
            rc, out, err = client('--connect', address, '--file', path)
            check(rc == 0, '--file of 5 MiB exits 0')
            check(out == data, '5 MiB echoed byte-exact on stdout ({} bytes)'.format(len(out)))
            check(re.search(r"^\('127\.0\.0\.1', \d+\): sending {} as one stream\n"
                            r"\('127\.0\.0\.1', \d+\): 5242880 bytes sent, echoed identically\n"
                            .format(re.escape(path)), err, re.M) is not None,
                  'the trace says what was sent and that it came back')
            rc, out, err = client('--connect', address, '--file', '-', '--quiet',
                                  stdin_data=data)
            check(rc == 0 and out == data and err == '', '--file - echoes stdin byte-exact')
            rc, out, err = client('--connect', address, '--file', empty)
            check(rc == 0 and out == b'' and '0 bytes sent, echoed identically' in err,
                  'an empty file: exit 0, nothing on stdout')
            file_memory(address)
            file_interactive(address)
        rc, out, err = client('--connect', address, '--file', os.path.join(tmp, 'none'))
        check(rc == 1 and last_line(err) == 'echo-client: opening {}: {}'.format(
            os.path.join(tmp, 'none'), os.strerror(2)), 'a missing file: one clear line')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def vm_hwm_kib(pid):
    with open('/proc/{}/status'.format(pid)) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return 0


def file_memory(address):
    """16 MiB through --file - with memory that does not grow with it: the
    peak RSS after 15 MiB is within 4 MiB of the peak after 1 MiB. Read
    while the client is alive: it cannot finish while its stdout (ours,
    read slowly here) still holds back the rest."""
    size = 16 * 1024 * 1024
    p = subprocess.Popen([ARGS.client, '--connect', address, '--file', '-', '--quiet'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def feed():
        try:
            chunk = bytes(range(256)) * 4096
            for _ in range(size // len(chunk)):
                p.stdin.write(chunk)
            p.stdin.close()
        except OSError:
            pass
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    got, peaks = 0, {}
    try:
        while got < size:
            chunk = p.stdout.read1(65536)
            if not chunk:
                break
            got += len(chunk)
            for mib in (1, 15):
                if mib not in peaks and got >= mib * 1024 * 1024:
                    peaks[mib] = vm_hwm_kib(p.pid)
        rc = p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    writer.join(5)
    check(rc == 0 and got == size, '16 MiB through stdin exit 0 ({}, {} bytes)'.format(rc, got))
    print('peak RSS: {} KiB after 1 MiB, {} KiB after 15 MiB'.format(peaks.get(1), peaks.get(15)),
          file=sys.stderr)
    check(len(peaks) == 2 and peaks[15] - peaks[1] < 4096,
          'memory does not grow with the stream ({})'.format(peaks))


def file_interactive(address):
    """--file - from a pipe is streamed: the first line comes back before
    the second is written, and waiting on our own input is not a timeout."""
    p = subprocess.Popen([ARGS.client, '--connect', address, '--file', '-', '--timeout', '0.5',
                          '--quiet'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(b'hello\n')
        p.stdin.flush()
        got = b''
        deadline = time.monotonic() + 10
        while got != b'hello\n' and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], deadline - time.monotonic())[0]:
                chunk = os.read(p.stdout.fileno(), 100)
                if not chunk:
                    break
                got += chunk
        check(got == b'hello\n', 'the first line is echoed before the input ends: {!r}'.format(got))
        time.sleep(0.8)  # longer than --timeout: the wait is on our input, not the server
        out, err = p.communicate(b'world\n', timeout=20)
        check(p.returncode == 0 and out == b'world\n',
              'the rest follows, exit 0 ({}, {!r}, {!r})'.format(p.returncode, out, err))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def scenario_file_bad():
    """--file against servers that corrupt or cut the echo: exit 1 with the
    byte offset, and stdout holds only what came back right."""
    data = os.urandom(5 * 1024 * 1024)
    with fixture('bad_echo_server.py', 'corrupt', '1000000') as srv:
        rc, out, err = client('--connect', srv.address, '--file', '-', '--quiet',
                              stdin_data=data)
        check(rc == 1, 'a corrupted byte exits 1')
        check(re.fullmatch(r"echo-client: \('127\.0\.0\.1', \d+\): echo differs at byte 1000000 "
                           r"of the stream: sent 0x{:02x}, received 0x{:02x}".format(
                               data[1000000], data[1000000] ^ 0xff), last_line(err)) is not None,
              'the line names the offset and both bytes: ' + last_line(err))
        check(out == data[:1000000], 'stdout holds the 1,000,000 right bytes ({})'.format(len(out)))
    with fixture('bad_echo_server.py', 'close', '300000') as srv:
        rc, out, err = client('--connect', srv.address, '--file', '-', '--quiet',
                              stdin_data=data)
        m = re.search(r'short echo, it ends at byte (\d+) of the stream', last_line(err))
        check(rc == 1 and m is not None, 'an early close exits 1, a short echo: ' + last_line(err))
        check(m is not None and len(out) == int(m.group(1)) and out == data[:len(out)]
              and len(out) <= 300000,
              'stdout holds the bytes echoed before the close ({} bytes)'.format(len(out)))


def client_sockets(pid, port, libc):
    """echo-client's TCP sockets to `port`, duplicated into this process
    with pidfd_getfd(2) so their options can be read back."""
    socks = []
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir('/proc/{}/fd'.format(pid)):
            try:
                if not os.readlink('/proc/{}/fd/{}'.format(pid, name)).startswith('socket:'):
                    continue
            except OSError:
                continue
            fd = libc.syscall(438, pidfd, int(name), 0)  # SYS_pidfd_getfd
            if fd < 0:
                e = ctypes.get_errno()
                if e in (errno.EPERM, errno.ENOSYS, errno.EACCES):
                    raise Skip('pidfd_getfd: {}'.format(os.strerror(e)))
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.family == socket.AF_INET and s.getpeername()[1] == port:
                    socks.append(s)
                    continue
            except OSError:
                pass
            s.close()
    finally:
        os.close(pidfd)
    return socks


def read_back(address, port, extra, sockets=2):
    """Runs echo-client with `extra` options, pausing after it connects, and
    returns each socket's (TCP_NODELAY, SO_SNDBUF, SO_RCVBUF, IP_TOS)."""
    libc = ctypes.CDLL(None, use_errno=True)
    p = subprocess.Popen([ARGS.client, '--connect', address, '--sockets', str(sockets),
                          '--connect-delay', '3', '--quiet'] + extra,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    got = []
    try:
        deadline = time.monotonic() + 10
        while p.poll() is None and time.monotonic() < deadline:
            socks = client_sockets(p.pid, port, libc)
            if len(socks) == sockets:
                got = [(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                        s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                        s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                        s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)) for s in socks]
            for s in socks:
                s.close()
            if got:
                break
            time.sleep(0.02)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == 0 and err == b'', '{}: exit 0 ({}, {!r})'.format(extra, p.returncode,
                                                                           err))
    check(len(got) == sockets, '{}: {} sockets read back ({})'.format(extra, sockets, len(got)))
    print('{}: {}'.format(extra, got), file=sys.stderr)
    return got


def scenario_sockopts():
    """--nodelay, --sndbuf, --rcvbuf and --tos, read back from every socket
    of a running echo-client."""
    need_echod()
    with open('/proc/sys/net/core/wmem_max') as f:
        wmem_max = int(f.read())
    with open('/proc/sys/net/core/rmem_max') as f:
        rmem_max = int(f.read())
    with Echod(ARGS.echod, 'poll') as d:
        address = '127.0.0.1:{}'.format(d.port)
        for nodelay, _, _, tos in read_back(address, d.port, []):
            check(nodelay == 1 and tos == 0, 'by default TCP_NODELAY is on, TOS 0')
        # Linux doubles the size asked for, after capping it at *mem_max.
        want = (0, 2 * min(32768, wmem_max), 2 * min(49152, rmem_max), 40)
        for opts in read_back(address, d.port, ['--nodelay', 'off', '--sndbuf', '32K',
                                                '--rcvbuf', '49152', '--tos', '40'], sockets=3):
            check(opts == want, 'every socket has {} (read {})'.format(want, opts))
        for nodelay, _, _, tos in read_back(address, d.port, ['--nodelay', 'on', '--tos', '0']):
            check(nodelay == 1 and tos == 0, '--nodelay on --tos 0')
    # On a Unix socket the TCP and IP options do not apply: not an error.
    tmp = tempfile.mkdtemp(prefix='echo-client-sockopt-')
    try:
        path = os.path.join(tmp, 'echo.sock')
        with Echod(ARGS.echod, 'poll', listen='unix:' + path, quiet=False) as d:
            d.wait_stderr(r'listening on unix:')
            rc, out, err = client('--connect', 'unix:' + path, '--nodelay', 'off', '--tos', '40',
                                  '--sndbuf', '64K', '--quiet', 'x')
            check(rc == 0 and out == b'x', 'TCP and IP options are skipped on a Unix socket')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SCENARIOS = {
    'usage': scenario_usage,
    'select-limit': scenario_select_limit,
    'unix': scenario_unix,
    'output': scenario_output,
    'file': scenario_file,
    'file-bad': scenario_file_bad,
    'sockopts': scenario_sockopts,
}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--client', required=True)
    ap.add_argument('--fixtures', required=True)
    ap.add_argument('--echod')
    ap.add_argument('scenario', choices=sorted(SCENARIOS))
    ARGS = ap.parse_args()
    sys.exit(run_scenario(SCENARIOS[ARGS.scenario]))


if __name__ == '__main__':
    main()
