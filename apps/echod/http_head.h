/* SPDX-License-Identifier: MIT */
/*
 * http_head.h - a strict parser of an HTTP/1.x request head (request line
 * and header fields, RFC 9112), for --metrics: enough to answer one GET
 * and close, with no HTTP library. It reads network bytes, so it never
 * guesses: anything outside the grammar is "bad" (400), and it is fuzzed
 * (fuzz/fuzz_http.c).
 *
 * The verdict never depends on how the bytes were split: the parse goes
 * left to right and decides at the first byte that decides, so a prefix
 * of the input gives "more" or the same verdict as the whole.
 *
 * What it accepts: a method (a token), one space, a request target of
 * visible ASCII, one space, HTTP/1.<digit>, CRLF; then header fields
 * `name: value` (name a token, no space before the colon; the value
 * visible ASCII, space, tab or bytes 0x80-0xff), each ended by CRLF; then
 * an empty line. HTTP/1.1 needs exactly one Host field. Refused: bare LF
 * or CR, obsolete line folding, control bytes, empty lines before the
 * request line.
 */
#ifndef ECHOD_HTTP_HEAD_H
#define ECHOD_HTTP_HEAD_H

#include <stddef.h>

enum http_head_status {
    HTTP_HEAD_MORE,    /* a valid beginning: wait for more bytes */
    HTTP_HEAD_OK,      /* a complete head (*out filled) */
    HTTP_HEAD_BAD,     /* not HTTP/1.x: answer 400 */
    HTTP_HEAD_VERSION, /* HTTP/<major>.x with major not 1: answer 505 */
};

/* Longest method accepted: far more than any registered one. */
#define HTTP_METHOD_MAX 32

/* A complete head. The strings point into the parsed bytes (not
   NUL-terminated). */
struct http_head {
    size_t len;         /* bytes of the head, its empty line included */
    const char *method; /* "GET" */
    size_t method_len;
    const char *path; /* the target's path: the origin form without its
                         query, or the path of an absolute form ("/" if it
                         has none); "*" for the asterisk form */
    size_t path_len;
    unsigned minor; /* HTTP/1.<minor> */
};

/* Parses the `len` bytes at `buf` (borrowed). On HTTP_HEAD_OK fills *out;
   leaves it alone otherwise. */
enum http_head_status http_head_parse(const char *buf, size_t len, struct http_head *out);

#endif /* ECHOD_HTTP_HEAD_H */
