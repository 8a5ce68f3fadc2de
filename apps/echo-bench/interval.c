/* SPDX-License-Identifier: MIT */
/* interval.c - latency over time (--interval); see interval.h. */
#include "interval.h"

#include <errno.h>
#include <stdio.h>

#ifdef ECHO_BENCH_HAVE_ZLIB
#include "hdr_log.h"
#endif
#include "worker.h"

void ival_init(struct ival_box *b)
{
    hdr_init(&b->bufs[0]);
    hdr_init(&b->bufs[1]);
    b->cur = &b->bufs[0];
    b->box = &b->bufs[1];
    b->box_outstanding = 0;
    b->ended = 0;
    b->next_ns = UINT64_MAX;
    b->period_ns = 0;
    atomic_init(&b->seq, 0);
    atomic_init(&b->taken, 0);
}

void ival_start(struct ival_box *b, const struct bench_shared *s)
{
    b->period_ns = s->report_ns;
    b->next_ns = s->t_start_ns + s->report_ns;
}

uint64_t ival_tick(struct ival_box *b, uint64_t now, uint64_t outstanding)
{
    /* A loop held up past several boundaries ends them together. */
    while (now >= b->next_ns) {
        b->ended++;
        b->next_ns += b->period_ns;
    }
    uint64_t seq = atomic_load_explicit(&b->seq, memory_order_relaxed);
    if (b->ended > seq && atomic_load_explicit(&b->taken, memory_order_acquire) == seq) {
        struct hdr *full = b->cur;
        b->cur = b->box;
        b->box = full;
        b->box_outstanding = outstanding;
        atomic_store_explicit(&b->seq, b->ended, memory_order_release);
        hdr_init(b->cur);
    }
    return b->next_ns;
}

/* What main() gathers for one line. */
struct ival_line {
    struct hdr hist;
    uint64_t outstanding;
    uint64_t errors;   /* all workers' errors so far */
    uint64_t messages; /* echoes completed (the last line's histogram also
                          holds what was outstanding at the end) */
};

/* Merges a worker's mailbox if it holds something new; 1 if it did. */
static int take_box(struct ival_box *b, struct ival_line *l)
{
    uint64_t seq = atomic_load_explicit(&b->seq, memory_order_acquire);
    if (seq == atomic_load_explicit(&b->taken, memory_order_relaxed))
        return 0;
    hdr_merge(&l->hist, b->box);
    l->outstanding += b->box_outstanding;
    atomic_store_explicit(&b->taken, seq, memory_order_release);
    return 1;
}

/* How long main() waits for a worker to publish an interval: its loop
   wakes at the boundary, so only a thread kept off the CPU is later.
   Its completions then go into the next line. */
#define GATHER_WAIT_NS 200000000u

/* Gathers interval `k` (1-based) from every worker. */
static void gather(struct bench_shared *s, struct worker **w, unsigned n, uint64_t k,
                   struct ival_line *l)
{
    uint64_t give_up = bench_now_ns() + GATHER_WAIT_NS;
    for (unsigned i = 0; i < n; i++) {
        struct ival_box *b = w[i]->ival;
        while (atomic_load_explicit(&b->seq, memory_order_acquire) < k &&
               !atomic_load(&s->abort_run) && bench_now_ns() < give_up)
            bench_sleep_until(bench_now_ns() + 1000000u);
        take_box(b, l);
    }
}

static void errors_now(struct worker **w, unsigned n, struct ival_line *l)
{
    l->errors = 0;
    for (unsigned i = 0; i < n; i++)
        l->errors += atomic_load_explicit(&w[i]->progress_errors, memory_order_relaxed);
}

/* "85.2us" below 10 ms, "12.34ms" above, as the text report. */
static void fmt_latency(char *buf, size_t size, uint64_t ns)
{
    if (ns < 10000000u)
        snprintf(buf, size, "%.1f us", (double)ns / 1e3);
    else
        snprintf(buf, size, "%.2f ms", (double)ns / 1e6);
}

static void print_text(const struct ival_line *l, double t_s, double len_s, int warmup,
                       uint64_t errors)
{
    char p50[32], p99[32], p999[32], max[32];
    fmt_latency(p50, sizeof p50, hdr_percentile(&l->hist, 50));
    fmt_latency(p99, sizeof p99, hdr_percentile(&l->hist, 99));
    fmt_latency(p999, sizeof p999, hdr_percentile(&l->hist, 99.9));
    fmt_latency(max, sizeof max, l->hist.max);
    fprintf(stderr,
            "echo-bench: %6.1f s%s  %.0f msg/s  p50 %s  p99 %s  p99.9 %s  max %s  errors %llu  "
            "outstanding %llu\n",
            t_s, warmup ? " (warm-up)" : "", len_s > 0 ? (double)l->messages / len_s : 0.0, p50,
            p99, p999, max, (unsigned long long)errors, (unsigned long long)l->outstanding);
}

static void print_json(const struct ival_line *l, uint64_t k, double t_s, double len_s, int warmup,
                       uint64_t errors)
{
    const struct hdr *h = &l->hist;
    printf("{\"interval\":%llu,\"t_s\":%.3f,\"duration_s\":%.3f,\"warmup\":%s,\"messages\":%llu,"
           "\"messages_per_s\":%.1f,\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,"
           "\"max\":%.1f},\"errors\":%llu,\"outstanding\":%llu}\n",
           (unsigned long long)k, t_s, len_s, warmup ? "true" : "false",
           (unsigned long long)l->messages, len_s > 0 ? (double)l->messages / len_s : 0.0,
           (double)hdr_percentile(h, 50) / 1e3, (double)hdr_percentile(h, 99) / 1e3,
           (double)hdr_percentile(h, 99.9) / 1e3, (double)h->max / 1e3, (unsigned long long)errors,
           (unsigned long long)l->outstanding);
    fflush(stdout);
}

/* Intervals printed so far and the error count at the last line: main()
   only. */
static uint64_t printed;
static uint64_t errors_before;

/* --slo: the knee, once found. */
static int knee_found;
static double knee_rate, knee_t_s;

int ival_knee(double *rate, double *t_s)
{
    *rate = knee_rate;
    *t_s = knee_t_s;
    return knee_found;
}

/* The knee is the first of the intervals over the SLO that no interval
   within it follows: past the capacity the queue only grows, while a
   machine that stalls the server (or echo-bench) for a moment before that
   makes one interval over it and the next ones under again. */
static void find_knee(const struct bench_shared *s, const struct hdr *h, uint64_t start_ns,
                      uint64_t end_ns)
{
    if (s->opt->slo_ms == 0 || start_ns < s->t_measure_ns)
        return;
    if (hdr_percentile(h, 99) <= s->opt->slo_ms * 1000000u) {
        knee_found = 0;
        return;
    }
    if (knee_found)
        return;
    knee_found = 1;
    knee_rate = ramp_rate_at(s, start_ns + (end_ns - start_ns) / 2);
    knee_t_s = (double)(end_ns - s->t_start_ns) / 1e9;
}

/* --hdr-log: the interval's histogram as one log line; the first failed
   write is kept for main() to report, and the run goes on. */
static void log_interval(struct bench_shared *s, const struct hdr *h, uint64_t start_ns,
                         uint64_t end_ns)
{
#ifdef ECHO_BENCH_HAVE_ZLIB
    if (s->hdr_log == NULL || s->hdr_log_errno != 0)
        return;
    if (hdrlog_interval(s->hdr_log, h, (double)(start_ns - s->t_start_ns) / 1e9,
                        (double)(end_ns - start_ns) / 1e9) < 0)
        s->hdr_log_errno = errno ? errno : EIO;
#endif
}

/* Prints the line of the interval ending at `end_ns`. */
static void print_line(struct bench_shared *s, struct ival_line *l, uint64_t end_ns)
{
    uint64_t start_ns = s->t_start_ns + printed * s->report_ns;
    printed++;
    double t_s = (double)(end_ns - s->t_start_ns) / 1e9;
    double len_s = end_ns > start_ns ? (double)(end_ns - start_ns) / 1e9 : 0.0;
    int warmup = end_ns <= s->t_measure_ns;
    uint64_t errors = l->errors - errors_before;
    errors_before = l->errors;
    find_knee(s, &l->hist, start_ns, end_ns);
    log_interval(s, &l->hist, start_ns, end_ns);
    if (s->report_quiet)
        return;
    if (s->report_json)
        print_json(l, printed, t_s, len_s, warmup, errors);
    else
        print_text(l, t_s, len_s, warmup, errors);
}

void ival_run(struct bench_shared *s, struct worker **w, unsigned n,
              volatile sig_atomic_t *interrupted)
{
    static struct ival_line line; /* 216 KiB: not on the stack */
    while (!atomic_load(&s->abort_run) && bench_now_ns() < s->t_end_ns) {
        if (*interrupted) {
            atomic_store(&s->abort_run, 1);
            break;
        }
        uint64_t wake = s->t_end_ns;
        uint64_t boundary = s->report_ns ? s->t_start_ns + (printed + 1) * s->report_ns : 0;
        if (s->report_ns && boundary < wake)
            wake = boundary;
        /* Short naps, so an aborted or interrupted run ends promptly. */
        if (wake > bench_now_ns() + 50000000u)
            wake = bench_now_ns() + 50000000u;
        bench_sleep_until(wake);
        if (!s->report_ns || boundary >= s->t_end_ns || bench_now_ns() < boundary)
            continue;
        hdr_init(&line.hist);
        line.outstanding = 0;
        gather(s, w, n, printed + 1, &line);
        errors_now(w, n, &line);
        line.messages = line.hist.total;
        print_line(s, &line, boundary);
    }
}

void ival_final(struct bench_shared *s, struct worker **w, unsigned n, uint64_t end_ns)
{
    static struct ival_line line;
    if (!s->report_ns || !atomic_load(&s->go))
        return;
    uint64_t start_ns = s->t_start_ns + printed * s->report_ns;
    if (end_ns <= start_ns)
        return;
    hdr_init(&line.hist);
    line.outstanding = 0;
    for (unsigned i = 0; i < n; i++)
        take_box(w[i]->ival, &line);
    /* Joined: the workers' own histograms are main()'s to read now, and
       what is outstanding is what was at the end. */
    line.outstanding = 0;
    for (unsigned i = 0; i < n; i++) {
        hdr_merge(&line.hist, w[i]->ival->cur);
        line.outstanding += w[i]->outstanding;
    }
    errors_now(w, n, &line);
    line.messages = line.hist.total - line.outstanding;
    print_line(s, &line, end_ns);
}
