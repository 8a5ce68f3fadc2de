/* SPDX-License-Identifier: MIT */
/*
 * worker_common.c - what the TCP worker (worker.c) and the UDP worker
 * (udp_worker.c) share: the clock, the CPU time in the window, errors,
 * the loop, and the socket options every connection gets.
 */
#include "worker.h"

#include <errno.h>
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
