/* SPDX-License-Identifier: MIT */
/*
 * trace.c - Python-style text for --trace (see trace.h).
 */
#include "trace.h"

#include <netinet/in.h>
#include <string.h>

void trace_bytes(FILE *f, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    /* Python picks double quotes only when that avoids escaping. */
    int squote = memchr(p, '\'', len) != NULL;
    int dquote = memchr(p, '"', len) != NULL;
    char quote = squote && !dquote ? '"' : '\'';

    putc('b', f);
    putc(quote, f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == (unsigned char)quote || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            putc(c, f);
    }
    putc(quote, f);
}

void trace_addr(const struct iomux_addr *addr, char *buf, size_t size)
{
    char host[IOMUX_ADDR_STRLEN];
    if (iomux_addr_host(addr, host, sizeof(host)) < 0) {
        snprintf(buf, size, "('?', 0)");
        return;
    }
    unsigned port = iomux_addr_port(addr);
    if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr->ss;
        snprintf(buf, size, "('%s', %u, %u, %u)", host, port, (unsigned)ntohl(sin6->sin6_flowinfo),
                 (unsigned)sin6->sin6_scope_id);
    } else {
        snprintf(buf, size, "('%s', %u)", host, port);
    }
}
