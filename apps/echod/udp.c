/* SPDX-License-Identifier: MIT */
/*
 * udp.c - RFC 862 datagram echo: each datagram is answered with one
 * datagram holding the same bytes, sent from the address it came to.
 *
 * Datagrams are read in batches with recvmmsg() into buffers allocated
 * once (nothing is allocated per datagram), checked against the
 * safeguards, and the survivors are sent back with sendmmsg() from the
 * same buffers. Nothing is queued: UDP may lose datagrams, so a reply the
 * kernel will not take now (ENOBUFS, EAGAIN) is counted and dropped rather
 * than held, which keeps memory bounded whatever the peers do.
 *
 * Why the safeguards: an echo answers anyone, with as many bytes as it
 * got, to an address the sender can forge. Two such services pointed at
 * each other (echo and chargen: CA-1996-01) loop for ever, and a forged
 * source turns the echo into a reflector (CVE-2024-2169). So by default we
 * never answer port 0 (no reply can be sent there anyway), the ports of
 * services that answer unsolicited datagrams themselves, or our own UDP
 * ports; never a datagram that was sent to a broadcast or multicast
 * address; and each source address gets a token bucket.
 */
#include "udp.h"

#include "faults.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <iomux/net.h>

#include "ratelog.h"
#include "trace.h"

/* Datagrams per recvmmsg()/sendmmsg() call. */
#define BATCH 8
/* Batches per readiness event: a busy UDP socket must not starve the TCP
   clients of the same loop; level-triggered backends call us again. */
#define BATCHES_PER_EVENT 8
/* Receive queue asked for on each socket (bytes). */
#define UDP_RCVBUF (1 << 20)
/* Rate-limiter table: sets of WAYS entries. */
#define WAYS 4
/* Repeated log lines are printed at most once per this period. */
/* Token counts are kept in thousandths, so that rate * elapsed_ms needs no
   division. */
#define MILLI 1000u

/* Service ports whose servers answer an unsolicited datagram: a reply to
   one of them can start a loop or an amplification between two servers.
   Sorted. */
static const unsigned short refused_ports[] = {
    7,     /* echo */
    11,    /* systat (active users) */
    13,    /* daytime */
    17,    /* qotd */
    19,    /* chargen */
    37,    /* time */
    53,    /* DNS */
    69,    /* TFTP */
    111,   /* portmapper */
    123,   /* NTP */
    137,   /* NetBIOS name service */
    138,   /* NetBIOS datagram service */
    161,   /* SNMP */
    162,   /* SNMP traps */
    389,   /* CLDAP */
    520,   /* RIP */
    1900,  /* SSDP */
    5353,  /* mDNS */
    11211, /* memcached */
};

const char echod_udp_refused_ports_text[] =
    "7, 11, 13, 17, 19, 37, 53, 69, 111, 123, 137, 138, 161, 162, 389, 520,\n"
    "  1900, 5353, 11211";

int echod_udp_port_refused(unsigned port)
{
    for (size_t i = 0; i < sizeof(refused_ports) / sizeof(refused_ports[0]); i++)
        if (refused_ports[i] == port)
            return 1;
    return 0;
}

enum log_kind {
    LOG_TRUNC,
    LOG_SEND,
    LOG_RECV,
    LOG_KINDS,
};

/* One source address's token bucket. An entry whose bucket has filled up
   again is as good as no entry, so it may be reused for another source
   without letting anyone off a limit. */
struct bucket {
    unsigned char key[16]; /* IPv6 address, or IPv4-mapped */
    uint64_t last_ms;      /* loop time of the last refill */
    uint64_t tokens;       /* thousandths of a datagram */
    bool used;
};

struct udp_sock {
    struct echod_udp *u;
    int fd;
    int family;
    unsigned port; /* local port (0 for Unix sockets) */
};

union control {
    struct cmsghdr align;
    unsigned char bytes[IOMUX_UDP_CONTROL_SIZE];
};

struct echod_udp {
    struct iomux_loop *loop;
    struct echod_udp_config cfg;
    struct udp_sock socks[ECHOD_UDP_MAX_SOCKETS];
    size_t nsocks;

    /* One batch: buffers, addresses and control data, reused for ever. */
    unsigned char *bufs; /* BATCH * cfg.recv_size bytes */
    struct mmsghdr rx[BATCH], tx[BATCH];
    struct iovec rx_iov[BATCH], tx_iov[BATCH];
    struct sockaddr_storage names[BATCH];
    union control rx_ctl[BATCH], tx_ctl[BATCH];

    /* Rate limiter: nsets * WAYS buckets, plus one shared by the sources
       that find their set full of active buckets. */
    struct bucket *buckets;
    size_t nsets; /* a power of two */
    struct bucket overflow;
    uint64_t hash_key[2];

    struct echod_udp_stats st;
    struct ratelog logs[LOG_KINDS];
    uint64_t drop_rng; /* --udp-drop's draws */
};

/* ------------------------------------------------------------------------
 * The per-source rate limit.
 */

/* A keyed mix of the address: the key is random per process, so a sender
   cannot choose addresses that all land in one set and crowd out others
   (not a cryptographic hash; enough to make aiming at a set guesswork). */
static uint64_t source_hash(const struct echod_udp *u, const unsigned char key[16])
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    uint64_t h = u->hash_key[0] ^ a;
    h *= 0x9e3779b97f4a7c15u;
    h ^= h >> 29;
    h ^= b + u->hash_key[1];
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 32;
    return h;
}

/* Adds the tokens earned since the last refill; returns 1 if the bucket
   is full (so the entry carries no information any more). */
static int bucket_refill(const struct echod_udp *u, struct bucket *b, uint64_t now)
{
    uint64_t cap = u->cfg.burst * MILLI;
    uint64_t elapsed = now - b->last_ms;
    /* Capped so that the product below cannot overflow; a bucket empty for
       that long is full anyway. */
    uint64_t limit = cap / u->cfg.rate + 1;
    if (elapsed > limit)
        elapsed = limit;
    b->tokens += elapsed * u->cfg.rate;
    if (b->tokens > cap)
        b->tokens = cap;
    b->last_ms = now;
    return b->tokens == cap;
}

static int bucket_take(struct bucket *b)
{
    if (b->tokens < MILLI)
        return 0;
    b->tokens -= MILLI;
    return 1;
}

/* Takes one token for `key`; 1 if the datagram may be answered. */
static int rate_allow(struct echod_udp *u, const unsigned char key[16])
{
    uint64_t now = iomux_loop_now(u->loop);
    struct bucket *set = &u->buckets[(source_hash(u, key) & (u->nsets - 1)) * WAYS];
    struct bucket *reuse = NULL;
    for (size_t i = 0; i < WAYS; i++) {
        struct bucket *b = &set[i];
        if (b->used && memcmp(b->key, key, 16) == 0) {
            bucket_refill(u, b, now);
            return bucket_take(b);
        }
        if (!reuse && (!b->used || bucket_refill(u, b, now)))
            reuse = &set[i];
    }
    if (!reuse) {
        /* Every entry of the set belongs to a source that is using its
           allowance. New sources then share one bucket: a flood of forged
           addresses cannot evict a limited source and so reset its limit. */
        bucket_refill(u, &u->overflow, now);
        return bucket_take(&u->overflow);
    }
    memcpy(reuse->key, key, 16);
    reuse->used = true;
    reuse->last_ms = now;
    reuse->tokens = u->cfg.burst * MILLI;
    return bucket_take(reuse);
}

/* ------------------------------------------------------------------------
 * The echo.
 */

static void source_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
    memset(key, 0, 16);
    if (ss->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else {
        key[10] = key[11] = 0xff; /* ::ffff:a.b.c.d, as the kernel maps it */
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
}

static void source_text(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t size)
{
    struct iomux_addr a;
    memset(&a, 0, sizeof(a));
    memcpy(&a.ss, ss, len <= sizeof(a.ss) ? len : sizeof(a.ss));
    a.len = len;
    if (ss->ss_family == AF_UNIX) {
        if (iomux_addr_format(&a, buf, size) < 0)
            snprintf(buf, size, "unix:?");
        return;
    }
    trace_addr(&a, buf, size);
}

static int own_port(const struct echod_udp *u, unsigned port)
{
    for (size_t i = 0; i < u->nsocks; i++)
        if (u->socks[i].port == port)
            return 1;
    return 0;
}

/*
 * Decides about datagram i of the batch: returns NULL to answer it, or
 * the reason it is dropped (for --trace), having counted it.
 */
static const char *check_datagram(struct echod_udp *u, const struct udp_sock *s, size_t i,
                                  struct iomux_udp_dst *dst)
{
    const struct msghdr *m = &u->rx[i].msg_hdr;
    const struct sockaddr_storage *src = &u->names[i];
    dst->family = 0;
    if (m->msg_flags & MSG_TRUNC) {
        u->st.truncated++;
        return "truncated";
    }
    if (s->family == AF_UNIX) {
        /* An unbound sender has no address to answer (an abstract one,
           sun_path starting with a NUL byte, has, and is answered). */
        if (m->msg_namelen <= offsetof(struct sockaddr_un, sun_path)) {
            u->st.dropped_noaddr++;
            return "sender has no address";
        }
        return NULL;
    }
    unsigned port = src->ss_family == AF_INET6
                        ? ntohs(((const struct sockaddr_in6 *)src)->sin6_port)
                        : ntohs(((const struct sockaddr_in *)src)->sin_port);
    if (port == 0) {
        u->st.dropped_port0++;
        return "source port 0";
    }
    if (!u->cfg.any_port && (echod_udp_port_refused(port) || own_port(u, port))) {
        u->st.dropped_port++;
        return "loop-prone source port";
    }
    if (iomux_udp_dst_get(m, dst) == 0 && iomux_udp_dst_is_group(dst)) {
        u->st.dropped_group++;
        return "sent to a broadcast or multicast address";
    }
    if (u->cfg.rate) {
        unsigned char key[16];
        source_key(src, key);
        if (!rate_allow(u, key)) {
            u->st.dropped_rate++;
            return "over --udp-rate";
        }
    }
    if (u->cfg.drop_ppm && fault_chance(&u->drop_rng, u->cfg.drop_ppm)) {
        if (u->cfg.dropped)
            (*u->cfg.dropped)++;
        return "fault drop (--udp-drop)";
    }
    return NULL;
}

static void count_send_error(struct echod_udp *u, int err, size_t i)
{
    switch (err) {
    case ECONNREFUSED:
        u->st.send_refused++;
        return;
    case EMSGSIZE:
        u->st.send_too_big++;
        break;
    case ENOBUFS:
    case EAGAIN:
        u->st.send_nobufs++;
        return;
    default:
        u->st.send_other++;
        break;
    }
    char who[128];
    source_text(&u->names[i], u->rx[i].msg_hdr.msg_namelen, who, sizeof(who));
    ratelog_say(&u->logs[LOG_SEND], iomux_loop_now(u->loop), "udp reply to %s: %s", who,
                strerror(err));
}

/* Sends the n replies prepared in tx[]; a failed one is counted and the
   rest still go. tx_index[] maps them back to their datagrams. */
static void send_replies(struct echod_udp *u, int fd, size_t n, const size_t *tx_index)
{
    size_t done = 0;
    while (done < n) {
        int rc = sendmmsg(fd, &u->tx[done], (unsigned)(n - done), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (rc > 0) {
            for (size_t k = done; k < done + (size_t)rc; k++) {
                u->st.echoed++;
                u->st.bytes_out += u->tx[k].msg_len;
            }
            done += (size_t)rc;
            continue;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        /* sendmmsg() reports the error of the first datagram it could not
           send; that one is dropped and the others are tried. */
        count_send_error(u, rc < 0 ? errno : EIO, tx_index[done]);
        done++;
    }
}

/* The receive headers of a batch, each over its own buffer. */
static void prepare_rx(struct echod_udp *u, const struct udp_sock *s)
{
    for (size_t i = 0; i < BATCH; i++) {
        struct msghdr *m = &u->rx[i].msg_hdr;
        u->rx_iov[i].iov_base = u->bufs + i * u->cfg.recv_size;
        u->rx_iov[i].iov_len = u->cfg.recv_size;
        m->msg_iov = &u->rx_iov[i];
        m->msg_iovlen = 1;
        m->msg_name = &u->names[i];
        m->msg_namelen = sizeof(u->names[i]);
        m->msg_control = s->family == AF_UNIX ? NULL : u->rx_ctl[i].bytes;
        m->msg_controllen = s->family == AF_UNIX ? 0 : sizeof(u->rx_ctl[i].bytes);
        m->msg_flags = 0;
    }
}

/* One recvmmsg() batch. Returns the number of datagrams read, 0 when none
   is waiting, or -1 after a hard error. */
static int serve_batch(struct echod_udp *u, struct udp_sock *s)
{
    prepare_rx(u, s);
    int n = recvmmsg(s->fd, u->rx, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
            return 0;
        /* An ICMP error for an earlier reply (port unreachable...) is
           reported on the socket: count it, it is not ours to fix. */
        if (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
            err == ENETDOWN) {
            u->st.send_refused++;
            return 1;
        }
        ratelog_say(&u->logs[LOG_RECV], iomux_loop_now(u->loop), "udp receive: %s", strerror(err));
        return -1;
    }

    size_t ntx = 0;
    size_t tx_index[BATCH];
    for (size_t i = 0; i < (size_t)n; i++) {
        size_t len = u->rx[i].msg_len;
        struct iomux_udp_dst dst;
        u->st.received++;
        u->st.bytes_in += len;
        const char *drop = check_datagram(u, s, i, &dst);
        char who[128];
        if (drop || u->cfg.trace)
            source_text(&u->names[i], u->rx[i].msg_hdr.msg_namelen, who, sizeof(who));
        if (drop && u->rx[i].msg_hdr.msg_flags & MSG_TRUNC)
            ratelog_say(&u->logs[LOG_TRUNC], iomux_loop_now(u->loop),
                        "udp datagram from %s longer than %zu bytes: not echoed", who,
                        u->cfg.recv_size);
        if (u->cfg.trace) {
            if (drop)
                fprintf(stderr, "  datagram of %zu bytes from %s dropped: %s\n", len, who, drop);
            else
                fprintf(stderr, "  datagram of %zu bytes from %s echoed\n", len, who);
        }
        if (drop)
            continue;
        struct msghdr *t = &u->tx[ntx].msg_hdr;
        memset(t, 0, sizeof(*t));
        u->tx_iov[ntx].iov_base = u->rx_iov[i].iov_base;
        u->tx_iov[ntx].iov_len = len;
        t->msg_iov = &u->tx_iov[ntx];
        t->msg_iovlen = 1;
        t->msg_name = &u->names[i];
        t->msg_namelen = u->rx[i].msg_hdr.msg_namelen;
        size_t clen = iomux_udp_dst_control(&dst, u->tx_ctl[ntx].bytes, sizeof(u->tx_ctl[ntx]));
        t->msg_control = clen ? u->tx_ctl[ntx].bytes : NULL;
        t->msg_controllen = clen;
        tx_index[ntx++] = i;
    }
    if (ntx)
        send_replies(u, s->fd, ntx, tx_index);
    return n;
}

static void on_readable(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct udp_sock *s = data;
    for (int b = 0; b < BATCHES_PER_EVENT; b++) {
        int n = serve_batch(s->u, s);
        if (n < BATCH)
            break;
    }
}

int echod_udp_new(struct iomux_loop *loop, const struct echod_udp_config *cfg,
                  struct echod_udp **out)
{
    if (!loop || !cfg || !out)
        return -EINVAL;
    struct echod_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->loop = loop;
    u->cfg = *cfg;
    u->drop_rng = cfg->drop_seed;
    if (!u->cfg.recv_size)
        u->cfg.recv_size = ECHOD_UDP_RECV_SIZE;
    if (!u->cfg.burst)
        u->cfg.burst = u->cfg.rate ? u->cfg.rate : 1;
    size_t want = u->cfg.sources ? u->cfg.sources : ECHOD_UDP_SOURCES;
    u->nsets = 1;
    while (u->nsets * WAYS < want && u->nsets < ((size_t)1 << 20))
        u->nsets *= 2;
    u->bufs = malloc(BATCH * u->cfg.recv_size);
    u->buckets = u->cfg.rate ? calloc(u->nsets * WAYS, sizeof(*u->buckets)) : NULL;
    if (!u->bufs || (u->cfg.rate && !u->buckets)) {
        echod_udp_free(u);
        return -ENOMEM;
    }
    u->overflow.used = true;
    u->overflow.tokens = u->cfg.burst * MILLI;
    u->overflow.last_ms = iomux_loop_now(loop);
    if (getrandom(u->hash_key, sizeof(u->hash_key), GRND_NONBLOCK) !=
        (ssize_t)sizeof(u->hash_key)) {
        /* No entropy yet (early boot): a weaker key still spreads honest
           sources evenly. */
        u->hash_key[0] = (uint64_t)getpid() * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)u;
        u->hash_key[1] = iomux_loop_now(loop);
    }
    *out = u;
    return 0;
}

int echod_udp_add(struct echod_udp *u, int fd)
{
    if (u->nsocks == ECHOD_UDP_MAX_SOCKETS)
        return -ENOSPC;
    struct iomux_addr local;
    int rc = iomux_socket_local(fd, &local);
    if (rc < 0)
        return rc;
    /* A bigger receive queue absorbs bursts that arrive while the loop is
       busy elsewhere; the kernel caps it at net.core.rmem_max, and the
       default is kept if it refuses. */
    int want = UDP_RCVBUF;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
    struct udp_sock *s = &u->socks[u->nsocks];
    s->u = u;
    s->fd = fd;
    s->family = local.ss.ss_family;
    s->port = iomux_addr_port(&local);
    rc = iomux_fd_watch(u->loop, fd, IOMUX_READ, on_readable, s);
    if (rc < 0)
        return rc;
    u->nsocks++;
    return 0;
}

size_t echod_udp_count(const struct echod_udp *u)
{
    return u ? u->nsocks : 0;
}

size_t echod_udp_buffered(const struct echod_udp *u)
{
    return u ? BATCH * u->cfg.recv_size : 0;
}

void echod_udp_stats(const struct echod_udp *u, struct echod_udp_stats *out)
{
    *out = u->st;
}

void echod_udp_print_stats(const struct echod_udp *u, FILE *f)
{
    echod_udp_print_stats_of(&u->st, f);
}

void echod_udp_print_stats_of(const struct echod_udp_stats *s, FILE *f)
{
    fprintf(f,
            "echod: udp stats: datagrams %" PRIu64 " received, %" PRIu64 " echoed; bytes %" PRIu64
            " in, %" PRIu64 " out; truncated %" PRIu64 "; dropped: source port 0 %" PRIu64
            ", loop-prone port %" PRIu64 ", broadcast/multicast %" PRIu64 ", rate %" PRIu64
            ", no sender address %" PRIu64 "; reply failures: refused %" PRIu64 ", too big %" PRIu64
            ", no buffers %" PRIu64 ", other %" PRIu64 "\n",
            s->received, s->echoed, s->bytes_in, s->bytes_out, s->truncated, s->dropped_port0,
            s->dropped_port, s->dropped_group, s->dropped_rate, s->dropped_noaddr, s->send_refused,
            s->send_too_big, s->send_nobufs, s->send_other);
}

void echod_udp_free(struct echod_udp *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->nsocks; i++) {
        iomux_fd_unwatch(u->loop, u->socks[i].fd);
        close(u->socks[i].fd);
    }
    free(u->bufs);
    free(u->buckets);
    free(u);
}

int echod_udp_fd(const struct echod_udp *u, size_t i)
{
    return u->socks[i].fd;
}
