/* SPDX-License-Identifier: MIT */
/*
 * hdr_write.c - test helper for tests/hdr_java.py: writes HdrHistogram
 * interval logs with echo-bench's writer from values given on stdin, and
 * prints what the C histogram computes for them.
 *
 *   hdr_write LOG@EPOCH...   (EPOCH: the log's StartTime, seconds)
 *   stdin, one interval a line: LOG_INDEX START LENGTH VALUE...
 *   stdout: interval LOG_INDEX COUNT MIN MAX P0 P50 P90 P99 P99.9 P100
 *           per line read, then "merged" and the same over every interval
 *           of every log (hdr_merge).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdr_log.h"

#define MAX_LOGS 4

static struct hdr interval, merged;

static void print_stats(const struct hdr *h)
{
    printf("%llu %llu %llu", (unsigned long long)h->total, (unsigned long long)hdr_min(h),
           (unsigned long long)hdr_max(h));
    static const double ps[] = {0, 50, 90, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        printf(" %llu", (unsigned long long)hdr_percentile(h, ps[i]));
    printf("\n");
}

/* Records the values of one input line and writes its interval. */
static int do_line(char *line, struct hdrlog **logs, int nlogs)
{
    char *end;
    long index = strtol(line, &end, 10);
    double start = strtod(end, &end);
    double length = strtod(end, &end);
    if (index < 0 || index >= nlogs) {
        fprintf(stderr, "hdr_write: bad log index %ld\n", index);
        return -1;
    }
    hdr_init(&interval);
    for (char *p = end; *p && *p != '\n'; p = end) {
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p)
            break;
        hdr_record(&interval, v);
    }
    if (hdrlog_interval(logs[index], &interval, start, length) < 0) {
        perror("hdr_write: interval");
        return -1;
    }
    hdr_merge(&merged, &interval);
    printf("interval %ld ", index);
    print_stats(&interval);
    return 0;
}

int main(int argc, char **argv)
{
    struct hdrlog *logs[MAX_LOGS];
    FILE *files[MAX_LOGS];
    int nlogs = argc - 1;
    if (nlogs < 1 || nlogs > MAX_LOGS) {
        fprintf(stderr, "usage: hdr_write LOG@EPOCH... < intervals\n");
        return 2;
    }
    for (int i = 0; i < nlogs; i++) {
        char *at = strrchr(argv[i + 1], '@');
        if (!at)
            return 2;
        *at = '\0';
        files[i] = fopen(argv[i + 1], "w");
        logs[i] = files[i] ? hdrlog_open(files[i], strtod(at + 1, NULL)) : NULL;
        if (!logs[i]) {
            perror("hdr_write: open");
            return 1;
        }
    }
    hdr_init(&merged);
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, stdin) > 0)
        rc = do_line(line, logs, nlogs);
    free(line);
    printf("merged ");
    print_stats(&merged);
    for (int i = 0; i < nlogs; i++)
        if (hdrlog_close(logs[i]) < 0 || fclose(files[i]) != 0)
            rc = -1;
    return rc ? 1 : 0;
}
