/* SPDX-License-Identifier: MIT */
/*
 * sockopt.h - the socket options a user may set from every tool's command
 * line (--nodelay, --sndbuf, --rcvbuf, --tos, --keepalive), applied in one
 * place so echod, echo-client and echo-bench mean the same by each.
 */
#ifndef IOMUX_APPS_SOCKOPT_H
#define IOMUX_APPS_SOCKOPT_H

#include <stddef.h>
#include <stdint.h>

/* What to change on a socket; the zero value of each field changes nothing,
   except nodelay, whose "leave it" value is SOCK_NODELAY_KEEP. */
struct sock_tuning {
    int nodelay;              /* SOCK_NODELAY_OFF, _ON (an opts.h choice index) or _KEEP */
    uint64_t sndbuf;          /* SO_SNDBUF bytes; 0: the kernel's default */
    uint64_t rcvbuf;          /* SO_RCVBUF bytes; 0: the kernel's default */
    unsigned tos;             /* IP_TOS / IPV6_TCLASS; 0: the default (which is 0) */
    unsigned keepalive_idle;  /* TCP keepalive: seconds idle before probing; 0: off */
    unsigned keepalive_intvl; /* seconds between probes; 0: the kernel's default */
    unsigned keepalive_count; /* probes before the peer is dead; 0: the kernel's default */
};

enum { SOCK_NODELAY_OFF = 0, SOCK_NODELAY_ON = 1, SOCK_NODELAY_KEEP = -1 };

/* For a CLI_CHOICE spec of --nodelay: the index is the SOCK_NODELAY_ value. */
extern const char *const sock_nodelay_choices[];

/* Largest buffer size accepted for --sndbuf/--rcvbuf (the kernel caps it
   again at net.core.wmem_max/rmem_max). */
#define SOCK_BUF_MAX ((uint64_t)1 << 30)

/* Parses --keepalive IDLE[:INTERVAL:COUNT] (whole seconds, count 1-127)
   into *t; 0 or -1 with a one-line reason in err. */
int sock_tuning_parse_keepalive(const char *opt, const char *text, struct sock_tuning *t, char *err,
                                size_t errsize);

/* Applies *t to fd. Options that do not apply to the socket's family or
   type (TCP options on a Unix socket, TOS on a Unix socket) are skipped.
   Returns 0, or -errno of the first setsockopt() that failed, with the
   option's name in *what (may be NULL). */
int sock_tuning_apply(int fd, const struct sock_tuning *t, const char **what);

#endif /* IOMUX_APPS_SOCKOPT_H */
