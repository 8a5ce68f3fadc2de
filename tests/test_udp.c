/* SPDX-License-Identifier: MIT */
/*
 * test_udp.c - echod's datagram echo (apps/echod/udp.c) driven directly on
 * a loop of the backend named in argv[1]: sizes, truncation (provoked with
 * a small receive buffer), the port filter, the per-source rate limit and
 * its bounded table, replies from the address a datagram came to, Unix
 * datagram sockets, and the per-address connection table of daemon.c.
 *
 * Absence of a reply is never waited for with a sleep: a datagram that
 * must be answered is sent after it on the same echod socket, and once its
 * reply is in, the earlier datagram has been dealt with.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <iomux/net.h>

#include "daemon.h"
#include "udp.h"

static const char *backend;

struct fixture {
    struct iomux_loop *loop;
    struct echod_udp *u;
    struct iomux_addr addr; /* where the service is bound */
};

static bool parse(const char *text, struct iomux_addr *a)
{
    return CHECK_OK(iomux_addr_parse(text, a));
}

static bool fixture_open(struct fixture *f, const struct echod_udp_config *cfg, const char *where)
{
    memset(f, 0, sizeof(*f));
    f->loop = test_loop_new(backend, 0);
    if (!f->loop)
        return false;
    if (!CHECK_OK(echod_udp_new(f->loop, cfg, &f->u)))
        return false;
    struct iomux_addr a;
    int fd;
    if (!parse(where, &a) || !CHECK_OK(iomux_udp_bind(&a, &fd)))
        return false;
    if (!CHECK_OK(iomux_socket_local(fd, &f->addr)) || !CHECK_OK(echod_udp_add(f->u, fd))) {
        close(fd);
        return false;
    }
    return true;
}

static void fixture_close(struct fixture *f)
{
    echod_udp_free(f->u);
    iomux_loop_free(f->loop);
}

static struct echod_udp_stats stats(const struct fixture *f)
{
    struct echod_udp_stats st;
    echod_udp_stats(f->u, &st);
    return st;
}

/* Runs the loop until the service has received `n` datagrams (bounded). */
static bool serve_until(struct fixture *f, uint64_t n)
{
    for (int i = 0; i < 500; i++) {
        if (stats(f).received >= n)
            return true;
        if (!CHECK_COUNT(iomux_loop_run_once(f->loop, 10)))
            return false;
    }
    return CHECK_U64(stats(f).received, >=, n);
}

/* A non-blocking UDP socket bound to `where` ("127.0.0.2:0"...). */
static int client(const char *where)
{
    struct iomux_addr a;
    int fd = -1;
    if (!parse(where, &a))
        return -1;
    int rc = iomux_udp_bind(&a, &fd);
    if (rc == -EACCES)
        check_skip("cannot bind %s (not root)", where);
    if (!CHECK_OK(rc))
        return -1;
    return fd;
}

/* `to` with its port replaced by the service's. */
static struct iomux_addr to_service(const struct fixture *f, const char *host)
{
    struct iomux_addr a;
    char text[64];
    snprintf(text, sizeof(text), "%s:%u", host, iomux_addr_port(&f->addr));
    parse(text, &a);
    return a;
}

static bool send_to(int fd, const struct iomux_addr *to, const void *buf, size_t len)
{
    return CHECK_INT(sendto(fd, buf, len, 0, (const struct sockaddr *)&to->ss, to->len), ==,
                     (ssize_t)len);
}

/* The next reply on `fd`, waited for up to 5 s; its length or -1. */
static ssize_t reply(int fd, void *buf, size_t size, struct iomux_addr *from)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (!CHECK_INT(poll(&p, 1, 5000), ==, 1))
        return -1;
    struct iomux_addr tmp;
    struct iomux_addr *a = from ? from : &tmp;
    a->len = sizeof(a->ss);
    return recvfrom(fd, buf, size, MSG_DONTWAIT, (struct sockaddr *)&a->ss, &a->len);
}

/* Replies already waiting on `fd` (no waiting). */
static int drain(int fd)
{
    char buf[65536];
    int n = 0;
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
        n++;
    return n;
}

/* A datagram that must be answered, through the service, from `fd`:
   everything sent to the service before it has been dealt with once its
   reply is in. */
static void sentinel(struct fixture *f, int fd, const struct iomux_addr *to)
{
    static const char word[] = "sentinel";
    char buf[64];
    uint64_t before = stats(f).received;
    if (!send_to(fd, to, word, sizeof(word)) || !serve_until(f, before + 1))
        return;
    if (CHECK_INT(reply(fd, buf, sizeof(buf), NULL), ==, (ssize_t)sizeof(word)))
        CHECK(memcmp(buf, word, sizeof(word)) == 0);
}

static void test_sizes(void)
{
    struct echod_udp_config cfg = {.rate = 0};
    struct fixture f4, f6;
    static unsigned char out[65536], in[65536];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (unsigned char)(i * 7 + i / 251);

    if (fixture_open(&f4, &cfg, "127.0.0.1:0")) {
        int c = client("127.0.0.1:0");
        struct iomux_addr to = to_service(&f4, "127.0.0.1");
        static const size_t sizes[] = {0, 1, 1472, 65507};
        for (size_t i = 0; c >= 0 && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            uint64_t before = stats(&f4).received;
            if (!send_to(c, &to, out, sizes[i]) || !serve_until(&f4, before + 1))
                break;
            if (CHECK_INT(reply(c, in, sizeof(in), NULL), ==, (ssize_t)sizes[i]))
                CHECK(memcmp(in, out, sizes[i]) == 0);
        }
        CHECK_EQ_U64(stats(&f4).echoed, 4);
        CHECK_EQ_U64(stats(&f4).bytes_out, 1 + 1472 + 65507);
        close(c);
        fixture_close(&f4);
    }
    if (fixture_open(&f6, &cfg, "[::1]:0")) {
        int c = client("[::1]:0");
        struct iomux_addr to = to_service(&f6, "[::1]");
        if (c >= 0 && send_to(c, &to, out, 65527) && serve_until(&f6, 1) &&
            CHECK_INT(reply(c, in, sizeof(in), NULL), ==, 65527))
            CHECK(memcmp(in, out, 65527) == 0);
        close(c);
        fixture_close(&f6);
    }
}

static void test_truncated(void)
{
    struct echod_udp_config cfg = {.recv_size = 100};
    struct fixture f;
    if (!fixture_open(&f, &cfg, "127.0.0.1:0"))
        return;
    int c = client("127.0.0.1:0");
    struct iomux_addr to = to_service(&f, "127.0.0.1");
    char buf[200];
    memset(buf, 'x', sizeof(buf));
    /* Exactly the buffer: whole, echoed. One more byte: cut, not echoed. */
    if (send_to(c, &to, buf, 100) && serve_until(&f, 1))
        CHECK_INT(reply(c, buf, sizeof(buf), NULL), ==, 100);
    send_to(c, &to, buf, 101);
    sentinel(&f, c, &to);
    CHECK_EQ_INT(drain(c), 0);
    struct echod_udp_stats st = stats(&f);
    CHECK_EQ_U64(st.truncated, 1);
    CHECK_EQ_U64(st.echoed, 2);
    CHECK_EQ_U64(st.received, 3);
    close(c);
    fixture_close(&f);
}

static void test_ports(void)
{
    for (int any = 0; any <= 1; any++) {
        struct echod_udp_config cfg = {.any_port = any};
        struct fixture f;
        if (!fixture_open(&f, &cfg, "127.0.0.1:0"))
            return;
        struct iomux_addr to = to_service(&f, "127.0.0.1");
        /* chargen's port, and the service's own port on another address:
           each could start a loop. */
        /* Port 19 on an address of this process's own (all of 127/8 is
           loopback), so that tests running side by side do not collide. */
        unsigned pid = (unsigned)getpid();
        char chargen_text[64];
        snprintf(chargen_text, sizeof(chargen_text), "127.%u.%u.%u:19", (pid >> 14) & 255,
                 (pid >> 7) & 127, (pid & 127) + 1);
        int chargen = client(chargen_text);
        char own_text[64];
        snprintf(own_text, sizeof(own_text), "127.0.0.2:%u", iomux_addr_port(&f.addr));
        int own = client(own_text);
        int ok = client("127.0.0.1:0");
        send_to(chargen, &to, "q", 1);
        send_to(own, &to, "q", 1);
        sentinel(&f, ok, &to);
        CHECK_EQ_INT(drain(chargen) + drain(own), any ? 2 : 0);
        CHECK_EQ_U64(stats(&f).dropped_port, any ? 0 : 2);
        CHECK(echod_udp_port_refused(7) && echod_udp_port_refused(19) &&
              !echod_udp_port_refused(10000));
        /* --help lists exactly the refused ports. */
        int listed = 0, refused = 0;
        for (const char *p = echod_udp_refused_ports_text; *p;) {
            char *end;
            unsigned long port = strtoul(p, &end, 10);
            if (end == p) {
                p++;
                continue;
            }
            listed++;
            CHECK(echod_udp_port_refused((unsigned)port));
            p = end;
        }
        for (unsigned port = 0; port < 65536; port++)
            refused += echod_udp_port_refused(port);
        CHECK_EQ_INT(listed, refused);
        close(chargen);
        close(own);
        close(ok);
        fixture_close(&f);
    }
}

static void test_rate(void)
{
    /* One datagram a second: the test takes far less than that, so at
       most one token is earned back while it runs. */
    struct echod_udp_config cfg = {.rate = 1, .burst = 3};
    struct fixture f;
    if (!fixture_open(&f, &cfg, "127.0.0.1:0"))
        return;
    struct iomux_addr to = to_service(&f, "127.0.0.1");
    int flood = client("127.0.0.1:0");
    int other = client("127.0.0.2:0");
    uint64_t start = mono_ns();
    for (int i = 0; i < 10; i++)
        send_to(flood, &to, "f", 1);
    sentinel(&f, other, &to); /* another source is still served */
    /* The burst, plus what was earned back meanwhile: a token a second
       (100 ms of slack for the loop's cached clock). */
    int earned = (int)((mono_ns() - start + 100 * MS_NS) / 1000000000u);
    int got = drain(flood);
    CHECK_INT(got, >=, 3);
    CHECK_INT(got, <=, 3 + earned);
    CHECK_EQ_U64(stats(&f).dropped_rate, (uint64_t)(10 - got));
    close(flood);
    close(other);
    fixture_close(&f);
}

static void test_rate_table_full(void)
{
    /* Four entries (one set): sources 1-4 fill it and use up their
       buckets; source 5 finds no reusable entry and shares the overflow
       bucket, which source 6 then finds empty. Source 1 keeps its limit. */
    struct echod_udp_config cfg = {.rate = 1, .burst = 1, .sources = 4};
    struct fixture f;
    if (!fixture_open(&f, &cfg, "127.0.0.1:0"))
        return;
    struct iomux_addr to = to_service(&f, "127.0.0.1");
    int c[6];
    for (int i = 0; i < 6; i++) {
        char text[32];
        snprintf(text, sizeof(text), "127.0.0.%d:0", 10 + i);
        c[i] = client(text);
    }
    uint64_t start = mono_ns();
    for (int i = 0; i < 4; i++)
        send_to(c[i], &to, "a", 1);
    send_to(c[4], &to, "b", 1);
    send_to(c[4], &to, "b", 1);
    send_to(c[5], &to, "c", 1);
    send_to(c[0], &to, "d", 1);
    if (serve_until(&f, 8)) {
        struct echod_udp_stats st = stats(&f);
        /* Tokens earned back during the test may let more through: at
           most one per second per bucket (five buckets). */
        uint64_t earned = (mono_ns() - start + 100 * MS_NS) / 1000000000u * 5;
        CHECK_U64(st.echoed, >=, 5);
        CHECK_U64(st.echoed, <=, 5 + earned);
        CHECK_EQ_U64(st.echoed + st.dropped_rate, 8);
    }
    for (int i = 0; i < 6; i++)
        close(c[i]);
    fixture_close(&f);
}

static void test_reply_source(void)
{
    struct echod_udp_config cfg = {.rate = 0};
    static const struct {
        const char *bind, *dst, *client;
    } cases[] = {
        {"0.0.0.0:0", "127.0.0.3", "127.0.0.1:0"},
        {"0.0.0.0:0", "127.0.0.1", "127.0.0.1:0"},
        {"[::]:0", "[::1]", "[::1]:0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture f;
        if (!fixture_open(&f, &cfg, cases[i].bind))
            return;
        int c = client(cases[i].client);
        struct iomux_addr to = to_service(&f, cases[i].dst), from;
        char buf[16];
        if (c >= 0 && send_to(c, &to, "where", 5) && serve_until(&f, 1) &&
            CHECK_INT(reply(c, buf, sizeof(buf), &from), ==, 5)) {
            char want[IOMUX_ADDR_STRLEN], got[IOMUX_ADDR_STRLEN];
            iomux_addr_format(&to, want, sizeof(want));
            iomux_addr_format(&from, got, sizeof(got));
            CHECK_STR(got, want);
        }
        close(c);
        fixture_close(&f);
    }
}

static void test_group_destinations(void)
{
    struct iomux_udp_dst d;
    memset(&d, 0, sizeof(d));
    d.family = AF_INET;
    static const char *const v4[][2] = {
        /* destination, kernel's answer address, expected */
        {"127.0.0.1", "127.0.0.1"}, {"255.255.255.255", "10.0.0.5"},
        {"224.0.0.1", "10.0.0.5"},  {"10.0.0.255", "10.0.0.5"}, /* subnet broadcast */
        {"0.0.0.0", "0.0.0.0"},
    };
    static const int want4[] = {0, 1, 1, 1, 1};
    for (size_t i = 0; i < sizeof(want4) / sizeof(want4[0]); i++) {
        inet_pton(AF_INET, v4[i][0], d.addr);
        inet_pton(AF_INET, v4[i][1], d.local);
        if (!CHECK_EQ_INT(iomux_udp_dst_is_group(&d), want4[i]))
            fprintf(stderr, "  for %s\n", v4[i][0]);
    }
    d.family = AF_INET6;
    static const char *const v6[] = {"::1",
                                     "ff02::1",
                                     "::",
                                     "2001:db8::1",
                                     "::ffff:1.2.3.4",
                                     "::ffff:255.255.255.255",
                                     "::ffff:224.0.0.9"};
    static const int want6[] = {0, 1, 1, 0, 0, 1, 1};
    for (size_t i = 0; i < sizeof(want6) / sizeof(want6[0]); i++) {
        inet_pton(AF_INET6, v6[i], d.addr);
        if (!CHECK_EQ_INT(iomux_udp_dst_is_group(&d), want6[i]))
            fprintf(stderr, "  for %s\n", v6[i]);
    }
}

static int unix_client(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!CHECK(fd >= 0))
        return -1;
    if (path) {
        struct iomux_addr a;
        char text[128];
        snprintf(text, sizeof(text), "unix:%s", path);
        unlink(path);
        if (!CHECK_OK(iomux_addr_unix(text, &a)) ||
            !CHECK_EQ_INT(bind(fd, (struct sockaddr *)&a.ss, a.len), 0)) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void test_unix(void)
{
    char dir[] = "/tmp/iomux-udp-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    char spath[96], cpath[96], gpath[96], text[128];
    snprintf(spath, sizeof(spath), "%s/echo", dir);
    snprintf(cpath, sizeof(cpath), "%s/client", dir);
    snprintf(gpath, sizeof(gpath), "%s/gone", dir);
    snprintf(text, sizeof(text), "unix:%s", spath);
    struct iomux_addr a;
    int fd, fd2;
    CHECK_OK(iomux_addr_unix(text, &a));
    CHECK_ERRNO(iomux_addr_unix("unix:", &a), -EINVAL);
    CHECK_ERRNO(iomux_addr_unix("/tmp/x", &a), -EINVAL);

    /* A stale file (bound, then closed without unlink) is replaced; a
       live one is refused; a regular file is never touched. */
    if (!CHECK_OK(iomux_unix_listen(&a, SOCK_DGRAM, &fd)))
        goto out;
    close(fd);
    if (!CHECK_OK(iomux_unix_listen(&a, SOCK_DGRAM, &fd)))
        goto out;
    CHECK_ERRNO(iomux_unix_listen(&a, SOCK_DGRAM, &fd2), -EADDRINUSE);
    CHECK_ERRNO(iomux_unix_listen(&a, SOCK_STREAM, &fd2), -EADDRINUSE);

    struct echod_udp_config cfg = {.rate = 1}; /* ignored for Unix sockets */
    struct fixture f;
    memset(&f, 0, sizeof(f));
    f.loop = test_loop_new(backend, 0);
    if (!f.loop || !CHECK_OK(echod_udp_new(f.loop, &cfg, &f.u)) ||
        !CHECK_OK(echod_udp_add(f.u, fd))) {
        close(fd);
        goto out_fixture;
    }
    int c = unix_client(cpath);
    int anon = unix_client(NULL);
    int gone = unix_client(gpath);
    static char big[60000];
    memset(big, 'u', sizeof(big));
    for (int i = 0; i < 3; i++)
        send_to(c, &a, big, sizeof(big));
    send_to(anon, &a, "?", 1);   /* no address to answer */
    send_to(gone, &a, "bye", 3); /* its socket is closed before the reply */
    close(gone);                 /* the file stays: the reply is refused */
    if (serve_until(&f, 5)) {
        char buf[65536];
        for (int i = 0; i < 3; i++) {
            if (CHECK_INT(reply(c, buf, sizeof(buf), NULL), ==, (ssize_t)sizeof(big)))
                CHECK(memcmp(buf, big, sizeof(big)) == 0);
        }
        struct echod_udp_stats st = stats(&f);
        CHECK_EQ_U64(st.echoed, 3);
        CHECK_EQ_U64(st.dropped_noaddr, 1);
        CHECK_EQ_U64(st.send_refused, 1);
        CHECK_EQ_U64(st.dropped_rate, 0);

        /* A client that does not read: once its queue is full the
           replies fail with EAGAIN; counted, and the service goes on. */
        for (int i = 0; i < 40; i++)
            if (!send_to(c, &a, "q", 1) || !serve_until(&f, 5 + (uint64_t)i + 1))
                break;
        if (serve_until(&f, 45)) {
            st = stats(&f);
            CHECK_U64(st.send_nobufs, >, 0);
            CHECK_EQ_U64(st.echoed + st.send_nobufs, 3 + 40);
        }
        drain(c);
        /* A reply bigger than the service's send buffer: EMSGSIZE. */
        int small = 4096;
        CHECK_EQ_INT(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
        send_to(c, &a, big, sizeof(big));
        uint64_t before = stats(&f).echoed;
        if (serve_until(&f, 46)) {
            st = stats(&f);
            CHECK_EQ_U64(st.send_too_big, 1);
            CHECK_EQ_U64(st.echoed, before);
        }
        char buf2[8];
        send_to(c, &a, "ok", 2);
        if (serve_until(&f, 47))
            CHECK_INT(reply(c, buf2, sizeof(buf2), NULL), ==, 2);
    }
    close(c);
    close(anon);
out_fixture:
    echod_udp_free(f.u);
    iomux_loop_free(f.loop);
    /* A regular file at the path is an error and stays. */
    unlink(spath);
    int reg = open(spath, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (CHECK(reg >= 0)) {
        close(reg);
        CHECK_ERRNO(iomux_unix_listen(&a, SOCK_STREAM, &fd2), -EEXIST);
        struct stat st;
        CHECK(stat(spath, &st) == 0 && S_ISREG(st.st_mode));
    }
out:
    unlink(spath);
    unlink(cpath);
    unlink(gpath);
    rmdir(dir);
}

/* The --max-conns-per-ip table against a plain array, through growth and
   backward-shift deletions. */
static void test_perip(void)
{
    enum { N = 300, LIMIT = 3 };
    struct echod_perip *p;
    if (!CHECK_OK(echod_perip_new(LIMIT, &p)))
        return;
    static int model[N];
    memset(model, 0, sizeof(model));
    unsigned seed = 12345;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % N);
        struct iomux_addr a;
        memset(&a, 0, sizeof(a));
        if (i % 2) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_addr.s6_addr[0] = 0x20;
            s6->sin6_addr.s6_addr[15] = (unsigned char)i;
            s6->sin6_addr.s6_addr[14] = (unsigned char)(i >> 8);
            a.len = sizeof(*s6);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
            s4->sin_family = AF_INET;
            s4->sin_addr.s_addr = htonl(0x0a000000u + (unsigned)i);
            a.len = sizeof(*s4);
        }
        if ((seed >> 20) % 3 != 0) {
            int rc = echod_perip_acquire(p, &a);
            if (model[i] < LIMIT) {
                if (!CHECK_OK(rc))
                    break;
                model[i]++;
            } else if (!CHECK_ERRNO(rc, -EDQUOT)) {
                break;
            }
        } else if (model[i] > 0) {
            echod_perip_release(p, &a);
            model[i]--;
        }
    }
    /* Unix-domain peers are not counted. */
    struct iomux_addr u;
    CHECK_OK(iomux_addr_unix("unix:/x", &u));
    for (int i = 0; i < LIMIT + 2; i++)
        CHECK_OK(echod_perip_acquire(p, &u));
    echod_perip_free(p);
}

int main(int argc, char **argv)
{
    backend = test_backend(argc, argv);
    check_run("sizes", test_sizes);
    check_run("truncated", test_truncated);
    check_run("ports", test_ports);
    check_run("rate", test_rate);
    check_run("rate_table_full", test_rate_table_full);
    check_run("reply_source", test_reply_source);
    check_run("group_destinations", test_group_destinations);
    check_run("unix", test_unix);
    check_run("perip", test_perip);
    return check_exit();
}
