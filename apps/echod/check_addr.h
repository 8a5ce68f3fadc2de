/* SPDX-License-Identifier: MIT */
/*
 * check_addr.h - echod's checks before binding (check_addr.c).
 */
#ifndef ECHOD_CHECK_ADDR_H
#define ECHOD_CHECK_ADDR_H

#include <iomux/net.h>

struct echod;

/* Parses a --listen or --udp address (`opt` names which). Bad text is a
   usage error (-EINVAL, with the hint); a name that does not resolve, like
   any other failure to look it up, is a runtime one. Says which; 0 or
   -errno. */
int echod_parse_address(const char *opt, const char *text, struct iomux_addr *addr);

/* Every address parses, resolves and is given once; the --user exists
   (looked up into d->user). 0, or -errno with the reason said. */
int echod_check_before_binding(struct echod *d);

#endif /* ECHOD_CHECK_ADDR_H */
