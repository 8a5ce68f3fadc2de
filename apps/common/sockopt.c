/* SPDX-License-Identifier: MIT */
/*
 * sockopt.c - applies struct sock_tuning to a socket. setsockopt() is
 * called only for what the user asked for, so a tool run without these
 * options makes no extra system call per connection.
 */
#include "sockopt.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"

const char *const sock_nodelay_choices[] = {"off", "on", NULL};

int sock_tuning_parse_keepalive(const char *opt, const char *text, struct sock_tuning *t, char *err,
                                size_t errsize)
{
    char buf[64];
    uint64_t idle, intvl = 0, count = 0;
    if (strlen(text) >= sizeof buf) {
        snprintf(err, errsize, "%s: '%s' is too long", opt, text);
        return -1;
    }
    strcpy(buf, text);
    char *first = strchr(buf, ':');
    char *second = first ? strchr(first + 1, ':') : NULL;
    if (first != NULL && second == NULL) {
        snprintf(err, errsize, "%s: '%s': expected IDLE or IDLE:INTERVAL:COUNT", opt, text);
        return -1;
    }
    if (first != NULL) {
        *first = '\0';
        *second = '\0';
    }
    /* TCP_KEEPIDLE and TCP_KEEPINTVL take at most 32767 s on Linux. */
    if (cli_parse_u64(opt, buf, 1, 32767, &idle, err, errsize) < 0)
        return -1;
    if (first != NULL && (cli_parse_u64(opt, first + 1, 1, 32767, &intvl, err, errsize) < 0 ||
                          cli_parse_u64(opt, second + 1, 1, 127, &count, err, errsize) < 0))
        return -1;
    t->keepalive_idle = (unsigned)idle;
    t->keepalive_intvl = (unsigned)intvl;
    t->keepalive_count = (unsigned)count;
    return 0;
}

static int set_int(int fd, int level, int name, int value, const char *label, const char **what)
{
    if (setsockopt(fd, level, name, &value, sizeof value) == 0)
        return 0;
    if (what != NULL)
        *what = label;
    return -errno;
}

int sock_tuning_apply(int fd, const struct sock_tuning *t, const char **what)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int type = 0;
    socklen_t tlen = sizeof type;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0) {
        if (what != NULL)
            *what = "getsockname";
        return -errno;
    }
    int inet = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
    int tcp = inet && type == SOCK_STREAM;
    int rc = 0;
    if (t->sndbuf)
        rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, (int)t->sndbuf, "SO_SNDBUF", what);
    if (!rc && t->rcvbuf)
        rc = set_int(fd, SOL_SOCKET, SO_RCVBUF, (int)t->rcvbuf, "SO_RCVBUF", what);
    if (!rc && t->tos && ss.ss_family == AF_INET)
        rc = set_int(fd, IPPROTO_IP, IP_TOS, (int)t->tos, "IP_TOS", what);
    if (!rc && t->tos && ss.ss_family == AF_INET6)
        rc = set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, (int)t->tos, "IPV6_TCLASS", what);
    if (!rc && tcp && t->nodelay != SOCK_NODELAY_KEEP)
        rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, t->nodelay, "TCP_NODELAY", what);
    if (!rc && tcp && t->keepalive_idle) {
        rc = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE", what);
        if (!rc)
            rc = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)t->keepalive_idle, "TCP_KEEPIDLE",
                         what);
        if (!rc && t->keepalive_intvl)
            rc = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)t->keepalive_intvl, "TCP_KEEPINTVL",
                         what);
        if (!rc && t->keepalive_count)
            rc =
                set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)t->keepalive_count, "TCP_KEEPCNT", what);
    }
    return rc;
}
