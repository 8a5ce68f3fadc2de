/* SPDX-License-Identifier: MIT */
/*
 * proxy_proto.c - PROXY protocol v1/v2 parser and builder, written from
 * HAProxy's doc/proxy-protocol.txt. The parser is stateless (each call
 * starts again from the first byte: a header is at most 107 bytes of text,
 * or a binary one whose checks are O(1) until it is complete) and reports
 * every error at the byte that causes it, so a shorter read never gives a
 * different verdict than a longer one (fuzz/fuzz_proxy.c checks that).
 */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

/* v2 carries Unix paths as 108 bytes, Linux's sun_path size. */
#define UNIX_PATH_BYTES 108
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == UNIX_PATH_BYTES,
               "sun_path must hold the 108 bytes of a v2 Unix address");

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* v2 family nibble -> address block size (addresses, then ports). */
static const size_t v2_addr_len[4] = {0, 12, 36, 2 * UNIX_PATH_BYTES};
static const int v2_family[4] = {AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX};

#define PP2_TYPE_CRC32C 0x03

/* Longest v1 address text: an IPv6 address may end in a dotted IPv4 part
   (inet_ntop writes v4-mapped addresses as ::ffff:a.b.c.d). */
#define V1_ADDR4_MAX 15
#define V1_ADDR6_MAX 45

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- v1 ---------------------------------------------------------------- */

/* The fields after "PROXY ": the family token, then (TCP4/TCP6 only) the
   source and destination addresses and ports. */
enum { F_TOKEN = -1, F_SRC = 0, F_DST = 1, F_SPORT = 2, F_DPORT = 3 };

/* Checks what has arrived of an unterminated field. Every check holds for
   each prefix of a valid field, and fails for every extension of a prefix
   it fails on, which is what keeps verdicts independent of read sizes. */
static int v1_check_open(const uint8_t *p, size_t n, int field, int fam)
{
    if (field == F_TOKEN) {
        static const char *const names[] = {"TCP4", "TCP6", "UNKNOWN"};
        for (size_t k = 0; k < 3; k++)
            if (n <= strlen(names[k]) && memcmp(p, names[k], n) == 0)
                return 0;
        return PROXY_ERR_V1_BAD_FAMILY;
    }
    if (field == F_SPORT || field == F_DPORT) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!is_digit(p[i]) || i >= 5 || (i == 1 && p[0] == '0'))
                return PROXY_ERR_V1_BAD_PORT;
            v = v * 10 + (unsigned)(p[i] - '0');
        }
        return v > 65535 ? PROXY_ERR_V1_BAD_PORT : 0;
    }
    size_t max = fam == AF_INET ? V1_ADDR4_MAX : V1_ADDR6_MAX;
    for (size_t i = 0; i < n; i++) {
        bool ok = fam == AF_INET ? is_digit(p[i]) || p[i] == '.'
                                 : is_hex(p[i]) || p[i] == ':' || p[i] == '.';
        if (!ok || i >= max)
            return PROXY_ERR_V1_BAD_ADDRESS;
    }
    return 0;
}

/* Dotted quad, strictly: four numbers 0-255 without leading zeros (the
   spec forbids them, against octal confusion; inet_pton's rules vary). */
static bool v1_ipv4(const uint8_t *p, size_t n, struct in_addr *a)
{
    uint8_t b[4];
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        if (k > 0 && (i >= n || p[i++] != '.'))
            return false;
        size_t start = i;
        unsigned v = 0;
        while (i < n && is_digit(p[i]) && i - start < 3)
            v = v * 10 + (unsigned)(p[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && p[start] == '0'))
            return false;
        b[k] = (uint8_t)v;
    }
    memcpy(&a->s_addr, b, 4);
    return i == n;
}

static bool v1_ipv6(const uint8_t *p, size_t n, struct in6_addr *a)
{
    char text[V1_ADDR6_MAX + 1];
    memcpy(text, p, n); /* n <= V1_ADDR6_MAX: v1_check_open passed */
    text[n] = '\0';
    return inet_pton(AF_INET6, text, a) == 1;
}

/* Stores a complete address or port field into *r. */
static int v1_store(const uint8_t *p, size_t n, int field, struct proxy_result *r)
{
    struct sockaddr_storage *ss = field == F_SRC || field == F_SPORT ? &r->src : &r->dst;
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (field == F_SPORT || field == F_DPORT) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (unsigned)(p[i] - '0');
        if (r->family == AF_INET)
            sin->sin_port = htons((uint16_t)v);
        else
            sin6->sin6_port = htons((uint16_t)v);
        return 0;
    }
    bool ok =
        r->family == AF_INET ? v1_ipv4(p, n, &sin->sin_addr) : v1_ipv6(p, n, &sin6->sin6_addr);
    return ok ? 0 : PROXY_ERR_V1_BAD_ADDRESS;
}

/* A field ended by `term` (space, CR or LF): its content first, then
   whether that terminator may follow it. */
static int v1_close(const uint8_t *p, size_t n, int field, uint8_t term, struct proxy_result *r)
{
    if (n == 0)
        return PROXY_ERR_V1_SYNTAX; /* two spaces, or a space before CR */
    int rc = v1_check_open(p, n, field, r->family);
    if (rc < 0)
        return rc;
    if (field == F_TOKEN) {
        /* A prefix of a name passed; only the whole name is one. */
        if (n == 7)
            r->family = AF_UNSPEC;
        else if (n == 4 && p[0] == 'T')
            r->family = p[3] == '4' ? AF_INET : AF_INET6;
        else
            return PROXY_ERR_V1_BAD_FAMILY; /* "TCP", "UNKN" */
        if (term == '\r' && r->family == AF_UNSPEC)
            return 0;
    } else {
        rc = v1_store(p, n, field, r);
        if (rc < 0)
            return rc;
    }
    if (term == '\n')
        return PROXY_ERR_V1_BAD_EOL;
    if ((field == F_DPORT) != (term == '\r'))
        return PROXY_ERR_V1_SYNTAX; /* fields missing, or one too many */
    return 0;
}

/* After "PROXY": walks the line byte by byte up to the CRLF, closing each
   field at its terminator; nothing after "UNKNOWN" is read but the CRLF. */
static int v1_parse(const uint8_t *buf, size_t len, struct proxy_result *out)
{
    size_t window = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
    if (window < 6)
        return 0;
    if (buf[5] != ' ')
        return PROXY_ERR_V1_SYNTAX;
    struct proxy_result r;
    memset(&r, 0, sizeof(r));
    r.family = -1;
    int field = F_TOKEN;
    size_t start = 6;
    for (size_t i = 6; i < window; i++) {
        uint8_t c = buf[i];
        bool skipping = field > F_TOKEN && r.family == AF_UNSPEC;
        if (c != '\r' && c != '\n' && (skipping || c != ' '))
            continue;
        if (!skipping) {
            int rc = v1_close(buf + start, i - start, field, c, &r);
            if (rc < 0)
                return rc;
            field++;
            start = i + 1;
        }
        if (c == '\n')
            return PROXY_ERR_V1_BAD_EOL; /* an LF without its CR */
        if (c != '\r')
            continue;
        if (i + 1 >= PROXY_V1_MAX)
            return PROXY_ERR_V1_NO_CRLF;
        if (i + 1 >= len)
            return 0;
        if (buf[i + 1] != '\n')
            return PROXY_ERR_V1_BAD_EOL; /* a CR without its LF */
        r.version = 1;
        r.command = PROXY_CMD_PROXY;
        if (r.family == AF_UNSPEC) {
            memset(&r.src, 0, sizeof(r.src));
            memset(&r.dst, 0, sizeof(r.dst));
        } else {
            r.src.ss_family = r.dst.ss_family = (sa_family_t)r.family;
            r.socktype = SOCK_STREAM;
            r.src_len = r.dst_len =
                r.family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        }
        *out = r;
        return (int)(i + 2);
    }
    bool skipping = field > F_TOKEN && r.family == AF_UNSPEC;
    if (!skipping) {
        int rc = v1_check_open(buf + start, window - start, field, r.family);
        if (rc < 0)
            return rc;
    }
    return len >= PROXY_V1_MAX ? PROXY_ERR_V1_NO_CRLF : 0;
}

/* ---- v2 ---------------------------------------------------------------- */

/* CRC32C without the initial and final inversions, so it can run over a
   header in pieces. Reflected polynomial 0x82F63B78, four bits at a time. */
static uint32_t crc32c_update(uint32_t crc, const uint8_t *data, size_t len)
{
    static const uint32_t t[16] = {0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1,
                                   0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
                                   0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
                                   0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75};
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ t[crc & 15];
        crc = (crc >> 4) ^ t[crc & 15];
    }
    return crc;
}

uint32_t proxy_crc32c(const uint8_t *data, size_t len)
{
    return ~crc32c_update(0xFFFFFFFFu, data, len);
}

static size_t be16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

/* The CRC32C TLV's value is the checksum of the whole header with that
   value taken as zeros. */
static bool v2_crc_ok(const uint8_t *hdr, size_t total, size_t at)
{
    static const uint8_t zeros[4];
    uint32_t want = (uint32_t)be16(hdr + at) << 16 | (uint32_t)be16(hdr + at + 2);
    uint32_t crc = crc32c_update(0xFFFFFFFFu, hdr, at);
    crc = crc32c_update(crc, zeros, sizeof(zeros));
    crc = crc32c_update(crc, hdr + at + 4, total - at - 4);
    return ~crc == want;
}

/* Every TLV must fit in the header: 3 bytes of type and length, then the
   value. A CRC32C TLV (at most one, 4 bytes) must match (the spec makes
   checking it a MUST for receivers that support it). Other types, SSL
   sub-TLVs included, are not interpreted. */
static int v2_tlvs(const uint8_t *hdr, size_t off, size_t total)
{
    size_t crc_at = 0;
    while (off < total) {
        if (total - off < 3)
            return PROXY_ERR_V2_BAD_TLV;
        size_t n = be16(hdr + off + 1);
        if (n > total - off - 3)
            return PROXY_ERR_V2_BAD_TLV;
        if (hdr[off] == PP2_TYPE_CRC32C) {
            if (n != 4 || crc_at != 0)
                return PROXY_ERR_V2_BAD_TLV;
            crc_at = off + 3;
        }
        off += 3 + n;
    }
    if (crc_at != 0 && !v2_crc_ok(hdr, total, crc_at))
        return PROXY_ERR_V2_BAD_CRC;
    return 0;
}

static void v2_addresses(const uint8_t *a, int family, struct proxy_result *r)
{
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&r->src, *d = (struct sockaddr_in *)&r->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        r->src_len = r->dst_len = sizeof(struct sockaddr_in);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&r->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        r->src_len = r->dst_len = sizeof(struct sockaddr_in6);
    } else {
        struct sockaddr_un *s = (struct sockaddr_un *)&r->src, *d = (struct sockaddr_un *)&r->dst;
        s->sun_family = d->sun_family = AF_UNIX;
        memcpy(s->sun_path, a, UNIX_PATH_BYTES);
        memcpy(d->sun_path, a + UNIX_PATH_BYTES, UNIX_PATH_BYTES);
        /* A path ends at its first NUL (or fills all 108 bytes); an
           abstract name (leading NUL) at the next one. */
        size_t base = offsetof(struct sockaddr_un, sun_path);
        size_t sn = s->sun_path[0] ? strnlen(s->sun_path, UNIX_PATH_BYTES)
                                   : 1 + strnlen(s->sun_path + 1, UNIX_PATH_BYTES - 1);
        size_t dn = d->sun_path[0] ? strnlen(d->sun_path, UNIX_PATH_BYTES)
                                   : 1 + strnlen(d->sun_path + 1, UNIX_PATH_BYTES - 1);
        r->src_len = (socklen_t)(base + sn);
        r->dst_len = (socklen_t)(base + dn);
    }
}

/* After the 12-byte signature: each byte of the fixed part is checked as
   it arrives, the length against v2_max and the family's needs before the
   address block is waited for. */
static int v2_parse(const uint8_t *buf, size_t len, size_t v2_max, struct proxy_result *out)
{
    if (len < 13)
        return 0;
    if (buf[12] >> 4 != 2)
        return PROXY_ERR_V2_BAD_VERSION;
    unsigned cmd = buf[12] & 0xF;
    if (cmd > PROXY_CMD_PROXY)
        return PROXY_ERR_V2_BAD_COMMAND;
    if (len < 14)
        return 0;
    unsigned fam = buf[13] >> 4, proto = buf[13] & 0xF;
    if (fam > 3 || proto > 2)
        return PROXY_ERR_V2_BAD_FAMILY;
    /* LOCAL ignores the family; PROXY needs one of the spec's pairs. */
    if (cmd == PROXY_CMD_PROXY && (fam == 0) != (proto == 0))
        return PROXY_ERR_V2_MISMATCH;
    if (len < PROXY_V2_HDR)
        return 0;
    size_t total = PROXY_V2_HDR + be16(buf + 14);
    if (total > v2_max)
        return PROXY_ERR_V2_TOO_LONG;
    bool addresses = cmd == PROXY_CMD_PROXY && fam != 0;
    size_t need = addresses ? v2_addr_len[fam] : 0;
    if (total - PROXY_V2_HDR < need)
        return PROXY_ERR_V2_SHORT_ADDRESS;
    if (len < total)
        return 0;
    struct proxy_result r;
    memset(&r, 0, sizeof(r));
    r.version = 2;
    r.command = (enum proxy_command)cmd;
    r.family = AF_UNSPEC;
    if (addresses) {
        int rc = v2_tlvs(buf, PROXY_V2_HDR + need, total);
        if (rc < 0)
            return rc;
        r.family = v2_family[fam];
        r.socktype = proto == 1 ? SOCK_STREAM : SOCK_DGRAM;
        v2_addresses(buf + PROXY_V2_HDR, r.family, &r);
        r.tlv_off = PROXY_V2_HDR + need;
        r.tlv_len = total - r.tlv_off;
    }
    *out = r;
    return (int)total;
}

/* ---- entry points -------------------------------------------------------- */

int proxy_parse(const uint8_t *buf, size_t len, unsigned accept, size_t v2_max,
                struct proxy_result *out)
{
    if (len == 0)
        return 0;
    if (v2_max == 0 || v2_max > PROXY_V2_MAX)
        v2_max = PROXY_V2_MAX;
    if (v2_max < PROXY_V2_HDR)
        v2_max = PROXY_V2_HDR;
    /* The two signatures differ in their first byte: one byte decides. */
    if (buf[0] == 'P') {
        size_t n = len < 5 ? len : 5;
        if (memcmp(buf, "PROXY", n) != 0)
            return PROXY_ERR_BAD_SIGNATURE;
        if (n < 5)
            return 0;
        return accept & PROXY_V1 ? v1_parse(buf, len, out) : PROXY_ERR_VERSION_REFUSED;
    }
    size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    if (memcmp(buf, v2_sig, n) != 0)
        return PROXY_ERR_BAD_SIGNATURE;
    if (n < sizeof(v2_sig))
        return 0;
    return accept & PROXY_V2 ? v2_parse(buf, len, v2_max, out) : PROXY_ERR_VERSION_REFUSED;
}

const char *proxy_error_name(int rc)
{
    static const char *const names[PROXY_ERR_COUNT] = {
        "bad_signature",  "version_refused",  "v1_no_crlf",     "v1_bad_eol",
        "v1_syntax",      "v1_bad_family",    "v1_bad_address", "v1_bad_port",
        "v2_bad_version", "v2_bad_command",   "v2_bad_family",  "v2_family_mismatch",
        "v2_too_long",    "v2_short_address", "v2_bad_tlv",     "v2_bad_crc",
    };
    if (rc > 0)
        return "ok";
    if (rc == 0)
        return "incomplete";
    if (rc < -PROXY_ERR_COUNT)
        return "unknown";
    return names[-rc - 1];
}

/* ---- builder ------------------------------------------------------------- */

static ssize_t build_v1(int fam, const struct sockaddr *src, const struct sockaddr *dst,
                        uint8_t *out, size_t cap)
{
    char line[2 * INET6_ADDRSTRLEN + 32] = "PROXY UNKNOWN\r\n";
    if (fam == AF_INET || fam == AF_INET6) {
        char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
        const void *sa, *da;
        unsigned sp, dp;
        if (fam == AF_INET) {
            const struct sockaddr_in *s4 = (const void *)src, *d4 = (const void *)dst;
            sa = &s4->sin_addr, da = &d4->sin_addr;
            sp = ntohs(s4->sin_port), dp = ntohs(d4->sin_port);
        } else {
            const struct sockaddr_in6 *s6 = (const void *)src, *d6 = (const void *)dst;
            sa = &s6->sin6_addr, da = &d6->sin6_addr;
            sp = ntohs(s6->sin6_port), dp = ntohs(d6->sin6_port);
        }
        if (!inet_ntop(fam, sa, s, sizeof(s)) || !inet_ntop(fam, da, d, sizeof(d)))
            return -EINVAL;
        snprintf(line, sizeof(line), "PROXY TCP%c %s %s %u %u\r\n", fam == AF_INET ? '4' : '6', s,
                 d, sp, dp);
    }
    size_t n = strlen(line);
    if (n > PROXY_V1_MAX)
        return -EINVAL; /* not with inet_ntop's canonical forms */
    if (n > cap)
        return -ENOSPC;
    memcpy(out, line, n);
    return (ssize_t)n;
}

static ssize_t build_v2(int fam, const struct sockaddr *src, const struct sockaddr *dst,
                        uint8_t *out, size_t cap)
{
    unsigned nib = fam == AF_INET ? 1 : fam == AF_INET6 ? 2 : fam == AF_UNIX ? 3 : 0;
    size_t alen = v2_addr_len[nib];
    if (PROXY_V2_HDR + alen > cap)
        return -ENOSPC;
    memcpy(out, v2_sig, sizeof(v2_sig));
    out[12] = (uint8_t)(0x20 | (nib ? PROXY_CMD_PROXY : PROXY_CMD_LOCAL));
    out[13] = (uint8_t)(nib << 4 | (nib ? 1 : 0)); /* STREAM, or UNSPEC for LOCAL */
    out[14] = (uint8_t)(alen >> 8);
    out[15] = (uint8_t)alen;
    uint8_t *a = out + PROXY_V2_HDR;
    if (fam == AF_INET) {
        const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
        memcpy(a, &s->sin_addr, 4);
        memcpy(a + 4, &d->sin_addr, 4);
        memcpy(a + 8, &s->sin_port, 2);
        memcpy(a + 10, &d->sin_port, 2);
    } else if (fam == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
        memcpy(a, &s->sin6_addr, 16);
        memcpy(a + 16, &d->sin6_addr, 16);
        memcpy(a + 32, &s->sin6_port, 2);
        memcpy(a + 34, &d->sin6_port, 2);
    } else if (fam == AF_UNIX) {
        const struct sockaddr_un *s = (const void *)src, *d = (const void *)dst;
        memcpy(a, s->sun_path, UNIX_PATH_BYTES);
        memcpy(a + UNIX_PATH_BYTES, d->sun_path, UNIX_PATH_BYTES);
    }
    return (ssize_t)(PROXY_V2_HDR + alen);
}

ssize_t proxy_build(unsigned version, const struct sockaddr *src, const struct sockaddr *dst,
                    uint8_t *out, size_t cap)
{
    if ((version != PROXY_V1 && version != PROXY_V2) || !src != !dst)
        return -EINVAL;
    int fam = src ? src->sa_family : AF_UNSPEC;
    if (src && dst->sa_family != fam)
        return -EINVAL;
    if (src && fam != AF_INET && fam != AF_INET6 && fam != AF_UNIX)
        return -EAFNOSUPPORT;
    return version == PROXY_V1 ? build_v1(fam, src, dst, out, cap)
                               : build_v2(fam, src, dst, out, cap);
}
