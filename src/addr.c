/* SPDX-License-Identifier: MIT */
/*
 * addr.c - addresses for the apps: strict "host:port" and "unix:PATH"
 * parsing, and formatting back to text. Nothing here makes a socket
 * (net.c does).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

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

/* Copies the `n` bytes of a host part at `text` into host[HOST_MAX]. */
static int copy_host(char *host, const char *text, size_t n)
{
    if (n == 0 || n >= HOST_MAX)
        return -EINVAL;
    memcpy(host, text, n);
    host[n] = '\0';
    return 0;
}

/* "[IPV6]:PORT": the brackets are what make the colons of the address
   unambiguous, so they are required for IPv6. */
static int parse_bracketed(const char *text, struct iomux_addr *out)
{
    char host[HOST_MAX];
    unsigned port;
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':')
        return -EINVAL;
    int rc = copy_host(host, text + 1, (size_t)(close - text - 1));
    if (rc == 0)
        rc = parse_port(close + 2, &port);
    if (rc < 0)
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

/* "IPV4:PORT" or "NAME:PORT". */
static int parse_plain(const char *text, struct iomux_addr *out)
{
    char host[HOST_MAX];
    unsigned port;
    const char *colon = strrchr(text, ':');
    if (!colon)
        return -EINVAL;
    int rc = copy_host(host, text, (size_t)(colon - text));
    if (rc < 0)
        return rc;
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

int iomux_addr_parse(const char *text, struct iomux_addr *out)
{
    if (!text || !out)
        return -EINVAL;
    return text[0] == '[' ? parse_bracketed(text, out) : parse_plain(text, out);
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
