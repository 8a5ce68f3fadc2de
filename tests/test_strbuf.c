/* SPDX-License-Identifier: MIT */
/*
 * test_strbuf.c - apps/common/strbuf.h: the exact text, length and
 * truncation flag at the buffer's boundary (a text that just fits, one
 * byte over, an empty append, appends to a full buffer, no room at all),
 * and that a buffer resumed from a saved length goes on where it was.
 */
#include "check.h"

#include <stdarg.h>
#include <string.h>

#include "strbuf.h"

/* Guards past the end of the buffer under test: nothing may be written there. */
#define GUARD 0x5a

static bool guard_intact(const char *area, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if ((unsigned char)area[i] != GUARD)
            return false;
    return true;
}

static void test_appends_in_order(void)
{
    char buf[64];
    struct strbuf sb;
    strbuf_init(&sb, buf, sizeof buf);
    CHECK_STR(buf, "");
    CHECK_EQ_U64(sb.len, 0);
    CHECK(strbuf_appendf(&sb, "%s=%d", "port", 7000));
    CHECK(strbuf_appendf(&sb, ",%u", 3u));
    CHECK_STR(buf, "port=7000,3");
    CHECK_EQ_U64(sb.len, 11);
    CHECK(!sb.truncated);
}

static void test_exactly_fitting(void)
{
    char area[16];
    memset(area, GUARD, sizeof area);
    struct strbuf sb;
    strbuf_init(&sb, area, 6); /* five characters and the NUL */
    CHECK(strbuf_appendf(&sb, "%s", "he"));
    CHECK(strbuf_appendf(&sb, "%s", "llo"));
    CHECK_STR(area, "hello");
    CHECK_EQ_U64(sb.len, 5);
    CHECK(!sb.truncated);
    /* An empty append fits into a full buffer. */
    CHECK(strbuf_appendf(&sb, "%s", ""));
    CHECK_EQ_U64(sb.len, 5);
    CHECK(!sb.truncated);
    CHECK(guard_intact(area, 6, sizeof area));
}

static void test_one_byte_over(void)
{
    char area[16];
    memset(area, GUARD, sizeof area);
    struct strbuf sb;
    strbuf_init(&sb, area, 6);
    CHECK(strbuf_appendf(&sb, "%s", "abc"));
    CHECK(!strbuf_appendf(&sb, "%s", "def")); /* six characters: one too many */
    CHECK_STR(area, "abcde");
    CHECK_EQ_U64(sb.len, 5);
    CHECK(sb.truncated);
    CHECK(guard_intact(area, 6, sizeof area));
}

static void test_full_buffer_takes_nothing_more(void)
{
    char area[16];
    memset(area, GUARD, sizeof area);
    struct strbuf sb;
    strbuf_init(&sb, area, 4);
    CHECK(strbuf_appendf(&sb, "%d", 123));
    CHECK(!strbuf_appendf(&sb, "%c", 'x'));
    CHECK_STR(area, "123");
    CHECK(sb.truncated);
    /* Once cut, even what would fit is refused: the text stays a prefix. */
    CHECK(!strbuf_appendf(&sb, "%s", ""));
    CHECK_STR(area, "123");
    CHECK_EQ_U64(sb.len, 3);
    CHECK(guard_intact(area, 4, sizeof area));
}

static void test_tiny_buffers(void)
{
    char area[8];
    memset(area, GUARD, sizeof area);
    struct strbuf sb;
    strbuf_init(&sb, area, 1); /* room for the NUL alone */
    CHECK(strbuf_appendf(&sb, "%s", ""));
    CHECK(!sb.truncated);
    CHECK(!strbuf_appendf(&sb, "%s", "a"));
    CHECK_STR(area, "");
    CHECK_EQ_U64(sb.len, 0);
    CHECK(sb.truncated);
    CHECK(guard_intact(area, 1, sizeof area));

    memset(area, GUARD, sizeof area);
    strbuf_init(&sb, area, 0); /* no room at all: nothing is written */
    CHECK(!strbuf_appendf(&sb, "%s", ""));
    CHECK(sb.truncated);
    CHECK_EQ_U64(sb.len, 0);
    CHECK(guard_intact(area, 0, sizeof area));
}

static bool append_via_list(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool append_via_list(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool whole = strbuf_vappendf(sb, fmt, ap);
    va_end(ap);
    return whole;
}

/* The way echod keeps its start-up lines: the text and its length are
   saved between appends, and a strbuf is made again around them. */
static void test_resumed_from_saved_length(void)
{
    char saved[8] = "ab";
    size_t saved_len = 2;
    struct strbuf sb = {.buf = saved, .size = sizeof saved, .len = saved_len};
    CHECK(append_via_list(&sb, "%s%d", "cd", 5));
    saved_len = sb.len;
    CHECK_STR(saved, "abcd5");
    sb = (struct strbuf){.buf = saved, .size = sizeof saved, .len = saved_len};
    CHECK(!append_via_list(&sb, "%s", "xyz"));
    CHECK_STR(saved, "abcd5xy");
    CHECK_EQ_U64(sb.len, 7);
    saved_len = sb.len;
    sb = (struct strbuf){.buf = saved, .size = sizeof saved, .len = saved_len};
    CHECK(!append_via_list(&sb, "%s", "z"));
    CHECK_STR(saved, "abcd5xy");
    CHECK_EQ_U64(sb.len, 7);
}

int main(void)
{
    test_appends_in_order();
    test_exactly_fitting();
    test_one_byte_over();
    test_full_buffer_takes_nothing_more();
    test_tiny_buffers();
    test_resumed_from_saved_length();
    return check_exit();
}
