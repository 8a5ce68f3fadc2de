/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c - libFuzzer target for echod's HTTP request-head parser
 * (apps/echod/http_head.h), what --metrics reads from the network. Checked:
 *   - a verdict never depends on how the bytes were split: the input cut at
 *     a point taken from its bytes gives "more" or the same verdict, and a
 *     head is never complete one byte early;
 *   - a complete head is self-consistent: its length within the input and
 *     ending in the empty line, the method a token of at most
 *     HTTP_METHOD_MAX bytes at the start, the path within the input (or
 *     the literal "/") and starting with '/' or being "*";
 *   - *out is left alone unless the head is complete.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool within(const char *p, size_t n, const char *buf, size_t size)
{
    return p >= buf && n <= size && (size_t)(p - buf) <= size - n;
}

static void check_head(const struct http_head *h, const char *buf, size_t size)
{
    if (h->len < 4 || h->len > size || memcmp(buf + h->len - 4, "\r\n\r\n", 4) != 0)
        abort();
    if (h->method != buf || h->method_len == 0 || h->method_len > HTTP_METHOD_MAX ||
        buf[h->method_len] != ' ')
        abort();
    bool literal = h->path_len == 1 && h->path[0] == '/';
    if (!literal && !within(h->path, h->path_len, buf, h->len))
        abort();
    if (h->path_len == 0 || (h->path[0] != '/' && !(h->path_len == 1 && h->path[0] == '*')))
        abort();
    if (h->minor > 9 || memchr(h->path, '?', h->path_len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http_head h, untouched;
    memset(&h, 0xa5, sizeof(h));
    memcpy(&untouched, &h, sizeof(h));
    enum http_head_status whole = http_head_parse(buf, size, &h);
    if (whole == HTTP_HEAD_OK)
        check_head(&h, buf, size);
    else if (memcmp(&h, &untouched, sizeof(h)) != 0)
        abort();
    if (size == 0)
        return 0;
    /* A prefix decides nothing the whole does not. */
    size_t cut = (data[0] | (size_t)data[size - 1] << 8) % size;
    struct http_head p;
    enum http_head_status part = http_head_parse(buf, cut, &p);
    if (part != HTTP_HEAD_MORE && part != whole)
        abort();
    if (part == HTTP_HEAD_OK && p.len != h.len)
        abort();
    /* Complete exactly at its last byte, not before. */
    if (whole == HTTP_HEAD_OK && http_head_parse(buf, h.len - 1, &p) != HTTP_HEAD_MORE)
        abort();
    return 0;
}
