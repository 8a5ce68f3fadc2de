/* SPDX-License-Identifier: MIT */
/*
 * histogram.c - see histogram.h. Bucket layout, with S = HISTOGRAM_SUB_BITS:
 * values below 2^(S+1) have a bucket each (index = value). A larger value
 * with its highest set bit at position m (m > S) is shifted right by
 * m - S, which leaves an (S+1)-bit mantissa in [2^S, 2^(S+1)); the index is
 * 2^(S+1) + (m - S - 1) * 2^S + (mantissa - 2^S). A bucket's width divided
 * by its lowest value is at most 2^-S, and reporting its middle halves that.
 */
#include "histogram.h"

#include <string.h>

#define SUB   (1u << HISTOGRAM_SUB_BITS)
#define EXACT (2u * SUB) /* values below this have their own bucket */

static unsigned highest_bit(uint64_t v)
{
    return 63u - (unsigned)__builtin_clzll(v);
}

unsigned histogram_index(uint64_t value)
{
    if (value < EXACT)
        return (unsigned)value;
    unsigned m = highest_bit(value);
    unsigned shift = m - HISTOGRAM_SUB_BITS;
    unsigned mantissa = (unsigned)(value >> shift);
    return EXACT + (m - HISTOGRAM_SUB_BITS - 1) * SUB + (mantissa - SUB);
}

uint64_t histogram_bucket_low(unsigned index)
{
    if (index < EXACT)
        return index;
    unsigned octave = (index - EXACT) / SUB; /* m - S - 1 */
    unsigned mantissa = SUB + (index - EXACT) % SUB;
    return (uint64_t)mantissa << (octave + 1);
}

/* The last value that falls in a bucket. */
static uint64_t bucket_high(unsigned index)
{
    if (index + 1 >= HISTOGRAM_BUCKETS)
        return UINT64_MAX;
    return histogram_bucket_low(index + 1) - 1;
}

void histogram_init(struct histogram *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void histogram_record(struct histogram *h, uint64_t value)
{
    h->buckets[histogram_index(value)]++;
    h->count++;
    h->sum += (double)value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void histogram_merge(struct histogram *dst, const struct histogram *src)
{
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t histogram_percentile(const struct histogram *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    /* The rank of the wanted value, 1-based: ceil(p% of count). */
    double exact = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen < rank)
            continue;
        uint64_t low = histogram_bucket_low(i);
        uint64_t mid = low + (bucket_high(i) - low) / 2;
        if (mid < h->min)
            mid = h->min;
        if (mid > h->max)
            mid = h->max;
        return mid;
    }
    return h->max;
}

double histogram_mean(const struct histogram *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
