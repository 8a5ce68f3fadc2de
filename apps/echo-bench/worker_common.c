/* SPDX-License-Identifier: MIT */
/*
 * worker_common.c - what the TCP worker (worker.c) and the UDP worker
 * (udp_worker.c) share: the clock, the CPU time in the window, errors,
 * the loop, and the socket options every connection gets.
 */
#include "worker.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <iomux/loop.h>

#include "clock.h"

uint64_t bench_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

/* A load generator that is busy all the time measures itself, not the
   server: the report says how busy it was. Two clock reads per run, since
   a thread that was not running spent no CPU and needs no earlier mark. */
void worker_cpu_tick(struct worker *w, uint64_t now)
{
    if (w->cpu_mark_ns == 0 && now >= w->shared->t_measure_ns && now < w->shared->t_end_ns) {
        uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        w->cpu_mark_ns = cpu ? cpu : 1;
    }
}

void worker_cpu_close(struct worker *w)
{
    if (w->cpu_mark_ns != 0) {
        uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        w->cpu_window_ns = cpu > w->cpu_mark_ns ? cpu - w->cpu_mark_ns : 0;
        w->cpu_mark_ns = 0;
    }
}

void worker_verror(struct worker *w, const char *fmt, va_list ap)
{
    w->errors++;
    atomic_store_explicit(&w->progress_errors, w->errors, memory_order_relaxed);
    if (w->first_error[0] == '\0')
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
}

void worker_error(struct worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    worker_verror(w, fmt, ap);
    va_end(ap);
}

int worker_open_loop(struct worker *w)
{
    struct iomux_loop_options lo = {.backend = w->shared->opt->backend};
    int rc = iomux_loop_new(&w->loop, &lo);
    if (rc < 0) {
        worker_error(w, "creating the event loop: %s", strerror(-rc));
        w->fatal = 1;
        atomic_store(&w->shared->abort_run, 1);
        return -1;
    }
    return 0;
}

/* The ramp's slope in messages/s per second. */
static double ramp_slope(const struct bench_shared *s)
{
    double d = (double)(s->t_end_ns - s->t_measure_ns) / 1e9;
    return d > 0 ? ((double)s->opt->rate_to - (double)s->opt->rate) / d : 0.0;
}

/* Messages sent by time t after the warm-up: a t + slope t^2 / 2, solved
   for t. Doubles: a run of a day at 10^8/s is 2^53 messages at most. */
uint64_t ramp_due(const struct bench_shared *s, uint64_t m)
{
    double a = (double)s->opt->rate;
    double warm_n = a * (double)(s->t_measure_ns - s->t_start_ns) / 1e9;
    double x = (double)m;
    if (x < warm_n)
        return s->t_start_ns + (uint64_t)(x / a * 1e9);
    x -= warm_n;
    double slope = ramp_slope(s);
    double t = x / a;
    if (slope > 1e-9 || slope < -1e-9) {
        double disc = a * a + 2 * slope * x;
        if (disc < 0)
            return UINT64_MAX; /* a falling ramp that ends first */
        t = (sqrt(disc) - a) / slope;
    }
    if (t > 1e6)
        return UINT64_MAX;
    return s->t_measure_ns + (uint64_t)(t * 1e9);
}

double ramp_rate_at(const struct bench_shared *s, uint64_t t_ns)
{
    if (s->opt->rate_to == 0 || t_ns <= s->t_measure_ns)
        return (double)s->opt->rate;
    return (double)s->opt->rate + ramp_slope(s) * (double)(t_ns - s->t_measure_ns) / 1e9;
}

uint64_t sched_due(const struct bench_shared *s, unsigned id, uint64_t phase_ns, uint64_t k)
{
    if (s->opt->rate_to != 0) /* a ramp: message k * conns + id overall */
        return ramp_due(s, k * s->total_conns + id);
    return s->t_start_ns + phase_ns + k * s->interval_ns;
}

/* The schedule's count, whether or not the loop got round to releasing
   them (a generator too slow even to release them is behind too). */
uint64_t sched_due_count(const struct bench_shared *s, unsigned id, uint64_t phase_ns,
                         uint64_t from)
{
    if (s->opt->rate_to == 0) {
        uint64_t first = s->t_start_ns + phase_ns;
        return s->t_end_ns > first ? (s->t_end_ns - first - 1) / s->interval_ns + 1 : 0;
    }
    uint64_t k = from;
    while (sched_due(s, id, phase_ns, k) < s->t_end_ns)
        k++;
    return k;
}

void bench_sleep_until(uint64_t deadline_ns)
{
    uint64_t now = bench_now_ns();
    if (deadline_ns <= now)
        return;
    uint64_t d = deadline_ns - now;
    struct timespec ts = {.tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void bench_tuning(struct bench_shared *shared)
{
    shared->tuning = shared->opt->tuning;
    if (shared->tuning.nodelay == SOCK_NODELAY_ON)
        shared->tuning.nodelay = SOCK_NODELAY_KEEP;
    const struct sock_tuning *t = &shared->tuning;
    shared->tune = t->nodelay != SOCK_NODELAY_KEEP || t->sndbuf || t->rcvbuf || t->tos;
}
