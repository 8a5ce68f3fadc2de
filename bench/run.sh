#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the benchmarks against a build tree: `bench/run.sh build/release`
# (what `make bench` does). Each program is pinned to a CPU with taskset
# when it is available, so the numbers do not wander between cores.
#   loop_overhead  loop cost per dispatched event, per backend (issue 2);
#                  extra arguments are passed to it (e.g. --json)
#   async_wake     cost of waking a loop from another thread (issue 23),
#                  not pinned: its senders and the loop need two CPUs
#   compare.py     echod (every backend) against the reference servers in
#                  bench/peers/ and the seed's Python servers, scenarios
#                  S1..S5; raw JSON lines and report.py's page and charts
#                  go to bench/results/new/ (ignored by git).
#   tls_bench.py   echod's TLS listeners against socat and ncat, T1..TH
#                  (needs the openssl tool for its throw-away certificates)
# BENCH_QUICK=1 (`make bench BENCH_QUICK=1`) runs one short round, for
# iterating; a full run (7 rounds) takes about 40 minutes.
# BENCH_RECORD=1 records the run instead: its results go to bench/results/
# (to be committed) and report.py rewrites docs/benchmarks.md and its charts.
set -eu

build=${1:?usage: bench/run.sh BUILD_DIR [loop_overhead options]}
shift
if [ ! -d "$build" ]; then
    echo "bench/run.sh: build directory '$build' not found" >&2
    exit 2
fi

# The command prefix that pins to CPU $1, or nothing (and a note) when
# taskset is missing or that CPU is not ours.
pin() {
    if command -v taskset >/dev/null 2>&1 && taskset -c "$1" true 2>/dev/null; then
        echo "taskset -c $1"
    else
        echo "bench/run.sh: not pinned to CPU $1 (no taskset, or CPU not allowed)" >&2
    fi
}
pin0=$(pin 0)
pin1=$(pin 1)

echo "== loop overhead${pin0:+ (pinned to CPU 0)}"
$pin0 "$build/bench/loop_overhead" "$@"

echo
echo "== waking a loop from another thread"
quick_wake=
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
    quick_wake=--quick
fi
"$build/bench/async_wake" $quick_wake

echod="$build/apps/echod/echod"
bench="$build/apps/echo-bench/echo-bench"
if [ ! -x "$echod" ] || [ ! -x "$bench" ]; then
    echo "(echod or echo-bench not built: skipping the echo benchmark)"
    exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "(python3 not found: skipping the echo benchmark)"
    exit 0
fi

echo
echo "== echod against the reference servers (bench/compare.py)"
here=$(dirname "$0")
quick=
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
    quick=--quick
fi
# The results file is named here rather than read back from compare.py's
# output, so its progress goes straight to the terminal (a `tee /dev/stderr`
# would truncate a log file that stderr points to).
stamp=$(date +%Y%m%d-%H%M%S)
if [ -n "${BENCH_RECORD:-}" ] && [ "${BENCH_RECORD}" != 0 ]; then
    results="$here/results/$stamp.jsonl"
    python3 "$here/compare.py" "$build" $quick --out "$results"
    python3 "$here/report.py" "$results"
else
    mkdir -p "$here/results/new"
    results="$here/results/new/$stamp.jsonl"
    python3 "$here/compare.py" "$build" $quick --out "$results"
    python3 "$here/report.py" "$results" --out-dir "$here/results/new/$stamp"
    echo "(not recorded: make bench BENCH_RECORD=1 writes bench/results/ and docs/benchmarks.md)"
fi

# TLS (issue 25): echod's TLS listeners against socat and ncat, T1..TH.
echo
echo "== TLS: echod against socat and ncat (bench/tls_bench.py)"
if ! command -v openssl >/dev/null 2>&1; then
    echo "(the openssl tool not found: skipping the TLS benchmark)"
elif [ -n "${BENCH_RECORD:-}" ] && [ "${BENCH_RECORD}" != 0 ]; then
    python3 "$here/tls_bench.py" "$build" $quick --out "$here/results/tls-$stamp.jsonl"
    python3 "$here/tls_bench.py" --summary "$here/results/tls-$stamp.jsonl"
else
    python3 "$here/tls_bench.py" "$build" $quick --out "$here/results/new/tls-$stamp.jsonl"
    python3 "$here/tls_bench.py" --summary "$here/results/new/tls-$stamp.jsonl"
fi
