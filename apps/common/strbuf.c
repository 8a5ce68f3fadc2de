/* SPDX-License-Identifier: MIT */
/*
 * strbuf.c - bounded printf-style appends (strbuf.h).
 */
#include "strbuf.h"

#include <stdio.h>

void strbuf_init(struct strbuf *sb, char *buf, size_t size)
{
    *sb = (struct strbuf){.buf = buf, .size = size};
    if (size > 0)
        buf[0] = '\0';
}

bool strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
{
    if (sb->truncated || sb->len >= sb->size) { /* full, or not even the NUL fits */
        sb->truncated = true;
        return false;
    }
    size_t room = sb->size - sb->len;
    int n = vsnprintf(sb->buf + sb->len, room, fmt, ap);
    if (n < 0) {
        sb->buf[sb->len] = '\0'; /* whatever vsnprintf left is not the text */
        sb->truncated = true;
        return false;
    }
    if ((size_t)n >= room) {
        sb->len = sb->size - 1;
        sb->truncated = true;
        return false;
    }
    sb->len += (size_t)n;
    return true;
}

bool strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool whole = strbuf_vappendf(sb, fmt, ap);
    va_end(ap);
    return whole;
}
