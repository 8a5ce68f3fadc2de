/* SPDX-License-Identifier: MIT */
/*
 * hdr.c - see hdr.h. The layout is HdrHistogram's with unitMagnitude 0: a
 * value's bucket is the number of places it must be shifted right to fit
 * in 11 bits (bucket 0 holds 0..2047 exactly), its sub-bucket is the value
 * so shifted (1024..2047 in every bucket but the first), and the counts
 * index is (bucket + 1) * 1024 + sub - 1024, so bucket b > 0 owns the
 * upper half of its sub-buckets only: the lower half would repeat values
 * of bucket b - 1 at twice the resolution.
 */
#include "hdr.h"

#include <math.h>
#include <string.h>

/* Bits left of the highest sub-bucket bit: bucket = BASE - clz(v | MASK). */
#define LZC_BASE (64u - HDR_HALF_MAG - 1u)
#define SUB_MASK ((uint64_t)HDR_SUB_COUNT - 1u)

static unsigned bucket_of(uint64_t value)
{
    return LZC_BASE - (unsigned)__builtin_clzll(value | SUB_MASK);
}

unsigned hdr_index(uint64_t value)
{
    unsigned bucket = bucket_of(value);
    unsigned sub = (unsigned)(value >> bucket);
    return ((bucket + 1u) << HDR_HALF_MAG) + sub - HDR_HALF_COUNT;
}

uint64_t hdr_value_at_index(unsigned index)
{
    unsigned bucket_plus_1 = index >> HDR_HALF_MAG;
    uint64_t sub = (index & (HDR_HALF_COUNT - 1u)) + HDR_HALF_COUNT;
    if (bucket_plus_1 == 0)
        return sub - HDR_HALF_COUNT; /* bucket 0's lower half */
    return sub << (bucket_plus_1 - 1u);
}

uint64_t hdr_lowest_equivalent(uint64_t value)
{
    unsigned bucket = bucket_of(value);
    return (value >> bucket) << bucket;
}

uint64_t hdr_highest_equivalent(uint64_t value)
{
    return hdr_lowest_equivalent(value) + (1ULL << bucket_of(value)) - 1u;
}

void hdr_init(struct hdr *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void hdr_record(struct hdr *h, uint64_t value)
{
    if (value > HDR_HIGHEST) {
        value = HDR_HIGHEST;
        h->clamped++;
    }
    h->counts[hdr_index(value)]++;
    h->total++;
    h->sum += (double)value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void hdr_merge(struct hdr *dst, const struct hdr *src)
{
    for (unsigned i = 0; i < HDR_COUNTS_LEN; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hdr_percentile(const struct hdr *h, double p)
{
    if (h->total == 0)
        return 0;
    /* The same double arithmetic as getValueAtPercentile, so that both
       pick the same rank for every p and count. */
    double req = fmin(fmax(nextafter(p, -INFINITY), 0.0), 100.0);
    double want = ceil(req * (double)h->total / 100.0);
    uint64_t rank = want < 1.0 ? 1 : (uint64_t)want;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HDR_COUNTS_LEN; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        uint64_t v = hdr_value_at_index(i);
        return p == 0.0 ? hdr_lowest_equivalent(v) : hdr_highest_equivalent(v);
    }
    return 0;
}

double hdr_mean(const struct hdr *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

uint64_t hdr_min(const struct hdr *h)
{
    return h->total ? h->min : 0;
}

uint64_t hdr_max(const struct hdr *h)
{
    return h->max;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        *p++ = (uint8_t)(v >> shift);
    return p;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
    for (int shift = 56; shift >= 0; shift -= 8)
        *p++ = (uint8_t)(v >> shift);
    return p;
}

/* ZigZag, then LEB128 of up to 8 bytes of 7 bits; a 9th byte carries the
   last 8 bits whole (HdrHistogram's ZigZagEncoding.putLong). */
static uint8_t *put_zigzag(uint8_t *p, int64_t signed_value)
{
    uint64_t v = ((uint64_t)signed_value << 1) ^ (uint64_t)(signed_value >> 63);
    for (int i = 0; i < 8; i++) {
        if (v < 0x80) {
            *p++ = (uint8_t)v;
            return p;
        }
        *p++ = (uint8_t)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

size_t hdr_encode_v2(const struct hdr *h, uint8_t *buf)
{
    /* Java encodes up to the index of the tracked max, 0 when empty. */
    unsigned limit = hdr_index(h->max) + 1u;
    uint8_t *p = buf + HDR_V2_HEADER;
    for (unsigned i = 0; i < limit;) {
        uint64_t count = h->counts[i++];
        if (count != 0) {
            p = put_zigzag(p, (int64_t)count);
            continue;
        }
        int64_t zeros = 1;
        while (i < limit && h->counts[i] == 0) {
            zeros++;
            i++;
        }
        p = put_zigzag(p, zeros > 1 ? -zeros : 0);
    }
    size_t payload = (size_t)(p - buf) - HDR_V2_HEADER;
    double ratio = 1.0;
    uint64_t ratio_bits;
    memcpy(&ratio_bits, &ratio, sizeof ratio_bits);
    uint8_t *q = put_be32(buf, HDR_V2_COOKIE);
    q = put_be32(q, (uint32_t)payload);
    q = put_be32(q, 0); /* normalizingIndexOffset */
    q = put_be32(q, HDR_SIG_FIGS);
    q = put_be64(q, HDR_LOWEST);
    q = put_be64(q, HDR_HIGHEST);
    put_be64(q, ratio_bits);
    return HDR_V2_HEADER + payload;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads one ZigZag LEB128 value; returns the bytes used, 0 if truncated. */
static size_t get_zigzag(const uint8_t *p, size_t len, int64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (unsigned shift = 0; n < len; shift += 7) {
        uint8_t b = p[n++];
        if (n == 9) {
            v |= (uint64_t)b << 56;
            break;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
        if (n == len)
            return 0;
    }
    *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    return n;
}

/* The counts of a V2 payload into h; -1 if malformed or too long. */
static int decode_counts(struct hdr *h, const uint8_t *p, size_t len)
{
    size_t index = 0;
    while (len > 0) {
        int64_t v;
        size_t used = get_zigzag(p, len, &v);
        if (used == 0)
            return -1;
        p += used;
        len -= used;
        uint64_t zeros = v < 0 ? 0 - (uint64_t)v : 0; /* INT64_MIN too */
        if (v < 0 ? zeros > HDR_COUNTS_LEN - index : index >= HDR_COUNTS_LEN)
            return -1;
        if (v < 0) {
            index += zeros;
            continue;
        }
        h->counts[index++] = (uint64_t)v;
    }
    return 0;
}

/* Rebuilds total, min, max and sum from the counts alone. */
static void rebuild_stats(struct hdr *h)
{
    for (unsigned i = 0; i < HDR_COUNTS_LEN; i++) {
        if (h->counts[i] == 0)
            continue;
        uint64_t v = hdr_value_at_index(i);
        uint64_t low = hdr_lowest_equivalent(v);
        uint64_t high = hdr_highest_equivalent(v);
        h->total += h->counts[i];
        h->sum += (double)h->counts[i] * (double)(low + (high - low + 1) / 2);
        if (low < h->min)
            h->min = low;
        h->max = high;
    }
}

int hdr_decode_v2(struct hdr *h, const uint8_t *buf, size_t len)
{
    hdr_init(h);
    if (len < HDR_V2_HEADER)
        return -1;
    uint64_t payload = get_be(buf + 4, 4);
    if (get_be(buf, 4) != HDR_V2_COOKIE || payload > len - HDR_V2_HEADER)
        return -1;
    /* Only this layout: unit 1 and 3 digits fix every index. */
    if (get_be(buf + 8, 4) != 0 || get_be(buf + 12, 4) != HDR_SIG_FIGS ||
        get_be(buf + 16, 8) != HDR_LOWEST)
        return -1;
    if (decode_counts(h, buf + HDR_V2_HEADER, (size_t)payload) < 0) {
        hdr_init(h);
        return -1;
    }
    rebuild_stats(h);
    return 0;
}
