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

/*
 * The command-line entries of the options every tool shares, for its
 * struct cli_spec table (opts.h, which the table's file includes): TUNING
 * is offsetof() the tool's struct sock_tuning in its options, WHO names
 * the sockets in the help ("every connection"), and the help's first line
 * ends with WHO so that each tool's wording still reads as its own. One
 * definition each, so that the tools cannot drift apart in range or
 * meaning; the order and the choice of options stay each table's own.
 */
#define SOCK_SPEC_NODELAY(TUNING, WHO, DEF)                                                        \
    {                                                                                              \
        .name = "nodelay", .arg = "on|off", .kind = CLI_CHOICE,                                    \
        .field = (TUNING) + offsetof(struct sock_tuning, nodelay),                                 \
        .choices = sock_nodelay_choices, .help = "TCP_NODELAY on " WHO, .def = DEF                 \
    }
#define SOCK_SPEC_SNDBUF(TUNING, WHO)                                                              \
    {                                                                                              \
        .name = "sndbuf", .arg = "BYTES", .kind = CLI_BYTES,                                       \
        .field = (TUNING) + offsetof(struct sock_tuning, sndbuf), .min = 1, .max = SOCK_BUF_MAX,   \
        .help = "SO_SNDBUF of " WHO ":\nbytes, or with K, M or G; the kernel doubles it,\n"        \
                "up to net.core.wmem_max",                                                         \
        .def = "the kernel's"                                                                      \
    }
#define SOCK_SPEC_RCVBUF(TUNING, WHO)                                                              \
    {                                                                                              \
        .name = "rcvbuf", .arg = "BYTES", .kind = CLI_BYTES,                                       \
        .field = (TUNING) + offsetof(struct sock_tuning, rcvbuf), .min = 1, .max = SOCK_BUF_MAX,   \
        .help = "SO_RCVBUF of " WHO ":\nlikewise, up to net.core.rmem_max", .def = "the kernel's"  \
    }
#define SOCK_SPEC_TOS(TUNING, WHO)                                                                 \
    {                                                                                              \
        .name = "tos", .arg = "N", .kind = CLI_UNSIGNED,                                           \
        .field = (TUNING) + offsetof(struct sock_tuning, tos), .max = 255,                         \
        .help = "IP_TOS (IPv4) or IPV6_TCLASS (IPv6), 0..255, of\n" WHO, .def = "0"                \
    }

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
