/* SPDX-License-Identifier: MIT */
/*
 * test_proxy_proto.c - the PROXY protocol parser and builder of
 * apps/common/proxy_proto.h: byte-exact headers written by hand from
 * HAProxy's doc/proxy-protocol.txt, builder -> parser round trips, every
 * split of valid headers, and each kind of bad header refused with its own
 * reason at the first byte that makes it bad (and at every longer read).
 */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "proxy_proto.h"

#define ALL (PROXY_V1 | PROXY_V2)

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int parse(const void *buf, size_t len, struct proxy_result *r)
{
    return proxy_parse(buf, len, ALL, 0, r);
}

static struct sockaddr_in sin4(const char *addr, uint16_t port)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    s.sin_port = htons(port);
    inet_pton(AF_INET, addr, &s.sin_addr);
    return s;
}

static struct sockaddr_in6 sin6(const char *addr, uint16_t port)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    s.sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &s.sin6_addr);
    return s;
}

/* "a.b.c.d:port" or "[v6]:port" of a parsed address, for CHECK_STR. */
static const char *show(const struct sockaddr_storage *ss)
{
    static char text[2][sizeof(struct sockaddr_un) + 16];
    static int which;
    char *t = text[which++ % 2], a[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)ss;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
        snprintf(t, sizeof(text[0]), "%s:%u", a, ntohs(s->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
        snprintf(t, sizeof(text[0]), "[%s]:%u", a, ntohs(s->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        snprintf(t, sizeof(text[0]), "unix:%s",
                 ((const struct sockaddr_un *)(const void *)ss)->sun_path);
    } else {
        snprintf(t, sizeof(text[0]), "family %d", ss->ss_family);
    }
    return t;
}

/* A v2 header: signature, the two bytes given, the length, then body. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n)
{
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(n >> 8);
    out[15] = (uint8_t)n;
    if (n)
        memcpy(out + 16, body, n);
    return 16 + n;
}

/* The spec's example (section 2.1), with the HTTP request that follows. */
static void test_v1_known(void)
{
    const char *in = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    struct proxy_result r;
    CHECK_EQ_INT(parse(in, strlen(in), &r), 47);
    CHECK_EQ_INT(r.version, 1);
    CHECK_EQ_INT(r.command, PROXY_CMD_PROXY);
    CHECK_EQ_INT(r.family, AF_INET);
    CHECK_EQ_INT(r.socktype, SOCK_STREAM);
    CHECK_STR(show(&r.src), "192.168.0.1:56324");
    CHECK_STR(show(&r.dst), "192.168.0.11:443");
    CHECK_EQ_INT(r.src_len, sizeof(struct sockaddr_in));

    /* The spec's longest lines: 56 bytes for TCP4, 104 for TCP6. */
    in = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    CHECK_EQ_INT(parse(in, strlen(in), &r), 56);
    CHECK_STR(show(&r.src), "255.255.255.255:65535");
    in = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK_EQ_INT(parse(in, strlen(in), &r), 104);
    CHECK_EQ_INT(r.family, AF_INET6);
    CHECK_EQ_INT(r.dst_len, sizeof(struct sockaddr_in6));

    in = "PROXY TCP6 2001:DB8::1 ::1 0 7\r\n";
    CHECK_EQ_INT(parse(in, strlen(in), &r), (int)strlen(in));
    CHECK_STR(show(&r.src), "[2001:db8::1]:0");
    CHECK_STR(show(&r.dst), "[::1]:7");
    /* inet_ntop's form of a v4-mapped address, which senders produce. */
    in = "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n";
    CHECK_EQ_INT(parse(in, strlen(in), &r), (int)strlen(in));
    CHECK_STR(show(&r.src), "[::ffff:10.0.0.1]:1");

    /* UNKNOWN: short form, and the spec's 107-byte worst case. */
    in = "PROXY UNKNOWN\r\nhello";
    CHECK_EQ_INT(parse(in, strlen(in), &r), 15);
    CHECK_EQ_INT(r.family, AF_UNSPEC);
    CHECK_EQ_INT(r.src_len, 0);
    in = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK_EQ_INT(strlen(in), PROXY_V1_MAX);
    CHECK_EQ_INT(parse(in, strlen(in), &r), PROXY_V1_MAX);
    CHECK_EQ_INT(r.family, AF_UNSPEC);
}

/* v2 headers written byte by byte from section 2.2. */
static void test_v2_known(void)
{
    uint8_t buf[512];
    struct proxy_result r;
    /* TCP over IPv4, the v1 example's addresses: 56324 = 0xDC04. */
    const uint8_t ip4[] = {192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB};
    size_t n = v2(buf, 0x21, 0x11, ip4, sizeof(ip4));
    CHECK_EQ_INT(parse(buf, n, &r), 28);
    CHECK_EQ_INT(r.version, 2);
    CHECK_EQ_INT(r.command, PROXY_CMD_PROXY);
    CHECK_EQ_INT(r.family, AF_INET);
    CHECK_EQ_INT(r.socktype, SOCK_STREAM);
    CHECK_STR(show(&r.src), "192.168.0.1:56324");
    CHECK_STR(show(&r.dst), "192.168.0.11:443");
    CHECK_EQ_INT(r.tlv_off, 28);
    CHECK_EQ_INT(r.tlv_len, 0);

    uint8_t ip6[36] = {
        0x20, 0x01, 0x0d, 0xb8, [15] = 1, [31] = 1, [32] = 0x30, [33] = 0x39, [34] = 0, [35] = 7};
    n = v2(buf, 0x21, 0x22, ip6, sizeof(ip6)); /* UDP over IPv6 */
    CHECK_EQ_INT(parse(buf, n, &r), 52);
    CHECK_EQ_INT(r.socktype, SOCK_DGRAM);
    CHECK_STR(show(&r.src), "[2001:db8::1]:12345");
    CHECK_STR(show(&r.dst), "[::1]:7");

    /* LOCAL (a health check), empty and with an address block to skip. */
    n = v2(buf, 0x20, 0x00, NULL, 0);
    CHECK_EQ_INT(parse(buf, n, &r), 16);
    CHECK_EQ_INT(r.command, PROXY_CMD_LOCAL);
    CHECK_EQ_INT(r.family, AF_UNSPEC);
    n = v2(buf, 0x20, 0x11, ip4, sizeof(ip4));
    CHECK_EQ_INT(parse(buf, n, &r), 28);
    CHECK_EQ_INT(r.family, AF_UNSPEC);
    CHECK_EQ_INT(r.src_len, 0);
    /* PROXY with UNSPEC: accepted, addresses ignored, length honoured. */
    n = v2(buf, 0x21, 0x00, ip4, 5);
    CHECK_EQ_INT(parse(buf, n, &r), 21);
    CHECK_EQ_INT(r.family, AF_UNSPEC);
    CHECK_EQ_INT(r.command, PROXY_CMD_PROXY);

    /* UNIX stream: two 108-byte paths. */
    uint8_t un[216] = {0};
    memcpy(un, "/run/client.sock", 16);
    memcpy(un + 109, "echo", 4); /* abstract: a leading NUL */
    n = v2(buf, 0x21, 0x31, un, sizeof(un));
    CHECK_EQ_INT(parse(buf, n, &r), 232);
    CHECK_EQ_INT(r.family, AF_UNIX);
    CHECK_STR(show(&r.src), "unix:/run/client.sock");
    CHECK_EQ_INT(r.src_len, offsetof(struct sockaddr_un, sun_path) + 16);
    CHECK_EQ_INT(r.dst_len, offsetof(struct sockaddr_un, sun_path) + 5);

    /* TLVs after the addresses: ALPN "h2" and a 3-byte NOOP. */
    uint8_t body[12 + 5 + 6];
    memcpy(body, ip4, 12);
    memcpy(body + 12, "\x01\x00\x02h2\x04\x00\x03\x00\x00\x00", 11);
    n = v2(buf, 0x21, 0x11, body, sizeof(body));
    CHECK_EQ_INT(parse(buf, n, &r), 16 + 23);
    CHECK_EQ_INT(r.tlv_off, 28);
    CHECK_EQ_INT(r.tlv_len, 11);
}

/* PP2_TYPE_CRC32C: RFC 3720's check value, then a header carrying it. */
static void test_v2_crc(void)
{
    CHECK_EQ_U64(proxy_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
    uint8_t body[12 + 7] = {127, 0, 0, 1, 127, 0, 0, 2, 0, 1, 0, 2, 0x03, 0, 4};
    uint8_t buf[64];
    size_t n = v2(buf, 0x21, 0x11, body, sizeof(body));
    uint32_t crc = proxy_crc32c(buf, n); /* over the header with zeros */
    buf[n - 4] = (uint8_t)(crc >> 24), buf[n - 3] = (uint8_t)(crc >> 16);
    buf[n - 2] = (uint8_t)(crc >> 8), buf[n - 1] = (uint8_t)crc;
    struct proxy_result r;
    CHECK_EQ_INT(parse(buf, n, &r), (int)n);
    buf[16] ^= 1; /* another source address */
    CHECK_EQ_INT(parse(buf, n, &r), PROXY_ERR_V2_BAD_CRC);
    buf[16] ^= 1;
    buf[n - 1] ^= 0x80;
    CHECK_EQ_INT(parse(buf, n, &r), PROXY_ERR_V2_BAD_CRC);
}

static bool same_result(const struct proxy_result *a, const struct proxy_result *b)
{
    return a->version == b->version && a->command == b->command && a->family == b->family &&
           a->socktype == b->socktype && a->src_len == b->src_len && a->dst_len == b->dst_len &&
           memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
           memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0 && a->tlv_off == b->tlv_off &&
           a->tlv_len == b->tlv_len;
}

/* Every prefix shorter than the header asks for more; the whole header
   is consumed exactly, whatever follows it. */
static void check_splits(const uint8_t *hdr, size_t n)
{
    uint8_t buf[PROXY_BUILD_MAX + 64];
    memcpy(buf, hdr, n);
    memcpy(buf + n, "\r\nPROXY payload", 15);
    struct proxy_result whole, part;
    if (!CHECK_EQ_INT(parse(buf, n + 15, &whole), (int)n))
        return;
    for (size_t k = 0; k < n; k++)
        if (!CHECK_EQ_INT(parse(buf, k, &part), 0))
            fprintf(stderr, "   prefix of %zu bytes\n", k);
    for (size_t k = n; k <= n + 15; k++) {
        memset(&part, 0xAA, sizeof(part));
        CHECK_EQ_INT(parse(buf, k, &part), (int)n);
        CHECK(same_result(&part, &whole));
    }
}

static void test_round_trip(void)
{
    struct sockaddr_in s4 = sin4("203.0.113.7", 40000), d4 = sin4("198.51.100.1", 7);
    struct sockaddr_in6 s6 = sin6("2001:db8::7", 1), d6 = sin6("::ffff:192.0.2.1", 65535);
    struct sockaddr_un su, du;
    memset(&su, 0, sizeof(su));
    memset(&du, 0, sizeof(du));
    su.sun_family = du.sun_family = AF_UNIX;
    strcpy(su.sun_path, "/tmp/c");
    strcpy(du.sun_path, "/tmp/echod.sock");
    const struct {
        unsigned version;
        const struct sockaddr *src, *dst;
        int family;
        const char *want_src, *want_dst;
    } cases[] = {
        {1, (void *)&s4, (void *)&d4, AF_INET, "203.0.113.7:40000", "198.51.100.1:7"},
        {2, (void *)&s4, (void *)&d4, AF_INET, "203.0.113.7:40000", "198.51.100.1:7"},
        {1, (void *)&s6, (void *)&d6, AF_INET6, "[2001:db8::7]:1", "[::ffff:192.0.2.1]:65535"},
        {2, (void *)&s6, (void *)&d6, AF_INET6, "[2001:db8::7]:1", "[::ffff:192.0.2.1]:65535"},
        {2, (void *)&su, (void *)&du, AF_UNIX, "unix:/tmp/c", "unix:/tmp/echod.sock"},
        {1, (void *)&su, (void *)&du, AF_UNSPEC, NULL, NULL}, /* v1 has no Unix family */
        {1, NULL, NULL, AF_UNSPEC, NULL, NULL},
        {2, NULL, NULL, AF_UNSPEC, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[PROXY_BUILD_MAX];
        ssize_t n = proxy_build(cases[i].version, cases[i].src, cases[i].dst, buf, sizeof(buf));
        struct proxy_result r;
        if (!CHECK_INT(n, >, 0) || !CHECK_EQ_INT(parse(buf, (size_t)n, &r), n))
            continue;
        CHECK_EQ_INT(r.version, cases[i].version);
        CHECK_EQ_INT(r.family, cases[i].family);
        if (cases[i].want_src) {
            CHECK_STR(show(&r.src), cases[i].want_src);
            CHECK_STR(show(&r.dst), cases[i].want_dst);
        }
        check_splits(buf, (size_t)n);
    }
    /* Exactly what goes on the wire. */
    uint8_t buf[PROXY_BUILD_MAX];
    const char *line = "PROXY TCP4 203.0.113.7 198.51.100.1 40000 7\r\n";
    CHECK_EQ_INT(proxy_build(PROXY_V1, (void *)&s4, (void *)&d4, buf, sizeof(buf)), strlen(line));
    CHECK(memcmp(buf, line, strlen(line)) == 0);
    const uint8_t bin[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
                           0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 203,  0,    113,  7,
                           198,  51,   100,  1,    0x9C, 0x40, 0x00, 0x07};
    CHECK_EQ_INT(proxy_build(PROXY_V2, (void *)&s4, (void *)&d4, buf, sizeof(buf)), sizeof(bin));
    CHECK(memcmp(buf, bin, sizeof(bin)) == 0);
    CHECK_EQ_INT(proxy_build(PROXY_V2, NULL, NULL, buf, sizeof(buf)), 16);
    CHECK_EQ_INT(buf[12], 0x20); /* LOCAL */
    CHECK_EQ_INT(buf[13], 0x00);
}

static void test_builder_errors(void)
{
    struct sockaddr_in s4 = sin4("127.0.0.1", 1);
    struct sockaddr_in6 s6 = sin6("::1", 2);
    struct sockaddr_storage other;
    memset(&other, 0, sizeof(other));
    other.ss_family = AF_APPLETALK;
    uint8_t buf[PROXY_BUILD_MAX];
    CHECK_EQ_INT(proxy_build(3, (void *)&s4, (void *)&s4, buf, sizeof(buf)), -EINVAL);
    CHECK_EQ_INT(proxy_build(0, (void *)&s4, (void *)&s4, buf, sizeof(buf)), -EINVAL);
    CHECK_EQ_INT(proxy_build(PROXY_V1, (void *)&s4, (void *)&s6, buf, sizeof(buf)), -EINVAL);
    CHECK_EQ_INT(proxy_build(PROXY_V2, (void *)&s4, NULL, buf, sizeof(buf)), -EINVAL);
    CHECK_EQ_INT(proxy_build(PROXY_V2, (void *)&other, (void *)&other, buf, sizeof(buf)),
                 -EAFNOSUPPORT);
    CHECK_EQ_INT(proxy_build(PROXY_V2, (void *)&s4, (void *)&s4, buf, 27), -ENOSPC);
    CHECK_EQ_INT(proxy_build(PROXY_V2, (void *)&s4, (void *)&s4, buf, 28), 28);
    CHECK_EQ_INT(proxy_build(PROXY_V1, NULL, NULL, buf, 14), -ENOSPC);
    CHECK_EQ_INT(proxy_build(PROXY_V1, NULL, NULL, buf, 15), 15);
}

/* in[0..n) is refused with `want`: every read shorter than `at` bytes
   asks for more, every read of at least `at` bytes gets `want`. */
static void refused_at(const void *in, size_t n, unsigned accept, size_t v2_max, int want,
                       size_t at)
{
    struct proxy_result r;
    int first = -1;
    for (size_t k = 0; k <= n; k++) {
        int rc = proxy_parse(in, k, accept, v2_max, &r);
        int expect = k < at ? 0 : want;
        if (rc != expect && first < 0)
            first = (int)k;
        if (rc != expect && k == n)
            CHECK_STR(proxy_error_name(rc), proxy_error_name(want));
    }
    if (!CHECK_EQ_INT(first, -1))
        fprintf(stderr, "   input \"%.*s\": wrong verdict from %d bytes\n", (int)n,
                (const char *)in, first);
}

#define V1_BAD(text, want, at) refused_at(text, strlen(text), ALL, 0, want, at)

static void test_v1_refused(void)
{
    V1_BAD("GET / HTTP/1.0\r\n\r\n", PROXY_ERR_BAD_SIGNATURE, 1);
    V1_BAD("hello", PROXY_ERR_BAD_SIGNATURE, 1);
    V1_BAD("proxy TCP4", PROXY_ERR_BAD_SIGNATURE, 1);
    V1_BAD("PROXZ", PROXY_ERR_BAD_SIGNATURE, 5);
    V1_BAD("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_SYNTAX, 6);
    V1_BAD("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_FAMILY, 10);
    V1_BAD("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_FAMILY, 8);
    V1_BAD("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_FAMILY, 10);
    V1_BAD("PROXY UNKNOWNX\r\n", PROXY_ERR_V1_BAD_FAMILY, 14);
    V1_BAD("PROXY \r\n", PROXY_ERR_V1_SYNTAX, 7);
    V1_BAD("PROXY TCP4\r\n", PROXY_ERR_V1_SYNTAX, 11);
    /* Spaces: exactly one between fields, none at the end. */
    V1_BAD("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_SYNTAX, 7);
    V1_BAD("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_SYNTAX, 12);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", PROXY_ERR_V1_SYNTAX, 31);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", PROXY_ERR_V1_SYNTAX, 31);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", PROXY_ERR_V1_SYNTAX, 29);
    V1_BAD("PROXY TCP4 1.2.3.4\r\n", PROXY_ERR_V1_SYNTAX, 19);
    /* Addresses of the announced family, written canonically. */
    V1_BAD("PROXY TCP4 ::1 ::1 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 12);
    V1_BAD("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 19);
    V1_BAD("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 20);
    V1_BAD("PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 21);
    V1_BAD("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 17);
    V1_BAD("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 21);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8888 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 30);
    V1_BAD("PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 13);
    V1_BAD("PROXY TCP6 2001:db8::1::2 ::1 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 26);
    V1_BAD("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 19);
    V1_BAD("PROXY TCP6 [::1] ::1 1 2\r\n", PROXY_ERR_V1_BAD_ADDRESS, 12);
    /* Ports: 0-65535, decimal, no leading zero. */
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", PROXY_ERR_V1_BAD_PORT, 34);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", PROXY_ERR_V1_BAD_PORT, 32);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 100000 1\r\n", PROXY_ERR_V1_BAD_PORT, 33);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", PROXY_ERR_V1_BAD_PORT, 29);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", PROXY_ERR_V1_BAD_PORT, 28);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", PROXY_ERR_V1_BAD_PORT, 30);
    /* The line ends with CRLF and nothing else, within 107 bytes. */
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", PROXY_ERR_V1_BAD_EOL, 31);
    V1_BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", PROXY_ERR_V1_BAD_EOL, 32);
    V1_BAD("PROXY UNKNOWN\n", PROXY_ERR_V1_BAD_EOL, 14);
    V1_BAD("PROXY UNKNOWN x\ny\r\n", PROXY_ERR_V1_BAD_EOL, 16);
    V1_BAD("PROXY UNKNOWN x\ry\r\n", PROXY_ERR_V1_BAD_EOL, 17);
    char line[160];
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 106, "\r\n", 2); /* a 108-byte line */
    refused_at(line, 108, ALL, 0, PROXY_ERR_V1_NO_CRLF, 107);
    refused_at(line, sizeof(line), ALL, 0, PROXY_ERR_V1_NO_CRLF, 107);
    memcpy(line + 105, "\r\n", 2); /* 107 bytes: the longest allowed */
    struct proxy_result r;
    CHECK_EQ_INT(parse(line, sizeof(line), &r), 107);
    /* A v1 header on a v2-only listener. */
    refused_at("PROXY UNKNOWN\r\n", 15, PROXY_V2, 0, PROXY_ERR_VERSION_REFUSED, 5);
}

static void test_v2_refused(void)
{
    uint8_t buf[300];
    const uint8_t ip4[12] = {127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2};
    size_t n = v2(buf, 0x21, 0x11, ip4, 12);
    refused_at(buf, n, PROXY_V1, 0, PROXY_ERR_VERSION_REFUSED, 12);
    buf[4] = 'X';
    refused_at(buf, n, ALL, 0, PROXY_ERR_BAD_SIGNATURE, 5);
    buf[4] = 0;
    buf[11] = 0x0B;
    refused_at(buf, n, ALL, 0, PROXY_ERR_BAD_SIGNATURE, 12);
    buf[11] = 0x0A;
    /* Version and command (byte 13), family and protocol (byte 14). */
    refused_at(buf, v2(buf, 0x11, 0x11, ip4, 12), ALL, 0, PROXY_ERR_V2_BAD_VERSION, 13);
    refused_at(buf, v2(buf, 0x31, 0x11, ip4, 12), ALL, 0, PROXY_ERR_V2_BAD_VERSION, 13);
    refused_at(buf, v2(buf, 0x22, 0x11, ip4, 12), ALL, 0, PROXY_ERR_V2_BAD_COMMAND, 13);
    refused_at(buf, v2(buf, 0x2F, 0x11, ip4, 12), ALL, 0, PROXY_ERR_V2_BAD_COMMAND, 13);
    refused_at(buf, v2(buf, 0x21, 0x41, ip4, 12), ALL, 0, PROXY_ERR_V2_BAD_FAMILY, 14);
    refused_at(buf, v2(buf, 0x21, 0x13, ip4, 12), ALL, 0, PROXY_ERR_V2_BAD_FAMILY, 14);
    refused_at(buf, v2(buf, 0x20, 0x13, ip4, 12), ALL, 0, PROXY_ERR_V2_BAD_FAMILY, 14);
    refused_at(buf, v2(buf, 0x21, 0x10, ip4, 12), ALL, 0, PROXY_ERR_V2_MISMATCH, 14);
    refused_at(buf, v2(buf, 0x21, 0x01, ip4, 12), ALL, 0, PROXY_ERR_V2_MISMATCH, 14);
    /* The length (bytes 15-16): against the caller's bound, and the
       family's address block. */
    static const uint8_t zeros[300];
    uint8_t big[16 + 300];
    refused_at(big, v2(big, 0x21, 0x11, zeros, 300), ALL, 256, PROXY_ERR_V2_TOO_LONG, 16);
    refused_at(buf, v2(buf, 0x21, 0x11, ip4, 11), ALL, 0, PROXY_ERR_V2_SHORT_ADDRESS, 16);
    refused_at(big, v2(big, 0x21, 0x21, zeros, 35), ALL, 0, PROXY_ERR_V2_SHORT_ADDRESS, 16);
    refused_at(big, v2(big, 0x21, 0x31, zeros, 215), ALL, 0, PROXY_ERR_V2_SHORT_ADDRESS, 16);
    /* A length beyond the data: more is needed, up to the whole header
       (the 65535 announced here stays under the default bound). */
    struct proxy_result r;
    v2(buf, 0x21, 0x11, ip4, 12);
    buf[14] = 0xFF, buf[15] = 0xFF;
    CHECK_EQ_INT(parse(buf, 28, &r), 0);
    CHECK_EQ_INT(proxy_parse(buf, 28, ALL, PROXY_V2_HDR + 65534, &r), PROXY_ERR_V2_TOO_LONG);
    CHECK_EQ_INT(proxy_parse(buf, 16, ALL, 1, &r), PROXY_ERR_V2_TOO_LONG);
    /* TLVs must fit: 1-2 stray bytes, a length past the end, a CRC32C
       TLV of the wrong size or twice. */
    uint8_t body[12 + 14];
    memcpy(body, ip4, 12);
    memcpy(body + 12, "\x04\x00", 2);
    refused_at(buf, v2(buf, 0x21, 0x11, body, 14), ALL, 0, PROXY_ERR_V2_BAD_TLV, 30);
    memcpy(body + 12, "\x04\x00\x02\x00", 4);
    refused_at(buf, v2(buf, 0x21, 0x11, body, 16), ALL, 0, PROXY_ERR_V2_BAD_TLV, 32);
    memcpy(body + 12, "\x03\x00\x03\x00\x00\x00", 6);
    refused_at(buf, v2(buf, 0x21, 0x11, body, 18), ALL, 0, PROXY_ERR_V2_BAD_TLV, 34);
    memcpy(body + 12, "\x03\x00\x04\x00\x00\x00\x00\x03\x00\x04\x00\x00\x00\x00", 14);
    refused_at(buf, v2(buf, 0x21, 0x11, body, 26), ALL, 0, PROXY_ERR_V2_BAD_TLV, 42);
}

/* Every valid header, split at every byte: only the whole one counts. */
static void test_byte_splits(void)
{
    const char *lines[] = {
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY TCP6 ::1 2001:db8::ff00:42:8329 0 65535\r\n",
        "PROXY UNKNOWN\r\n",
        "PROXY UNKNOWN whatever follows\r\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        check_splits((const uint8_t *)lines[i], strlen(lines[i]));
    uint8_t buf[64];
    const uint8_t ip4[16] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 81, 0x04, 0, 1, 0};
    check_splits(buf, v2(buf, 0x21, 0x11, ip4, 12));
    check_splits(buf, v2(buf, 0x21, 0x11, ip4, 16));
    check_splits(buf, v2(buf, 0x20, 0x00, NULL, 0));
    check_splits(buf, v2(buf, 0x20, 0x21, ip4, 3));
}

static void test_error_names(void)
{
    CHECK_STR(proxy_error_name(1), "ok");
    CHECK_STR(proxy_error_name(0), "incomplete");
    CHECK_STR(proxy_error_name(PROXY_ERR_BAD_SIGNATURE), "bad_signature");
    CHECK_STR(proxy_error_name(PROXY_ERR_V2_BAD_CRC), "v2_bad_crc");
    CHECK_STR(proxy_error_name(-PROXY_ERR_COUNT - 1), "unknown");
    /* Distinct, and usable as metric labels as they are. */
    for (int a = 1; a <= PROXY_ERR_COUNT; a++) {
        const char *name = proxy_error_name(-a);
        CHECK(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(name));
        for (int b = 1; b < a; b++)
            CHECK(strcmp(name, proxy_error_name(-b)) != 0);
    }
}

int main(void)
{
    check_run("v1_known", test_v1_known);
    check_run("v2_known", test_v2_known);
    check_run("v2_crc", test_v2_crc);
    check_run("round_trip", test_round_trip);
    check_run("builder_errors", test_builder_errors);
    check_run("v1_refused", test_v1_refused);
    check_run("v2_refused", test_v2_refused);
    check_run("byte_splits", test_byte_splits);
    check_run("error_names", test_error_names);
    return check_exit();
}
