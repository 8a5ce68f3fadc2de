#!/bin/sh
# SPDX-License-Identifier: MIT
# echod --workers N against echo-bench --threads N, for N = 1 .. MAX: how
# messages/s grow with the workers, and what each message costs the server
# in CPU (its utime + stime from /proc/PID/stat over the messages echoed).
#   bench/scale.sh BUILD_DIR [MAX]     MAX defaults to the CPUs we may use
# Environment: SCALE_ROUNDS (paired rounds: every N once per round, in turn;
# default 3), SCALE_SECS (measured seconds per run; default 5), SCALE_CONNS
# (connections per worker; default 8), SCALE_ARGS (more echod options, e.g.
# "--engine loop"). One line per run, then the median per worker count:
#   workers N: msgs/s M (x R of 1 worker), server CPU per message C us (x Q of 1),
#   Z sleeps per 1000 messages (echod threads going to sleep: wake-ups)
# On a machine with fewer CPUs than 2N the load generator shares them with
# echod: messages/s then do not grow, but the CPU per message still says
# whether workers share anything on the per-message path (target: at most
# 1.05x of one worker). Linux only (/proc).
#
# SCALE_STEER=1: instead, echod --workers MAX (default 2) with --steer none
# and --steer cpu in paired rounds (the order alternates from round to
# round), against MAX echo-bench processes of one thread, each pinned
# (taskset) to its own CPU of the affinity mask, the same in both. Prints
# the medians of each, and the median of the per-round ratios cpu/none:
#   steer cpu/none: msgs/s x R, server CPU per message x Q (median of K pairs)
set -eu

build=${1:?usage: bench/scale.sh BUILD_DIR [MAX_WORKERS]}
steer=${SCALE_STEER:-0}
if [ "$steer" = 1 ]; then max=${2:-2}; else max=${2:-$(nproc)}; fi
rounds=${SCALE_ROUNDS:-3}
secs=${SCALE_SECS:-5}
per=${SCALE_CONNS:-8}
echod=$build/apps/echod/echod
bench=$build/apps/echo-bench/echo-bench
for exe in "$echod" "$bench"; do
    if [ ! -x "$exe" ]; then
        echo "bench/scale.sh: $exe not found (build first)" >&2
        exit 2
    fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
ticks=$(getconf CLK_TCK)

# Times the threads of process $1 went to sleep (voluntary context
# switches, summed over /proc/PID/task): each is a wake-up paid for later.
sleeps() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { t += $2 } END { print t + 0 }'
}

# utime + stime of process $1, in clock ticks.
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# The CPUs of our affinity mask, one per line ("0-2,5" -> 0 1 2 5).
mask_cpus() {
    sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status | tr ',' '\n' |
        awk -F- '{ for (c = $1; c <= ($2 == "" ? $1 : $2); c++) print c }'
}

# echo-bench against $addr for run(), in the background: one process with
# $1 threads; with SCALE_STEER=1, $1 processes of one thread, the k-th
# pinned to the k-th CPU of the mask. Their JSON lines go to $tmp/json.
# Their PIDs in $bpids.
start_clients() {
    : >"$tmp/json"
    : >"$tmp/err"
    bpids=
    if [ "$steer" != 1 ]; then
        "$bench" --connect "$addr" --threads "$1" --conns $((per * $1)) --warmup 1 \
            --duration "$secs" --json >"$tmp/json" 2>"$tmp/err" &
        bpids=$!
        return
    fi
    for cpu in $(mask_cpus | head -n "$1"); do
        taskset -c "$cpu" "$bench" --connect "$addr" --threads 1 --conns "$per" --warmup 1 \
            --duration "$secs" --json >>"$tmp/json" 2>>"$tmp/err" &
        bpids="$bpids $!"
    done
}

# One run with $1 workers and echod options $2: prints "N msgs_per_s
# cpu_us_per_msg sleeps_per_1000_msgs".
run() {
    n=$1
    rm -f "$tmp/addr"
    # shellcheck disable=SC2086 # SCALE_ARGS and $2 are words
    "$echod" --listen 127.0.0.1:0 --quiet --workers "$n" ${2:-} ${SCALE_ARGS:-} >"$tmp/addr" &
    pid=$!
    tries=0
    while ! grep -q : "$tmp/addr" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -gt 500 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "bench/scale.sh: echod --workers $n did not start" >&2
            kill "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.01
    done
    addr=$(head -n 1 "$tmp/addr")
    start_clients "$n"
    sleep 1 # the warm-up: CPU is counted over the measured seconds only
    c0=$(cpu_ticks "$pid")
    s0=$(sleeps "$pid")
    sleep "$secs"
    c1=$(cpu_ticks "$pid")
    s1=$(sleeps "$pid")
    for bpid in $bpids; do
        wait "$bpid" || { cat "$tmp/err" >&2; kill "$pid"; exit 1; }
    done
    kill -TERM "$pid"
    wait "$pid" || true
    # Summed over the echo-bench processes (one line each).
    msgs=$(sed 's/.*"messages":\([0-9]*\).*/\1/' "$tmp/json" | awk '{ t += $1 } END { print t }')
    rate=$(sed 's/.*"messages_per_s":\([0-9.]*\).*/\1/' "$tmp/json" | awk '{ t += $1 } END { print t }')
    echo "$n $rate $(echo "$c0 $c1 $msgs $ticks $s0 $s1" |
        awk '{m = $3 > 0 ? $3 : 1; printf "%.3f %.1f", ($2 - $1) / $4 * 1e6 / m, ($6 - $5) * 1000 / m}')"
}

: >"$tmp/all"
if [ "$steer" = 1 ]; then
    r=1
    while [ "$r" -le "$rounds" ]; do
        # Alternate which goes first, so that a trend in the machine's load
        # does not favour one.
        if [ $((r % 2)) = 1 ]; then order="none cpu"; else order="cpu none"; fi
        for mode in $order; do
            line=$(run "$max" "--steer $mode")
            echo "$r $mode $line" >>"$tmp/all"
            echo "$r $mode $line" |
                awk '{printf "round %s steer %s (workers %s): %.0f msgs/s, %s us CPU/msg, %s sleeps/1000 msgs\n", $1, $2, $3, $4, $5, $6}'
        done
        r=$((r + 1))
    done
    awk '
        { rate[$2, $1] = $4; cpu[$2, $1] = $5; if ($1 > top) top = $1 }
        function median(v, n,    i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        END {
            for (m = 0; m < 2; m++) {
                mode = m ? "cpu" : "none"
                for (r = 1; r <= top; r++) { a[r] = rate[mode, r]; b[r] = cpu[mode, r] }
                printf "steer %s: msgs/s %.0f, server CPU per message %.3f us (medians of %d)\n", mode, median(a, top), median(b, top), top
            }
            for (r = 1; r <= top; r++) { a[r] = rate["cpu", r] / rate["none", r]; b[r] = cpu["cpu", r] / cpu["none", r] }
            printf "steer cpu/none: msgs/s x%.3f, server CPU per message x%.3f (median of %d pairs)\n", median(a, top), median(b, top), top
        }' "$tmp/all"
    exit 0
fi
r=1
while [ "$r" -le "$rounds" ]; do
    n=1
    while [ "$n" -le "$max" ]; do
        line=$(run "$n")
        echo "round $r: workers $line" | awk '{printf "round %s workers %s: %.0f msgs/s, %s us CPU/msg, %s sleeps/1000 msgs\n", $2, $4, $5, $6, $7}'
        echo "$line" >>"$tmp/all"
        n=$((n + 1))
    done
    r=$((r + 1))
done

# Medians per worker count, and the ratios to one worker.
sort -n -k1,1 "$tmp/all" | awk '
    { rate[$1, ++k[$1]] = $2; cpu[$1, k[$1]] = $3; zz[$1, k[$1]] = $4; if ($1 > top) top = $1 }
    function median(a, n, key,    i, j, t, v) {
        for (i = 1; i <= n; i++) v[i] = a[key, i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    END {
        for (n = 1; n <= top; n++) {
            r = median(rate, k[n], n); c = median(cpu, k[n], n); z = median(zz, k[n], n)
            if (n == 1) { r1 = r; c1 = c }
            printf "workers %d: msgs/s %.0f (x%.2f of 1 worker), server CPU per message %.3f us (x%.3f of 1), %.1f sleeps per 1000 messages\n", n, r, r / r1, c, c / c1, z
        }
    }'
