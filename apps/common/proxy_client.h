/* SPDX-License-Identifier: MIT */
/*
 * proxy_client.h - the client side of the PROXY protocol for echo-client
 * and echo-bench (--proxy-protocol v1|v2, --proxy-source): the header a
 * balancer would send, written once a connection is up and before its
 * first byte. Built once per connection (proxy_proto.h's proxy_build()).
 */
#ifndef IOMUX_APPS_PROXY_CLIENT_H
#define IOMUX_APPS_PROXY_CLIENT_H

#include <stddef.h>

#include <iomux/net.h>

/* What --proxy-source says the header names as the client. */
enum proxy_source_kind {
    PROXY_SOURCE_REAL,  /* not given: the connection's own source address */
    PROXY_SOURCE_ADDR,  /* ADDR:PORT */
    PROXY_SOURCE_LOCAL, /* "local": v2 LOCAL / v1 UNKNOWN, a balancer's health check */
};

struct proxy_source {
    enum proxy_source_kind kind;
    struct iomux_addr addr; /* PROXY_SOURCE_ADDR */
};

/* For a tool's option table (opts.h's CLI_CALL): --proxy-protocol v1|v2
   into *version (1 or 2), and --proxy-source "local", HOST:PORT or
   [IPV6]:PORT into *out. 0, or -1 with the reason in err. */
int proxy_cli_version(unsigned *version, const char *opt, const char *value, char *err,
                      size_t errsize);
int proxy_cli_source(struct proxy_source *out, const char *opt, const char *value, char *err,
                     size_t errsize);

/* Their --help lines, the same in every tool. */
#define PROXY_CLI_VERSION_HELP                                                                     \
    "send a PROXY protocol header of this version\n"                                               \
    "before the first byte of every connection"
#define PROXY_CLI_SOURCE_HELP                                                                      \
    "the client the header names: ADDR:PORT, or\n"                                                 \
    "'local' for a LOCAL (v2) or UNKNOWN (v1) header,\n"                                           \
    "as a balancer's health check sends; default:\n"                                               \
    "the connection's own source address"

/*
 * Sends the header of `version` (1 or 2) on the connected socket `fd`
 * (borrowed): source as `src` says, destination the address connected to
 * (with an ADDR of another family than the connection's: that family's
 * any-address and the real port). One send(): the header is at most 232
 * bytes and the socket has just connected, so its buffer is empty.
 * 0, or -errno (-EAGAIN if it did not all go, which does not happen on a
 * new connection).
 */
int proxy_client_send(int fd, unsigned version, const struct proxy_source *src);

#endif /* IOMUX_APPS_PROXY_CLIENT_H */
