/* SPDX-License-Identifier: MIT */
/*
 * echod.c - the echo server's policy on top of iomux streams.
 *
 * The stream layer does the I/O (buffering, backpressure, half-close); this
 * file decides who gets a connection (--max-conns, descriptor exhaustion,
 * fds the select backend cannot watch), when a connection is cut (idle
 * timeout, shutdown grace period), and what is said about it (--trace in
 * the seed's words, rate-limited error lines, SIGUSR1 statistics).
 */
#include "echod_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <iomux/buf.h>
#include <iomux/loop.h>
#include <iomux/net.h>
#include <iomux/stream.h>

#include "daemon.h"
#include "trace.h"
#include "udp.h"

/* Connections accepted per readiness event: enough to empty a burst
   quickly, few enough that clients already connected are not starved. */
#define ACCEPT_BATCH 64
/* How long accepting pauses when descriptors run out and the reserve
   trick cannot help. */
#define ACCEPT_PAUSE_MS 100
/* Repeated error lines are printed at most once per this period. */
/* The seed reads with recv(1024); --trace does the same so that its
   "received" lines cut the data where the seed would. */
#define TRACE_READ_MAX 1024

/*
 * With the default engine a client is a stream, and its struct conn lives
 * inside the stream's own allocation (iomux_stream_extra();
 * iomux_stream_of_extra() goes back): with 10,000 idle clients, the stream,
 * this and the loop's table entry are all the memory one costs. The server
 * is the callbacks' `data`, and the peer address is kept only when
 * something needs it (--trace, --max-conns-per-ip): such servers reserve a
 * struct conn_peer instead. 16 bytes in the common case.
 */
struct conn_peer {
    struct conn link; /* first: a struct conn * is also a struct conn_peer * */
    union conn_peer_addr peer;
};

bool echod_keeps_peer(const struct echod *d)
{
    return d->opt->trace || d->perip;
}

static union conn_peer_addr *conn_peer_addr(const struct echod *d, struct conn *c)
{
    return d->engine ? conn_peer(c) : &((struct conn_peer *)c)->peer;
}

/* Only when echod_keeps_peer(): the others have no address stored. */
static void conn_addr(const struct echod *d, struct conn *conn, struct iomux_addr *out)
{
    const union conn_peer_addr *p = conn_peer_addr(d, conn);
    memset(out, 0, sizeof(*out));
    if (p->sa.sa_family == AF_INET6) {
        memcpy(&out->ss, &p->in6, sizeof(p->in6));
        out->len = sizeof(p->in6);
    } else {
        memcpy(&out->ss, &p->in4, sizeof(p->in4));
        out->len = sizeof(p->in4);
    }
}

static void store_peer(union conn_peer_addr *p, const struct iomux_addr *peer)
{
    if (peer->ss.ss_family == AF_INET6)
        memcpy(&p->in6, &peer->ss, sizeof(p->in6));
    else
        memcpy(&p->in4, &peer->ss, sizeof(p->in4));
}

/* The peer as the seed prints it: ('127.0.0.1', 40000). */
static const char *conn_name(const struct echod *d, struct conn *c, char *buf, size_t size)
{
    struct iomux_addr a;
    conn_addr(d, c, &a);
    trace_addr(&a, buf, size);
    return buf;
}

static void conn_unlink(struct echod *d, struct conn *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    d->open--;
    if (d->perip) {
        struct iomux_addr a;
        conn_addr(d, c, &a);
        echod_perip_release(d->perip, &a);
    }
}

static uint64_t conn_last_io(const struct echod *d, struct conn *c)
{
    return d->engine ? d->engine_ops->last_io(d->engine, c)
                     : iomux_stream_last_io(iomux_stream_of_extra(c));
}

/* --inetd serves one connection: its end is the server's. */
static void check_done(struct echod *d)
{
    if ((d->stopping || d->opt->inetd) && d->open == 0)
        d->done = true;
}

void echod_trace_echo(struct echod *d, struct conn *c, const char *bytes, size_t len)
{
    char name[TRACE_ADDR_STRLEN];
    conn_name(d, c, name, sizeof(name));
    fputs("  received ", stderr);
    trace_bytes(stderr, bytes, len);
    fprintf(stderr, " from %s\n", name);
    fputs("  sending ", stderr);
    trace_bytes(stderr, bytes, len);
    fprintf(stderr, " to %s\n", name);
}

void echod_trace_queue_empty(struct echod *d, struct conn *c)
{
    char name[TRACE_ADDR_STRLEN];
    fprintf(stderr, "   %s queue empty\n", conn_name(d, c, name, sizeof(name)));
}

static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct echod *d = data;
    struct conn *c = iomux_stream_extra(s);

    d->bytes_in += len;
    if (d->opt->trace)
        echod_trace_echo(d, c, bytes, len);
    /* A failed write needs nothing here: the stream reports the reason
       once, through on_close. */
    if (iomux_stream_write(s, bytes, len) == 0) {
        d->bytes_out += len;
        if (d->opt->trace && iomux_stream_queued(s) == 0)
            echod_trace_queue_empty(d, c);
    }
}

/* Only registered with --trace: the queue emptied after waiting for the
   socket to become writable. */
static void on_drain(struct iomux_stream *s, void *data)
{
    echod_trace_queue_empty(data, iomux_stream_extra(s));
}

void echod_conn_closed(struct echod *d, struct conn *c, int error)
{
    if (error)
        d->errors++;
    /* A peer's reset or a broken pipe is the client's business; running
       out of memory is the server's, and must not pass unsaid. */
    if (error == -ENOMEM && !d->opt->trace)
        ratelog_say(&d->logs[LOG_IO], iomux_loop_now(d->loop), "closing a connection: %s",
                    strerror(-error));
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        conn_name(d, c, name, sizeof(name));
        if (error)
            fprintf(stderr, "  closing %s (%s)\n", name, strerror(-error));
        else
            fprintf(stderr, "  closing %s\n", name);
    }
    conn_unlink(d, c);
    check_done(d);
}

static void on_close(struct iomux_stream *s, int error, void *data)
{
    /* The memory of the struct conn goes with the stream. */
    echod_conn_closed(data, iomux_stream_extra(s), error);
}

/* Closes a connection on our initiative (idle, grace period over). */
static void conn_cut(struct echod *d, struct conn *c, const char *why)
{
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        fprintf(stderr, "  closing %s (%s)\n", conn_name(d, c, name, sizeof(name)), why);
    }
    conn_unlink(d, c); /* first: closing frees `c` */
    if (d->engine)
        d->engine_ops->cut(d->engine, c);
    else
        iomux_stream_close(iomux_stream_of_extra(c));
}

/* Starts the graceful end of a connection (SIGTERM): never closes it from
   here, so the caller may walk the list. */
static void conn_end(struct echod *d, struct conn *c)
{
    if (d->engine)
        d->engine_ops->end(d->engine, c);
    else
        iomux_stream_end(iomux_stream_of_extra(c));
}

static void refuse(struct echod *d, int fd, const struct iomux_addr *peer, enum log_kind kind,
                   const char *why)
{
    close(fd);
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        trace_addr(peer, name, sizeof(name));
        fprintf(stderr, "  refusing %s: %s\n", name, why);
    } else {
        char text[IOMUX_ADDR_STRLEN];
        if (iomux_addr_format(peer, text, sizeof(text)) < 0)
            snprintf(text, sizeof(text), "?");
        ratelog_say(&d->logs[kind], iomux_loop_now(d->loop), "refusing connection from %s: %s",
                    text, why);
    }
}

/* --max-conns and --max-conns-per-ip: true if `fd` may be served (its
   per-address slot is then taken); otherwise it is closed and refused. */
static bool admissible(struct echod *d, int fd, const struct iomux_addr *peer)
{
    if (d->opt->max_conns && d->open >= d->opt->max_conns) {
        d->refused_max++;
        refuse(d, fd, peer, LOG_MAXCONNS, "--max-conns reached");
        return false;
    }
    int prc = echod_perip_acquire(d->perip, peer);
    if (prc < 0) {
        d->refused_perip++;
        refuse(d, fd, peer, LOG_PERIP,
               prc == -EDQUOT ? "--max-conns-per-ip reached" : strerror(-prc));
        return false;
    }
    return true;
}

void echod_conn_opened(struct echod *d, struct conn *c, union conn_peer_addr *stored,
                       const struct iomux_addr *peer)
{
    if (echod_keeps_peer(d))
        store_peer(stored, peer);
    c->prev = d->conns.prev;
    c->next = &d->conns;
    d->conns.prev->next = c;
    d->conns.prev = c;
    d->open++;
    d->total++;
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        fprintf(stderr, "  connection from %s\n", conn_name(d, c, name, sizeof(name)));
    }
}

void echod_admit(struct echod *d, int fd, const struct iomux_addr *peer)
{
    if (!admissible(d, fd, peer))
        return;
    if (d->engine) {
        int rc = d->engine_ops->admit(d->engine, fd, peer);
        if (rc < 0) {
            /* Out of memory: the socket is still ours to refuse. */
            d->errors++;
            ratelog_say(&d->logs[LOG_ACCEPT], iomux_loop_now(d->loop), "refusing a connection: %s",
                        strerror(-rc));
            echod_perip_release(d->perip, peer);
            close(fd);
        }
        return;
    }
    struct iomux_stream_options so = {
        .on_data = on_data,
        .on_drain = d->opt->trace ? on_drain : NULL,
        .on_close = on_close,
        .data = d,
        .extra_size = echod_keeps_peer(d) ? sizeof(struct conn_peer) : sizeof(struct conn),
        .high_water = d->opt->high_water,
        .low_water = d->opt->low_water,
        .read_max = d->opt->trace ? TRACE_READ_MAX : 0,
    };
    struct iomux_stream *s;
    int rc = iomux_stream_new(d->loop, d->pool, fd, &so, &s);
    if (rc < 0) {
        echod_perip_release(d->perip, peer);
        char why[128];
        if (rc == -ERANGE) {
            d->refused_watch++;
            if (strcmp(iomux_loop_backend(d->loop), "select") == 0)
                snprintf(why, sizeof(why), "fd %d is beyond what select can watch (FD_SETSIZE %d)",
                         fd, FD_SETSIZE);
            else
                snprintf(why, sizeof(why), "fd %d is beyond the loop's limit", fd);
            refuse(d, fd, peer, LOG_WATCH, why);
        } else {
            /* Out of memory, most likely: not a descriptor shortage. */
            d->errors++;
            snprintf(why, sizeof(why), "%s", strerror(-rc));
            refuse(d, fd, peer, LOG_ACCEPT, why);
        }
        return;
    }
    struct conn_peer *c = iomux_stream_extra(s);
    echod_conn_opened(d, &c->link, &c->peer, peer);
}

static void set_accepting(struct echod *d, bool on)
{
    d->accepting_paused = !on;
    if (d->engine) {
        d->engine_ops->set_accepting(d->engine, on);
        return;
    }
    for (size_t i = 0; i < d->nlisteners; i++)
        iomux_fd_modify(d->loop, d->listeners[i].fd, on ? IOMUX_READ : 0);
}

static void on_pause_over(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
    (void)loop;
    (void)id;
    d->pause_timer = 0;
    if (!d->stopping)
        set_accepting(d, true);
}

/*
 * Out of descriptors. The kernel keeps the listener readable while clients
 * wait in the backlog, so retrying would spin: shed them with the reserve
 * descriptor (they learn at once that they were refused). If that cannot
 * be done, stop watching the listeners for a moment instead.
 */
static void shed_load(struct echod *d, struct listener *l, int err)
{
    ratelog_say(&d->logs[LOG_FDS], iomux_loop_now(d->loop),
                "accept: %s; refusing new connections until some close", strerror(-err));
    int shed = iomux_tcp_shed(l->fd, &d->reserve_fd, ACCEPT_BATCH);
    if (shed > 0)
        d->refused_fds += (uint64_t)shed;
    if (shed <= 0 || d->reserve_fd < 0) {
        if (!d->pause_timer &&
            iomux_timer_add(d->loop, ACCEPT_PAUSE_MS, 0, on_pause_over, d, &d->pause_timer) == 0)
            set_accepting(d, false);
    }
}

static void on_accept(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct listener *l = data;
    struct echod *d = l->d;
    (void)loop;
    (void)fd;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH && !d->stopping && !d->accepting_paused; i++) {
        struct iomux_addr peer;
        int cfd;
        int rc = iomux_tcp_accept(l->fd, &peer, &cfd);
        if (rc == 0) {
            echod_admit(d, cfd, &peer);
            continue;
        }
        if (rc == -EAGAIN)
            break;
        if (!echod_accept_error(d, l, rc))
            break;
    }
}

bool echod_accept_error(struct echod *d, struct listener *l, int err)
{
    if (err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM) {
        shed_load(d, l, err);
        return false;
    }
    /* The client gave up before we took it (ECONNABORTED), or a protocol
       error on that one connection: the next may be fine. */
    if (err == -ECONNABORTED || err == -EPROTO || err == -EPERM || err == -EINTR)
        return true;
    ratelog_say(&d->logs[LOG_ACCEPT], iomux_loop_now(d->loop), "accept: %s", strerror(-err));
    return false;
}

static void on_idle_sweep(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
    (void)id;
    uint64_t now = iomux_loop_now(loop);
    for (struct conn *c = d->conns.next, *next; c != &d->conns; c = next) {
        next = c->next;
        if (now - conn_last_io(d, c) >= d->opt->idle_timeout_ms) {
            d->idle_closed++;
            conn_cut(d, c, "idle");
        }
    }
    check_done(d);
}

static void close_listeners(struct echod *d)
{
    if (d->engine)
        d->engine_ops->set_accepting(d->engine, false);
    for (size_t i = 0; i < d->nlisteners; i++) {
        if (!d->engine)
            iomux_fd_unwatch(d->loop, d->listeners[i].fd);
        close(d->listeners[i].fd);
    }
    d->nlisteners = 0;
}

static void cut_all(struct echod *d, const char *why)
{
    while (d->conns.next != &d->conns)
        conn_cut(d, d->conns.next, why);
}

static void on_grace_over(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
    (void)loop;
    (void)id;
    d->grace_timer = 0;
    if (!d->opt->quiet && d->open)
        fprintf(stderr, "echod: grace period over, cutting %" PRIu64 " connections\n", d->open);
    cut_all(d, "shutting down");
    d->done = true;
}

/* What does the I/O, as start-up and statistics lines say it. */
static const char *serving_label(const struct echod *d)
{
    static char label[48];
    if (strcmp(d->opt->engine, "uring") == 0)
        return "engine uring";
    snprintf(label, sizeof(label), "backend %s", iomux_loop_backend(d->loop));
    return label;
}

static void print_stats(struct echod *d)
{
    struct iomux_buf_pool_stats ps;
    iomux_buf_pool_stats(d->pool, &ps);
    fprintf(stderr,
            "echod: stats: %s; connections %" PRIu64 " open, %" PRIu64 " total; bytes %" PRIu64
            " in, %" PRIu64 " out; refused %" PRIu64 " (max-conns %" PRIu64 ", per-ip %" PRIu64
            ", out of fds %" PRIu64 ", unwatchable %" PRIu64 "); idle closed %" PRIu64
            "; errors %" PRIu64 "; buffers %zu chunks in use, %zu cached%s",
            serving_label(d), d->open, d->total, d->bytes_in, d->bytes_out,
            d->refused_max + d->refused_perip + d->refused_fds + d->refused_watch, d->refused_max,
            d->refused_perip, d->refused_fds, d->refused_watch, d->idle_closed, d->errors,
            ps.chunks_in_use, ps.chunks_cached, d->engine ? "; " : "\n");
    if (d->engine)
        d->engine_ops->print_stats(d->engine, stderr);
    if (d->udp)
        echod_udp_print_stats(d->udp, stderr);
}

static void on_signal(struct iomux_loop *loop, int signo, void *data)
{
    struct echod *d = data;
    if (signo == SIGUSR1) {
        print_stats(d);
        return;
    }
    const char *name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (d->stopping) {
        /* A second request means "now". */
        if (!d->opt->quiet)
            fprintf(stderr, "echod: %s again, exiting now\n", name);
        cut_all(d, "shutting down");
        d->done = true;
        return;
    }
    d->stopping = true;
    close_listeners(d);
    /* Datagrams have nothing to drain. Statistics are lost with them,
       which is why SIGUSR1 is the way to read them. */
    echod_udp_free(d->udp);
    d->udp = NULL;
    if (d->pause_timer) {
        iomux_timer_cancel(loop, d->pause_timer);
        d->pause_timer = 0;
    }
    if (!d->opt->quiet)
        fprintf(stderr, "echod: %s, draining %" PRIu64 " connections\n", name, d->open);
    /* end() lets each stream send what is queued and see its peer off;
       it never calls on_close from here, so walking the list is safe. */
    for (struct conn *c = d->conns.next; c != &d->conns; c = c->next)
        conn_end(d, c);
    check_done(d);
    if (!d->done &&
        iomux_timer_add(loop, d->opt->grace_ms, 0, on_grace_over, d, &d->grace_timer) < 0) {
        cut_all(d, "shutting down");
        d->done = true;
    }
}

/* Parses a --listen address; prints the problem and returns the exit
   status (2 bad text or unknown host, 1 other failure), or 0. */
static int parse_address(const char *opt, const char *text, struct iomux_addr *addr)
{
    int rc = echod_is_unix(text) ? iomux_addr_unix(text, addr) : iomux_addr_parse(text, addr);
    if (rc == -EINVAL) {
        fprintf(stderr,
                "echod: %s '%s': expected HOST:PORT, [IPV6]:PORT (port 0..65535) or unix:PATH\n",
                opt, text);
        return 2;
    }
    if (rc == -ENOENT) {
        fprintf(stderr, "echod: %s '%s': host not found\n", opt, text);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "echod: %s '%s': %s\n", opt, text, strerror(-rc));
        return rc == -ENAMETOOLONG ? 2 : 1;
    }
    return 0;
}

static int check_address(const char *opt, const char *text)
{
    struct iomux_addr addr;
    return parse_address(opt, text, &addr);
}

/* Keeps a bound port-0 address for the stdout line that says the server
   is serving (print_announced()). */
static void announce(struct echod *d, const char *addr)
{
    if (d->nannounced < sizeof(d->announced) / sizeof(d->announced[0]))
        snprintf(d->announced[d->nannounced++], sizeof(d->announced[0]), "%s", addr);
}

/* Only once everything is set up: whoever reads an address may connect. */
static void print_announced(struct echod *d)
{
    for (size_t i = 0; i < d->nannounced; i++)
        printf("%s\n", d->announced[i]);
    if (d->nannounced)
        fflush(stdout);
}

/* Serves a socket that is already listening (a Unix-domain one, or one
   passed by systemd); takes `fd`. Returns 0 or an exit status. */
static int adopt_listener(struct echod *d, int fd, const char *shown)
{
    if (d->nlisteners == ECHOD_MAX_LISTEN) {
        fprintf(stderr, "echod: %s: more than %d listening sockets\n", shown, ECHOD_MAX_LISTEN);
        close(fd);
        return 1;
    }
    struct listener *l = &d->listeners[d->nlisteners];
    l->d = d;
    l->fd = fd;
    int rc = iomux_socket_local(fd, &l->addr);
    if (rc < 0) {
        fprintf(stderr, "echod: listen on %s: %s\n", shown, strerror(-rc));
        close(fd);
        return 1;
    }
    d->nlisteners++;
    if (!d->opt->quiet)
        fprintf(stderr, "echod: listening on %s (%s)\n", shown, serving_label(d));
    return 0;
}

static int setup_listener(struct echod *d, const char *text)
{
    struct iomux_addr addr;
    if (echod_is_unix(text)) {
        int fd;
        int status = echod_unix_bind("--listen", text, SOCK_STREAM, &fd);
        return status ? status : adopt_listener(d, fd, text);
    }
    int rc = parse_address("--listen", text, &addr);
    if (rc != 0)
        return rc;
    char shown[IOMUX_ADDR_STRLEN];
    if (iomux_addr_format(&addr, shown, sizeof(shown)) < 0)
        snprintf(shown, sizeof(shown), "%s", text);

    struct listener *l = &d->listeners[d->nlisteners];
    rc = iomux_tcp_listen(&addr, 0, &l->fd);
    if (rc < 0) {
        fprintf(stderr, "echod: listen on %s: %s%s\n", shown, strerror(-rc),
                echod_bind_hint(-rc, iomux_addr_port(&addr)));
        return 1;
    }
    l->d = d;
    rc = iomux_socket_local(l->fd, &l->addr);
    if (rc < 0) {
        fprintf(stderr, "echod: listen on %s: %s\n", shown, strerror(-rc));
        close(l->fd);
        return 1;
    }
    d->nlisteners++;

    unsigned port = iomux_addr_port(&l->addr);
    if (iomux_addr_port(&addr) == 0) {
        /* Port 0: say which port we got, on stdout, so that scripts and
           tests can connect without guessing or sleeping (once serving). */
        char bound[IOMUX_ADDR_STRLEN];
        if (iomux_addr_format(&l->addr, bound, sizeof(bound)) == 0)
            announce(d, bound);
    }
    if (d->opt->trace) {
        /* The seed prints the host as it was given ('localhost'). */
        char host[IOMUX_ADDR_STRLEN];
        const char *colon = strrchr(text, ':');
        size_t n = (size_t)(colon - text);
        if (text[0] == '[' && n >= 2) {
            text++;
            n -= 2;
        }
        if (n >= sizeof(host))
            n = sizeof(host) - 1;
        memcpy(host, text, n);
        host[n] = '\0';
        fprintf(stderr, "starting up on %s port %u\n", host, port);
    } else if (!d->opt->quiet) {
        char bound[IOMUX_ADDR_STRLEN];
        if (iomux_addr_format(&l->addr, bound, sizeof(bound)) < 0)
            snprintf(bound, sizeof(bound), "%s", shown);
        fprintf(stderr, "echod: listening on %s (%s)\n", bound, serving_label(d));
    }
    return 0;
}

/* The datagram service, made on first use. */
static int udp_service(struct echod *d)
{
    if (d->udp)
        return 0;
    struct echod_udp_config cfg = {
        .rate = d->opt->udp_rate,
        .burst = d->opt->udp_burst,
        .any_port = d->opt->udp_any_port,
        .trace = d->opt->trace,
    };
    int rc = echod_udp_new(d->loop, &cfg, &d->udp);
    if (rc < 0) {
        fprintf(stderr, "echod: udp: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}

/* Serves the bound datagram socket `fd` (taken). */
static int adopt_udp(struct echod *d, int fd, const char *shown)
{
    int rc = udp_service(d);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    rc = echod_udp_add(d->udp, fd);
    if (rc < 0) {
        fprintf(stderr, "echod: udp %s: %s\n", shown,
                rc == -ENOSPC ? "too many datagram sockets" : strerror(-rc));
        close(fd);
        return 1;
    }
    if (!d->opt->quiet)
        fprintf(stderr, "echod: echoing datagrams on %s (rate limit %s)\n", shown,
                d->opt->udp_rate ? "on" : "off");
    return 0;
}

static int setup_udp(struct echod *d, const char *text)
{
    int fd;
    if (echod_is_unix(text)) {
        int status = echod_unix_bind("--udp", text, SOCK_DGRAM, &fd);
        return status ? status : adopt_udp(d, fd, text);
    }
    struct iomux_addr addr, bound;
    int rc = parse_address("--udp", text, &addr);
    if (rc != 0)
        return rc;
    char shown[IOMUX_ADDR_STRLEN];
    if (iomux_addr_format(&addr, shown, sizeof(shown)) < 0)
        snprintf(shown, sizeof(shown), "%s", text);
    rc = iomux_udp_bind(&addr, &fd);
    if (rc < 0) {
        fprintf(stderr, "echod: udp %s: %s%s\n", shown, strerror(-rc),
                echod_bind_hint(-rc, iomux_addr_port(&addr)));
        return 1;
    }
    if (iomux_socket_local(fd, &bound) == 0)
        iomux_addr_format(&bound, shown, sizeof(shown));
    if (iomux_addr_port(&addr) == 0) {
        /* As for --listen: the port we got, on stdout, after the TCP ones. */
        announce(d, shown);
    }
    char label[IOMUX_ADDR_STRLEN + 8];
    snprintf(label, sizeof(label), "udp %s", shown);
    return adopt_udp(d, fd, label);
}

/* Sockets passed by systemd, instead of --listen and --udp. */
static int setup_activated(struct echod *d, const struct echod_passed *p, size_t n)
{
    const struct echod_options *opt = d->opt;
    if (opt->nudp || (opt->nlisten && strcmp(opt->listen[0], ECHOD_DEFAULT_LISTEN) != 0))
        fprintf(stderr, "echod: socket-activated: --listen and --udp are ignored\n");
    for (size_t i = 0; i < n; i++) {
        struct iomux_addr a;
        char addr[IOMUX_ADDR_STRLEN + 40], shown[sizeof(addr) + 96];
        if (iomux_socket_local(p[i].fd, &a) < 0 || iomux_addr_format(&a, addr, sizeof(addr)) < 0)
            snprintf(addr, sizeof(addr), "?");
        snprintf(shown, sizeof(shown), "%s %s (fd %d%s%s)",
                 p[i].type == SOCK_STREAM ? "stream" : "datagram", addr, p[i].fd,
                 p[i].name[0] ? ", " : "", p[i].name);
        int status;
        if (p[i].type == SOCK_STREAM) {
            status = adopt_listener(d, p[i].fd, shown);
        } else {
            int rc = p[i].family == AF_UNIX ? 0 : iomux_udp_enable_pktinfo(p[i].fd);
            if (rc < 0) {
                fprintf(stderr, "echod: %s: %s\n", shown, strerror(-rc));
                close(p[i].fd);
                return 1;
            }
            status = adopt_udp(d, p[i].fd, shown);
        }
        if (status != 0) {
            /* The ones not reached yet are closed by exit. */
            return status;
        }
    }
    return 0;
}

/* The one connection of --inetd. */
static int setup_inetd(struct echod *d)
{
    int fd;
    struct iomux_addr peer;
    int status = echod_inetd_setup(&fd, &peer);
    if (status != 0)
        return status;
    d->inetd_fd = fd; /* admitted by start_serving() */
    d->inetd_peer = peer;
    return 0;
}

/* Once privileges are dropped: makes the engine, if not the default one,
   and starts accepting (or serves the --inetd connection). Returns 0 or an
   exit status. */
static int start_serving(struct echod *d)
{
    int status = echod_engine_start(d);
    if (status != 0)
        return status;
    for (size_t i = 0; i < d->nlisteners; i++) {
        struct listener *l = &d->listeners[i];
        int rc = d->engine ? d->engine_ops->listen(d->engine, l->fd, &l->addr, l)
                           : iomux_fd_watch(d->loop, l->fd, IOMUX_READ, on_accept, l);
        if (rc < 0) {
            fprintf(stderr, "echod: accepting: %s\n", strerror(-rc));
            return 1;
        }
    }
    if (d->inetd_fd >= 0) {
        int fd = d->inetd_fd;
        d->inetd_fd = -1;
        echod_admit(d, fd, &d->inetd_peer);
        if (d->open == 0)
            return 1; /* admit() said why */
    }
    return 0;
}

/* Listening and datagram sockets: passed by systemd, stdin for --inetd,
   or bound from --listen and --udp. Returns 0 or an exit status. */
static int setup_sockets(struct echod *d)
{
    const struct echod_options *opt = d->opt;
    struct echod_passed passed[ECHOD_MAX_PASSED];
    size_t npassed;
    int status = echod_activation(passed, &npassed);
    if (status != 0)
        return status;
    if (npassed)
        return setup_activated(d, passed, npassed);
    if (opt->inetd)
        return setup_inetd(d);
    for (size_t i = 0; i < opt->nlisten; i++) {
        status = setup_listener(d, opt->listen[i]);
        if (status != 0)
            return status;
    }
    for (size_t i = 0; i < opt->nudp; i++) {
        status = setup_udp(d, opt->udp[i]);
        if (status != 0)
            return status;
    }
    return 0;
}

int echod_new(const struct echod_options *opt, struct echod **out)
{
    struct echod *d = calloc(1, sizeof(*d));
    if (!d) {
        fprintf(stderr, "echod: start-up: %s\n", strerror(ENOMEM));
        return 1;
    }
    d->opt = opt;
    d->conns.next = d->conns.prev = &d->conns;
    d->reserve_fd = -1;
    d->inetd_fd = -1;

    struct iomux_loop_options lo = {.backend = opt->backend};
    int rc = iomux_loop_new(&d->loop, &lo);
    if (rc < 0) {
        if (rc == -ENOENT)
            fprintf(stderr, "echod: --backend %s: not compiled in\n", opt->backend);
        else if (rc == -ENOSYS || rc == -EPERM)
            fprintf(stderr, "echod: --backend %s: not available on this system\n", opt->backend);
        else
            fprintf(stderr, "echod: event loop: %s\n", strerror(-rc));
        free(d);
        return rc == -ENOENT ? 2 : 1;
    }
    int status = 1;
    rc = iomux_buf_pool_new(&d->pool, NULL);
    if (rc < 0) {
        fprintf(stderr, "echod: buffers: %s\n", strerror(-rc));
        goto fail;
    }
    static const int signals[] = {SIGINT, SIGTERM, SIGUSR1};
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        rc = iomux_signal_watch(d->loop, signals[i], on_signal, d);
        if (rc < 0) {
            fprintf(stderr, "echod: signal %s: %s\n", strsignal(signals[i]), strerror(-rc));
            goto fail;
        }
    }
    /* Every address is checked before any is listened on, so that a typo
       in the second one is a usage error with nothing else said. */
    for (size_t i = 0; i < opt->nlisten; i++) {
        status = check_address("--listen", opt->listen[i]);
        if (status != 0)
            goto fail;
    }
    for (size_t i = 0; i < opt->nudp; i++) {
        status = check_address("--udp", opt->udp[i]);
        if (status != 0)
            goto fail;
    }
    if (opt->max_conns_per_ip && (rc = echod_perip_new(opt->max_conns_per_ip, &d->perip)) < 0) {
        fprintf(stderr, "echod: start-up: %s\n", strerror(-rc));
        status = 1;
        goto fail;
    }
    status = setup_sockets(d);
    if (status != 0)
        goto fail;
    /* Everything that needs privileges is done: drop them before the
       first byte from a client is read. */
    if (opt->user) {
        status = echod_drop_privileges(opt->user, opt->quiet);
        if (status != 0)
            goto fail;
    }
    status = start_serving(d);
    if (status != 0)
        goto fail;
    status = 1;
    if (opt->idle_timeout_ms) {
        /* A sweep a few times per timeout: a connection is cut between
           the timeout and a quarter more, without a timer per client. */
        uint64_t every = opt->idle_timeout_ms / 4;
        every = every < 10 ? 10 : every > 1000 ? 1000 : every;
        rc = iomux_timer_add(d->loop, every, every, on_idle_sweep, d, &d->idle_timer);
        if (rc < 0) {
            fprintf(stderr, "echod: idle timer: %s\n", strerror(-rc));
            goto fail;
        }
    }
    /* Not fatal without it: descriptor exhaustion then pauses accepting. */
    int fd = iomux_reserve_fd();
    d->reserve_fd = fd >= 0 ? fd : -1;
    print_announced(d);
    *out = d;
    return 0;

fail:
    echod_free(d);
    return status;
}

int echod_run(struct echod *d)
{
    int tick = d->opt->tick_ms ? (int)d->opt->tick_ms : -1;
    while (!d->done) {
        if (d->opt->trace)
            fputs("waiting for the next event\n", stderr);
        int n = d->engine ? d->engine_ops->run_once(d->engine, tick)
                          : iomux_loop_run_once(d->loop, tick);
        if (n < 0 && n != -EINTR) {
            fprintf(stderr, "echod: event loop: %s\n", strerror(-n));
            return 1;
        }
        if (n == 0 && tick > 0 && d->opt->trace)
            fputs("  timed out, do some other work here\n", stderr);
    }
    if (!d->opt->quiet)
        fprintf(stderr, "echod: exiting: %" PRIu64 " connections served\n", d->total);
    return 0;
}

void echod_free(struct echod *d)
{
    if (!d)
        return;
    if (d->loop) {
        cut_all(d, "exiting");
        close_listeners(d);
    }
    if (d->inetd_fd >= 0)
        close(d->inetd_fd);
    /* After every connection is cut: it waits for their last operations. */
    if (d->engine)
        d->engine_ops->free(d->engine);
    echod_udp_free(d->udp);
    echod_perip_free(d->perip);
    echod_unix_cleanup();
    if (d->reserve_fd >= 0)
        close(d->reserve_fd);
    /* The loop goes first: its timers may not outlive it, and it restores
       the signal dispositions. The pool only after every stream is gone. */
    iomux_loop_free(d->loop);
    iomux_buf_pool_free(d->pool);
    free(d);
}
