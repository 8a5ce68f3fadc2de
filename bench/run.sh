#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the benchmarks against a build tree: `bench/run.sh build/release`
# (what `make bench` does). Each program is pinned to a CPU with taskset
# when it is available, so the numbers do not wander between cores.
#   loop_overhead  loop cost per dispatched event, per backend (issue 2);
#                  extra arguments are passed to it (e.g. --json)
#   echo-bench     against echod (epoll) at 1, 100 and 1,000 connections,
#                  64-byte messages, server and client on different CPUs
#                  (issue 4); skipped until both programs are built.
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

echod="$build/apps/echod/echod"
bench="$build/apps/echo-bench/echo-bench"
if [ ! -x "$echod" ] || [ ! -x "$bench" ]; then
    echo "(echod or echo-bench not built: skipping the echo benchmark)"
    exit 0
fi

echo
echo "== echo-bench against echod --backend epoll${pin0:+ (echod on CPU 0, echo-bench on CPU 1)}"
out=$(mktemp)
# taskset execs echod, so $! is echod's own PID: the one we stop at the end.
$pin0 "$echod" --listen 127.0.0.1:0 --backend epoll >"$out" 2>/dev/null &
echod_pid=$!
trap 'kill "$echod_pid" 2>/dev/null || true; rm -f "$out"' EXIT
# echod prints its bound address as its first line; wait for it, bounded.
tries=0
while [ "$(wc -l <"$out")" -lt 1 ] && [ "$tries" -lt 100 ]; do
    sleep 0.05
    tries=$((tries + 1))
done
addr=$(head -n 1 "$out")
if [ -z "$addr" ]; then
    echo "bench/run.sh: echod did not print its address" >&2
    exit 1
fi
for conns in 1 100 1000; do
    echo "-- $conns connection(s), 64-byte messages, depth 1"
    $pin1 "$bench" --connect "$addr" --conns "$conns" --size 64 --depth 1 --duration 3 --warmup 1
done
