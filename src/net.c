/* SPDX-License-Identifier: MIT */
/*
 * net.c - socket helpers for the apps: strict "host:port" parsing, address
 * formatting, and non-blocking close-on-exec TCP listen/accept/connect.
 *
 * Nothing here knows about the loop. Every socket made here is created with
 * SOCK_NONBLOCK | SOCK_CLOEXEC in the same system call, so a fork+exec in
 * another thread can never inherit it and no fcntl() round trip is needed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "iomux/net.h"

/* Longest host part we accept; DNS names are at most 253 characters. */
#define HOST_MAX 256

/* PORT: one to five decimal digits, value 0..65535, nothing else. */
static int parse_port(const char *s, unsigned *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5)
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = v;
    return 0;
}

/* Letters, digits, '-', '_' and '.': anything else cannot be a host name,
   and refusing it early keeps odd text away from the resolver. */
static int valid_name(const char *host)
{
    for (const char *p = host; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        if (!ok)
            return 0;
    }
    return 1;
}

/* Digits and dots only: text that getaddrinfo() would read as an IPv4
   address in inet_aton()'s lenient forms ("127.1", "0x7f.1"...). We only
   take the dotted quad that inet_pton() accepts. */
static int looks_numeric(const char *host)
{
    for (const char *p = host; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return 0;
    return 1;
}

static void set_v4(struct iomux_addr *out, struct in_addr a, unsigned port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    memset(out, 0, sizeof(*out));
    sin->sin_family = AF_INET;
    sin->sin_addr = a;
    sin->sin_port = htons((uint16_t)port);
    out->len = sizeof(*sin);
}

/* Resolves `host` (numeric with AI_NUMERICHOST, or a name) and keeps the
   first result, as Python's socket module does. */
static int resolve(const char *host, int numeric, int family, unsigned port, struct iomux_addr *out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = numeric ? AI_NUMERICHOST : 0;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        if (numeric)
            return -EINVAL;
        if (rc == EAI_AGAIN)
            return -EAGAIN;
        if (rc == EAI_MEMORY)
            return -ENOMEM;
        return -ENOENT;
    }
    if (!res || res->ai_addrlen > sizeof(out->ss)) {
        freeaddrinfo(res);
        return -ENOENT;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    if (out->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&out->ss)->sin_port = htons((uint16_t)port);
    else if (out->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&out->ss)->sin6_port = htons((uint16_t)port);
    else
        return -ENOENT;
    return 0;
}

int iomux_addr_parse(const char *text, struct iomux_addr *out)
{
    char host[HOST_MAX];
    const char *port_text;
    unsigned port;
    int rc;

    if (!text || !out)
        return -EINVAL;
    if (text[0] == '[') {
        /* "[IPV6]:PORT": the brackets are what make the colons of the
           address unambiguous, so they are required for IPv6. */
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        size_t n = (size_t)(close - text - 1);
        if (n == 0 || n >= sizeof(host))
            return -EINVAL;
        memcpy(host, text + 1, n);
        host[n] = '\0';
        port_text = close + 2;
        if ((rc = parse_port(port_text, &port)) < 0)
            return rc;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) == 1) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
            memset(out, 0, sizeof(*out));
            sin6->sin6_family = AF_INET6;
            sin6->sin6_addr = a6;
            sin6->sin6_port = htons((uint16_t)port);
            out->len = sizeof(*sin6);
            return 0;
        }
        /* Only a scoped link-local address ("fe80::1%eth0") is left that
           inet_pton() does not take; getaddrinfo() knows the scope names. */
        if (!strchr(host, '%'))
            return -EINVAL;
        return resolve(host, 1, AF_INET6, port, out);
    }

    const char *colon = strrchr(text, ':');
    if (!colon)
        return -EINVAL;
    size_t n = (size_t)(colon - text);
    if (n == 0 || n >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, n);
    host[n] = '\0';
    if (strchr(host, ':'))
        return -EINVAL; /* a bare IPv6 address: it needs brackets */
    if ((rc = parse_port(colon + 1, &port)) < 0)
        return rc;

    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        set_v4(out, a4, port);
        return 0;
    }
    if (looks_numeric(host) || !valid_name(host))
        return -EINVAL;
    /* Python binds ('localhost', port) on an AF_INET socket, so the name
       means 127.0.0.1 whatever order the resolver would list ::1 in. */
    if (strcmp(host, "localhost") == 0) {
        a4.s_addr = htonl(INADDR_LOOPBACK);
        set_v4(out, a4, port);
        return 0;
    }
    return resolve(host, 0, AF_UNSPEC, port, out);
}

int iomux_addr_host(const struct iomux_addr *addr, char *buf, size_t size)
{
    if (!addr || !buf || size == 0)
        return -EINVAL;
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->ss;
        if (!inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size))
            return -ENOSPC;
        return 0;
    }
    if (addr->ss.ss_family == AF_INET6) {
        /* getnameinfo() adds the "%scope" suffix that inet_ntop() leaves out. */
        int rc = getnameinfo((const struct sockaddr *)&addr->ss, addr->len, buf, (socklen_t)size,
                             NULL, 0, NI_NUMERICHOST);
        if (rc == EAI_OVERFLOW)
            return -ENOSPC;
        if (rc != 0)
            return -EINVAL;
        return 0;
    }
    return -EAFNOSUPPORT;
}

unsigned iomux_addr_port(const struct iomux_addr *addr)
{
    if (!addr)
        return 0;
    if (addr->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
    if (addr->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
    return 0;
}

int iomux_addr_format(const struct iomux_addr *addr, char *buf, size_t size)
{
    if (addr && addr->ss.ss_family == AF_UNIX) {
        /* An unnamed socket (a client that did not bind) has no path. */
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&addr->ss;
        size_t n = addr->len > offsetof(struct sockaddr_un, sun_path)
                       ? strnlen(sun->sun_path, addr->len - offsetof(struct sockaddr_un, sun_path))
                       : 0;
        int w = n ? snprintf(buf, size, "unix:%.*s", (int)n, sun->sun_path)
                  : snprintf(buf, size, "unix:(unnamed)");
        if (w < 0 || (size_t)w >= size)
            return -ENOSPC;
        return 0;
    }
    char host[IOMUX_ADDR_STRLEN];
    int rc = iomux_addr_host(addr, host, sizeof(host));
    if (rc < 0)
        return rc == -EINVAL ? -EAFNOSUPPORT : rc;
    int v6 = addr->ss.ss_family == AF_INET6;
    int n = snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", host, iomux_addr_port(addr));
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return 0;
}

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

int iomux_addr_unix(const char *text, struct iomux_addr *out)
{
    if (!text || !out || strncmp(text, "unix:", 5) != 0)
        return -EINVAL;
    const char *path = text + 5;
    size_t n = strlen(path);
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
    if (n == 0)
        return -EINVAL;
    if (n >= sizeof(sun->sun_path))
        return -ENAMETOOLONG;
    memset(out, 0, sizeof(*out));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

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
