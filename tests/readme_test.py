#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""readme_test.py - runs every command of README.md's ```sh blocks.

usage: readme_test.py SOURCE_DIR BUILD_DIR CC [CFLAGS]

Each line of a ```sh block (a trailing backslash joins lines; comments are
dropped) is run, in README order, by bash in a scratch folder that stands
for a checkout (examples/ and tests/ link to the source) with HOME set to a
scratch folder and the build's tools first on PATH. What a test cannot do
as written is mapped, and every mapping is printed:
- `make TARGET ...` is checked with `make -n` (the target exists and its
  recipe expands); the real `make test` is what CI runs, and `make run`'s
  echod is what every other echod test runs;
- the `cmake --preset release && cmake --build --preset release` line checks
  that both presets exist, and `build/release` then means this build tree;
- the port 10000 becomes a free one, and `cc` becomes CC CFLAGS;
- `export NAME=VALUE` (each line runs in a shell of its own) sets NAME, as
  bash expands VALUE, for every later command;
- a line ending in `&` is a server: it is started, waited for (its port
  accepts, or it prints its address on stdout when the port is 0), sent one
  message that must come back, and ended by its PID when the block ends.
Any command that fails, a server that never answers, or a README with no
commands fails the test.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC, BUILD, CC = sys.argv[1], sys.argv[2], sys.argv[3]
CFLAGS = sys.argv[4] if len(sys.argv) > 4 else ""
BUILD_PRESET_LINE = "cmake --preset release && cmake --build --preset release"


def fail(msg):
    print(f"readme_test: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def strip_comment(line):
    """Drops a shell comment: a # at the start or after blank, outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def sh_blocks(text):
    """Yields the commands of each ```sh block, continuation lines joined."""
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        cmds, pending = [], ""
        for raw in block.splitlines():
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            line = strip_comment(pending + raw)
            pending = ""
            if line:
                cmds.append(line)
        yield cmds


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def round_trip(host, port, deadline):
    """Connects (retrying until deadline) and checks one echo; True if it came back."""
    msg = b"readme round trip\n"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    got += chunk
                return got == msg
        except OSError:
            time.sleep(0.05)
    return False


def start_server(cmd, env, cwd):
    p = subprocess.Popen(["bash", "-c", cmd], env=env, cwd=cwd,
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    m = re.search(r"(\d+\.\d+\.\d+\.\d+):(\d+)", cmd)
    if not m:
        p.kill()
        fail(f"server line names no HOST:PORT: {cmd}")
    host, port = m.group(1), int(m.group(2))
    if port == 0:  # it prints the address it bound
        line = p.stdout.readline().strip()
        m2 = re.fullmatch(r"(\d+\.\d+\.\d+\.\d+):(\d+)", line)
        if not m2:
            p.kill()
            fail(f"{cmd}: expected HOST:PORT on stdout, got {line!r}")
        host, port = m2.group(1), int(m2.group(2))
    if not round_trip(host, port, time.monotonic() + 10):
        p.kill()
        fail(f"{cmd}: no echo from {host}:{port}")
    print(f"  server up on {host}:{port}, one message echoed")
    return p


def stop_server(p, cmd):
    os.killpg(p.pid, signal.SIGTERM)  # its own session: the server and nothing else
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        fail(f"{cmd}: did not end within 10 s of SIGTERM")


def map_command(cmd, port):
    """Returns (command to run, where) or None when the line was checked otherwise."""
    if cmd.startswith("make "):
        dry = "make -n " + cmd[len("make "):]
        print(f"$ {cmd}\n  checked as: {dry}")
        r = subprocess.run(dry, shell=True, cwd=SRC, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"{dry}: exit {r.returncode}: {r.stderr.strip()}")
        return None
    if cmd == BUILD_PRESET_LINE:
        print(f"$ {cmd}\n  checked: presets exist; this build tree ({BUILD}) stands for it")
        for what in (["cmake", "--list-presets"], ["cmake", "--build", "--list-presets"]):
            out = subprocess.run(what, cwd=SRC, capture_output=True, text=True).stdout
            if '"release"' not in out:
                fail(f"{' '.join(what)} does not list the release preset")
        return None
    cmd = cmd.replace("build/release", BUILD).replace("10000", str(port))
    cmd = re.sub(r"^cc ", f"{CC} {CFLAGS} ", cmd)
    return cmd


def main():
    with open(os.path.join(SRC, "README.md")) as f:
        blocks = list(sh_blocks(f.read()))
    if not sum(len(b) for b in blocks):
        fail("README.md has no ```sh commands")
    scratch = tempfile.mkdtemp(prefix="iomux-readme-")
    home = os.path.join(scratch, "home")
    work = os.path.join(scratch, "work")
    os.makedirs(home)
    os.makedirs(work)
    for name in ("examples", "tests"):
        os.symlink(os.path.join(SRC, name), os.path.join(work, name))
    tools = [os.path.join(BUILD, "apps", t) for t in ("echod", "echo-client", "echo-bench")]
    env = dict(os.environ, HOME=home, PATH=os.pathsep.join(tools + [os.environ["PATH"]]))
    ran = 0
    try:
        for cmds in blocks:
            port = free_port()
            servers = []
            try:
                for raw in cmds:
                    cmd = map_command(raw, port)
                    if cmd is None:
                        ran += 1
                        continue
                    print(f"$ {raw}" + (f"\n  as: {cmd}" if cmd != raw else ""))
                    export = re.fullmatch(r"export ([A-Za-z_][A-Za-z0-9_]*)=(.*)", cmd)
                    if export:
                        name = export.group(1)
                        env[name] = subprocess.run(
                            ["bash", "-c", f'{cmd} && printf %s "${name}"'], env=env,
                            cwd=work, capture_output=True, text=True, check=True).stdout
                        print(f"  {name}={env[name]} for what follows")
                    elif cmd.endswith("&"):
                        servers.append((start_server(cmd[:-1].strip(), env, work), raw))
                    else:
                        r = subprocess.run(["bash", "-c", cmd], env=env, cwd=work,
                                           capture_output=True, text=True, timeout=120)
                        if r.returncode != 0:
                            fail(f"{raw}: exit {r.returncode}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
                        print(f"  exit 0 ({len(r.stdout)} bytes on stdout)")
                    ran += 1
            finally:
                for p, raw in servers:
                    stop_server(p, raw)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"readme_test: {ran} commands of README.md ran or were checked")


if __name__ == "__main__":
    main()
