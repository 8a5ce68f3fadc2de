/* SPDX-License-Identifier: MIT */
/*
 * clock.h - a clock read in nanoseconds, for the tools' own measurements:
 * CLOCK_MONOTONIC for elapsed time, CLOCK_THREAD_CPUTIME_ID for the CPU a
 * thread used.
 */
#ifndef IOMUX_APPS_CLOCK_H
#define IOMUX_APPS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* 0 when the clock cannot be read. */
static inline uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
