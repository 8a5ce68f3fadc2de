/* SPDX-License-Identifier: MIT */
/*
 * hdr_log.h - HdrHistogram interval logs (format version 1.3, as
 * HistogramLogWriter writes them and HistogramLogReader reads them):
 *
 *   #[Histogram log format version 1.3]
 *   #[StartTime: 1796609871.123 (seconds since epoch), Mon Dec 07 02:17:51 UTC 2026]
 *   #[BaseTime: 1796609871.123 (seconds since epoch)]
 *   "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
 *   0.000,1.000,12.345,HISTFAAAA...
 *
 * An interval line gives its start in seconds after BaseTime, its length in
 * seconds, its max in milliseconds (the highest value equivalent to the
 * max, over 10^6 as Java's default maxValueUnitRatio) and the base64 of
 * the compressed V2 encoding: cookie 0x1c849314, the deflated length
 * (both big-endian 32 bits), then the zlib stream of hdr_encode_v2's bytes.
 * Built only with zlib (ECHO_BENCH_HAVE_ZLIB).
 */
#ifndef ECHO_BENCH_HDR_LOG_H
#define ECHO_BENCH_HDR_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "hdr.h"

struct hdrlog;

/*
 * Writes the log header to `out` (which the caller keeps owning) for a run
 * that started at `start_epoch` seconds since the epoch (CLOCK_REALTIME),
 * and sets up the buffers and the deflate state every interval reuses, so
 * that writing an interval allocates nothing. NULL with errno set if out
 * of memory or the write fails.
 */
struct hdrlog *hdrlog_open(FILE *out, double start_epoch);

/*
 * Writes one interval line: `start` is seconds since start_epoch, `length`
 * the interval's length in seconds. Returns 0, or -1 with errno set if the
 * write failed (EIO when the stream reports an error without errno).
 */
int hdrlog_interval(struct hdrlog *log, const struct hdr *interval, double start, double length);

/* Flushes `out` and frees the log; returns 0, or -1 if the flush failed. */
int hdrlog_close(struct hdrlog *log);

/* The base64 text of the compressed encoding of `h`, as an interval line
   carries it, into log's buffer (valid until the next call); NULL if
   deflate failed. For the tests and hdrlog_interval. */
const char *hdrlog_encode(struct hdrlog *log, const struct hdr *h, size_t *len);

/* Decodes the base64 text of a compressed histogram into `h`; 0, or -1 if
   it is not one this layout can hold. Allocates; for tests and tools. */
int hdrlog_decode(const char *b64, size_t len, struct hdr *h);

#endif /* ECHO_BENCH_HDR_LOG_H */
