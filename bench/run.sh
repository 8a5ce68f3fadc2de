#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the benchmarks against a build tree: `bench/run.sh build/release`
# (what `make bench` does). Each benchmark pins itself to a CPU with taskset
# when it is available, so the numbers do not wander between cores.
#   loop_overhead  loop cost per dispatched event, per backend (issue 2)
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

# pin CPU CMD...: runs CMD on one CPU when taskset exists and the CPU is
# allowed, unpinned otherwise (and says so once).
pin() {
    cpu=$1
    shift
    if command -v taskset >/dev/null 2>&1 && taskset -c "$cpu" true 2>/dev/null; then
        taskset -c "$cpu" "$@"
    else
        echo "(not pinned: taskset missing or CPU $cpu not allowed)" >&2
        "$@"
    fi
}

echo "== loop overhead (pinned to CPU 0)"
pin 0 "$build/bench/loop_overhead" "$@"

echod="$build/apps/echod/echod"
bench="$build/apps/echo-bench/echo-bench"
if [ -x "$echod" ] && [ -x "$bench" ]; then
    echo
    echo "== echo-bench against echod --backend epoll (echod on CPU 0, echo-bench on CPU 1)"
    out=$(mktemp)
    pin 0 "$echod" --listen 127.0.0.1:0 --backend epoll >"$out" 2>/dev/null &
    echod_pid=$!
    trap 'kill "$echod_pid" 2>/dev/null || true; rm -f "$out"' EXIT
    # echod prints its bound address as its first line; poll for it, bounded.
    addr=
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
        pin 1 "$bench" --connect "$addr" --conns "$conns" --size 64 --depth 1 \
            --duration 3 --warmup 1 --idle 0
    done
fi
