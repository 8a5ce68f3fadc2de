/* SPDX-License-Identifier: MIT */
/*
 * test_checker.c - echo-bench's content pattern and checker: an intact
 * echo passes, however it is cut into pieces; a flipped, dropped,
 * duplicated or reordered byte, or another connection's bytes, are caught
 * at the first byte they touch.
 */
#include "check.h"

#include <string.h>

#include "pattern.h"

static struct pattern pat;
static unsigned char buf[3 * PATTERN_PERIOD];

static void test_table(void)
{
    /* Neighbours always differ, the wrap included: that is what makes a
       single drop or swap visible at once. */
    for (unsigned i = 1; i < 2 * PATTERN_PERIOD; i++)
        CHECK(pat.bytes[i] != pat.bytes[i - 1]);
    CHECK(memcmp(pat.bytes, pat.bytes + PATTERN_PERIOD, PATTERN_PERIOD) == 0);
    /* Not a trivial sequence: every byte value shows up. */
    unsigned seen[256] = {0};
    for (unsigned i = 0; i < PATTERN_PERIOD; i++)
        seen[pat.bytes[i]]++;
    for (unsigned b = 0; b < 256; b++)
        CHECK(seen[b] > 0);
}

static void test_intact(void)
{
    /* Across the wrap of the period, from an odd offset, in odd pieces. */
    uint64_t base = pattern_start(7) + 5u * PATTERN_PERIOD - 1000;
    size_t len = sizeof buf;
    pattern_fill(&pat, base, buf, len);
    CHECK_EQ_U64(pattern_check(&pat, base, buf, len), len);
    size_t off = 0, piece = 1;
    while (off < len) {
        size_t n = piece < len - off ? piece : len - off;
        if (!CHECK_EQ_U64(pattern_check(&pat, base + off, buf + off, n), n))
            break;
        off += n;
        piece = piece * 3 + 1;
    }
    size_t avail;
    const unsigned char *p = pattern_at(&pat, base, &avail);
    CHECK(avail >= PATTERN_PERIOD);
    CHECK(memcmp(p, buf, PATTERN_PERIOD) == 0);
}

static void test_flipped(void)
{
    uint64_t base = pattern_start(1);
    size_t len = 5000;
    for (size_t at = 0; at < len; at += 777) {
        pattern_fill(&pat, base, buf, len);
        buf[at] ^= 0x01;
        CHECK_EQ_U64(pattern_check(&pat, base, buf, len), at);
    }
}

static void test_dropped(void)
{
    uint64_t base = pattern_start(2);
    size_t len = 5000;
    for (size_t at = 0; at < len - 1; at += 613) {
        pattern_fill(&pat, base, buf, len + 1);
        memmove(buf + at, buf + at + 1, len - at); /* byte `at` is lost */
        CHECK_EQ_U64(pattern_check(&pat, base, buf, len), at);
    }
}

static void test_duplicated(void)
{
    uint64_t base = pattern_start(3);
    size_t len = 5000;
    size_t at = 1234;
    pattern_fill(&pat, base, buf, len);
    memmove(buf + at + 1, buf + at, len - at - 1); /* byte `at` comes twice */
    CHECK_EQ_U64(pattern_check(&pat, base, buf, len), at + 1);
}

static void test_reordered(void)
{
    uint64_t base = pattern_start(4);
    size_t len = 5000;
    for (size_t at = 0; at < len - 1; at += 401) {
        pattern_fill(&pat, base, buf, len);
        unsigned char t = buf[at];
        buf[at] = buf[at + 1];
        buf[at + 1] = t;
        CHECK_EQ_U64(pattern_check(&pat, base, buf, len), at);
    }
    /* Two segments delivered in the wrong order. */
    pattern_fill(&pat, base, buf, 2000);
    unsigned char tmp[1000];
    memcpy(tmp, buf, 1000);
    memmove(buf, buf + 1000, 1000);
    memcpy(buf + 1000, tmp, 1000);
    CHECK_EQ_U64(pattern_check(&pat, base, buf, 2000), 0);
}

static void test_other_connection(void)
{
    /* Connection 5's bytes delivered to connection 6. */
    size_t len = 64;
    pattern_fill(&pat, pattern_start(5), buf, len);
    CHECK(pattern_check(&pat, pattern_start(6), buf, len) < len);
    for (uint64_t id = 0; id < 1000; id++)
        CHECK(pattern_start(id) != pattern_start(id + 1));
}

int main(void)
{
    pattern_init(&pat, 12345);
    test_table();
    test_intact();
    test_flipped();
    test_dropped();
    test_duplicated();
    test_reordered();
    test_other_connection();
    return check_exit();
}
