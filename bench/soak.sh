#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# soak.sh - long-running mixed load against one echod (issue 7; not in CI).
#
#   bench/soak.sh [BUILD_DIR] [MINUTES] [BACKEND]
#   defaults: build/release, 30 minutes, auto (epoll)
#
# For MINUTES, with echod on 127.0.0.1 port 0 (--idle-timeout 10):
#   - steady traffic: echo-bench, 50 connections, 1 KiB messages, checked;
#   - connection churn: echo-bench runs of 2 s with 20 fresh connections,
#     back to back (every byte checked, every connection new);
#   - slow readers: echo-bench --read-delay 50 on 10 connections;
#   - SIGUSR1 to echod every 5 s (statistics).
# Every minute it prints echod's RSS and descriptor count. At the end the
# load stops and it checks that they stayed flat: RSS in the last minute at
# most 25% + 2 MiB above the first minute's, and the descriptor count back
# to what echod had before the load. Exit 0 flat and every bench run clean,
# 1 otherwise. Only the processes it started are signalled.
set -euo pipefail

build=${1:-build/release}
minutes=${2:-30}
backend=${3:-auto}
echod=$build/apps/echod/echod
bench=$build/apps/echo-bench/echo-bench
for exe in "$echod" "$bench"; do
    [[ -x $exe ]] || { echo "soak.sh: $exe not built (cmake --build --preset release)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ -n ${echod_pid:-} ]] && kill "$echod_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$echod" --listen 127.0.0.1:0 --engine loop --backend "$backend" --idle-timeout 10 \
    >"$tmp/addr" 2>"$tmp/echod.err" &
echod_pid=$!
for _ in $(seq 100); do [[ -s $tmp/addr ]] && break; sleep 0.1; done
addr=$(head -1 "$tmp/addr")
[[ -n $addr ]] || { echo "soak.sh: echod did not start: $(cat "$tmp/echod.err")" >&2; exit 1; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$echod_pid/status"; }
nfds() { ls "/proc/$echod_pid/fd" | wc -l; }
fds0=$(nfds)
echo "soak: echod $addr (pid $echod_pid, backend $backend), $minutes min, $fds0 fds at rest"

end=$((SECONDS + minutes * 60))
# Each loop runs until the deadline; a failed bench run is recorded.
loop() { # name, bench args...
    local name=$1
    shift
    local n=0
    while ((SECONDS < end)); do
        local left=$((end - SECONDS))
        if ! "$bench" --connect "$addr" --warmup 0 "$@" --duration "$((left < 60 ? left : 60))" \
            >"$tmp/$name.out" 2>&1; then
            echo "soak: $name run $n failed: $(tail -3 "$tmp/$name.out")" | tee -a "$tmp/failures"
        fi
        n=$((n + 1))
    done
}
churn() {
    local n=0
    while ((SECONDS < end)); do
        if ! "$bench" --connect "$addr" --warmup 0 --conns 20 --size 200 --duration 2 \
            >"$tmp/churn.out" 2>&1; then
            echo "soak: churn run $n failed: $(tail -3 "$tmp/churn.out")" | tee -a "$tmp/failures"
        fi
        n=$((n + 1))
    done
    echo "$n" >"$tmp/churn.runs"
}
loop steady --conns 50 --size 1024 --depth 2 &
pids+=($!)
loop slow --conns 10 --size 4096 --read-delay 50 &
pids+=($!)
churn &
pids+=($!)

printf '%6s %10s %6s\n' minute rss_kib fds
first_rss=""
last_rss=0
minute=0
next_min=$((SECONDS + 60))
while ((SECONDS < end)); do
    sleep 5
    kill -USR1 "$echod_pid"
    if ((SECONDS >= next_min)); then
        minute=$((minute + 1))
        next_min=$((next_min + 60))
        last_rss=$(rss)
        [[ -n $first_rss ]] || first_rss=$last_rss
        printf '%6d %10d %6d\n' "$minute" "$last_rss" "$(nfds)"
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
pids=()

# The load is gone: descriptors must come back to where they were.
for _ in $(seq 100); do (($(nfds) <= fds0)) && break; sleep 0.1; done
fds_end=$(nfds)
grep 'echod: stats' "$tmp/echod.err" | tail -1
status=0
if [[ -s $tmp/failures ]]; then
    echo "soak: FAIL: $(wc -l <"$tmp/failures") bench run(s) failed" >&2
    status=1
fi
if ((fds_end > fds0)); then
    echo "soak: FAIL: echod holds $fds_end fds after the load, $fds0 before" >&2
    status=1
fi
if [[ -n $first_rss ]] && ((last_rss > first_rss * 5 / 4 + 2048)); then
    echo "soak: FAIL: RSS grew from $first_rss KiB (minute 1) to $last_rss KiB" >&2
    status=1
fi
kill -TERM "$echod_pid"
wait "$echod_pid" || { echo "soak: FAIL: echod exit status $?" >&2; status=1; }
echod_pid=""
echo "soak: churn runs $(cat "$tmp/churn.runs" 2>/dev/null || echo 0); RSS ${first_rss:-?} -> $last_rss KiB; fds $fds0 -> $fds_end; $([[ $status == 0 ]] && echo flat || echo NOT flat)"
exit $status
