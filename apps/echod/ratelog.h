/* SPDX-License-Identifier: MIT */
/*
 * ratelog.h - log lines that may repeat at network speed (accept failures,
 * refused clients, UDP errors) are printed at most once a period per kind,
 * with a count of what was held back, so a flood cannot flood the log.
 */
#ifndef ECHOD_RATELOG_H
#define ECHOD_RATELOG_H

#include <stdint.h>

#define RATELOG_PERIOD_MS 1000

/* One kind of message; zero-initialised is ready to use. */
struct ratelog {
    uint64_t last_ms; /* loop time of the last line printed, 0 = never */
    uint64_t held;    /* lines suppressed since */
};

/* Prints "echod: <fmt...>" on stderr unless a line of this kind was printed
   less than RATELOG_PERIOD_MS before `now_ms`; then it only counts it. */
void ratelog_say(struct ratelog *log, uint64_t now_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* ECHOD_RATELOG_H */
