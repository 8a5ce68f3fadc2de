#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where a server's CPU goes: perf samples grouped by kernel subsystem.

    bench/perf_split.py build/release S4 lean-epoll echod-epoll echod-engine-uring

runs each named server (names as in bench/compare.py) pinned to CPU 0
under echo-bench's scenario (pinned to CPU 1), records `perf record -g` of
the server for --seconds, and prints one table row per server: the share
of its samples in TCP/IP work (with the copies of the payload), in the
scheduler, interrupts, locks and timers, in system call entry and fd
lookups, in epoll, in io_uring and in user space. The last four are what a
different event loop can change; the first two it cannot, except by
sleeping less. Existing perf.data files can be classified again with
`--report FILE...`.

In a VM, time spent with interrupts disabled is charged to the point where
they are enabled again (`pvm_irq_enable`, `_raw_spin_unlock_irqrestore`);
such samples are charged to the first caller that is not interrupt or lock
plumbing. A sample taken on the return from a system call lands on the
user-space instruction after it, so "user space" includes that return.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (the scenarios and the servers' command lines)

PLUMBING = re.compile(
    r"^(pvm_|__raw_callee_save_|_raw_spin_unlock_irqrestore|_raw_spin_unlock_irq$|"
    r"_raw_spin_unlock_bh|_raw_spin_unlock$|__local_bh_enable_ip|local_bh_enable|do_softirq|"
    r"handle_softirqs|__do_softirq|__irq_exit_rcu|irq_exit_rcu|sysvec_|asm_sysvec)")
GROUPS = [
    ("io_uring", re.compile(r"^(io_|__io_|__do_sys_io_uring|io_uring|llist_|task_work|tctx_)")),
    ("epoll", re.compile(r"^(ep_|__ep_|do_epoll|epoll|__x64_sys_epoll)")),
    ("syscall entry, fd lookup", re.compile(
        r"^(entry_SYSCALL|do_syscall|syscall_|x64_sys_call|__x64_sys_|__sys_|__se_sys|fdget|fget|"
        r"fput|__fget|__fput|sock_from_file|_copy_from_user|_copy_to_user|__get_user|__put_user|"
        r"import_|move_addr|sockfd_lookup|sock_sendmsg|sock_recvmsg|security_|apparmor|"
        r"copy_msghdr|__copy_msghdr|__import_iovec)")),
    ("scheduler, IRQs, locks, timers", re.compile(
        r"^(schedule|__schedule|finish_task_switch|try_to_wake_up|ttwu|wake_up|__wake_up|enqueue|"
        r"dequeue|update_|pick_next|set_next|put_prev|native_queued_spin|__pv_queued|queued_spin|"
        r"_raw_spin|_raw_read|_raw_write|hrtimer|__hrtimer|irq|pvm_|pvclock|kvm_clock|ktime_get|"
        r"rcu|__rcu|sched_|__update|account_|psi_|cpuacct|select_task_rq|resched|check_preempt|"
        r"__smp_call|smp_call|flush_smp|generic_exec|tick_|clockevents|lapic|native_apic|"
        r"default_send_IPI|__sysvec|timerqueue)")),
    ("TCP/IP, skb, copies", re.compile(
        r"(tcp|^ip_|^__ip|skb|^inet|^__inet|^sk_|^__sk_|^sock_|^dev_|^__dev|^net|^__net|napi|"
        r"process_backlog|bbr|^dst_|^lock_sock|^release_sock|^__release_sock|_copy_to_iter|"
        r"_copy_from_iter|__check_object_size|__virt_addr_valid|check_heap_object|csum|loopback|"
        r"^kmem_cache|^kfree|^__kmalloc|^kmalloc|slab|page_frag|^__free_|free_frozen|alloc_pages|"
        r"^__alloc|^page_|^__page|^memcg|^mem_cgroup|^validate_xmit|^qdisc|^__qdisc|^nf_|"
        r"^__memcpy|^memcpy|^memset|^__memset|^rep_movs|^__folio|^folio)")),
]
COLUMNS = ["TCP/IP, skb, copies", "scheduler, IRQs, locks, timers", "other kernel",
           "syscall entry, fd lookup", "epoll", "io_uring", "user space"]
FRAME = re.compile(r"\s*[0-9a-f]+\s+(\S+)\s+\((.*)\)")


def classify(frames):
    """frames: [(symbol, dso)], leaf first."""
    if "kernel" not in frames[0][1]:  # [kernel.kallsyms]
        return "user space"
    i = 0
    while i < len(frames) - 1 and PLUMBING.match(frames[i][0]):
        i += 1
    for name, rx in GROUPS:
        if rx.search(frames[i][0]):
            return name
    return "other kernel"


def split(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"],
                         capture_output=True, text=True, check=True).stdout
    counts, n = collections.Counter(), 0
    for block in out.split("\n\n"):
        frames = []
        for line in block.strip().splitlines():
            m = FRAME.match(line)
            if m:
                frames.append((m.group(1).split("+")[0], m.group(2)))
        if frames:
            n += 1
            counts[classify(frames)] += 1
    return n, counts


def row(label, n, counts, extra=""):
    shares = [100.0 * counts[c] / n for c in COLUMNS] if n else [0.0] * len(COLUMNS)
    cells = " | ".join(f"{s:.1f} %" for s in shares)
    return f"| {label}{extra} | {n} | {cells} | {sum(shares[3:]):.1f} % |"


def record(args, name, argv, tmp):
    scen = compare.SCENARIOS[args.scenario]["args"]
    bench = os.path.join(args.build, "apps/echo-bench/echo-bench")
    srv = compare.Server(argv, compare.pin(0), os.path.join(tmp, f"{name}.log"))
    data = os.path.join(tmp, f"{name}.{args.scenario}.perf.data")
    try:
        client = subprocess.Popen(
            compare.pin(1) + [bench, "--connect", srv.addr, "--json", "--warmup", "0.3",
                              "--duration", str(args.seconds + 2)] + scen,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=compare.raise_nofile)
        time.sleep(1.0)  # past the connects and the warm-up
        subprocess.run(["perf", "record", "-q", "-g", "-F", "2999", "-p", str(srv.pid), "-o", data,
                        "--", "sleep", str(args.seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        try:
            report, _ = client.communicate(timeout=args.seconds + 60)
        except subprocess.TimeoutExpired:
            client.kill()
            report, _ = client.communicate()
    finally:
        srv.stop()
    try:
        rate = json.loads(report.decode().splitlines()[0])["messages_per_s"]
    except (ValueError, IndexError, KeyError):
        rate = 0
    return data, rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", nargs="?", help="build tree (build/release)")
    ap.add_argument("scenario", nargs="?", help="S1..S5")
    ap.add_argument("servers", nargs="*", help="server names, as in bench/compare.py")
    ap.add_argument("--seconds", type=float, default=2.0, help="recording time (default 2)")
    ap.add_argument("--report", nargs="+", metavar="FILE", help="classify existing perf.data files")
    args = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("perf_split.py: perf not found")
    if not args.report and (not args.build or args.scenario not in compare.SCENARIOS
                            or not args.servers):
        ap.error("give a build tree, a scenario and servers, or --report FILE...")
    if not args.report:
        known = {name: argv for name, argv, _ in compare.servers(args.build)}
        for name in args.servers:
            if name not in known:
                sys.exit(f"perf_split.py: unknown or unbuilt server '{name}'")
    print("| server | samples | " + " | ".join(COLUMNS) + " | the last four |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    if args.report:
        for path in args.report:
            n, counts = split(path)
            print(row(path, n, counts))
        return
    tmp = os.path.join("/tmp", f"iomux-perf-split-{os.getpid()}")
    os.makedirs(tmp, exist_ok=True)
    compare.raise_nofile()
    try:
        for name in args.servers:
            data, rate = record(args, name, known[name], tmp)
            n, counts = split(data)
            print(row(name, n, counts, f" ({rate:,.0f} msg/s)"), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
