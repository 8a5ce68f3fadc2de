/* SPDX-License-Identifier: MIT */
/*
 * proxy_client.c - a PROXY header on a client's new connection (see
 * proxy_client.h).
 */
#include "proxy_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_proto.h"

int proxy_cli_version(unsigned *version, const char *opt, const char *value, char *err,
                      size_t errsize)
{
    if (strcmp(value, "v1") == 0 || strcmp(value, "v2") == 0) {
        *version = value[1] == '1' ? PROXY_V1 : PROXY_V2;
        return 0;
    }
    snprintf(err, errsize, "%s: '%s' is not one of: v1, v2", opt, value);
    return -1;
}

int proxy_cli_source(struct proxy_source *out, const char *opt, const char *value, char *err,
                     size_t errsize)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(value, "local") == 0) {
        out->kind = PROXY_SOURCE_LOCAL;
        return 0;
    }
    out->kind = PROXY_SOURCE_ADDR;
    int rc = iomux_addr_parse(value, &out->addr);
    if (rc == 0)
        return 0;
    snprintf(err, errsize, "%s '%s': %s", opt, value,
             rc == -EINVAL ? "expected HOST:PORT, [IPV6]:PORT or local" : "host not found");
    return -1;
}

/* The destination a header of `family` names: the real one when the
   families agree, else that family's any-address with the real port. */
static void header_dst(const struct sockaddr_storage *peer, int family,
                       struct sockaddr_storage *dst)
{
    if (peer->ss_family == family) {
        *dst = *peer;
        return;
    }
    unsigned short port = 0;
    if (peer->ss_family == AF_INET)
        port = ((const struct sockaddr_in *)peer)->sin_port;
    else if (peer->ss_family == AF_INET6)
        port = ((const struct sockaddr_in6 *)peer)->sin6_port;
    memset(dst, 0, sizeof(*dst));
    dst->ss_family = (sa_family_t)family;
    if (family == AF_INET)
        ((struct sockaddr_in *)dst)->sin_port = port;
    else if (family == AF_INET6)
        ((struct sockaddr_in6 *)dst)->sin6_port = port;
}

int proxy_client_send(int fd, unsigned version, const struct proxy_source *src)
{
    uint8_t hdr[PROXY_BUILD_MAX];
    ssize_t n;
    if (src->kind == PROXY_SOURCE_LOCAL) {
        n = proxy_build(version, NULL, NULL, hdr, sizeof(hdr));
    } else {
        /* Zeroed: a Unix path is sent as all 108 bytes. */
        struct sockaddr_storage me, peer, dst;
        memset(&me, 0, sizeof(me));
        memset(&peer, 0, sizeof(peer));
        socklen_t melen = sizeof(me), peerlen = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &peerlen) < 0)
            return -errno;
        if (src->kind == PROXY_SOURCE_ADDR)
            memcpy(&me, &src->addr.ss, src->addr.len);
        else if (getsockname(fd, (struct sockaddr *)&me, &melen) < 0)
            return -errno;
        header_dst(&peer, me.ss_family, &dst);
        n = proxy_build(version, (const struct sockaddr *)&me, (const struct sockaddr *)&dst, hdr,
                        sizeof(hdr));
    }
    if (n < 0)
        return (int)n;
    ssize_t w = send(fd, hdr, (size_t)n, MSG_NOSIGNAL);
    if (w < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return w == n ? 0 : -EAGAIN;
}
