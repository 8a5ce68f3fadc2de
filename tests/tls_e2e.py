#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# tls_e2e.py: echo-client --tls end to end, against TLS echo servers that
# are not ours: socat OPENSSL-LISTEN ... EXEC:cat, ncat --ssl --exec
# /bin/cat, and a Python ssl server (to see the SNI and ALPN sent).
#   tls_e2e.py --client BIN --have-tls ON|OFF SCENARIO
# A test CA, server and client certificates are made at run time with the
# openssl CLI in a fresh temporary directory (no key is ever committed).
# Servers listen on a free loopback port, readiness is polled by
# connecting, and they are stopped by their PID. Exit 0 pass, 1 fail,
# 77 skipped (no TLS in this build, or no openssl/socat).
import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clients_e2e import check, run_scenario, run_tool  # noqa: E402
from echod_proc import Skip  # noqa: E402

ARGS = None
CERTS = None


def client(*args, stdin_data=None, timeout=60):
    """Runs echo-client; returns (exit status, stdout bytes, stderr text)."""
    return run_tool([ARGS.client] + [str(a) for a in args], timeout, stdin_data)[:3]


def openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True, timeout=60)


def make_certs(d):
    """Two CAs (the right one and a stranger), a server certificate for
    localhost and 127.0.0.1, and client certificates from each CA."""
    p = lambda name: os.path.join(d, name)  # noqa: E731
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    for ca in ('ca', 'other-ca'):
        openssl('req', '-x509', *ec, '-keyout', p(ca + '.key'), '-out', p(ca + '.pem'),
                '-days', '2', '-subj', '/CN=iomux test ' + ca)
    with open(p('san.ext'), 'w') as f:
        f.write('subjectAltName=DNS:localhost,IP:127.0.0.1\n')
    for name, ca, ext in (('server', 'ca', ['-extfile', p('san.ext')]), ('client', 'ca', []),
                          ('stranger', 'other-ca', [])):
        openssl('req', *ec, '-keyout', p(name + '.key'), '-out', p(name + '.csr'),
                '-subj', '/CN=iomux test ' + name)
        openssl('x509', '-req', '-in', p(name + '.csr'), '-CA', p(ca + '.pem'), '-CAkey',
                p(ca + '.key'), '-CAcreateserial', '-out', p(name + '.pem'), '-days', '2', *ext)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_listening(port, proc, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError('{} exited with {}'.format(what, proc.returncode))
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('{} is not listening on port {} after 10 s'.format(what, port))


class Proc:
    """A server process on a free port, stopped by its PID on exit."""

    def __init__(self, argv_for_port, what):
        self.port = free_port()
        self.what = what
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv_for_port(self.port), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        wait_listening(self.port, self.proc, what)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def socat(verify=False, method=None):
    if shutil.which('socat') is None:
        raise Skip('socat is not installed')
    opts = 'reuseaddr,fork,cert={},key={},cafile={},verify={}'.format(
        CERTS('server.pem'), CERTS('server.key'), CERTS('ca.pem'), 1 if verify else 0)
    return Proc(lambda port: ['socat', 'OPENSSL-LISTEN:{},bind=127.0.0.1,{}'.format(port, opts),
                              'EXEC:cat'], 'socat')


def tls_args(port, *more, host='localhost'):
    return ['--connect', '{}:{}'.format(host, port), '--tls', '--tls-ca', CERTS('ca.pem')] + \
        list(more)


def one_error_line(err, needle, what):
    lines = err.splitlines()
    needles = needle if isinstance(needle, tuple) else (needle,)
    ok = len(lines) == 1 and lines[0].startswith('echo-client: ') and \
        any(n in lines[0] for n in needles)
    return check(ok, '{}: one line naming "{}": {!r}'.format(what, needle, err))


def pattern(n, seed):
    """n printable bytes without newlines (a part may come from stdin)."""
    base = bytes(33 + (i * 7 + seed) % 90 for i in range(4096))
    return (base * (n // len(base) + 1))[:n]


def echo_sizes(port, server, sizes):
    for version in ('1.2', '1.3'):
        for n in sizes:
            data = pattern(n, n % 251)
            what = '{} TLS {} {} bytes'.format(server, version, n)
            if n <= 64 * 1024:
                rc, out, err = client(*tls_args(port, '--tls-version', version, '--sockets', '2',
                                                data.decode()))
            else:  # beyond an argv string's limit: the part from stdin, and
                # --quiet (the trace writes stderr a byte at a time)
                rc, out, err = client(*tls_args(port, '--tls-version', version, '--quiet', '-'),
                                      stdin_data=data + b'\n')
            check(rc == 0, what + ': exit 0')
            check(out == data, what + ': the echo is byte-exact')
            if n <= 64 * 1024:
                check(err.count('TLS handshake: TLSv' + version + ',') == 2,
                      what + ': the trace shows a TLS ' + version + ' handshake per socket')


def scenario_socat():
    with socat() as s:
        echo_sizes(s.port, 'socat', (1, 64 * 1024, 4 * 1024 * 1024))


def scenario_ncat():
    if shutil.which('ncat') is None:
        raise Skip('ncat is not installed')
    # ncat --exec relays blocking: beyond ~60 KiB in flight it stalls even
    # in plain TCP, so it gets the small sizes.
    argv = lambda port: ['ncat', '--ssl', '--ssl-cert', CERTS('server.pem'), '--ssl-key',  # noqa
                         CERTS('server.key'), '-l', '127.0.0.1', str(port), '-k', '--exec',
                         '/bin/cat']
    with Proc(argv, 'ncat') as s:
        echo_sizes(s.port, 'ncat', (1, 16 * 1024))


def scenario_file():
    data = os.urandom(2 * 1024 * 1024)
    path = CERTS('input.bin')
    with open(path, 'wb') as f:
        f.write(data)
    with socat() as s:
        for version in ('1.2', '1.3'):
            rc, out, err = client(*tls_args(s.port, '--tls-version', version, '--file', path))
            what = '--file 2 MiB over TLS ' + version
            check(rc == 0, what + ': exit 0')
            check(out == data, what + ': the echo is byte-exact')
            check('2097152 bytes sent, echoed identically' in err, what + ': the trace says so')
        # Standard input, a pipe, with its own readiness.
        rc, out, err = client(*tls_args(s.port, '--quiet', '--file', '-'), stdin_data=data[:70000])
        check(rc == 0 and out == data[:70000], '--file - over TLS: exit 0, byte-exact')


def scenario_verify():
    with socat() as s:
        args = ['--connect', 'localhost:{}'.format(s.port), '--tls', '--quiet', 'x']
        rc, out, err = client(*args[:3], '--tls-ca', CERTS('other-ca.pem'), *args[3:])
        check(rc == 1, 'wrong CA: exit 1')
        one_error_line(err, 'TLS handshake: certificate verify failed', 'wrong CA')
        rc, out, err = client(*args)
        check(rc == 1, 'the system CAs do not know the test CA: exit 1')
        one_error_line(err, 'certificate verify failed', 'system CAs')
        rc, out, err = client(*args[:3], '--tls-insecure', *args[3:])
        check(rc == 0 and out == b'x', '--tls-insecure: the echo comes back')
        rc, out, err = client(*tls_args(s.port, '--tls-sni', 'wrong.example', '--quiet', 'x'))
        check(rc == 1, 'a name the certificate lacks: exit 1')
        one_error_line(err, 'hostname mismatch', 'wrong name')
        rc, out, err = client(*tls_args(s.port, '--quiet', 'x', host='127.0.0.1'))
        check(rc == 0 and out == b'x', 'an address is verified against the IP SAN')


def scenario_mtls():
    with socat(verify=True) as s:
        good = ['--tls-cert', CERTS('client.pem'), '--tls-key', CERTS('client.key')]
        for version in ('1.2', '1.3'):
            what = 'mutual TLS ' + version
            rc, out, err = client(*tls_args(s.port, '--tls-version', version, *good, 'hello'))
            check(rc == 0 and out == b'hello', what + ' with the client certificate: echoed')
            rc, out, err = client(*tls_args(s.port, '--tls-version', version, '--quiet', 'hello'))
            check(rc == 1, what + ' without a client certificate: exit 1')
            # TLS 1.3: the client hears of the refusal after its handshake
            # (the alert), or when its first write meets the reset.
            refused = ('alert', 'reset by peer')
            one_error_line(err, refused, what + ' without a client certificate')
            rc, out, err = client(*tls_args(s.port, '--tls-version', version, '--quiet',
                                            '--tls-cert', CERTS('stranger.pem'), '--tls-key',
                                            CERTS('stranger.key'), 'hello'))
            check(rc == 1, what + ' with a certificate from another CA: exit 1')
            one_error_line(err, refused, what + ' with a stranger certificate')


class PyServer:
    """A threaded Python TLS echo server noting each handshake's SNI and ALPN."""

    def __init__(self, alpn, corrupt_at=None):
        self.seen = []
        self.corrupt_at = corrupt_at  # flip the byte at this offset of the echo
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CERTS('server.pem'), CERTS('server.key'))
        ctx.set_alpn_protocols(alpn)
        ctx.sni_callback = lambda sock, name, c: self.seen.append(name) and None
        self.ctx = ctx
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.echo, args=(conn,), daemon=True).start()

    def echo(self, conn):
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as t:
                self.seen.append(('alpn', t.selected_alpn_protocol()))
                done = 0
                while True:
                    b = t.recv(65536)
                    if not b:
                        break
                    at = None if self.corrupt_at is None else self.corrupt_at - done
                    if at is not None and 0 <= at < len(b):
                        b = b[:at] + bytes([b[at] ^ 1]) + b[at + 1:]
                    done += len(b)
                    t.sendall(b)
        except (OSError, ssl.SSLError):
            pass


def scenario_sni_alpn():
    srv = PyServer(['echo', 'other'])
    rc, out, err = client(*tls_args(srv.port, '--tls-sni', 'localhost', '--alpn', 'x,echo', 'hi',
                                    host='127.0.0.1'))
    check(rc == 0 and out == b'hi', 'SNI and ALPN: echoed')
    check('localhost' in srv.seen, 'the server saw SNI localhost: {}'.format(srv.seen))
    check(('alpn', 'echo') in srv.seen, 'the server chose ALPN echo: {}'.format(srv.seen))
    check(', ALPN echo' in err, 'the trace names the ALPN protocol')
    srv.seen.clear()
    rc, out, err = client(*tls_args(srv.port, '--quiet', 'hi', host='127.0.0.1'))
    check(rc == 0, 'no SNI for an address: echoed')
    check(srv.seen.count(None) == 2, 'no SNI is sent for an IP address: {}'.format(srv.seen))
    # Python's server ignores an offer it does not share (no alert).
    rc, out, err = client(*tls_args(srv.port, '--alpn', 'nope', 'hi'))
    check(rc == 0 and ', ALPN none' in err, 'no common ALPN protocol: none in the trace')


def scenario_usage():
    for args, needle, status in (
            (['--tls-ca', 'x', 'a'], '--tls-ca needs --tls', 2),
            (['--alpn', 'echo', 'a'], '--alpn needs --tls', 2),
            (['--tls', '--alpn', 'a,,b', 'a'], 'ALPN list', 2),
            (['--tls', '--tls-version', '1.1', 'a'], '1.1', 2),
            (['--tls', '--tls-insecure', '--tls-ca', CERTS('ca.pem'), 'a'], '--tls-insecure', 2),
            (['--tls', '--tls-key', CERTS('client.key'), 'a'], '--tls-key needs --tls-cert', 2),
            (['--tls', '--tls-ca', CERTS('missing.pem'), 'a'], 'No such file', 1),
            (['--tls', '--tls-cert', CERTS('client.pem'), '--tls-key', CERTS('server.key'), 'a'],
             'does not match the certificate', 1),
            (['--tls', '--tls-cert', CERTS('san.ext'), 'a'], 'certificate', 1)):
        rc, out, err = client('--connect', '127.0.0.1:1', '--quiet', *args)
        check(rc == status, '{}: exit {} ({})'.format(args, status, rc))
        check(err.splitlines()[:1] and needle in err.splitlines()[0],
              '{}: the first line names "{}"'.format(args, needle))


def bench(*args, timeout=60):
    """Runs echo-bench; returns (exit status, stdout, stderr)."""
    if not ARGS.bench:
        raise Skip('no --bench given')
    argv = [ARGS.bench] + [str(a) for a in args]
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        check(False, '{} did not finish within {} s'.format(' '.join(argv), timeout))
        return None, '', ''
    out, err = p.stdout.decode(errors='replace'), p.stderr.decode(errors='replace')
    print('$ {}  -> {}\n  {}'.format(' '.join(argv), p.returncode,
                                     (out + err).rstrip().replace('\n', '\n  ')), file=sys.stderr)
    return p.returncode, out, err


def bench_ok(port, what, *more):
    rc, out, err = bench(*tls_args(port, '--duration', '1', '--warmup', '0.2', *more))
    check(rc == 0, what + ': exit 0')
    check('errors 0' in out + err, what + ': no error')
    n = [int(line.split()[1]) for line in (out + err).splitlines() if line.startswith('messages ')]
    check(n and n[0] > 0, what + ': messages echoed')


def scenario_bench_socat():
    """echo-bench --tls against socat OPENSSL-LISTEN ... PIPE, both versions,
    small and large messages; then a refused certificate."""
    if shutil.which('socat') is None:
        raise Skip('socat is not installed')
    opts = 'reuseaddr,fork,cert={},key={},verify=0'.format(CERTS('server.pem'),
                                                           CERTS('server.key'))
    with Proc(lambda port: ['socat', 'OPENSSL-LISTEN:{},bind=127.0.0.1,{}'.format(port, opts),
                            'PIPE'], 'socat') as s:
        for version in ('1.2', '1.3'):
            for size in ('1', '64', '16K', '1M'):
                bench_ok(s.port, 'socat TLS {} {} B'.format(version, size), '--tls-version',
                         version, '--size', size, '--conns', '2')
        # --churn with --tls: every connection is a full handshake, its
        # latency part of the connect's; K echoes each, all verified.
        bench_ok(s.port, 'socat TLS churn', '--churn', '20', '--per-conn', '2')
        rc, out, err = bench('--connect', 'localhost:{}'.format(s.port), '--tls', '--tls-ca',
                             CERTS('other-ca.pem'), '--duration', '0.5')
        check(rc == 1 and 'certificate verify failed' in err, 'a stranger CA: refused, said why')


def scenario_bench_ncat():
    if shutil.which('ncat') is None:
        raise Skip('ncat is not installed')
    argv = lambda port: ['ncat', '--ssl', '--ssl-cert', CERTS('server.pem'), '--ssl-key',  # noqa
                         CERTS('server.key'), '-l', '-k', '127.0.0.1', str(port), '--exec',
                         '/bin/cat']
    with Proc(argv, 'ncat') as s:
        bench_ok(s.port, 'ncat TLS 64 B', '--size', '64')


def scenario_bench_verify():
    """Every echoed byte is checked over TLS: a server flipping one bit is
    caught; mutual TLS and ALPN reach the server; a plain-TCP port fails
    the handshake."""
    srv = PyServer(['echo'], corrupt_at=1000)
    rc, out, err = bench(*tls_args(srv.port, '--size', '64', '--duration', '1', '--alpn', 'echo',
                                   host='127.0.0.1'))
    check(rc == 1, 'a corrupted echo: exit 1')
    check('differ' in err or 'mismatch' in err or 'byte' in err, 'a corrupted echo: said so')
    check(('alpn', 'echo') in srv.seen, 'ALPN offered')
    plain = socket.create_server(('127.0.0.1', 0))
    threading.Thread(target=lambda: [c.sendall(b'not TLS at all\n' * 100) for c in
                                     [plain.accept()[0]]], daemon=True).start()
    rc, out, err = bench(*tls_args(plain.getsockname()[1], '--duration', '0.5',
                                   host='127.0.0.1'))
    check(rc == 1 and 'TLS handshake' in err, 'a plain-TCP port: the handshake fails, said so')
    plain.close()
    for args, needle in ((['--tls-ca', 'x'], '--tls-ca needs --tls'),
                         (['--tls', '--udp'], '--tls: TCP only'),
                         (['--tls', '--tls-version', '1.1'], '1.1')):
        rc, out, err = bench('--connect', '127.0.0.1:1', *args)
        check(rc == 2 and needle in err, '{}: usage error naming {}'.format(args, needle))


SCENARIOS = {
    'bench-socat': scenario_bench_socat,
    'bench-ncat': scenario_bench_ncat,
    'bench-verify': scenario_bench_verify,
    'socat': scenario_socat,
    'ncat': scenario_ncat,
    'file': scenario_file,
    'verify': scenario_verify,
    'mtls': scenario_mtls,
    'sni-alpn': scenario_sni_alpn,
    'usage': scenario_usage,
}


def with_certs(scenario):
    """Runs a scenario with fresh certificates (CERTS), or raises Skip."""
    global CERTS
    if ARGS.have_tls.upper() not in ('ON', '1', 'TRUE', 'YES'):
        raise Skip('this build has no TLS (OpenSSL 3 not found)')
    if shutil.which('openssl') is None:
        raise Skip('the openssl command-line tool is not installed')
    with tempfile.TemporaryDirectory(prefix='iomux-tls-') as d:
        CERTS = make_certs(d)
        scenario()


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--client', required=True)
    ap.add_argument('--have-tls', required=True)
    ap.add_argument('--bench', help='echo-bench, for the bench-* scenarios')
    ap.add_argument('scenario', choices=sorted(SCENARIOS))
    ARGS = ap.parse_args()
    return run_scenario(with_certs, SCENARIOS[ARGS.scenario])


if __name__ == '__main__':
    sys.exit(main())
