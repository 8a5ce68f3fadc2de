#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py - turns a compare.py results file into docs/benchmarks.md and
one SVG chart per scenario (docs/benchmarks/S1.svg ...).

usage: bench/report.py [RESULTS.jsonl] [--out-dir DIR]
  RESULTS.jsonl  default: the newest recorded run in bench/results/
  --out-dir DIR  write DIR/benchmarks.md and DIR/benchmarks/*.svg instead
                 of docs/ (make bench does, for runs it does not record)

Everything printed is derived from the JSON lines: medians with their
min-max over the rounds, and ratios against the lean epoll reference from
the same file, never against numbers from another run. The SVGs are
written by hand (no plotting library, no network).
"""
import glob
import html
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REF = "lean-epoll"
OURS = "echod-epoll"
ENGINE = "echod-engine-uring"
ORDER = ["lean-epoll", "echod-epoll", "echod-epoll-splice-off", "echod-epoll-splice-on", "echod-poll", "echod-select", "echod-uring", ENGINE,
         ENGINE + "-nobatch", ENGINE + "-busy", "echod-epoll-w1", "echod-epoll-w2", ENGINE + "-w1",
         ENGINE + "-w2", "libuv", "libev", "libevent",
         "seed-select.py", "seed-poll.py"]
TITLES = {
    "S1": "1 connection, 64 B, depth 1 (latency)",
    "S2": "100 connections, 64 B",
    "S3": "1,000 connections, 64 B (paced connects)",
    "S4": "10 connections, 16 KiB (throughput)",
    "S5": "10,000 idle + 100 active connections, 64 B (C10K)",
    "S6": "10 connections, 256 KiB (large messages)",
}


def load(path):
    facts, trials, sys_recs = {}, [], []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            kind = rec.get("kind")
            if kind == "machine":
                facts = rec
            elif kind == "trial":
                trials.append(rec)
            elif kind == "syscalls":
                sys_recs.append(rec)
    return facts, trials, sys_recs


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def span(xs, digits=0):
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(med(xs), digits)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})"


def ordered(names):
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def cell_stats(trials, scen):
    """server -> dict of lists over rounds for one scenario."""
    out = {}
    for t in trials:
        if t["scenario"] != scen:
            continue
        d = out.setdefault(t["server"], {"mps": [], "cpu": [], "p50": [], "p99": [], "mem": [],
                                         "mbps": [], "notes": set(), "refused": [],
                                         "bench_cpu": [], "bench_busy": []})
        b = t.get("bench")
        if t["status"] not in ("ok",):
            d["notes"].add(t["status"][:120])
        if not b:
            continue
        idle_closed = b.get("idle_closed", 0)
        if idle_closed:
            d["refused"].append(idle_closed)
        d["mps"].append(b["messages_per_s"])
        d["mbps"].append(b.get("mb_per_s", 0))
        d["p50"].append(b["latency_us"]["p50"])
        d["p99"].append(b["latency_us"]["p99"])
        if "cpu_us_per_msg" in t:
            d["cpu"].append(t["cpu_us_per_msg"])
        if "busy" in b:  # echo-bench's own CPU (reports before 2026-12-03 lack it)
            d["bench_cpu"].append(b["cpu_us_per_msg"])
            d["bench_busy"].append(b["busy"])
        if "bytes_per_conn" in t and not idle_closed:
            d["mem"].append(t["bytes_per_conn"])
        if t.get("server_log") and idle_closed:
            d["log"] = t["server_log"][0]
    return out


def bench_cell(d):
    """echo-bench's CPU per message and how busy it was (median)."""
    if not d["bench_busy"]:
        return "–"
    return f"{fmt(med(d['bench_cpu']), 2)} ({fmt(100 * med(d['bench_busy']), 0)} %)"


def ratio(a, b):
    return a / b if a is not None and b else None


def paired_ratios(trials, scen, a, b, key):
    """a's figure over b's in each round where both ran `scen`."""
    by = {}
    for t in trials:
        if t["scenario"] == scen and t.get("status") == "ok" and t["server"] in (a, b):
            v = t.get("bench", {}).get(key)
            if v:
                by.setdefault(t["round"], {})[t["server"]] = v
    return sorted(r[a] / r[b] for r in by.values() if a in r and b in r)


def workers_section(trials, scens):
    """--workers 2 against 1 per engine (issue 23), paired by round: both
    rows run unpinned against the same echo-bench, so only the workers
    differ (and, for the -w2-steer rows, their steering). Empty when the
    run has no --workers rows."""
    rows = []
    for base in ("echod-epoll", ENGINE):
        for two_name, label in ((base + "-w2", "2"), (base + "-w2-steer", "2, --steer cpu")):
            rows += workers_rows(trials, scens, base, base + "-w1", two_name, label)
    if not rows:
        return []
    return ["## `--workers 2` against `--workers 1` (issue 23), from this run", "",
            "Both rows unpinned (with `--steer cpu` the 2 workers pin themselves), echo-bench with 2 "
            "threads on the same CPUs; the server's CPU time summed over all its threads; sleeps are "
            "its threads' voluntary context switches per 1,000 messages; medians over the rounds "
            "where both ran, ratios paired by round (median, min–max). Target: CPU per message "
            "at 2 workers at most 1.05× of 1.", "",
            "| engine | workers | scenario | msgs/s 1 worker | msgs/s 2 workers | × | CPU µs/msg 1 worker "
            "| CPU µs/msg 2 workers | × | rounds ≤ 1.05× | sleeps/1000 msgs 1 → 2 |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"] + rows + [""]


def workers_rows(trials, scens, base, one, two, label):
    rows = []
    for s in scens:
        by = {}
        for t in trials:
            if t["scenario"] == s and t["status"] == "ok" and t["server"] in (one, two) \
                    and "cpu_us_per_msg" in t:
                by.setdefault(t["round"], {})[t["server"]] = (t["bench"]["messages_per_s"],
                                                              t["cpu_us_per_msg"],
                                                              t.get("sleeps_per_kmsg"))
        pairs = [r for r in by.values() if one in r and two in r]
        if not pairs:
            continue
        mps = [r[two][0] / r[one][0] for r in pairs]
        cpu = [r[two][1] / r[one][1] for r in pairs]
        z1 = [r[one][2] for r in pairs if r[one][2] is not None]
        z2 = [r[two][2] for r in pairs if r[two][2] is not None]
        sleeps = f"{fmt(med(z1))} → {fmt(med(z2))}" if z1 and z2 else "–"
        rows.append(f"| {base} | {label} | {s} | {fmt(med([r[one][0] for r in pairs]))} | "
                    f"{fmt(med([r[two][0] for r in pairs]))} | {span(mps, 2)} | "
                    f"{fmt(med([r[one][1] for r in pairs]), 2)} | {fmt(med([r[two][1] for r in pairs]), 2)} | "
                    f"{span(cpu, 2)} | {sum(c <= 1.05 for c in cpu)} of {len(cpu)} | {sleeps} |")
    return rows


def svg_chart(scen, stats, path):
    """Two horizontal bar panels: messages/s and server CPU us per message,
    median bars with min-max whiskers."""
    names = ordered([n for n in stats if stats[n]["mps"]])
    if not names:
        return
    row, top, left, pw, gap = 26, 50, 130, 300, 60
    height = top + row * len(names) + 40
    width = left + 2 * pw + gap + 140
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{scen}: '
           f'{html.escape(TITLES.get(scen, ""))}</text>']
    panels = [("messages/s (higher is better)", "mps", left),
              ("server CPU µs per message (lower is better)", "cpu", left + pw + gap)]
    for title, key, x0 in panels:
        vals = [v for n in names for v in stats[n][key]]
        vmax = max(vals) if vals else 1
        ref = med(stats.get(REF, {}).get(key, []))
        if key == "cpu" and ref and vmax > 5 * ref:
            # The Python servers would squash every other bar: clip the
            # axis at 5x the reference; clipped bars keep their label.
            vmax = 5 * ref
        vmax = vmax * 1.05 or 1
        out.append(f'<text x="{x0}" y="{top - 10}">{html.escape(title)}</text>')
        out.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{top + row * len(names)}" stroke="#444"/>')
        for i, n in enumerate(names):
            xs = stats[n][key]
            y = top + i * row
            if not xs:
                out.append(f'<text x="{x0 + 4}" y="{y + 16}" fill="#888">n/a</text>')
                continue
            m = med(xs)
            w = pw * min(m, vmax) / vmax
            colour = "#d9534f" if n.startswith("echod") else "#5b7db1" if n == REF else "#999"
            out.append(f'<rect x="{x0}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{colour}"/>')
            lo, hi = pw * min(min(xs), vmax) / vmax, pw * min(max(xs), vmax) / vmax
            yc = y + row / 2
            out.append(f'<line x1="{x0 + lo:.1f}" y1="{yc}" x2="{x0 + hi:.1f}" y2="{yc}" stroke="black"/>')
            label = f"{m:,.0f}" if key == "mps" else f"{m:.2f}"
            if m > vmax:
                label += " (axis clipped)"
            out.append(f'<text x="{x0 + max(w, hi) + 4:.1f}" y="{y + 16}" font-size="10">{label}</text>')
    for i, n in enumerate(names):
        out.append(f'<text x="{left - 6}" y="{top + i * row + 16}" text-anchor="end">{html.escape(n)}</text>')
    out.append(f'<text x="10" y="{height - 12}" font-size="10" fill="#555">bars: median over rounds; '
               f'whiskers: min–max. red: echod, blue: lean epoll reference.</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    args = sys.argv[1:]
    out_dir = os.path.join(ROOT, "docs")
    if "--out-dir" in args:
        i = args.index("--out-dir")
        if i + 1 >= len(args):
            sys.exit("report.py: --out-dir needs a folder")
        out_dir = args[i + 1]
        del args[i:i + 2]
    if args:
        path = args[0]
    else:
        files = sorted(glob.glob(os.path.join(HERE, "results", "*.jsonl")))
        if not files:
            sys.exit("report.py: no results in bench/results/ (run make bench)")
        path = files[-1]
    facts, trials, sys_recs = load(path)
    scens = [s for s in TITLES if any(t["scenario"] == s for t in trials)]
    chart_dir = os.path.join(out_dir, "benchmarks")
    os.makedirs(chart_dir, exist_ok=True)

    md = ["<!-- Generated by bench/report.py from " + os.path.relpath(path, ROOT) +
          "; do not edit by hand: run `make bench` (or bench/report.py RESULTS). -->",
          "# Benchmarks: echod against the servers users would pick instead", ""]
    md += ["How to read this: every figure is the median over the rounds with the min–max in "
           "brackets. Ratios compare a server with the lean epoll reference (`bench/peers/lean_epoll.c`) "
           "measured in the same run. The machine is shared, and on two cores the load generator and a "
           "fast server each fill their core, so **messages/s alone cannot rank the fast servers**: "
           "the server CPU time per message and the system calls per message rank them better, and "
           "differences of a few per cent are below what one run resolves (see the analysis at the "
           "end).", ""]
    md += ["## Machine and method", ""]
    libs = ", ".join(f"{k} {v}" for k, v in sorted(facts.get("libs", {}).items())) or "–"
    md += [f"- Date: {facts.get('date', '?')}; git {facts.get('git', '?')}",
           f"- CPU: {facts.get('cpu', '?')}, {facts.get('cpus', '?')} CPUs; kernel {facts.get('kernel', '?')}; "
           f"load average at start {facts.get('loadavg', 0):.2f} (shared machine)",
           f"- Compiler: {facts.get('cc', '?')}; peers' libraries: {libs}; Python {facts.get('python', '?')}",
           f"- {facts.get('rounds', '?')} rounds, servers interleaved within each round, "
           + (f"in an order shuffled anew for every round and scenario (seed {facts['seed']}); "
              if facts.get("order") == "shuffled" else "each round starting further along the list; ") +
           f"{facts.get('warmup_s', '?')} s warm-up + {facts.get('duration_s', '?')} s measured per trial; "
           f"a fresh server on a fresh port per trial; "
           + ("server pinned to CPU 0, echo-bench to CPU 1 (taskset)" if facts.get("pinned") else "NOT pinned"),
           "- Load: `echo-bench` closed loop, depth 1, every echoed byte checked. Server CPU time per "
           "message: the server's CPU time (`/proc/PID/schedstat`) over exactly echo-bench's measured "
           "window, divided by the messages echoed in it. Memory per idle connection (S5): server RSS "
           "with all connections open minus its RSS after a one-connection warm-up, divided by the "
           "connections. System calls: `perf stat -e raw_syscalls:sys_enter` attached to the server "
           "over a run, minus a run that only connects and disconnects, divided by the messages "
           "(the waits — epoll_wait/poll/select — are counted apart: how many messages one wake-up "
           "finds depends on the load); "
           + (f"the median of {facts['sys_runs']} such runs." if facts.get("sys_runs", 1) > 1
              else "one such run."),
           f"- Reproduce: `{facts.get('command', 'make bench')}` (raw results: `{os.path.relpath(path, ROOT)}`; "
           "quick mode: `make bench BENCH_QUICK=1`)", ""]

    all_stats = {}
    for s in scens:
        st = cell_stats(trials, s)
        all_stats[s] = st
        ref_mps = med(st.get(REF, {}).get("mps", []))
        ref_cpu = med(st.get(REF, {}).get("cpu", []))
        md += [f"## {s}: {TITLES[s]}", "", f"![{s}](benchmarks/{s}.svg)", ""]
        head = ("| server | messages/s | × ref | CPU µs/msg | × ref | p50 µs | p99 µs "
                "| echo-bench µs/msg (busy) |")
        sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
        if s == "S4":
            head += " MB/s |"
            sep += "---:|"
        if s == "S5":
            head += " bytes/idle conn |"
            sep += "---:|"
        md += [head + " notes |", sep + "---|"]
        for n in ordered(st):
            d = st[n]
            row = (f"| {n} | {span(d['mps'])} | {fmt(ratio(med(d['mps']), ref_mps), 2)} | "
                   f"{span(d['cpu'], 2)} | {fmt(ratio(med(d['cpu']), ref_cpu), 2)} | "
                   f"{fmt(med(d['p50']), 0)} | {fmt(med(d['p99']), 0)} | {bench_cell(d)} |")
            if s == "S4":
                row += f" {fmt(med(d['mbps']), 0)} |"
            if s == "S5":
                row += f" {fmt(med(d['mem']), 0)} |"
            notes = sorted(d["notes"])
            if d["refused"]:
                notes.append(f"refused {fmt(med(d['refused']))} of the idle connections"
                             + (f": “{d['log']}”" if d.get("log") else ""))
            row += " " + "; ".join(html.escape(x) for x in notes) + " |"
            md.append(row)
        md.append("")
        svg_chart(s, st, os.path.join(chart_dir, f"{s}.svg"))

    sys_by = {}
    if sys_recs:
        md += ["## System calls per echoed message", "",
               "| scenario | server | syscalls/msg | × ref | of which waits/msg | other syscalls/msg |",
               "|---|---|---:|---:|---:|---:|"]
        for s in ("S2", "S3"):
            recs = {r["server"]: r for r in sys_recs if r["scenario"] == s and "syscalls_per_msg" in r}
            ref = recs.get(REF, {}).get("syscalls_per_msg")
            for n in ordered(recs):
                r = recs[n]
                sys_by[(s, n)] = r
                other = r["syscalls_per_msg"] - r.get("waits_per_msg", 0)
                md.append(f"| {s} | {n} | {r['syscalls_per_msg']:.3f} | {fmt(ratio(r['syscalls_per_msg'], ref), 3)} | "
                          f"{r.get('waits_per_msg', 0):.3f} | {other:.3f} |")
        md.append("")

    # The targets of issue 6, checked against this run.
    md += ["## Targets (issue 6), from this run", "", "| target | measured | met |", "|---|---|---|"]

    def target(text, value, ok):
        md.append(f"| {text} | {value} | {'yes' if ok else 'NO' if ok is not None else '–'} |")

    def st_med(s, n, key):
        return med(all_stats.get(s, {}).get(n, {}).get(key, []))

    for s, need in (("S2", 0.97), ("S3", 0.97), ("S4", 0.95), ("S5", 0.97)):
        r = ratio(st_med(s, OURS, "mps"), st_med(s, REF, "mps"))
        target(f"{s} echod-epoll messages/s ≥ {need}× lean epoll", fmt(r, 2) + "×", None if r is None else r >= need)
    mbps = st_med("S4", OURS, "mbps")
    target("S4 echod-epoll ≥ 1.5 GB/s", f"{fmt(mbps, 0)} MB/s", None if mbps is None else mbps >= 1500)
    for s in scens:
        ours, ref = st_med(s, OURS, "cpu"), st_med(s, REF, "cpu")
        others = {n: st_med(s, n, "cpu") for n in ("libuv", "libev", "libevent")}
        r = ratio(ours, ref)
        below = all(v is None or ours is None or ours < v for v in others.values())
        txt = ", ".join(f"{n} {fmt(v, 2)}" for n, v in others.items() if v is not None)
        target(f"{s} CPU µs/msg ≤ 1.05× lean and below libuv/libev/libevent",
               f"{fmt(ours, 2)} µs = {fmt(r, 2)}× lean ({txt})",
               None if r is None else (r <= 1.05 and below))
    o, l = sys_by.get(("S3", OURS)), sys_by.get(("S3", REF))
    if o and l:
        r = o["syscalls_per_msg"] / l["syscalls_per_msg"]
        target("S3 syscalls/msg within 5% of lean epoll",
               f"{o['syscalls_per_msg']:.3f} vs {l['syscalls_per_msg']:.3f} ({r:.3f}×)", r <= 1.05)
    mem = st_med("S5", OURS, "mem")
    target("S5 memory per idle connection ≤ 96 bytes", f"{fmt(mem, 0)} bytes", None if mem is None else mem <= 96)
    poll = all_stats.get("S5", {}).get("echod-poll")
    if poll:
        ok = bool(poll["mps"]) and not poll["refused"] and not poll["notes"]
        target("S5 echod --backend poll serves all 10,000 connections", "all served" if ok else
               "; ".join(sorted(poll["notes"])) or f"refused {poll['refused']}", ok)
    sel = all_stats.get("S5", {}).get("echod-select")
    if sel:
        ok = bool(sel["refused"]) and bool(sel["mps"])
        target("S5 echod --backend select refuses beyond its limit, keeps serving",
               (f"refused {fmt(med(sel['refused']))}, kept serving {fmt(med(sel['mps']))} msg/s; log: "
                f"“{html.escape(sel.get('log', ''))}”") if ok else "; ".join(sorted(sel["notes"])), ok)
    for s in ("S2", "S3"):
        ours = st_med(s, OURS, "mps")
        for seed in ("seed-select.py", "seed-poll.py"):
            r = ratio(ours, st_med(s, seed, "mps"))
            # The same comparison per CPU-second of server: what each would
            # do with a core of its own, which messages/s cannot show when
            # the load generator saturates first.
            c = ratio(st_med(s, seed, "cpu"), st_med(s, OURS, "cpu"))
            if r is not None:
                target(f"{s} echod-epoll ≥ 3× {seed} messages/s", f"{r:.1f}× messages/s; "
                       f"{fmt(c, 1)}× fewer CPU µs per message", r >= 3)
    md.append("")

    # The targets of issue 9: the io_uring completion engine, same run.
    if any(ENGINE in all_stats.get(s, {}) for s in scens):
        md += ["## Targets (issue 9: `echod --engine uring`), from this run", "",
               "| target | measured | met |", "|---|---|---|"]
        o, e = sys_by.get(("S3", OURS)), sys_by.get(("S3", ENGINE))
        if o and e:
            r = e["syscalls_per_msg"] / o["syscalls_per_msg"]
            target("S3 syscalls/msg ≤ 1/3 of echod-epoll's",
                   f"{e['syscalls_per_msg']:.3f} vs {o['syscalls_per_msg']:.3f} ({r:.3f}×)", r <= 1 / 3)
        for s in scens:
            r = ratio(st_med(s, ENGINE, "cpu"), st_med(s, REF, "cpu"))
            target(f"{s} CPU µs/msg ≤ 0.85× lean epoll", f"{fmt(st_med(s, ENGINE, 'cpu'), 2)} µs = "
                   f"{fmt(r, 2)}×", None if r is None else r <= 0.85)
        for s in scens:
            # Paired: the engine and echod-epoll in the same round ran
            # minutes apart at most, so the ratio within a round cancels the
            # drift between rounds that the ratio of medians keeps.
            pr = paired_ratios(trials, s, ENGINE, OURS, "messages_per_s")
            r = ratio(st_med(s, ENGINE, "mps"), st_med(s, OURS, "mps"))
            text = f"{s} messages/s ≥ echod-epoll's (median of the per-round ratios)"
            if pr:
                ahead = sum(x > 1 for x in pr)
                target(text, f"{med(pr):.2f}× (ahead in {ahead} of {len(pr)} rounds; ratio of medians "
                       f"{fmt(r, 2)}×)", med(pr) >= 1)
            else:
                target(text, "no round with both servers measured", None)
        md.append("")
    md += workers_section(trials, scens)
    md += ["## Notes", "",
           "- The seed's Python servers run S1–S4 only: select() cannot watch more than 1,024 "
           "descriptors and `listen(5)` cannot take a 10,000-connection burst, so S5 is not run for them.",
           "- With depth 1 the client waits for each echo, so messages/s at S1 is a latency figure "
           "(and bounded by the loopback round trip), not a capacity one.",
           "- *echo-bench µs/msg (busy)* is the load generator's own CPU per message and the share "
           "of the CPU time its threads could have had (one CPU per thread, up to the CPUs it may "
           "use) that it used. At 95 % busy or more the run is bound by the "
           "load generator: its messages/s then rank servers by what they cost echo-bench (on "
           "loopback it runs the receive path of the server's socket, wake-up included), not by "
           "what they can echo.", ""]
    out = os.path.join(out_dir, "benchmarks.md")
    notes_path = os.path.join(HERE, "benchmarks_notes.md")
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            md += [f.read().rstrip(), ""]
    with open(out, "w") as f:
        f.write("\n".join(md))
    print(f"report.py: wrote {os.path.relpath(out)} and {os.path.relpath(chart_dir)}/*.svg")


if __name__ == "__main__":
    main()
