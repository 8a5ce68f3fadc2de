/* SPDX-License-Identifier: MIT */
/*
 * check_addr.c - what echod's start can check before it binds anything:
 * every --listen and --udp address parses and resolves, none is given
 * twice, and the --user exists. A server that cannot start takes no
 * address and says only why.
 */
#include "check_addr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "echod_internal.h"

/* Parses a --listen or --udp address. Bad text is a usage error
   (-EINVAL, with the hint); a name that does not resolve, like any other
   failure to look it up, is a runtime one. Says which; 0 or -errno. */
int echod_parse_address(const char *opt, const char *text, struct iomux_addr *addr)
{
    int rc = echod_is_unix(text) ? iomux_addr_unix(text, addr) : iomux_addr_parse(text, addr);
    if (rc == -EINVAL) {
        echod_usage_error("%s '%s': expected HOST:PORT, [IPV6]:PORT (port 0..65535) or unix:PATH",
                          opt, text);
    } else if (rc == -ENAMETOOLONG) {
        echod_usage_error("%s '%s': %s", opt, text, strerror(-rc));
        rc = -EINVAL;
    } else if (rc == -ENOENT) {
        fprintf(stderr, "echod: %s '%s': host not found\n", opt, text);
    } else if (rc < 0) {
        fprintf(stderr, "echod: %s '%s': %s\n", opt, text, strerror(-rc));
    }
    return rc;
}

/* Two addresses that cannot both be bound. Port 0 asks for a new port
   each time, so it never repeats. */
static bool same_address(const struct iomux_addr *a, const struct iomux_addr *b)
{
    if (a->ss.ss_family != AF_UNIX && iomux_addr_port(a) == 0)
        return false;
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* The addresses of one option (--listen or --udp) parse, resolve, and none
   is given twice (127.0.0.1:7 and localhost:7 included). */
static int check_addresses(const char *opt, const char *const *texts, size_t n)
{
    struct iomux_addr addrs[ECHOD_MAX_LISTEN];
    for (size_t i = 0; i < n; i++) {
        int rc = echod_parse_address(opt, texts[i], &addrs[i]);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (same_address(&addrs[i], &addrs[j])) {
                echod_usage_error("%s %s: the same address as %s %s", opt, texts[i], opt, texts[j]);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* Everything that can be checked before anything is bound, so that no
   address is taken, and nothing said, for a server that cannot start. */
int echod_check_before_binding(struct echod *d)
{
    const struct echod_options *opt = d->opt;
    const char *listen[ECHOD_MAX_LISTEN];
    for (size_t i = 0; i < opt->nlisten; i++)
        listen[i] = opt->listen[i].addr;
    int rc = check_addresses("--listen", listen, opt->nlisten);
    if (rc == 0)
        rc = check_addresses("--udp", opt->udp, opt->nudp);
    if (rc == 0 && opt->user)
        rc = echod_user_lookup(opt->user, &d->user);
    return rc;
}
