/* SPDX-License-Identifier: MIT */
/*
 * proxy_accept.c - the PROXY protocol stage between accept and echo, for
 * listeners with proxy=v1|v2|any (docs/proxy-protocol.md). It is the
 * policy's, not an engine's: a socket accepted on such a listener is
 * watched on the server's loop until its header is read, and only then
 * handed to echod_admit() with the header's client address, so both
 * engines get the stage with no change inside them.
 *
 * Only the header's bytes are taken from the socket: recv(MSG_PEEK) shows
 * what has arrived, proxy_parse() says where the header ends, and recv()
 * takes exactly that much. The client's first bytes, even those in the
 * same segment as the header, stay in the socket for the engine (the
 * io_uring engine's receive would never see bytes read here). While the
 * header is incomplete, everything peeked is certainly header, so it is
 * taken and kept (the parser starts from the first byte each time): a
 * peeked byte left in the socket would keep it readable and the loop
 * would spin on it.
 *
 * What this stage leaves out: no PROXY header over UDP, and TLVs are only
 * checked for structure (and CRC32C), never used.
 */
#include "echod_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cidr.h"
#include "proxy_proto.h"
#include "trace.h"

/* A connection whose header has not arrived yet. */
struct proxy_pending {
    struct proxy_link link; /* first: d->pending lists these */
    struct echod *d;
    struct listener *l; /* accepted on: its TLS stage or faults come next */
    int fd;
    unsigned versions;      /* PROXY_V1, PROXY_V2 or both */
    uint64_t timer;         /* --proxy-timeout */
    struct iomux_addr peer; /* the connection's own (the balancer) */
    size_t have;            /* header bytes taken from the socket, in buf */
    size_t cap;
    uint8_t *buf; /* small, or a v2 header's own once it announces more */
    uint8_t small[PROXY_BUILD_MAX];
};

static unsigned versions_of(int mode)
{
    return mode == ECHOD_PROXY_V1   ? PROXY_V1
           : mode == ECHOD_PROXY_V2 ? PROXY_V2
                                    : PROXY_V1 | PROXY_V2;
}

/* Off the loop and the list; the socket stays open (the caller's). */
static int pending_free(struct proxy_pending *p)
{
    struct echod *d = p->d;
    int fd = p->fd;
    iomux_fd_unwatch(d->loop, fd);
    if (p->timer)
        iomux_timer_cancel(d->loop, p->timer);
    proxy_link_remove(&p->link);
    d->npending--;
    echod_pending_count(d, -1);
    if (p->buf != p->small)
        free(p->buf);
    free(p);
    return fd;
}

/* Refuses a connection during its header: counted in *counter, said at
   most once a second (or with --trace, each). */
static void reject(struct proxy_pending *p, uint64_t *counter, const char *why)
{
    struct echod *d = p->d;
    (*counter)++;
    char text[IOMUX_ADDR_STRLEN];
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        trace_addr(&p->peer, name, sizeof(name));
        fprintf(stderr, "  refusing %s: PROXY header: %s\n", name, why);
    } else {
        if (iomux_addr_format(&p->peer, text, sizeof(text)) < 0)
            snprintf(text, sizeof(text), "?");
        ratelog_say(&d->logs[LOG_PROXY], iomux_loop_now(d->loop),
                    "refusing connection from %s: PROXY header: %s", text, why);
    }
    close(pending_free(p));
}

static void on_header_timeout(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct proxy_pending *p = data;
    p->timer = 0; /* a one-shot timer is gone once it fires */
    reject(p, &p->d->proxy.rejected_timeout, "not complete within --proxy-timeout");
}

/* The header is read: the client is the header's source (or, for LOCAL
   and UNKNOWN, the connection's own), and the connection goes on to the
   policy's admission as if just accepted. */
static void header_done(struct proxy_pending *p, const struct proxy_result *r)
{
    struct echod *d = p->d;
    if (r->socktype == SOCK_DGRAM) {
        reject(p, &d->proxy.rejected_invalid, "a datagram header on a stream listener");
        return;
    }
    struct iomux_addr client = p->peer;
    if (r->family == AF_UNSPEC) {
        d->proxy.local++;
    } else {
        d->proxy.accepted++;
        memset(&client, 0, sizeof(client));
        memcpy(&client.ss, &r->src, r->src_len);
        client.len = r->src_len;
    }
    if (d->opt->trace) {
        char from[TRACE_ADDR_STRLEN], name[TRACE_ADDR_STRLEN];
        trace_addr(&p->peer, from, sizeof(from));
        trace_addr(&client, name, sizeof(name));
        if (r->family == AF_UNSPEC)
            fprintf(stderr, "  PROXY v%u header from %s: %s, its own address kept\n", r->version,
                    from, r->command == PROXY_CMD_LOCAL ? "LOCAL" : "UNKNOWN");
        else
            fprintf(stderr, "  PROXY v%u header from %s: client %s\n", r->version, from, name);
    }
    struct listener *l = p->l;
    int fd = pending_free(p);
    if (l->tls)
        echod_tls_start(d, l, fd, &client);
    else
        echod_admit_from(d, l, fd, &client);
}

static size_t be16(const uint8_t *b)
{
    return (size_t)b[0] << 8 | b[1];
}

/* How much may be peeked: at most what is left of a v2 header whose size
   is known (growing the buffer to hold it), else all the room. -ENOMEM. */
static int room_for(struct proxy_pending *p, size_t *room)
{
    if (p->have < PROXY_V2_HDR || p->buf[0] == 'P') {
        *room = p->cap - p->have;
        return 0;
    }
    size_t total = PROXY_V2_HDR + be16(p->buf + 14); /* <= ECHOD_PROXY_V2_MAX: parsed */
    if (total > p->cap) {
        uint8_t *big = malloc(total);
        if (!big)
            return -ENOMEM;
        memcpy(big, p->buf, p->have);
        p->buf = big;
        p->cap = total;
    }
    *room = total - p->have;
    return 0;
}

static void on_header_bytes(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct proxy_pending *p = data;
    struct echod *d = p->d;
    size_t room;
    if (room_for(p, &room) < 0) {
        d->errors++;
        reject(p, &d->proxy.rejected_closed, strerror(ENOMEM));
        return;
    }
    ssize_t n = recv(fd, p->buf + p->have, room, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        reject(p, &d->proxy.rejected_closed,
               n == 0 ? "closed before the header was complete" : strerror(errno));
        return;
    }
    struct proxy_result r;
    int rc = proxy_parse(p->buf, p->have + (size_t)n, p->versions, ECHOD_PROXY_V2_MAX, &r);
    if (rc < 0) {
        reject(p, &d->proxy.rejected_invalid, proxy_error_name(rc));
        return;
    }
    /* Complete: exactly the rest of the header. Incomplete: all of it. */
    size_t take = rc > 0 ? (size_t)rc - p->have : (size_t)n;
    ssize_t got = recv(fd, p->buf + p->have, take, MSG_DONTWAIT);
    if (got != (ssize_t)take) {
        /* Peeked bytes are there to take: only a reset gets here. */
        reject(p, &d->proxy.rejected_closed, got < 0 ? strerror(errno) : "short read");
        return;
    }
    p->have += take;
    if (rc > 0)
        header_done(p, &r);
}

/* Refuses `fd` before anything is read (not from --proxy-from, or the
   stage could not be set up): counted in *counter. */
static void refuse_early(struct echod *d, int fd, const struct iomux_addr *peer, uint64_t *counter,
                         enum log_kind kind, const char *why)
{
    (*counter)++;
    echod_refuse(d, fd, peer, kind, why);
}

void echod_proxy_start(struct echod *d, struct listener *l, int fd, const struct iomux_addr *peer)
{
    /* Unix-domain clients are on this machine: local, like loopback. */
    if (peer->ss.ss_family != AF_UNIX &&
        !cidr_match(d->opt->proxy_from, d->opt->nproxy_from, peer)) {
        refuse_early(d, fd, peer, &d->proxy.rejected_source, LOG_PROXY,
                     "PROXY header: not allowed by --proxy-from");
        return;
    }
    /* A header-less connection still holds a descriptor: it counts. */
    if (d->opt->max_conns && echod_conns_counted(d) >= d->opt->max_conns) {
        refuse_early(d, fd, peer, &d->refused_max, LOG_MAXCONNS, "--max-conns reached");
        return;
    }
    struct proxy_pending *p = calloc(1, sizeof(*p));
    if (!p) {
        refuse_early(d, fd, peer, &d->errors, LOG_ACCEPT, strerror(ENOMEM));
        return;
    }
    p->d = d;
    p->l = l;
    p->fd = fd;
    p->versions = versions_of(l->proxy);
    p->peer = *peer;
    p->buf = p->small;
    p->cap = sizeof(p->small);
    int rc = iomux_fd_watch(d->loop, fd, IOMUX_READ, on_header_bytes, p);
    if (rc == 0) {
        rc = iomux_timer_add(d->loop, d->opt->proxy_timeout_ms, 0, on_header_timeout, p, &p->timer);
        if (rc < 0)
            iomux_fd_unwatch(d->loop, fd);
    }
    if (rc < 0) {
        free(p);
        refuse_early(d, fd, peer, rc == -ERANGE ? &d->refused_watch : &d->errors,
                     rc == -ERANGE ? LOG_WATCH : LOG_ACCEPT, strerror(-rc));
        return;
    }
    proxy_link_append(&d->pending, &p->link);
    d->npending++;
    echod_pending_count(d, 1);
}

void echod_proxy_close_all(struct echod *d)
{
    while (d->pending.next != &d->pending)
        close(pending_free((struct proxy_pending *)(void *)d->pending.next));
}

void echod_proxy_print_stats(const struct echod *d, FILE *f)
{
    const struct echod_proxy_stats *s = &d->proxy;
    fprintf(f,
            "; proxy headers %" PRIu64 " accepted, %" PRIu64 " local, %" PRIu64
            " pending; proxy rejected %" PRIu64 " (invalid %" PRIu64 ", timeout %" PRIu64
            ", source %" PRIu64 ", closed %" PRIu64 ")",
            s->accepted, s->local, d->npending,
            s->rejected_invalid + s->rejected_timeout + s->rejected_source + s->rejected_closed,
            s->rejected_invalid, s->rejected_timeout, s->rejected_source, s->rejected_closed);
}
