/* SPDX-License-Identifier: MIT */
/* ratelog.c - see ratelog.h. */
#include "ratelog.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

void ratelog_say(struct ratelog *log, uint64_t now_ms, const char *fmt, ...)
{
    if (log->last_ms && now_ms - log->last_ms < RATELOG_PERIOD_MS) {
        log->held++;
        return;
    }
    log->last_ms = now_ms ? now_ms : 1;
    va_list ap;
    va_start(ap, fmt);
    fputs("echod: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (log->held)
        fprintf(stderr, " (%" PRIu64 " more like this)", log->held);
    fputc('\n', stderr);
    log->held = 0;
}
