# SPDX-License-Identifier: MIT
"""Real load balancers (HAProxy, nginx) for tests/lb_e2e.py.

Each runs in the foreground from a configuration generated out of the
example in contrib/ (contrib/haproxy/*.cfg, contrib/nginx/*.conf), on free
loopback ports, with its pid file, stats socket and logs in a scratch
folder. A Balancer is a context manager: the processes it started (and
only those: the master and, for nginx, its workers, by PID) are ended on
the way out. Readiness is polled for: every front port listening, and for
HAProxy its stats socket answering.

A balancer that is not installed raises Skip (the only reason to skip):
CI installs haproxy, nginx-light and libnginx-mod-stream.
"""
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from echod_proc import DEFAULT_TIMEOUT, Skip, check, fail

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRIB = os.path.join(SOURCE_DIR, "contrib")
# Debian installs both in /usr/sbin, which a user's PATH may lack.
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


def find_program(name, package):
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        raise Skip("%s is not installed (Debian: apt-get install %s)" % (name, package))
    return path


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on now (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening_ports(pid):
    """The TCP ports process pid listens on (its sockets in LISTEN state,
    not another's on the same port)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def wait_until(what, cond, timeout=DEFAULT_TIMEOUT, interval=0.02):
    """Polls cond() until it returns something true (returned); fails with
    `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            fail("%s: not within %ss" % (what, timeout))
        time.sleep(interval)


def child_pids(pid):
    """The direct children of pid (nginx's workers)."""
    pids = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                pids += [int(p) for p in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return pids


class Balancer:
    """A balancer process; subclasses build argv and the configuration.
    Start one with start(), which retries with other ports when a front
    port was taken between free_port() and the balancer's bind."""

    name = "balancer"

    @classmethod
    def start(cls, *args, **kw):
        for attempt in range(3):
            try:
                return cls(*args, **kw)
            except AssertionError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
        return None

    def __init__(self, argv, fronts, env=None, timeout=DEFAULT_TIMEOUT):
        self.fronts = fronts
        self.timeout = timeout
        self.log = open(os.path.join(self.tmp, "stderr"), "w+b")
        self.children = []
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env=full_env)
        try:
            wait_until("%s listening on %s" % (self.name, fronts), self._ready, timeout)
        except BaseException:
            self.__exit__()
            raise

    def _ready(self):
        if self.proc.poll() is not None:
            fail("%s exited (%s): %s" % (self.name, self.proc.returncode, self.output()))
        return set(self.fronts) <= listening_ports(self.proc.pid)

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.log.closed:
            return
        # Workers are read before the master goes: once it has, they are
        # no longer its children and could not be found.
        self.children = child_pids(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class HAProxy(Balancer):
    """haproxy -db -f contrib/haproxy/TEMPLATE, run as it is: the addresses
    are environment variables the template reads ("${ECHOD1}"), set here
    to free ports; its stats socket is in the scratch folder.

    servers  {"ECHOD1": "127.0.0.1:PORT", "ECHOD1_AGENT_PORT": "PORT", ...}
    fronts   names of the front-end variables, each given a free port;
             self.ports[name] is it
    """

    name = "haproxy"

    def __init__(self, template, servers, fronts=("ECHO_FRONT",), timeout=DEFAULT_TIMEOUT):
        binary = find_program("haproxy", "haproxy")
        self.tmp = tempfile.mkdtemp(prefix="lb-haproxy-")
        self.stats_path = os.path.join(self.tmp, "stats.sock")
        self.ports = {name: free_port() for name in fronts}
        env = {name: "127.0.0.1:%d" % port for name, port in self.ports.items()}
        env.update(servers)
        env["HAPROXY_STATS"] = self.stats_path
        cfg = os.path.join(CONTRIB, "haproxy", template)
        out = subprocess.run([binary, "-c", "-f", cfg], env=dict(os.environ, **env),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        check(out.returncode == 0, "haproxy -c %s: %s" % (template, out.stdout.decode()))
        # -db: foreground, no master: the process started is the one ended.
        super().__init__([binary, "-db", "-f", cfg], list(self.ports.values()), env, timeout)
        wait_until("haproxy stats socket", self._stats_answers, timeout)

    def _stats_answers(self):
        if self.proc.poll() is not None:
            fail("haproxy exited (%s): %s" % (self.proc.returncode, self.output()))
        try:
            return self.command("show info").startswith("Name: HAProxy")
        except OSError:
            return False

    def command(self, line):
        """One command on the stats socket; returns the whole answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(self.timeout)
            s.connect(self.stats_path)
            s.sendall(line.encode() + b"\n")
            data = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data.decode()
                data += chunk

    def servers(self, proxy="echo"):
        """`show stat` rows of proxy's servers: {svname: row}, where a row
        maps the CSV's column names (status, scur, stot, ...) to text."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(line for line in text.splitlines() if line)
        return {r["svname"]: r for r in rows
                if r["pxname"] == proxy and r["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_status(self, server, pattern, proxy="echo", timeout=None):
        """Polls until server's status matches pattern (re.match); returns
        its row."""
        def row():
            r = self.servers(proxy)[server]
            return r if re.match(pattern, r["status"]) else None
        try:
            return wait_until("%s/%s status %s" % (proxy, server, pattern), row,
                              timeout or self.timeout)
        except AssertionError as e:
            fail("%s; now: %s" % (e, {k: (v["status"], v["check_status"], v["last_chk"])
                                      for k, v in self.servers(proxy).items()}))

    def sessions(self, proxy="echo"):
        """{svname: (scur, stot)}: sessions open now and ever, per server."""
        return {k: (int(r["scur"] or 0), int(r["stot"] or 0))
                for k, r in self.servers(proxy).items()}


def nginx_stream_module(binary):
    """The load_module line nginx needs for its stream module: "" if the
    module is built in, else the .so in nginx's modules path (from
    `nginx -V`). Raises Skip if the module is not there."""
    out = subprocess.run([binary, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=30).stdout.decode()
    if re.search(r"--with-stream(\s|$)", out):
        return ""
    m = re.search(r"--modules-path=(\S+)", out)
    so = os.path.join(m.group(1) if m else "/usr/lib/nginx/modules", "ngx_stream_module.so")
    if not os.path.exists(so):
        raise Skip("nginx has no stream module (%s; Debian: apt-get install "
                   "libnginx-mod-stream)" % so)
    return "load_module %s;\n" % so


class Nginx(Balancer):
    """nginx in the foreground with contrib/nginx/TEMPLATE as its stream
    block, each address of `addresses` ({"127.0.0.1:7000": "127.0.0.1:PORT"}
    or None for a free port) replaced; self.ports maps each front address
    of the template to its port here."""

    name = "nginx"

    def __init__(self, template, addresses, timeout=DEFAULT_TIMEOUT):
        binary = find_program("nginx", "nginx-light libnginx-mod-stream")
        with open(os.path.join(CONTRIB, "nginx", template)) as f:
            stream = f.read()
        self.ports = {}
        lines = stream.split("\n")
        for old, new in addresses.items():
            if new is None:
                self.ports[old] = free_port()
                new = "127.0.0.1:%d" % self.ports[old]
            # In directives only: the comments keep the example's words.
            at = [i for i, line in enumerate(lines)
                  if old in line and not line.lstrip().startswith("#")]
            check(len(at) == 1, "%s names %s in %d directives, not one" % (template, old, len(at)))
            lines[at[0]] = lines[at[0]].replace(old, new)
        stream = "\n".join(lines)
        self.tmp = tempfile.mkdtemp(prefix="lb-nginx-")
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_stream_module(binary))
            # As root, nginx's workers would run as nobody, who may not
            # reach the scratch folder; they stay root (loopback only).
            if os.geteuid() == 0:
                f.write("user root;\n")
            f.write("worker_processes 1;\nevents { worker_connections 256; }\n")
            f.write(stream)
        globals_ = ("daemon off; pid %s; error_log stderr notice;"
                    % os.path.join(self.tmp, "nginx.pid"))
        # -e stderr: the log before the configuration is read, which
        # would otherwise be /var/log/nginx/error.log.
        super().__init__([binary, "-e", "stderr", "-p", self.tmp, "-c", conf, "-g", globals_],
                         list(self.ports.values()), None, timeout)
