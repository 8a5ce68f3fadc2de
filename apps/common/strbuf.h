/* SPDX-License-Identifier: MIT */
/*
 * strbuf.h - printf-style appends to a fixed buffer the caller owns: the
 * text stays NUL-terminated, never overflows, and says whether any of it
 * was cut short. No allocation, so it serves start-up lines, reload
 * messages and the metrics body alike.
 */
#ifndef IOMUX_APPS_STRBUF_H
#define IOMUX_APPS_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
    char *buf;
    size_t size;    /* of buf, the terminating NUL included */
    size_t len;     /* characters in buf, the NUL not counted */
    bool truncated; /* an append did not fit: the text ends where it was cut */
};

/* An empty text in buf (of `size`); with size 0 every append truncates. */
void strbuf_init(struct strbuf *sb, char *buf, size_t size);

/*
 * Appends as snprintf would: what fits (up to size - 1 characters in all)
 * is kept, the rest is cut and `truncated` set. Once truncated, further
 * appends do nothing, so the text is always a prefix of what was asked
 * for. An output error (vsnprintf < 0) counts as truncation. Returns
 * false when this append did not fit whole.
 */
bool strbuf_appendf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
