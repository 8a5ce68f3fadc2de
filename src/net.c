/* SPDX-License-Identifier: MIT */
/*
 * net.c - socket helpers for the apps: non-blocking close-on-exec TCP
 * listen/accept/connect, UDP with packet information, Unix-domain
 * sockets. Addresses as text are addr.c's.
 *
 * Nothing here knows about the loop. Every socket made here is created with
 * SOCK_NONBLOCK | SOCK_CLOEXEC in the same system call, so a fork+exec in
 * another thread can never inherit it and no fcntl() round trip is needed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "iomux/net.h"

/* Errors from setsockopt(TCP_NODELAY) are ignored: the socket works
   without it, only slower for small writes. */
static void set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A non-blocking, close-on-exec IPv4 or IPv6 socket of `type` for `addr`. */
static int ip_socket(const struct iomux_addr *addr, int type, int *fd)
{
    int family = addr->ss.ss_family;
    if (family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    *fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return *fd < 0 ? -errno : 0;
}

/* Binds `fd` to `addr`. An IPv6 socket takes IPv6 only, so "[::]:N" and
   "0.0.0.0:N" can be bound side by side, whatever the system default says. */
static int ip_bind(int fd, const struct iomux_addr *addr)
{
    int one = 1;
    if (addr->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        return -errno;
    return bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ? -errno : 0;
}

int iomux_tcp_listen(const struct iomux_addr *addr, int backlog, int *fd_out)
{
    if (!addr || !fd_out || backlog < 0)
        return -EINVAL;
    int fd;
    int rc = ip_socket(addr, SOCK_STREAM, &fd);
    if (rc < 0)
        return rc;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        rc = -errno;
    if (rc == 0)
        rc = ip_bind(fd, addr);
    /* The kernel clamps the backlog to its maximum (net.core.somaxconn on
       Linux), so INT_MAX asks for exactly "the system maximum". */
    if (rc == 0 && listen(fd, backlog ? backlog : INT_MAX) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int iomux_tcp_accept(int listen_fd, struct iomux_addr *peer, int *fd_out)
{
    if (!fd_out)
        return -EINVAL;
    struct iomux_addr tmp;
    struct iomux_addr *a = peer ? peer : &tmp;
    int fd;
    do {
        memset(a, 0, sizeof(*a));
        a->len = sizeof(a->ss);
        fd = accept4(listen_fd, (struct sockaddr *)&a->ss, &a->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    set_nodelay(fd);
    *fd_out = fd;
    return 0;
}

int iomux_tcp_connect(const struct iomux_addr *addr, int *fd_out)
{
    if (!addr || !fd_out)
        return -EINVAL;
    int fd;
    int rc;
    if (addr->ss.ss_family == AF_UNIX) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        rc = fd < 0 ? -errno : 0;
    } else {
        rc = ip_socket(addr, SOCK_STREAM, &fd);
        if (rc == 0)
            set_nodelay(fd);
    }
    if (rc < 0)
        return rc;
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0) {
        *fd_out = fd;
        return 0;
    }
    /* EINTR on a non-blocking connect means the same as EINPROGRESS: the
       handshake goes on and completion shows up as writability. */
    if (errno == EINPROGRESS || errno == EINTR) {
        *fd_out = fd;
        return -EINPROGRESS;
    }
    rc = -errno;
    close(fd);
    return rc;
}

int iomux_reserve_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

int iomux_tcp_shed(int listen_fd, int *reserve_fd, int max)
{
    if (!reserve_fd || *reserve_fd < 0)
        return -EBADF;
    close(*reserve_fd);
    *reserve_fd = -1;
    int shed = 0;
    while (shed < max) {
        int fd = -1;
        if (iomux_tcp_accept(listen_fd, NULL, &fd) < 0)
            break; /* -EAGAIN: the backlog is empty; anything else: give up */
        close(fd);
        shed++;
    }
    int fd = iomux_reserve_fd();
    *reserve_fd = fd >= 0 ? fd : -1;
    return shed;
}

int iomux_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

int iomux_socket_local(int fd, struct iomux_addr *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->len = sizeof(out->ss);
    if (getsockname(fd, (struct sockaddr *)&out->ss, &out->len) < 0)
        return -errno;
    return 0;
}

/* ------------------------------------------------------------------------
 * UDP: destination addresses of received datagrams, and replies from them.
 */

int iomux_udp_enable_pktinfo(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    int one = 1;
    int rc;
    if (ss.ss_family == AF_INET)
        rc = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    else if (ss.ss_family == AF_INET6)
        rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    else
        return -EAFNOSUPPORT;
    return rc < 0 ? -errno : 0;
}

int iomux_udp_bind(const struct iomux_addr *addr, int *fd_out)
{
    if (!addr || !fd_out)
        return -EINVAL;
    int fd;
    int rc = ip_socket(addr, SOCK_DGRAM, &fd);
    if (rc < 0)
        return rc;
    rc = ip_bind(fd, addr);
    if (rc == 0)
        rc = iomux_udp_enable_pktinfo(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int iomux_udp_dst_get(const struct msghdr *msg, struct iomux_udp_dst *out)
{
    if (!msg || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    /* CMSG_NXTHDR takes a non-const msghdr; it only reads it. */
    struct msghdr *m = (struct msghdr *)msg;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            out->family = AF_INET;
            out->ifindex = (unsigned)pi.ipi_ifindex;
            memcpy(out->addr, &pi.ipi_addr, 4);
            memcpy(out->local, &pi.ipi_spec_dst, 4);
            return 0;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            out->family = AF_INET6;
            out->ifindex = pi.ipi6_ifindex;
            memcpy(out->addr, &pi.ipi6_addr, 16);
            return 0;
        }
    }
    return -ENOENT;
}

int iomux_udp_dst_is_group(const struct iomux_udp_dst *dst)
{
    if (dst->family == AF_INET) {
        uint32_t a;
        memcpy(&a, dst->addr, 4);
        a = ntohl(a);
        /* For a datagram to one of our own addresses the kernel's answer
           address (ipi_spec_dst) is that same address; it differs for a
           subnet broadcast, which has no other mark of its own. */
        return a == INADDR_ANY || a == INADDR_BROADCAST || IN_MULTICAST(a) ||
               memcmp(dst->addr, dst->local, 4) != 0;
    }
    if (dst->family == AF_INET6) {
        struct in6_addr a;
        memcpy(&a, dst->addr, 16);
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            /* An IPv4 datagram on a dual-stack socket: no answer address
               to compare with, but the address itself still tells. */
            uint32_t v4;
            memcpy(&v4, dst->addr + 12, 4);
            v4 = ntohl(v4);
            return v4 == INADDR_ANY || v4 == INADDR_BROADCAST || IN_MULTICAST(v4);
        }
        return IN6_IS_ADDR_MULTICAST(&a) || IN6_IS_ADDR_UNSPECIFIED(&a);
    }
    return 0;
}

size_t iomux_udp_dst_control(const struct iomux_udp_dst *dst, void *ctl, size_t size)
{
    if (!dst || !ctl)
        return 0;
    struct msghdr m;
    memset(&m, 0, sizeof(m));
    m.msg_control = ctl;
    if (dst->family == AF_INET) {
        if (size < CMSG_SPACE(sizeof(struct in_pktinfo)))
            return 0;
        memset(ctl, 0, CMSG_SPACE(sizeof(struct in_pktinfo)));
        m.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        /* Only the source address is chosen; the interface is left to the
           routing table (ifindex 0), which knows the way back. */
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        memcpy(&pi.ipi_spec_dst, dst->addr, 4);
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(struct in_pktinfo));
    }
    if (dst->family == AF_INET6) {
        if (size < CMSG_SPACE(sizeof(struct in6_pktinfo)))
            return 0;
        memset(ctl, 0, CMSG_SPACE(sizeof(struct in6_pktinfo)));
        m.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
        /* The interface is kept for IPv6: a link-local source address is
           only meaningful on the link it came from. */
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        memcpy(&pi.ipi6_addr, dst->addr, 16);
        pi.ipi6_ifindex = dst->ifindex;
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(struct in6_pktinfo));
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Unix-domain sockets.
 */

/*
 * Is somebody serving the socket file at `addr`? Asked with a datagram
 * socket's connect(), which reaches no listener's backlog: the live owner
 * never sees a connection to accept (a stream probe would be accepted and
 * counted as a client by the very server it asks about). The kernel
 * answers at once: refused means the file is a leftover (its owner died
 * without removing it); EPROTOTYPE (a live stream or seqpacket socket) or
 * success (a live datagram socket: connect() only records the peer) mean
 * it is in use, as does anything else but ENOENT.
 */
static int unix_probe(const struct iomux_addr *addr)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (const struct sockaddr *)&addr->ss, addr->len);
    int err = rc < 0 ? errno : 0;
    close(fd);
    if (err == ECONNREFUSED)
        return 0; /* stale */
    if (err == ENOENT)
        return 1; /* gone meanwhile: nothing to remove */
    return -EADDRINUSE;
}

int iomux_unix_listen(const struct iomux_addr *addr, int type, int *fd_out)
{
    if (!addr || !fd_out || addr->ss.ss_family != AF_UNIX ||
        (type != SOCK_STREAM && type != SOCK_DGRAM))
        return -EINVAL;
    const char *path = ((const struct sockaddr_un *)&addr->ss)->sun_path;
    struct stat st;
    if (lstat(path, &st) == 0) {
        /* Never remove what is not a socket: a typo must not delete a
           file. */
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST;
        int rc = unix_probe(addr);
        if (rc < 0)
            return rc;
        if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
            return -errno;
    }
    int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0)
        rc = -errno;
    if (rc == 0 && type == SOCK_STREAM && listen(fd, INT_MAX) < 0) {
        rc = -errno;
        unlink(path);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}
