/* SPDX-License-Identifier: MIT */
/*
 * test_histogram.c - echo-bench's latency histogram: bucket bounds, and
 * percentiles of known distributions within 1% of the exact answer
 * (computed here by sorting the same values).
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

#include "histogram.h"

static struct histogram h, h2;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact percentile by the histogram's own definition: the smallest
   value with at least p% of the values at or below it. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
    double want = p / 100.0 * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static double uniform01(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Records `values`, then checks every interesting percentile. */
static void check_distribution(const char *name, uint64_t *values, size_t n)
{
    histogram_init(&h);
    for (size_t i = 0; i < n; i++)
        histogram_record(&h, values[i]);
    qsort(values, n, sizeof values[0], cmp_u64);
    CHECK_EQ_U64(h.count, n);
    CHECK_EQ_U64(h.min, values[0]);
    CHECK_EQ_U64(h.max, values[n - 1]);
    static const double ps[] = {1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t want = exact_percentile(values, n, ps[i]);
        uint64_t got = histogram_percentile(&h, ps[i]);
        double err = fabs((double)got - (double)want) / (double)(want ? want : 1);
        if (!CHECK(err <= 0.01))
            fprintf(stderr, "  %s p%g: got %llu, exact %llu (%.3f%%)\n", name, ps[i],
                    (unsigned long long)got, (unsigned long long)want, err * 100);
    }
}

static void test_buckets(void)
{
    /* Exact below 256; each bucket's low bound maps back to the bucket; a
       bucket is never wider than 1/128 of its low bound. */
    for (uint64_t v = 0; v < 256; v++)
        CHECK_EQ_U64(histogram_index(v), v);
    unsigned prev = 0;
    for (int bit = 8; bit < 64; bit++) {
        for (uint64_t m = 128; m < 256; m += 17) {
            uint64_t v = m << (bit - 7);
            unsigned idx = histogram_index(v);
            CHECK(idx < HISTOGRAM_BUCKETS);
            CHECK(idx > prev);
            prev = idx;
            CHECK_EQ_U64(histogram_bucket_low(idx), v);
            CHECK_EQ_INT(histogram_index(v + ((uint64_t)1 << (bit - 7)) - 1), idx);
        }
    }
    CHECK_EQ_INT(histogram_index(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
}

static void test_empty_and_single(void)
{
    histogram_init(&h);
    CHECK_EQ_U64(histogram_percentile(&h, 50), 0);
    histogram_record(&h, 123456789);
    CHECK_EQ_U64(histogram_percentile(&h, 0), 123456789);
    CHECK_EQ_U64(histogram_percentile(&h, 50), 123456789);
    CHECK_EQ_U64(histogram_percentile(&h, 99.9), 123456789);
    CHECK_EQ_U64(histogram_percentile(&h, 100), 123456789);
    histogram_record(&h, UINT64_MAX);
    CHECK_EQ_U64(histogram_percentile(&h, 100), UINT64_MAX);
}

#define N 200000

static uint64_t values[N];

static void test_distributions(void)
{
    for (size_t i = 0; i < N; i++)
        values[i] = 1 + rnd() % 1000000;
    check_distribution("uniform 1..1e6", values, N);

    for (size_t i = 0; i < N; i++)
        values[i] = (uint64_t)(-log(1.0 - uniform01()) * 50000.0);
    check_distribution("exponential mean 50us", values, N);

    /* Typical latencies: mostly ~20-40 us, a long tail up to 100 ms. */
    for (size_t i = 0; i < N; i++) {
        double u = uniform01();
        values[i] = u < 0.99 ? 20000 + rnd() % 20000 : 1000000 + rnd() % 99000000;
    }
    check_distribution("bimodal", values, N);

    /* Log-uniform over 1 ns .. 1000 s: every octave of the range. */
    for (size_t i = 0; i < N; i++)
        values[i] = (uint64_t)exp(uniform01() * log(1e12));
    check_distribution("log-uniform", values, N);

    for (size_t i = 0; i < N; i++)
        values[i] = 777;
    check_distribution("constant", values, N);
}

static void test_merge(void)
{
    histogram_init(&h);
    histogram_init(&h2);
    for (uint64_t v = 1; v <= 1000; v++)
        histogram_record(v % 2 ? &h : &h2, v * 1000);
    histogram_merge(&h, &h2);
    CHECK_EQ_U64(h.count, 1000);
    CHECK_EQ_U64(h.min, 1000);
    CHECK_EQ_U64(h.max, 1000000);
    uint64_t p50 = histogram_percentile(&h, 50);
    CHECK(p50 >= 495000 && p50 <= 505000);
    CHECK(fabs(histogram_mean(&h) - 500500.0) < 1.0);
}

int main(void)
{
    test_buckets();
    test_empty_and_single();
    test_distributions();
    test_merge();
    return check_exit();
}
