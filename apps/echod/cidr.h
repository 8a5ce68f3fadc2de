/* SPDX-License-Identifier: MIT */
/*
 * cidr.h - address ranges for --proxy-from ("10.0.0.0/8", "::1/128", or a
 * plain address for itself alone): parsed once at start-up, matched once
 * per connection on a PROXY listener. Pure functions, no I/O.
 */
#ifndef ECHOD_CIDR_H
#define ECHOD_CIDR_H

#include <stdbool.h>
#include <stdint.h>

#include <iomux/net.h>

struct echod_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; 4 bytes used for AF_INET */
    unsigned prefix;  /* leading bits that must match: 0-32 or 0-128 */
};

/* Parses "ADDR/BITS" or "ADDR" (numeric; IPv6 without brackets). Host bits
   set beyond the prefix (10.1.2.3/8) are refused, since they usually mean
   a typing error. 0, or -EINVAL. */
int cidr_parse(const char *text, struct echod_cidr *out);

/* Whether `peer` is in one of ranges[0..n). An IPv4-mapped IPv6 peer
   (::ffff:a.b.c.d, a dual-stack listener's IPv4 client) matches IPv4
   ranges. Other families never match. */
bool cidr_match(const struct echod_cidr *ranges, size_t n, const struct iomux_addr *peer);

#endif /* ECHOD_CIDR_H */
