/* SPDX-License-Identifier: MIT */
/*
 * echod.c - the echo server's policy, on top of an engine (engine.h).
 *
 * The engine does the I/O (engine_stream.c: readiness and iomux streams;
 * engine_uring*.c: io_uring completions); this file decides who gets a connection (--max-conns,
 * descriptor exhaustion, fds the select backend cannot watch), when a connection is cut (idle
 * timeout, shutdown grace period), and what is said about it (--trace in
 * the seed's words, rate-limited error lines, SIGUSR1 statistics). How it
 * starts (checks, binding, privileges, the engine) is setup.c.
 */
#include "echod_internal.h"
#include "splice_pool.h"

#include <errno.h>
#include <fcntl.h>
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
#include "sideport.h"
#include "trace.h"
#include "udp.h"
#include "upgrade.h"

/* Waiting clients refused at once when descriptors run out. */
#define SHED_BATCH 64
/* How long accepting pauses when descriptors run out and the reserve
   trick cannot help. */
#define ACCEPT_PAUSE_MS 100

/* The peer address is kept only when something needs it: a connection
   then costs 16 bytes of the policy's in the common case. */
bool echod_keeps_peer(const struct echod *d)
{
    return d->opt->trace || d->perip;
}

/* Only when echod_keeps_peer(): the others have no address stored. */
static void conn_addr(struct conn *conn, struct iomux_addr *out)
{
    const union conn_peer_addr *p = conn_peer(conn);
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
    conn_addr(c, &a);
    trace_addr(&a, buf, size);
    return buf;
}

static void conn_unlink(struct echod *d, struct conn *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    d->open--;
    echod_slot_give(d);
    if (d->perip) {
        struct iomux_addr a;
        conn_addr(c, &a);
        echod_perip_give(d, &a);
    }
}

/* --inetd serves one connection: its end is the server's. */
static void check_done(struct echod *d)
{
    if ((d->stopping || d->opt->inetd) && d->open == 0 && echod_may_end(d))
        d->done = true;
}

void echod_recheck_done(struct echod *d)
{
    check_done(d);
}

void echod_trace_echo(struct echod *d, struct conn *c, const char *bytes, size_t len)
{
    char name[TRACE_ADDR_STRLEN];
    conn_name(d, c, name, sizeof(name));
    flockfile(stderr); /* with workers, the four pieces stay one line each */
    fputs("  received ", stderr);
    trace_bytes(stderr, bytes, len);
    fprintf(stderr, " from %s\n", name);
    fputs("  sending ", stderr);
    trace_bytes(stderr, bytes, len);
    fprintf(stderr, " to %s\n", name);
    funlockfile(stderr);
}

void echod_trace_fault(struct echod *d, struct conn *c, const char *what, uint64_t bytes)
{
    char name[TRACE_ADDR_STRLEN];
    fprintf(stderr, "  fault %s on %s after %" PRIu64 " bytes echoed\n", what,
            conn_name(d, c, name, sizeof(name)), bytes);
}

void echod_trace_queue_empty(struct echod *d, struct conn *c)
{
    char name[TRACE_ADDR_STRLEN];
    fprintf(stderr, "   %s queue empty\n", conn_name(d, c, name, sizeof(name)));
}

void echod_conn_closed(struct echod *d, struct conn *c, int error)
{
    /* A reset (or a write that met one) is the peer's doing: echo-bench
       and many clients end that way. errors is for the rest. */
    if (error == -ECONNRESET || error == -EPIPE)
        d->resets++;
    else if (error == IOMUX_STREAM_TRUNCATED) /* only a transport (TLS) says so */
        d->tls.truncated++;
    else if (error == -EPROTO) /* a TLS record or message refused */
        d->tls.record_errors++;
    else if (error)
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

/* Closes a connection of the engine `ops` on our initiative (idle, grace
   period over). */
static void conn_cut_by(struct echod *d, const struct engine_ops *ops, struct engine *e,
                        struct conn *c, const char *why)
{
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        fprintf(stderr, "  closing %s (%s)\n", conn_name(d, c, name, sizeof(name)), why);
    }
    conn_unlink(d, c); /* first: closing frees `c` */
    ops->cut(e, c);
}

/* A connection of the main engine's (d->conns). */
static void conn_cut(struct echod *d, struct conn *c, const char *why)
{
    conn_cut_by(d, d->engine_ops, d->engine, c, why);
}

void echod_conn_cut(struct echod *d, struct conn *c, const char *why)
{
    conn_cut(d, c, why);
}

void echod_conn_cut_on(struct echod *d, bool side, struct conn *c, const char *why)
{
    if (side)
        conn_cut_by(d, d->side_ops, d->side, c, why);
    else
        conn_cut(d, c, why);
}

/* Starts the graceful end of a connection (SIGTERM): never closes it from
   here, so the caller may walk the list. */
static void conn_end(struct echod *d, struct conn *c)
{
    d->engine_ops->end(d->engine, c);
}

void echod_conn_opened(struct echod *d, struct conn *c, union conn_peer_addr *stored,
                       const struct iomux_addr *peer)
{
    echod_conn_opened_on(d, &d->conns, c, stored, peer);
}

void echod_conn_opened_on(struct echod *d, struct conn *list, struct conn *c,
                          union conn_peer_addr *stored, const struct iomux_addr *peer)
{
    if (echod_keeps_peer(d))
        store_peer(stored, peer);
    c->prev = list->prev;
    c->next = list;
    list->prev->next = c;
    list->prev = c;
    d->open++;
    d->total++;
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        fprintf(stderr, "  connection from %s\n", conn_name(d, c, name, sizeof(name)));
    }
}

static void set_accepting(struct echod *d, bool on)
{
    d->accepting_paused = !on;
    d->engine_ops->set_accepting(d->engine, on);
}

static void on_pause_over(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
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
    int shed = iomux_tcp_shed(l->fd, &d->reserve_fd, SHED_BATCH);
    if (shed > 0)
        d->refused_fds += (uint64_t)shed;
    if (shed <= 0 || d->reserve_fd < 0) {
        if (!d->pause_timer &&
            iomux_timer_add(d->loop, ACCEPT_PAUSE_MS, 0, on_pause_over, d, &d->pause_timer) == 0)
            set_accepting(d, false);
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

/* The idle connections on `list`, served by the engine `ops`, cut. */
static void sweep(struct echod *d, struct conn *list, const struct engine_ops *ops,
                  struct engine *e, uint64_t now)
{
    for (struct conn *c = list->next, *next; c != list; c = next) {
        next = c->next;
        if (now - ops->last_io(e, c) >= d->opt->idle_timeout_ms) {
            d->idle_closed++;
            conn_cut_by(d, ops, e, c, "idle");
        }
    }
}

void echod_on_idle_sweep(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
    uint64_t now = iomux_loop_now(loop);
    sweep(d, &d->conns, d->engine_ops, d->engine, now);
    if (d->side)
        sweep(d, &d->side_conns, d->side_ops, d->side, now);
    check_done(d);
}

static void close_listeners(struct echod *d)
{
    /* No engine yet when the start failed before making it: then
       nothing watches the listeners. */
    if (d->engine)
        d->engine_ops->unlisten(d->engine);
    for (size_t i = 0; i < d->nlisteners; i++)
        close(d->listeners[i].fd);
    d->nlisteners = 0;
}

static void cut_all(struct echod *d, const char *why)
{
    while (d->conns.next != &d->conns)
        conn_cut(d, d->conns.next, why);
    while (d->side && d->side_conns.next != &d->side_conns)
        conn_cut_by(d, d->side_ops, d->side, d->side_conns.next, why);
}

static void begin_stop(struct echod *d, const char *name);

/* --drain-delay: the balancers' agent checks see "drain" while echod still
   accepts and serves as before, so that no client is refused in the time
   a balancer takes to notice; then the stop proper. */
static void on_drain_delay_over(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
    d->drain_timer = 0;
    begin_stop(d, "drain delay over");
}

static int start_drain_delay(struct echod *d, const char *name)
{
    if (iomux_timer_add(d->loop, d->opt->drain_delay_ms, 0, on_drain_delay_over, d,
                        &d->drain_timer) < 0)
        return -1;
    if (!d->opt->quiet && !d->worker)
        fprintf(stderr, "echod: %s, serving %.3g s more while the agent says drain\n", name,
                (double)d->opt->drain_delay_ms / 1000.0);
    return 0;
}

static void on_grace_over(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
    d->grace_timer = 0;
    if (!d->opt->quiet && d->open)
        fprintf(stderr, "echod: grace period over, cutting %" PRIu64 " connections\n", d->open);
    cut_all(d, "shutting down");
    d->done = true;
}

const char *echod_serving_label(const struct echod *d, char *buf, size_t size)
{
    /* The readiness engine is known by its loop's backend. */
    if (!d->engine_ops)
        snprintf(buf, size, "%c", ECHOD_LABEL_LATER);
    else if (strcmp(d->engine_ops->name, echod_engine_names[ECHOD_ENGINE_LOOP]) != 0)
        snprintf(buf, size, "engine %s", d->engine_ops->name);
    else
        snprintf(buf, size, "backend %s", iomux_loop_backend(d->loop));
    return buf;
}

static void print_stats(struct echod *d)
{
    struct echod_counters c;
    char label[48];
    echod_counters_of(d, &c);
    flockfile(stderr); /* many stdio calls make the line: nobody else's lands in it */
    echod_print_counters(stderr, echod_serving_label(d, label, sizeof(label)), &c);
    if (d->proxy_listeners)
        echod_proxy_print_stats(d, stderr);
    if (d->splice)
        splice_pool_print_stats(d->splice, stderr);
    if (d->tls_listeners)
        echod_tls_print_stats(d, stderr);
    d->engine_ops->print_stats(d->engine, stderr);
    if (d->fault_listeners)
        echod_faults_print_stats(d, stderr);
    fputc('\n', stderr);
    if (d->udp)
        echod_udp_print_stats(d->udp, stderr);
    funlockfile(stderr);
}

void echod_on_signal(struct iomux_loop *loop, int signo, void *data)
{
    struct echod *d = data;
    if (signo == SIGUSR1) {
        print_stats(d);
        return;
    }
    if (signo == SIGUSR2) {
        echod_upgrade_start(d);
        return;
    }
    if (signo == SIGHUP) {
        /* Only TLS listeners read files (their certificates); without
           them there is nothing to read again, and the default action
           (exit 129, no drain, socket files left) would be worse than
           nothing. */
        char said[ECHOD_RELOAD_SAID_MAX];
        bool tls = echod_tls_reload(d, said, sizeof(said));
        if (d->server)
            echod_worker_reloaded(d, said); /* the server says it, once all have read */
        else if (!tls && !d->opt->quiet)
            fprintf(stderr, "echod: SIGHUP: nothing to reload\n");
        else
            fputs(said, stderr);
        return;
    }
    const char *name = signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "SIGQUIT";
    /* SIGQUIT, like a second SIGINT or SIGTERM, means "now": connections
       are cut, socket files removed, exit 0 (no core dump). */
    if (d->draining || signo == SIGQUIT) {
        /* A second request means "now". */
        if (!d->opt->quiet && !d->worker)
            fprintf(stderr, "echod: %s%s, exiting now\n", name, d->draining ? " again" : "");
        cut_all(d, "shutting down");
        d->done = true;
        return;
    }
    d->draining = true; /* --agent says drain from now on */
    if (d->opt->drain_delay_ms && start_drain_delay(d, name) == 0)
        return;
    begin_stop(d, name);
}

/* The stop proper: no more accepting, each connection ended gracefully,
   cut when the grace period is over. */
static void begin_stop(struct echod *d, const char *name)
{
    struct iomux_loop *loop = d->loop;
    d->stopping = true;
    close_listeners(d);
    /* Not yet clients: nothing of theirs to drain. */
    echod_proxy_close_all(d);
    echod_tls_close_all(d);
    /* Datagrams have nothing to drain. Statistics are lost with them,
       which is why SIGUSR1 is the way to read them. */
    echod_udp_free(d->udp);
    d->udp = NULL;
    if (d->pause_timer) {
        iomux_timer_cancel(loop, d->pause_timer);
        d->pause_timer = 0;
    }
    /* With workers, the first speaks for all. */
    if (!d->opt->quiet && !d->worker)
        fprintf(stderr, "echod: %s, draining %" PRIu64 " connections\n", name,
                d->server ? echod_conns_counted(d) : d->open);
    /* end() lets each stream send what is queued and see its peer off;
       it never calls on_close from here, so walking the list is safe. */
    for (struct conn *c = d->conns.next; c != &d->conns; c = c->next)
        conn_end(d, c);
    for (struct conn *c = d->side ? d->side_conns.next : NULL; c && c != &d->side_conns;
         c = c->next)
        d->side_ops->end(d->side, c);
    check_done(d);
    if (!d->done &&
        iomux_timer_add(loop, d->opt->grace_ms, 0, on_grace_over, d, &d->grace_timer) < 0) {
        cut_all(d, "shutting down");
        d->done = true;
    }
}

void echod_hand_over(struct echod *d)
{
    /* Stopping already (SIGTERM during the upgrade): nothing more to do. */
    if (d->stopping)
        return;
    /* A SIGTERM from now on means "now", as a second one does. */
    d->draining = d->stopping = true;
    close_listeners(d);
    echod_udp_free(d->udp);
    d->udp = NULL;
    sideport_free(d->agent);
    sideport_free(d->metrics);
    d->agent = d->metrics = NULL;
    if (!d->server) /* with workers: the main thread's, once */
        echod_unix_forget();
    if (d->pause_timer) {
        iomux_timer_cancel(d->loop, d->pause_timer);
        d->pause_timer = 0;
    }
    /* Unlike SIGTERM's end(), input is still echoed: each client ends its
       connection when it is done, within the grace period. */
    check_done(d);
    if (!d->done &&
        iomux_timer_add(d->loop, d->opt->grace_ms, 0, on_grace_over, d, &d->grace_timer) < 0) {
        cut_all(d, "shutting down");
        d->done = true;
    }
}

int echod_run(struct echod *d)
{
    int tick = d->opt->tick_ms ? (int)d->opt->tick_ms : -1;
    while (!d->done) {
        if (d->opt->trace)
            fputs("waiting for the next event\n", stderr);
        int n = d->engine_ops->run_once(d->engine, tick);
        if (n < 0 && n != -EINTR) {
            fprintf(stderr, "echod: event loop: %s\n", strerror(-n));
            return n;
        }
        echod_budget_check(d);
        if (n == 0 && tick > 0 && d->opt->trace)
            fputs("  timed out, do some other work here\n", stderr);
    }
    if (!d->opt->quiet && !d->server) /* with workers: the server's total */
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
        echod_proxy_close_all(d);
        echod_tls_close_all(d);
    }
    if (d->inetd_fd >= 0)
        close(d->inetd_fd);
    /* After every connection is cut: it waits for their last operations. */
    if (d->engine)
        d->engine_ops->free(d->engine);
    if (d->side)
        d->side_ops->free(d->side);
    echod_tls_free(d); /* every TLS connection is gone by now */
    echod_udp_free(d->udp);
    sideport_free(d->agent);
    sideport_free(d->metrics);
    if (!d->server) { /* with workers: the server's */
        echod_perip_free(d->perip);
        echod_unix_cleanup();
    }
    if (d->reserve_fd >= 0)
        close(d->reserve_fd);
    /* The loop goes first: its timers may not outlive it, and it restores
       the signal dispositions. The pool only after every stream is gone. */
    iomux_loop_free(d->loop);
    iomux_buf_pool_free(d->pool);
    splice_pool_free(d->splice); /* after the streams, which give pipes back */
    free(d);
}
