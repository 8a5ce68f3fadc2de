/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol parser and
 * builder (apps/common/proxy_proto.h). The input is what a connection
 * delivers first. Checked:
 *   - a verdict never depends on how the bytes were split: the input cut at
 *     a point taken from its bytes gives "need more" or the same verdict,
 *     and a header is never complete one byte early;
 *   - a complete header is self-consistent (length within the input and
 *     the limits, CRLF or v2 length field, addresses of the family) and
 *     *out is left alone otherwise;
 *   - the accepted versions and the v2 size bound act as documented;
 *   - addresses made from the input, built into a header and parsed back,
 *     come back the same.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ALL (PROXY_V1 | PROXY_V2)

static bool same(const struct proxy_result *a, const struct proxy_result *b)
{
    return a->version == b->version && a->command == b->command && a->family == b->family &&
           a->socktype == b->socktype && a->src_len == b->src_len && a->dst_len == b->dst_len &&
           memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
           memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0 && a->tlv_off == b->tlv_off &&
           a->tlv_len == b->tlv_len;
}

/* What a successful parse of n bytes must look like. */
static void check_header(const uint8_t *d, int n, const struct proxy_result *r)
{
    socklen_t want = r->family == AF_INET    ? sizeof(struct sockaddr_in)
                     : r->family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : 0;
    if (r->version == 1) {
        if (n > PROXY_V1_MAX || d[n - 2] != '\r' || d[n - 1] != '\n' || r->family == AF_UNIX ||
            r->command != PROXY_CMD_PROXY || r->src_len != want || r->dst_len != want)
            abort();
    } else if (r->version == 2) {
        if (n != PROXY_V2_HDR + (d[14] << 8 | d[15]) || (r->family != AF_UNSPEC) != !!r->socktype)
            abort();
        if (r->family == AF_UNIX ? r->src_len > sizeof(struct sockaddr_un) : r->src_len != want)
            abort();
        if (r->family != AF_UNSPEC && r->tlv_off + r->tlv_len != (size_t)n)
            abort();
    } else {
        abort();
    }
    if (r->family != AF_UNSPEC && (r->src.ss_family != r->family || r->dst.ss_family != r->family))
        abort();
}

/* The accepted versions and the v2 bound change nothing but what they
   are documented to change. */
static void check_options(const uint8_t *d, size_t size, int whole, const struct proxy_result *r)
{
    struct proxy_result o;
    for (unsigned accept = PROXY_V1; accept <= PROXY_V2; accept++) {
        int rc = proxy_parse(d, size, accept, 0, &o);
        if (whole > 0 && rc != (r->version == accept ? whole : PROXY_ERR_VERSION_REFUSED))
            abort();
        if (whole == PROXY_ERR_BAD_SIGNATURE && rc != whole)
            abort();
    }
    size_t bound = PROXY_V2_HDR + (size % 512);
    int rc = proxy_parse(d, size, ALL, bound, &o);
    if (whole > 0 && r->version == 2 &&
        rc != ((size_t)whole <= bound ? whole : PROXY_ERR_V2_TOO_LONG))
        abort();
    if (whole > 0 && r->version == 1 && rc != whole)
        abort();
}

static void check_parse(const uint8_t *d, size_t size)
{
    struct proxy_result whole, part, untouched;
    memset(&whole, 0x5A, sizeof(whole));
    memcpy(&untouched, &whole, sizeof(whole));
    int rc = proxy_parse(d, size, ALL, 0, &whole);
    if (rc > (int)size || rc < -PROXY_ERR_COUNT || !strcmp(proxy_error_name(rc), "unknown"))
        abort();
    if (rc <= 0 && memcmp(&whole, &untouched, sizeof(whole)) != 0)
        abort();
    if (rc == 0 && size >= PROXY_MAX_HEADER)
        abort();
    if (rc > 0) {
        check_header(d, rc, &whole);
        if (proxy_parse(d, (size_t)rc - 1, ALL, 0, &part) != 0)
            abort(); /* complete one byte early */
    }
    /* A split point from the data, so the fuzzer can steer it. */
    size_t sum = 0;
    for (size_t i = 0; i < size && i < 64; i++)
        sum += d[i];
    size_t k = size ? sum % (size + 1) : 0;
    int first = proxy_parse(d, k, ALL, 0, &part);
    if (first < 0 && first != rc)
        abort();
    if (first > 0 && (first != rc || !same(&part, &whole)))
        abort();
    if (first == 0 && rc > 0 && (size_t)rc <= k)
        abort();
    check_options(d, size, rc, &whole);
}

/* Addresses of the family d[0] picks, filled from the input. */
static void check_build(const uint8_t *d, size_t size)
{
    if (size < 3)
        return;
    unsigned version = (d[0] & 1) ? PROXY_V2 : PROXY_V1;
    int family = (const int[]){AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC}[(d[0] >> 1) & 3];
    uint8_t bytes[2 * sizeof(struct sockaddr_un)] = {0};
    memcpy(bytes, d + 2, size - 2 < sizeof(bytes) ? size - 2 : sizeof(bytes));
    struct sockaddr_storage src, dst;
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    size_t half = sizeof(struct sockaddr_un);
    memcpy(&src, bytes, half);
    memcpy(&dst, bytes + half, half);
    src.ss_family = dst.ss_family = (sa_family_t)family;
    bool none = family == AF_UNSPEC;
    uint8_t out[PROXY_BUILD_MAX];
    size_t cap = d[1] < PROXY_BUILD_MAX ? d[1] : PROXY_BUILD_MAX;
    ssize_t n =
        proxy_build(version, none ? NULL : (void *)&src, none ? NULL : (void *)&dst, out, cap);
    if (n == -ENOSPC && cap < PROXY_BUILD_MAX)
        n = proxy_build(version, none ? NULL : (void *)&src, none ? NULL : (void *)&dst, out,
                        PROXY_BUILD_MAX);
    struct proxy_result r;
    if (n <= 0 || proxy_parse(out, (size_t)n, version, 0, &r) != n || r.version != version)
        abort();
    bool addressed = family == AF_INET || family == AF_INET6 || (family == AF_UNIX && version == 2);
    if (r.family != (addressed ? family : AF_UNSPEC))
        abort();
    if (family == AF_INET && addressed) {
        const struct sockaddr_in *a = (const void *)&src, *b = (const void *)&r.src;
        if (a->sin_addr.s_addr != b->sin_addr.s_addr || a->sin_port != b->sin_port)
            abort();
    } else if (family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)&dst, *b = (const void *)&r.dst;
        if (memcmp(&a->sin6_addr, &b->sin6_addr, 16) != 0 || a->sin6_port != b->sin6_port)
            abort();
    } else if (family == AF_UNIX && addressed) {
        const struct sockaddr_un *a = (const void *)&src, *b = (const void *)&r.src;
        if (memcmp(a->sun_path, b->sun_path, sizeof(a->sun_path)) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > PROXY_MAX_HEADER + 64)
        return 0;
    check_parse(data, size);
    check_build(data, size);
    return 0;
}
