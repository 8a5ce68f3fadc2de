/* SPDX-License-Identifier: MIT */
/*
 * test_hdr.c - echo-bench's HdrHistogram-compatible histogram: the layout
 * recomputed here from HdrHistogram's rules, every index and bucket bound,
 * getValueAtPercentile's semantics against a sort of the same values,
 * clamping, merge, the V2 encoding (hand-computed bytes and round trips)
 * and, with zlib, the compressed base64 form and the log lines. Agreement
 * with HdrHistogram itself is tests/hdr_java.py's job (the Java library).
 */
#include "check.h"

#include <math.h>

#include "hdr.h"
#ifdef ECHO_BENCH_HAVE_ZLIB
#include "hdr_log.h"
#endif

static struct hdr h, h2, h3;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Log-uniform over 0 .. 2^37, so every bucket and the clamp are hit. */
static uint64_t rnd_latency(void)
{
    unsigned bits = (unsigned)(rnd() % 38);
    return bits ? rnd() >> (64 - bits) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* AbstractHistogram's constructor arithmetic for (1, 60 s, 3). */
static void test_layout(void)
{
    uint64_t single_unit = 2 * 1000; /* 2 * 10^digits */
    unsigned sub_mag = (unsigned)ceil(log2((double)single_unit));
    uint64_t sub_count = 1ULL << sub_mag;
    unsigned buckets = 1;
    for (uint64_t untrackable = sub_count; untrackable <= HDR_HIGHEST; untrackable <<= 1)
        buckets++;
    CHECK_EQ_U64(HDR_SUB_COUNT, sub_count);
    CHECK_EQ_U64(HDR_HALF_MAG, sub_mag - 1);
    CHECK_EQ_U64(HDR_BUCKET_COUNT, buckets);
    CHECK_EQ_U64(HDR_COUNTS_LEN, (buckets + 1) * (sub_count / 2));
    CHECK_EQ_U64(sizeof h.counts, 221184);
}

static void test_indexes(void)
{
    for (uint64_t v = 0; v < 2048; v++)
        CHECK_EQ_U64(hdr_index(v), v);
    CHECK_EQ_U64(hdr_index(2048), 2048);
    CHECK_EQ_U64(hdr_index(2049), 2048);
    CHECK_EQ_U64(hdr_index(4095), 3071);
    CHECK_EQ_U64(hdr_index(4096), 3072);
    CHECK_EQ_U64(hdr_index(HDR_HIGHEST), 26 * 1024 + (HDR_HIGHEST >> 25) - 1024);
    CHECK_EQ_U64(hdr_highest_equivalent(1000000), 999936 + 511);
    CHECK_EQ_U64(hdr_lowest_equivalent(1000000), 999936);
    /* Every index maps back to itself; buckets tile the values with no gap,
       each at most 1/1024 of its lowest value wide (3 digits). */
    for (unsigned i = 0; i < HDR_COUNTS_LEN; i++) {
        uint64_t low = hdr_value_at_index(i);
        uint64_t high = hdr_highest_equivalent(low);
        if (!CHECK_EQ_U64(hdr_index(low), i) || !CHECK_EQ_U64(hdr_index(high), i))
            return;
        CHECK_EQ_U64(hdr_lowest_equivalent(high), low);
        if (i + 1 < HDR_COUNTS_LEN && !CHECK_EQ_U64(hdr_value_at_index(i + 1), high + 1))
            return;
        if (low >= 1024 && !CHECK_U64((high - low + 1) * 1024, <=, low))
            return;
    }
}

/* The expected percentile by definition, from the sorted values. */
static uint64_t expected_percentile(const uint64_t *sorted, size_t n, double p)
{
    double want = ceil(nextafter(p, -INFINITY) * (double)n / 100.0);
    size_t rank = want < 1 ? 1 : (size_t)want;
    uint64_t v = sorted[rank - 1];
    return p == 0 ? hdr_lowest_equivalent(v) : hdr_highest_equivalent(v);
}

static void test_percentiles(void)
{
    hdr_init(&h);
    CHECK_EQ_U64(hdr_percentile(&h, 50), 0);
    CHECK_EQ_U64(hdr_min(&h), 0);
    for (uint64_t v = 1; v <= 1000; v++)
        hdr_record(&h, v);
    CHECK_EQ_U64(hdr_percentile(&h, 50), 500);
    CHECK_EQ_U64(hdr_percentile(&h, 99.9), 999);
    CHECK_EQ_U64(hdr_percentile(&h, 100), 1000);
    CHECK_EQ_U64(hdr_percentile(&h, 0), 1);
    CHECK(fabs(hdr_mean(&h) - 500.5) < 1e-9);
    hdr_record(&h, 1000000);
    CHECK_EQ_U64(hdr_percentile(&h, 100), 1000447); /* top of its bucket */
    CHECK_EQ_U64(hdr_max(&h), 1000000);             /* exact */
    /* 99.9 * 41000 / 100 is 40959 plus an ulp: without the nudge the rank
       would be 40960, whose bucket (40960..40991) is the next one. */
    hdr_init(&h);
    for (uint64_t v = 1; v <= 41000; v++)
        hdr_record(&h, v);
    CHECK_EQ_U64(hdr_percentile(&h, 99.9), 40959);

    enum { N = 20000 };
    static uint64_t values[N];
    hdr_init(&h);
    for (size_t i = 0; i < N; i++) {
        values[i] = rnd_latency() % HDR_HIGHEST;
        hdr_record(&h, values[i]);
    }
    qsort(values, N, sizeof values[0], cmp_u64);
    CHECK_EQ_U64(hdr_min(&h), values[0]);
    CHECK_EQ_U64(hdr_max(&h), values[N - 1]);
    static const double ps[] = {0, 0.1, 1, 25, 50, 90, 99, 99.9, 99.99, 99.999, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        CHECK_EQ_U64(hdr_percentile(&h, ps[i]), expected_percentile(values, N, ps[i]));
}

static void test_clamp_and_merge(void)
{
    hdr_init(&h);
    hdr_record(&h, 100000000000ULL);
    CHECK_EQ_U64(h.clamped, 1);
    CHECK_EQ_U64(hdr_max(&h), HDR_HIGHEST);
    CHECK_EQ_U64(h.counts[hdr_index(HDR_HIGHEST)], 1);

    hdr_init(&h);
    hdr_init(&h2);
    hdr_init(&h3);
    for (int i = 0; i < 5000; i++) {
        uint64_t v = rnd_latency();
        hdr_record(i % 3 ? &h : &h2, v);
        hdr_record(&h3, v);
    }
    hdr_merge(&h, &h2);
    CHECK_EQ_U64(h.total, h3.total);
    CHECK_EQ_U64(h.clamped, h3.clamped);
    CHECK_EQ_U64(h.min, h3.min);
    CHECK_EQ_U64(h.max, h3.max);
    CHECK(memcmp(h.counts, h3.counts, sizeof h.counts) == 0);
    CHECK_EQ_U64(hdr_percentile(&h, 99), hdr_percentile(&h3, 99));
}

static uint8_t enc[HDR_V2_MAX];

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The bytes worked out by hand from the format description. */
static void test_encoding_bytes(void)
{
    hdr_init(&h);
    hdr_record(&h, 0);
    hdr_record(&h, 3);
    hdr_record(&h, 3);
    size_t n = hdr_encode_v2(&h, enc);
    CHECK_EQ_U64(n, 43);
    CHECK_EQ_U64(be(enc, 4), 0x1c849313);
    CHECK_EQ_U64(be(enc + 4, 4), 3);
    CHECK_EQ_U64(be(enc + 8, 4), 0);
    CHECK_EQ_U64(be(enc + 12, 4), 3);
    CHECK_EQ_U64(be(enc + 16, 8), 1);
    CHECK_EQ_U64(be(enc + 24, 8), 60000000000ULL);
    CHECK_EQ_U64(be(enc + 32, 8), 0x3ff0000000000000ULL); /* 1.0 */
    /* count 1 -> zigzag 2; two zeros -> -2 -> 3; count 2 -> 4 */
    CHECK(enc[40] == 2 && enc[41] == 3 && enc[42] == 4);
    hdr_init(&h);
    hdr_record(&h, 0);
    hdr_record(&h, 2);
    n = hdr_encode_v2(&h, enc);
    CHECK(n == 43 && enc[40] == 2 && enc[41] == 0 && enc[42] == 2); /* lone zero */
    hdr_init(&h);
    n = hdr_encode_v2(&h, enc); /* empty: one zero count, as Java */
    CHECK(n == 41 && enc[40] == 0);
    hdr_init(&h);
    h.counts[0] = 1ULL << 62; /* zigzag 2^63: 8 bytes of 7 bits, 9th whole */
    h.total = h.counts[0];
    n = hdr_encode_v2(&h, enc);
    CHECK_EQ_U64(n, 49);
    for (int i = 40; i < 48; i++)
        CHECK_EQ_U64(enc[i], 0x80);
    CHECK_EQ_U64(enc[48], 0x80);
    CHECK_OK(hdr_decode_v2(&h2, enc, n));
    CHECK_EQ_U64(h2.counts[0], 1ULL << 62);
}

static void test_encoding_round_trip(void)
{
    hdr_init(&h);
    for (int i = 0; i < 30000; i++)
        hdr_record(&h, rnd_latency());
    size_t n = hdr_encode_v2(&h, enc);
    CHECK_OK(hdr_decode_v2(&h2, enc, n));
    CHECK(memcmp(h.counts, h2.counts, sizeof h.counts) == 0);
    CHECK_EQ_U64(h2.total, h.total);
    CHECK_EQ_U64(h2.min, hdr_lowest_equivalent(h.min));
    CHECK_EQ_U64(h2.max, hdr_highest_equivalent(h.max));
    CHECK_EQ_U64(hdr_percentile(&h2, 99.9), hdr_percentile(&h, 99.9));
    /* Refusals: truncated, bad cookie, other digits, runs past the end. */
    CHECK_EQ_INT(hdr_decode_v2(&h2, enc, 39), -1);
    CHECK_EQ_INT(hdr_decode_v2(&h2, enc, n - 1), -1);
    enc[3] ^= 1;
    CHECK_EQ_INT(hdr_decode_v2(&h2, enc, n), -1);
    enc[3] ^= 1;
    enc[15] = 2;
    CHECK_EQ_INT(hdr_decode_v2(&h2, enc, n), -1);
    enc[15] = 3;
    static const uint8_t run[] = {0xff, 0xff, 0x03}; /* zigzag -32768 zeros */
    memcpy(enc + 40, run, sizeof run);
    enc[7] = sizeof run;
    enc[4] = enc[5] = enc[6] = 0;
    CHECK_EQ_INT(hdr_decode_v2(&h2, enc, 40 + sizeof run), -1);
    CHECK_EQ_U64(h2.total, 0);
    static const uint8_t most[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(enc + 40, most, sizeof most); /* zigzag INT64_MIN zeros */
    enc[7] = sizeof most;
    CHECK_EQ_INT(hdr_decode_v2(&h2, enc, 40 + sizeof most), -1);
}

#ifdef ECHO_BENCH_HAVE_ZLIB
static void test_log(void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!CHECK(f != NULL))
        return;
    struct hdrlog *log = hdrlog_open(f, 1796609871.5);
    if (!CHECK(log != NULL)) {
        fclose(f);
        free(text);
        return;
    }
    hdr_init(&h);
    for (int i = 0; i < 10000; i++)
        hdr_record(&h, rnd_latency() % 5000000000ULL);
    CHECK_OK(hdrlog_interval(log, &h, 2.25, 1.0));
    size_t len;
    const char *encoded = hdrlog_encode(log, &h, &len);
    char *b64 = encoded ? strdup(encoded) : NULL; /* the log owns `encoded` */
    if (!CHECK(b64 != NULL))
        return;
    if (CHECK_OK(hdrlog_decode(b64, len, &h2)))
        CHECK(memcmp(h.counts, h2.counts, sizeof h.counts) == 0);
    CHECK(strncmp(b64, "HISTF", 5) == 0); /* the 0x1c849314 cookie */
    CHECK_EQ_INT(hdrlog_decode(b64, len - 4, &h2), -1);
    CHECK_OK(hdrlog_close(log));
    fclose(f);
    char *line[5] = {0};
    char *save = NULL;
    line[0] = strtok_r(text, "\n", &save);
    for (int i = 1; i < 5; i++)
        line[i] = strtok_r(NULL, "\n", &save);
    if (!CHECK(line[4] != NULL)) {
        free(b64);
        free(text);
        return;
    }
    CHECK_STR(line[0], "#[Histogram log format version 1.3]");
    CHECK_STR(line[1], "#[StartTime: 1796609871.500 (seconds since epoch), "
                       "Mon Dec 07 02:17:51 UTC 2026]");
    CHECK_STR(line[2], "#[BaseTime: 1796609871.500 (seconds since epoch)]");
    CHECK_STR(line[3], "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
                       "\"Interval_Compressed_Histogram\"");
    char want[64];
    snprintf(want, sizeof want, "2.250,1.000,%.3f,", (double)hdr_highest_equivalent(h.max) / 1e6);
    CHECK(strncmp(line[4], want, strlen(want)) == 0);
    CHECK_STR(line[4] + strlen(want), b64);
    free(b64);
    free(text);
}
#endif

int main(void)
{
    check_run("layout", test_layout);
    check_run("indexes", test_indexes);
    check_run("percentiles", test_percentiles);
    check_run("clamp_and_merge", test_clamp_and_merge);
    check_run("encoding_bytes", test_encoding_bytes);
    check_run("encoding_round_trip", test_encoding_round_trip);
#ifdef ECHO_BENCH_HAVE_ZLIB
    check_run("log", test_log);
#else
    printf("log: skipped, echo-bench was built without zlib\n");
#endif
    return check_exit();
}
