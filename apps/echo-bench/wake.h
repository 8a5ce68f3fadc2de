/* SPDX-License-Identifier: MIT */
/*
 * wake.h - wakes a worker's loop at an absolute CLOCK_MONOTONIC time with
 * sub-millisecond precision. The loop's own timeouts are whole
 * milliseconds, so the open loop used to poll through the last one before
 * each due time (66% of a CPU at 1,000 messages/s); a timerfd watched by
 * the loop wakes it at the due time instead, and the loop still sees
 * every echo while it waits. Where timerfd is missing (not Linux, or
 * creating it fails) wake_arm() says so and the caller polls as before.
 */
#ifndef ECHO_BENCH_WAKE_H
#define ECHO_BENCH_WAKE_H

#include <stdint.h>

struct iomux_loop;

struct wake {
    struct iomux_loop *loop;
    int fd;            /* the timerfd, or -1 */
    uint64_t armed_ns; /* the time it is set for; 0: not set */
};

/* Creates the timer and watches it on `loop`; 0, or -errno (then wake_arm
   always fails and the caller must poll). */
int wake_open(struct wake *wk, struct iomux_loop *loop);

/* Sets the timer for `at_ns` (bench_now_ns() time), unless it is set for
   that already; 0, or -1 when there is no timer. */
int wake_arm(struct wake *wk, uint64_t at_ns);

/* Unwatches and closes the timer (safe on a wake never opened). */
void wake_close(struct wake *wk);

#endif /* ECHO_BENCH_WAKE_H */
