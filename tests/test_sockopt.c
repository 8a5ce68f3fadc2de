/* SPDX-License-Identifier: MIT */
/*
 * test_sockopt.c - apps/common/sockopt.h: --keepalive's syntax, and that
 * each option asked for is on the socket afterwards (read back with
 * getsockopt) while a Unix socket skips the TCP and IP ones.
 */
#include "check.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockopt.h"

static int get_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) < 0)
        return -1;
    return v;
}

static void test_keepalive_syntax(void)
{
    struct sock_tuning t = {.nodelay = SOCK_NODELAY_KEEP};
    char err[128];
    CHECK_EQ_INT(sock_tuning_parse_keepalive("--keepalive", "30", &t, err, sizeof err), 0);
    CHECK_EQ_U64(t.keepalive_idle, 30);
    CHECK_EQ_U64(t.keepalive_intvl, 0);
    CHECK_EQ_INT(sock_tuning_parse_keepalive("--keepalive", "60:5:3", &t, err, sizeof err), 0);
    CHECK_EQ_U64(t.keepalive_idle, 60);
    CHECK_EQ_U64(t.keepalive_intvl, 5);
    CHECK_EQ_U64(t.keepalive_count, 3);
    static const char *const bad[] = {
        "", "0", "x", "60:5", "60:5:", "60:5:128", "60::3", "32768", "1:2:3:4", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ_INT(sock_tuning_parse_keepalive("--keepalive", bad[i], &t, err, sizeof err), -1);
        CHECK(strncmp(err, "--keepalive", 11) == 0);
    }
}

static void test_tcp_socket_gets_every_option(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct sock_tuning t = {.nodelay = SOCK_NODELAY_ON,
                            .sndbuf = 65536,
                            .rcvbuf = 32768,
                            .tos = 0x10,
                            .keepalive_idle = 40,
                            .keepalive_intvl = 7,
                            .keepalive_count = 4};
    const char *what = NULL;
    CHECK_EQ_INT(sock_tuning_apply(fd, &t, &what), 0);
    CHECK_EQ_INT(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    /* Linux doubles the size asked for, for its bookkeeping. */
    CHECK_INT(get_int(fd, SOL_SOCKET, SO_SNDBUF), >=, 65536);
    CHECK_INT(get_int(fd, SOL_SOCKET, SO_RCVBUF), >=, 32768);
    CHECK_EQ_INT(get_int(fd, IPPROTO_IP, IP_TOS), 0x10);
    CHECK_EQ_INT(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    CHECK_EQ_INT(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 40);
    CHECK_EQ_INT(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 7);
    CHECK_EQ_INT(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
    t = (struct sock_tuning){.nodelay = SOCK_NODELAY_OFF};
    CHECK_EQ_INT(sock_tuning_apply(fd, &t, &what), 0);
    CHECK_EQ_INT(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    close(fd);
}

static void test_ipv6_traffic_class(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return; /* no IPv6 here: nothing to check */
    struct sock_tuning t = {.nodelay = SOCK_NODELAY_KEEP, .tos = 0x20};
    CHECK_EQ_INT(sock_tuning_apply(fd, &t, NULL), 0);
    CHECK_EQ_INT(get_int(fd, IPPROTO_IPV6, IPV6_TCLASS), 0x20);
    close(fd);
}

static void test_unix_socket_skips_tcp_options(void)
{
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct sock_tuning t = {
        .nodelay = SOCK_NODELAY_ON, .sndbuf = 65536, .tos = 0x10, .keepalive_idle = 5};
    const char *what = NULL;
    CHECK_EQ_INT(sock_tuning_apply(sv[0], &t, &what), 0);
    CHECK(what == NULL);
    CHECK_INT(get_int(sv[0], SOL_SOCKET, SO_SNDBUF), >=, 65536);
    close(sv[0]);
    close(sv[1]);
}

static void test_failure_names_the_option(void)
{
    struct sock_tuning t = {.nodelay = SOCK_NODELAY_ON};
    const char *what = NULL;
    CHECK_EQ_INT(sock_tuning_apply(-1, &t, &what), -EBADF);
    CHECK(what != NULL);
}

int main(void)
{
    test_keepalive_syntax();
    test_tcp_socket_gets_every_option();
    test_ipv6_traffic_class();
    test_unix_socket_skips_tcp_options();
    test_failure_names_the_option();
    return check_exit();
}
