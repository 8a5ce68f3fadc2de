/* SPDX-License-Identifier: MIT */
/*
 * proxy_proto.h - the PROXY protocol (HAProxy's doc/proxy-protocol.txt,
 * versions 1 and 2): a header a load balancer prepends to a connection so
 * the server learns the real client's addresses. A pure module, no I/O:
 * proxy_parse() reads a header from the bytes received so far (it may come
 * in many small reads), proxy_build() writes one for a client to send.
 * What is accepted and refused, and why: docs/proxy-protocol.md.
 */
#ifndef IOMUX_APPS_PROXY_PROTO_H
#define IOMUX_APPS_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Versions: as a bitmask for proxy_parse()'s `accept`, as a number for
   proxy_build()'s `version` (the values are the same). */
#define PROXY_V1 1u
#define PROXY_V2 2u

/* Longest v1 line, CRLF included: "PROXY UNKNOWN " + two 39-character
   IPv6 addresses + two ports (the spec's worst case). */
#define PROXY_V1_MAX 107
/* v2: the fixed 16-byte part, then up to 65535 bytes announced by it. */
#define PROXY_V2_HDR     16
#define PROXY_V2_MAX     (PROXY_V2_HDR + 65535)
#define PROXY_MAX_HEADER PROXY_V2_MAX
/* Longest header proxy_build() writes (v2 with two Unix paths). */
#define PROXY_BUILD_MAX (PROXY_V2_HDR + 216)

enum proxy_command { PROXY_CMD_LOCAL = 0, PROXY_CMD_PROXY = 1 };

/* Why proxy_parse() refused a header; the caller counts them by
   proxy_error_name(). The connection must then be closed. */
enum proxy_error {
    PROXY_ERR_BAD_SIGNATURE = -1,     /* neither "PROXY" nor the v2 signature */
    PROXY_ERR_VERSION_REFUSED = -2,   /* a valid signature of a version not in `accept` */
    PROXY_ERR_V1_NO_CRLF = -3,        /* no CRLF in the first 107 bytes */
    PROXY_ERR_V1_BAD_EOL = -4,        /* a CR or LF that is not part of the final CRLF */
    PROXY_ERR_V1_SYNTAX = -5,         /* no space after "PROXY", missing/extra/empty fields */
    PROXY_ERR_V1_BAD_FAMILY = -6,     /* not TCP4, TCP6 or UNKNOWN */
    PROXY_ERR_V1_BAD_ADDRESS = -7,    /* not an address of the announced family */
    PROXY_ERR_V1_BAD_PORT = -8,       /* not 0-65535, or a leading zero */
    PROXY_ERR_V2_BAD_VERSION = -9,    /* version nibble not 2 */
    PROXY_ERR_V2_BAD_COMMAND = -10,   /* command nibble not LOCAL or PROXY */
    PROXY_ERR_V2_BAD_FAMILY = -11,    /* family nibble > 3 or protocol nibble > 2 */
    PROXY_ERR_V2_MISMATCH = -12,      /* PROXY with one of family/protocol UNSPEC */
    PROXY_ERR_V2_TOO_LONG = -13,      /* 16 + length above the caller's v2_max */
    PROXY_ERR_V2_SHORT_ADDRESS = -14, /* length below what the family needs */
    PROXY_ERR_V2_BAD_TLV = -15,       /* a TLV overruns the header, or a bad CRC32C TLV */
    PROXY_ERR_V2_BAD_CRC = -16,       /* the CRC32C TLV does not match the header */
};
#define PROXY_ERR_COUNT 16

/* A parsed header. family AF_UNSPEC (v1 UNKNOWN, v2 LOCAL, v2 PROXY with
   UNSPEC) means: keep the connection's own addresses. */
struct proxy_result {
    unsigned version;            /* 1 or 2 */
    enum proxy_command command;  /* v1 is always PROXY_CMD_PROXY */
    int family;                  /* AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC */
    int socktype;                /* SOCK_STREAM, or SOCK_DGRAM (v2 only); 0 with AF_UNSPEC */
    struct sockaddr_storage src; /* the client, as getpeername() would give it */
    struct sockaddr_storage dst; /* the address it connected to (getsockname()) */
    socklen_t src_len, dst_len;  /* 0 with AF_UNSPEC */
    size_t tlv_off, tlv_len;     /* v2 PROXY with a known family: the TLVs, in buf */
};

/*
 * Reads a PROXY header from the start of buf[0..len), all bytes received
 * so far. Returns:
 *   > 0  the header is complete and valid: that many bytes are the header,
 *        the rest of buf is the client's data; *out is filled.
 *   0    a valid beginning: call again with more bytes. 0 is only
 *        returned while len is below PROXY_V1_MAX (v1) or the header's
 *        announced size, itself at most v2_max (v2): a caller buffering up
 *        to max(PROXY_V1_MAX, v2_max) bytes never fills its buffer.
 *   < 0  an enum proxy_error: refuse the connection. Decided at the first
 *        byte that makes the header invalid ("hello" fails on 'h').
 * accept: PROXY_V1, PROXY_V2 or both (the listener's configuration; the
 * presence of a header is never guessed). v2_max bounds a v2 header's
 * total size (16 + announced length); 0 means PROXY_V2_MAX. *out is only
 * written on success. Stateless: each call parses from the start.
 */
int proxy_parse(const uint8_t *buf, size_t len, unsigned accept, size_t v2_max,
                struct proxy_result *out);

/* A short label for a proxy_parse() result, for metrics: "bad_signature",
   "v1_no_crlf", ...; "ok" for > 0, "incomplete" for 0. */
const char *proxy_error_name(int rc);

/*
 * Writes the header a client sends before its data into out[0..cap).
 * version PROXY_V1 or PROXY_V2; src and dst of the same family:
 *   AF_INET, AF_INET6   v1 "PROXY TCP4|TCP6 ...", v2 PROXY TCP over IPv4/6
 *   AF_UNIX             v1 "PROXY UNKNOWN" (v1 has no Unix family), v2 PROXY
 *                       UNIX stream with the whole 108-byte sun_path of each
 *                       (zero the structs before filling them)
 *   both NULL           v1 "PROXY UNKNOWN", v2 LOCAL (a health check)
 * Returns the header's length, or -EINVAL (bad version, one address NULL,
 * families differ), -EAFNOSUPPORT (another family), -ENOSPC (cap too small;
 * PROXY_BUILD_MAX is always enough).
 */
ssize_t proxy_build(unsigned version, const struct sockaddr *src, const struct sockaddr *dst,
                    uint8_t *out, size_t cap);

/* CRC32C (Castagnoli, as in RFC 4960 appendix B) of data, used by the v2
   PP2_TYPE_CRC32C TLV; exposed for tests. */
uint32_t proxy_crc32c(const uint8_t *data, size_t len);

#endif /* IOMUX_APPS_PROXY_PROTO_H */
