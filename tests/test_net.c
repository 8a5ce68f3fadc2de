/* SPDX-License-Identifier: MIT */
/*
 * test_net.c - net.h: what address text is accepted and what is refused,
 * formatting, and the listen/accept/connect helpers on loopback (port 0).
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iomux/net.h>

static void check_parse(const char *text, const char *want_formatted)
{
    struct iomux_addr a;
    int rc = iomux_addr_parse(text, &a);
    if (!CHECK_OK(rc)) {
        fprintf(stderr, "  for \"%s\"\n", text);
        return;
    }
    char buf[IOMUX_ADDR_STRLEN];
    if (CHECK_OK(iomux_addr_format(&a, buf, sizeof(buf))))
        CHECK_STR(buf, want_formatted);
}

static void check_reject(const char *text, int want)
{
    struct iomux_addr a;
    int rc = iomux_addr_parse(text, &a);
    if (!CHECK_ERRNO(rc, want))
        fprintf(stderr, "  for \"%s\"\n", text ? text : "(null)");
}

static void test_parse_accepts(void)
{
    check_parse("127.0.0.1:10000", "127.0.0.1:10000");
    check_parse("0.0.0.0:0", "0.0.0.0:0");
    check_parse("255.255.255.255:65535", "255.255.255.255:65535");
    check_parse("localhost:10000", "127.0.0.1:10000"); /* as Python's AF_INET socket */
    check_parse("127.0.0.1:00080", "127.0.0.1:80");
    check_parse("[::1]:8080", "[::1]:8080");
    check_parse("[::]:0", "[::]:0");
    check_parse("[::ffff:127.0.0.1]:1", "[::ffff:127.0.0.1]:1");
    check_parse("[2001:db8::1]:443", "[2001:db8::1]:443");

    struct iomux_addr a;
    if (CHECK_OK(iomux_addr_parse("[::1]:7", &a))) {
        CHECK_EQ_INT(a.ss.ss_family, AF_INET6);
        CHECK_EQ_INT(iomux_addr_port(&a), 7);
        char host[IOMUX_ADDR_STRLEN];
        CHECK_OK(iomux_addr_host(&a, host, sizeof(host)));
        CHECK_STR(host, "::1");
    }
}

static void test_parse_rejects(void)
{
    check_reject(NULL, -EINVAL);
    check_reject("", -EINVAL);
    check_reject("127.0.0.1", -EINVAL);        /* no port */
    check_reject("127.0.0.1:", -EINVAL);       /* empty port */
    check_reject(":80", -EINVAL);              /* empty host: nothing is guessed */
    check_reject("127.0.0.1:65536", -EINVAL);  /* out of range */
    check_reject("127.0.0.1:99999", -EINVAL);  /* out of range */
    check_reject("127.0.0.1:123456", -EINVAL); /* too many digits */
    check_reject("127.0.0.1:-1", -EINVAL);     /* sign */
    check_reject("127.0.0.1:+80", -EINVAL);    /* sign */
    check_reject("127.0.0.1: 80", -EINVAL);    /* space */
    check_reject("127.0.0.1:80 ", -EINVAL);    /* trailing space */
    check_reject("127.0.0.1:8o", -EINVAL);     /* letter */
    check_reject("127.0.0.1:0x50", -EINVAL);   /* hex */
    check_reject("::1:80", -EINVAL);           /* IPv6 needs brackets */
    check_reject("[::1]", -EINVAL);            /* no port */
    check_reject("[::1]80", -EINVAL);          /* no colon */
    check_reject("[::1:80", -EINVAL);          /* unclosed */
    check_reject("[]:80", -EINVAL);            /* empty */
    check_reject("[127.0.0.1]:80", -EINVAL);   /* brackets are for IPv6 */
    check_reject("[not-an-address]:80", -EINVAL);
    check_reject("127.1:80", -EINVAL); /* inet_aton's short forms */
    check_reject("1.2.3.4.5:80", -EINVAL);
    check_reject("256.0.0.1:80", -EINVAL);
    check_reject("host name:80", -EINVAL); /* not a name */
    check_reject("a/b:80", -EINVAL);
}

static void test_format(void)
{
    struct iomux_addr a;
    char small[8];
    if (CHECK_OK(iomux_addr_parse("127.0.0.1:10000", &a)))
        CHECK_ERRNO(iomux_addr_format(&a, small, sizeof(small)), -ENOSPC);
    memset(&a, 0, sizeof(a));
    a.ss.ss_family = AF_APPLETALK;
    char buf[IOMUX_ADDR_STRLEN];
    CHECK_ERRNO(iomux_addr_format(&a, buf, sizeof(buf)), -EAFNOSUPPORT);
    CHECK_EQ_INT(iomux_addr_port(&a), 0);
    /* Unix-domain addresses: "unix:PATH", or unnamed (an unbound client). */
    if (CHECK_OK(iomux_addr_unix("unix:/run/echo.sock", &a)) &&
        CHECK_OK(iomux_addr_format(&a, buf, sizeof(buf))))
        CHECK_STR(buf, "unix:/run/echo.sock");
    a.len = sizeof(sa_family_t);
    if (CHECK_OK(iomux_addr_format(&a, buf, sizeof(buf))))
        CHECK_STR(buf, "unix:(unnamed)");
    CHECK_EQ_INT(iomux_addr_port(&a), 0);
}

static bool has_flag(int fd, int flag_get, int flag)
{
    int v = fcntl(fd, flag_get);
    return v >= 0 && (v & flag);
}

static void test_listen_accept_connect(void)
{
    struct iomux_addr any, bound, peer;
    int lfd = -1, cfd = -1, afd = -1;
    if (!CHECK_OK(iomux_addr_parse("127.0.0.1:0", &any)))
        return;
    if (!CHECK_OK(iomux_tcp_listen(&any, 0, &lfd)))
        return;
    CHECK(has_flag(lfd, F_GETFL, O_NONBLOCK));
    CHECK(has_flag(lfd, F_GETFD, FD_CLOEXEC));
    int one = 0;
    socklen_t len = sizeof(one);
    CHECK_EQ_INT(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
    CHECK(one != 0);
    CHECK_OK(iomux_socket_local(lfd, &bound));
    CHECK(iomux_addr_port(&bound) != 0);

    /* Nothing pending yet. */
    CHECK_ERRNO(iomux_tcp_accept(lfd, NULL, &afd), -EAGAIN);

    /* Port in use: a second listener on the same address. */
    int lfd2 = -1;
    CHECK_ERRNO(iomux_tcp_listen(&bound, 0, &lfd2), -EADDRINUSE);

    int rc = iomux_tcp_connect(&bound, &cfd);
    CHECK(rc == 0 || rc == -EINPROGRESS);
    if (cfd < 0)
        goto out;
    CHECK(has_flag(cfd, F_GETFL, O_NONBLOCK));
    CHECK(has_flag(cfd, F_GETFD, FD_CLOEXEC));
    struct pollfd p = {.fd = cfd, .events = POLLOUT};
    CHECK_EQ_INT(poll(&p, 1, 5000), 1);
    CHECK_OK(iomux_socket_error(cfd));

    p.fd = lfd;
    p.events = POLLIN;
    CHECK_EQ_INT(poll(&p, 1, 5000), 1);
    if (!CHECK_OK(iomux_tcp_accept(lfd, &peer, &afd)))
        goto out;
    CHECK(has_flag(afd, F_GETFL, O_NONBLOCK));
    CHECK(has_flag(afd, F_GETFD, FD_CLOEXEC));
    int nodelay = 0;
    len = sizeof(nodelay);
    CHECK_EQ_INT(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
    CHECK(nodelay != 0);
    struct iomux_addr local;
    CHECK_OK(iomux_socket_local(cfd, &local));
    CHECK_EQ_INT(iomux_addr_port(&peer), iomux_addr_port(&local));

    /* With the listener gone, a connect is refused, at once or through
       SO_ERROR. */
    close(afd);
    afd = -1;
    close(lfd);
    lfd = -1;
    int cfd2 = -1;
    rc = iomux_tcp_connect(&bound, &cfd2);
    if (rc == -EINPROGRESS) {
        p.fd = cfd2;
        p.events = POLLOUT;
        CHECK_EQ_INT(poll(&p, 1, 5000), 1);
        CHECK_ERRNO(iomux_socket_error(cfd2), -ECONNREFUSED);
        close(cfd2);
    } else {
        CHECK_ERRNO(rc, -ECONNREFUSED);
    }
out:
    if (afd >= 0)
        close(afd);
    if (cfd >= 0)
        close(cfd);
    if (lfd >= 0)
        close(lfd);
}

/* iomux_tcp_connect() also reaches a Unix-domain stream socket, and a path
   nobody serves is refused at once. */
static void test_unix_connect(void)
{
    char dir[] = "/tmp/iomux-net-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    char text[64];
    snprintf(text, sizeof text, "unix:%s/s", dir);
    struct iomux_addr a;
    int lfd = -1, cfd = -1;
    if (!CHECK_OK(iomux_addr_unix(text, &a)))
        goto out;
    CHECK_ERRNO(iomux_tcp_connect(&a, &cfd), -ENOENT);
    if (!CHECK_OK(iomux_unix_listen(&a, SOCK_STREAM, &lfd)))
        goto out;
    int rc = iomux_tcp_connect(&a, &cfd);
    CHECK(rc == 0 || rc == -EINPROGRESS);
    if (cfd >= 0) {
        CHECK(has_flag(cfd, F_GETFL, O_NONBLOCK));
        CHECK(has_flag(cfd, F_GETFD, FD_CLOEXEC));
        CHECK_EQ_INT(write(cfd, "x", 1), 1);
        int afd = accept(lfd, NULL, NULL);
        char c = 0;
        CHECK(afd >= 0);
        if (afd >= 0) {
            CHECK_EQ_INT(read(afd, &c, 1), 1);
            close(afd);
        }
        CHECK_EQ_INT(c, 'x');
        close(cfd);
    }
    close(lfd);
    snprintf(text, sizeof text, "%s/s", dir);
    unlink(text);
out:
    rmdir(dir);
}

/* iomux_tcp_shed(): waiting clients are accepted and closed, the reserve
   is taken back. (The EMFILE case itself is tested end to end in echod.) */
static void test_shed(void)
{
    struct iomux_addr any, bound;
    int lfd = -1, c[3] = {-1, -1, -1};
    if (!CHECK_OK(iomux_addr_parse("127.0.0.1:0", &any)) ||
        !CHECK_OK(iomux_tcp_listen(&any, 0, &lfd)))
        return;
    CHECK_OK(iomux_socket_local(lfd, &bound));
    int none = -1;
    CHECK_ERRNO(iomux_tcp_shed(lfd, &none, 10), -EBADF);
    int reserve = iomux_reserve_fd();
    CHECK_INT(reserve, >=, 0);
    for (int i = 0; i < 3; i++) {
        int rc = iomux_tcp_connect(&bound, &c[i]);
        CHECK(rc == 0 || rc == -EINPROGRESS);
    }
    /* Let the handshakes complete, so all three wait in the backlog. */
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = c[i], .events = POLLOUT};
        CHECK_EQ_INT(poll(&p, 1, 5000), 1);
    }
    CHECK_EQ_INT(iomux_tcp_shed(lfd, &reserve, 2), 2);
    CHECK_INT(reserve, >=, 0);
    CHECK_EQ_INT(iomux_tcp_shed(lfd, &reserve, 10), 1);
    CHECK_EQ_INT(iomux_tcp_shed(lfd, &reserve, 10), 0);
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = c[i], .events = POLLIN};
        CHECK_EQ_INT(poll(&p, 1, 5000), 1);
        char ch;
        ssize_t n = recv(c[i], &ch, 1, 0);
        CHECK(n == 0 || (n < 0 && errno == ECONNRESET)); /* the client learns */
        close(c[i]);
    }
    if (reserve >= 0)
        close(reserve);
    close(lfd);
}

static void test_listen_errors(void)
{
    struct iomux_addr a;
    int fd = -1;
    memset(&a, 0, sizeof(a));
    a.ss.ss_family = AF_UNIX;
    CHECK_ERRNO(iomux_tcp_listen(&a, 0, &fd), -EAFNOSUPPORT);
    /* An address this host does not have. */
    if (CHECK_OK(iomux_addr_parse("192.0.2.1:0", &a)))
        CHECK_ERRNO(iomux_tcp_listen(&a, 0, &fd), -EADDRNOTAVAIL);
    CHECK_ERRNO(iomux_tcp_accept(-1, NULL, &fd), -EBADF);
}

int main(void)
{
    check_run("parse_accepts", test_parse_accepts);
    check_run("parse_rejects", test_parse_rejects);
    check_run("format", test_format);
    check_run("listen_accept_connect", test_listen_accept_connect);
    check_run("unix_connect", test_unix_connect);
    check_run("shed", test_shed);
    check_run("listen_errors", test_listen_errors);
    return check_exit();
}
