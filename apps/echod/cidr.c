/* SPDX-License-Identifier: MIT */
/*
 * cidr.c - address ranges for --proxy-from (see cidr.h).
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* Whether the first `bits` bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_parse(const char *text, struct echod_cidr *out)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, n);
    host[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, host, out->addr) == 1)
        out->family = AF_INET6;
    else
        return -EINVAL;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash) {
        const char *bits = slash + 1;
        char *end;
        if (bits[0] < '0' || bits[0] > '9' || (bits[0] == '0' && bits[1] != '\0'))
            return -EINVAL;
        unsigned long v = strtoul(bits, &end, 10);
        if (*end != '\0' || v > max)
            return -EINVAL;
        out->prefix = (unsigned)v;
    }
    static const uint8_t zeros[16];
    uint8_t host_bits[16];
    memcpy(host_bits, out->addr, sizeof(host_bits));
    /* Clearing the network part must leave zeros: no host bits given. */
    for (unsigned i = 0; i < max; i++)
        if (i < out->prefix)
            host_bits[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return memcmp(host_bits, zeros, max / 8) == 0 ? 0 : -EINVAL;
}

bool cidr_match(const struct echod_cidr *ranges, size_t n, const struct iomux_addr *peer)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    uint8_t v4[4], v6[16];
    bool has4 = false, has6 = false;
    if (peer->ss.ss_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)&peer->ss)->sin_addr, 4);
        has4 = true;
    } else if (peer->ss.ss_family == AF_INET6) {
        memcpy(v6, &((const struct sockaddr_in6 *)&peer->ss)->sin6_addr, 16);
        has6 = true;
        if (memcmp(v6, mapped, sizeof(mapped)) == 0) {
            memcpy(v4, v6 + 12, 4);
            has4 = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct echod_cidr *r = &ranges[i];
        if ((r->family == AF_INET && has4 && prefix_equal(r->addr, v4, r->prefix)) ||
            (r->family == AF_INET6 && has6 && prefix_equal(r->addr, v6, r->prefix)))
            return true;
    }
    return false;
}
