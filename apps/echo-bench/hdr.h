/* SPDX-License-Identifier: MIT */
/*
 * hdr.h - an HdrHistogram-compatible histogram of latencies in nanoseconds,
 * laid out exactly as HdrHistogram's (Java AbstractHistogram, HdrHistogram_c)
 * for lowestDiscernibleValue 1, highestTrackableValue 60 s and 3 significant
 * digits, so its counts encode into the V2 format that the ecosystem's tools
 * (HistogramLogReader, HistogramLogProcessor, the plotter) read and merge.
 *
 * Layout: unit 1 ns (unitMagnitude 0), subBucketCount 2048 (the smallest
 * power of two >= 2 * 10^3), so values below 2048 ns are exact and every
 * larger value falls in a bucket no wider than 1/1024 of it; 26 buckets
 * (2048 << 25 > 60 s), countsArrayLength (26 + 1) * 1024 = 27,648 64-bit
 * counts: 216 KiB per histogram. Fixed size, no allocation, O(1) record.
 *
 * Decision: this replaced histogram.c (128 sub-buckets per power of two,
 * 0.4%, 58 KiB). Reasons: the interval log needs HdrHistogram's exact
 * index layout, and recording every latency twice (once per layout) would
 * double the hot-path cost; the precision is 3 digits instead of ~2.4; and
 * one layout and one percentile definition (HdrHistogram's: the highest
 * value equivalent to the bucket holding the ceil(p% * count)-th value)
 * means echo-bench's summary and HistogramLogProcessor's report of the
 * same run agree to the nanosecond. The cost, 4x the memory (one
 * cumulative and one interval histogram per thread), is small next to the
 * per-connection buffers; the schedule-lag histogram exists only in the
 * open loop.
 */
#ifndef ECHO_BENCH_HDR_H
#define ECHO_BENCH_HDR_H

#include <stddef.h>
#include <stdint.h>

#define HDR_LOWEST       1ULL                 /* lowestDiscernibleValue, ns */
#define HDR_HIGHEST      60000000000ULL       /* highestTrackableValue: 60 s */
#define HDR_SIG_FIGS     3                    /* numberOfSignificantValueDigits */
#define HDR_HALF_MAG     10                   /* subBucketHalfCountMagnitude */
#define HDR_SUB_COUNT    (2u << HDR_HALF_MAG) /* subBucketCount: 2048 */
#define HDR_HALF_COUNT   (1u << HDR_HALF_MAG) /* subBucketHalfCount: 1024 */
#define HDR_BUCKET_COUNT 26u                  /* buckets to cover HDR_HIGHEST */
#define HDR_COUNTS_LEN   ((HDR_BUCKET_COUNT + 1) * HDR_HALF_COUNT) /* 27,648 */

struct hdr {
    uint64_t total;   /* values recorded */
    uint64_t min;     /* exact smallest recorded value, UINT64_MAX if none */
    uint64_t max;     /* exact largest recorded value (after clamping) */
    uint64_t clamped; /* values above HDR_HIGHEST, recorded as HDR_HIGHEST */
    double sum;       /* for the mean; a double cannot overflow */
    uint64_t counts[HDR_COUNTS_LEN];
};

/* Empties the histogram. */
void hdr_init(struct hdr *h);

/* Records one value in ns; above HDR_HIGHEST it counts as HDR_HIGHEST. */
void hdr_record(struct hdr *h, uint64_t value);

/* Adds every value of `src` into `dst`. */
void hdr_merge(struct hdr *dst, const struct hdr *src);

/*
 * HdrHistogram's getValueAtPercentile(p), p in 0..100: the count wanted is
 * ceil(p' / 100 * total) (at least 1), p' being p nudged one ulp down so
 * that 99.9 does not round up a rank; the value is the highest equivalent
 * of the first bucket where the running count reaches it (the lowest one
 * for p == 0). 0 when empty.
 */
uint64_t hdr_percentile(const struct hdr *h, double p);

/* The exact mean of the recorded values, 0 when empty. */
double hdr_mean(const struct hdr *h);

/* The exact smallest and largest recorded values, 0 when empty. */
uint64_t hdr_min(const struct hdr *h);
uint64_t hdr_max(const struct hdr *h);

/* The layout, exposed for the tests and the encoder: the counts index of
   a value (<= HDR_HIGHEST), the lowest value of an index, and the lowest
   and highest values that share a value's bucket. */
unsigned hdr_index(uint64_t value);
uint64_t hdr_value_at_index(unsigned index);
uint64_t hdr_lowest_equivalent(uint64_t value);
uint64_t hdr_highest_equivalent(uint64_t value);

/*
 * The V2 encoding (uncompressed; the log writer deflates it): a 40-byte
 * big-endian header (cookie 0x1c849313, payload length, normalizing index
 * offset 0, significant digits, lowest discernible value, highest
 * trackable value, integer-to-double ratio 1.0), then the counts up to the
 * last non-zero one as ZigZag LEB128 (at most 9 bytes each), a run of two
 * or more zero counts written as one negative count.
 */
#define HDR_V2_COOKIE            0x1c849313u /* V2 base 0x1c849303 | 0x10 */
#define HDR_V2_COMPRESSED_COOKIE 0x1c849314u /* V2 base 0x1c849304 | 0x10 */
#define HDR_V2_HEADER            40u
#define HDR_V2_MAX               (HDR_V2_HEADER + 9u * HDR_COUNTS_LEN)

/* Writes the encoding of `h` into `buf` (at least HDR_V2_MAX bytes);
   returns its length. */
size_t hdr_encode_v2(const struct hdr *h, uint8_t *buf);

/* Decodes a V2 encoding written for this layout into `h` (emptied first);
   min and max become the lowest and highest equivalents of the first and
   last counted buckets, the sum is rebuilt from bucket middles. Returns 0,
   or -1 if the bytes are not a V2 encoding of this layout. */
int hdr_decode_v2(struct hdr *h, const uint8_t *buf, size_t len);

#endif /* ECHO_BENCH_HDR_H */
