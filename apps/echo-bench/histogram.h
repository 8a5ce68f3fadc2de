/* SPDX-License-Identifier: MIT */
/*
 * histogram.h - a log-linear histogram of 64-bit values (latencies in
 * nanoseconds), in the manner of HdrHistogram: exact below 256, then 128
 * equal buckets per power of two, so any percentile is reported within
 * 0.4% of a recorded value. Fixed size (about 58 KiB), no allocation,
 * O(1) recording; one per thread, merged at the end.
 */
#ifndef ECHO_BENCH_HISTOGRAM_H
#define ECHO_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS 7 /* 2^7 = 128 buckets per power of two */
#define HISTOGRAM_BUCKETS  ((65 - HISTOGRAM_SUB_BITS) << HISTOGRAM_SUB_BITS)

struct histogram {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    double sum; /* for the mean; a double cannot overflow */
    uint64_t buckets[HISTOGRAM_BUCKETS];
};

/* Empties the histogram. */
void histogram_init(struct histogram *h);

/* Records one value. */
void histogram_record(struct histogram *h, uint64_t value);

/* Adds every value of `src` into `dst`. */
void histogram_merge(struct histogram *dst, const struct histogram *src);

/*
 * The value at percentile `p` (0..100): the smallest recorded value such
 * that at least p% of the values are <= it, within the bucket precision
 * (the middle of its bucket, clamped to the recorded min and max).
 * 0 when the histogram is empty.
 */
uint64_t histogram_percentile(const struct histogram *h, double p);

/* The mean, 0 when empty. */
double histogram_mean(const struct histogram *h);

/* Bucket index of a value and the smallest value of a bucket; exposed for
   the tests. */
unsigned histogram_index(uint64_t value);
uint64_t histogram_bucket_low(unsigned index);

#endif /* ECHO_BENCH_HISTOGRAM_H */
