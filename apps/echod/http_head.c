/* SPDX-License-Identifier: MIT */
/*
 * http_head.c - the request-head parser of http_head.h: one pass, one byte
 * at a time, through the states of the grammar, so a verdict is reached at
 * the first byte that decides it and never depends on where reads split
 * the input. Nothing is allocated and nothing is copied: the result points
 * into the caller's bytes.
 */
#include "http_head.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

enum state {
    S_METHOD,      /* method token, up to its space */
    S_TARGET,      /* request target, up to its space */
    S_VERSION,     /* "HTTP/d.d" and the CR */
    S_LINE_LF,     /* the request line's LF */
    S_FIELD_START, /* a field name's first byte, or the CR of the empty line */
    S_NAME,        /* field name, up to the colon */
    S_VALUE,       /* field value, up to the CR */
    S_FIELD_LF,    /* a field line's LF */
    S_END_LF,      /* the empty line's LF: the head is complete */
};

/* tchar of RFC 9110: what a method or a field name is made of. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The path of an absolute-form target "scheme://authority/path?query":
   false if the target is not of that form. */
static bool absolute_path(const char *t, size_t n, struct http_head *h)
{
    size_t i = 0;
    while (i < n && (is_alpha((unsigned char)t[i]) ||
                     (i > 0 && (strchr("+-.", t[i]) || (t[i] >= '0' && t[i] <= '9')))))
        i++;
    if (i == 0 || n - i < 3 || memcmp(t + i, "://", 3) != 0)
        return false;
    for (i += 3; i < n && t[i] != '/' && t[i] != '?'; i++)
        ;
    if (i == n || t[i] == '?') {
        h->path = "/";
        h->path_len = 1;
        return true;
    }
    h->path = t + i;
    for (h->path_len = 0; i + h->path_len < n && t[i + h->path_len] != '?'; h->path_len++)
        ;
    return true;
}

/* The path of the `n` target bytes at `t` (the four forms of RFC 9112
   3.2); false for a target of none of them. */
static bool target_path(const char *t, size_t n, struct http_head *h)
{
    if (t[0] == '/') {
        h->path = t;
        for (h->path_len = 0; h->path_len < n && t[h->path_len] != '?'; h->path_len++)
            ;
        return true;
    }
    if (n == 1 && t[0] == '*') {
        h->path = t;
        h->path_len = 1;
        return true;
    }
    /* The authority form (CONNECT host:port) has no path: not served. */
    return absolute_path(t, n, h);
}

/* The request line's version, byte `pos` of "HTTP/d.d\r"; *major is the
   major digit once seen. */
static enum http_head_status version_byte(unsigned char c, size_t pos, struct http_head *h,
                                          unsigned *major)
{
    static const char proto[] = "HTTP/";
    if (pos < 5)
        return c == (unsigned char)proto[pos] ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    if (pos == 6)
        return c == '.' ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    if (pos == 5 || pos == 7) {
        if (c < '0' || c > '9')
            return HTTP_HEAD_BAD;
        if (pos == 5)
            *major = (unsigned)(c - '0');
        else
            h->minor = (unsigned)(c - '0');
        return HTTP_HEAD_MORE;
    }
    if (c != '\r')
        return HTTP_HEAD_BAD;
    return *major == 1 ? HTTP_HEAD_OK : HTTP_HEAD_VERSION;
}

/* Where the parse is, between bytes. */
struct parse {
    enum state st;
    size_t mark; /* where the current token began */
    unsigned major, hosts;
    struct http_head h;
};

/* The request line's byte `i`; HTTP_HEAD_MORE to go on. */
static enum http_head_status line_byte(struct parse *p, const char *buf, size_t i)
{
    unsigned char c = (unsigned char)buf[i];
    switch (p->st) {
    case S_METHOD:
        if (c == ' ' && i > 0) {
            p->h.method = buf;
            p->h.method_len = i;
            p->st = S_TARGET;
            p->mark = i + 1;
            return HTTP_HEAD_MORE;
        }
        return is_tchar(c) && i < HTTP_METHOD_MAX ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    case S_TARGET:
        if (c == ' ' && i > p->mark) {
            if (!target_path(buf + p->mark, i - p->mark, &p->h))
                return HTTP_HEAD_BAD;
            p->st = S_VERSION;
            p->mark = i + 1;
            return HTTP_HEAD_MORE;
        }
        return c >= 0x21 && c <= 0x7e ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    default: { /* S_VERSION */
        enum http_head_status v = version_byte(c, i - p->mark, &p->h, &p->major);
        if (v == HTTP_HEAD_OK) {
            p->st = S_LINE_LF;
            v = HTTP_HEAD_MORE;
        }
        return v;
    }
    }
}

/* A header section's byte `i`; HTTP_HEAD_MORE to go on, HTTP_HEAD_OK at
   the end of the head. */
static enum http_head_status field_byte(struct parse *p, const char *buf, size_t i)
{
    unsigned char c = (unsigned char)buf[i];
    switch (p->st) {
    case S_LINE_LF:
    case S_FIELD_LF:
        p->st = S_FIELD_START;
        return c == '\n' ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    case S_FIELD_START:
        /* A space or tab here is obsolete line folding; a colon, an
           empty name: both refused. */
        p->st = c == '\r' ? S_END_LF : S_NAME;
        p->mark = i;
        return c == '\r' || is_tchar(c) ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    case S_NAME:
        if (c == ':') {
            if (i - p->mark == 4 && strncasecmp(buf + p->mark, "host", 4) == 0)
                p->hosts++;
            p->st = S_VALUE;
            return HTTP_HEAD_MORE;
        }
        return is_tchar(c) ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    case S_VALUE:
        if (c == '\r')
            p->st = S_FIELD_LF;
        return c == '\r' || c == '\t' || (c >= 0x20 && c != 0x7f) ? HTTP_HEAD_MORE : HTTP_HEAD_BAD;
    default: /* S_END_LF */
        if (c != '\n')
            return HTTP_HEAD_BAD;
        /* RFC 9112 3.2: an HTTP/1.1 request without exactly one Host
           gets a 400; so does any with more than one. */
        if (p->hosts > 1 || (p->h.minor >= 1 && p->hosts == 0))
            return HTTP_HEAD_BAD;
        p->h.len = i + 1;
        return HTTP_HEAD_OK;
    }
}

enum http_head_status http_head_parse(const char *buf, size_t len, struct http_head *out)
{
    struct parse p = {.st = S_METHOD};
    for (size_t i = 0; i < len; i++) {
        enum http_head_status v =
            p.st <= S_VERSION ? line_byte(&p, buf, i) : field_byte(&p, buf, i);
        if (v == HTTP_HEAD_OK)
            *out = p.h;
        if (v != HTTP_HEAD_MORE)
            return v;
    }
    return HTTP_HEAD_MORE;
}
