/* SPDX-License-Identifier: MIT */
/*
 * tls_accept.c - the TLS stage between accept (and the PROXY stage, when
 * the listener has proxy= too) and echo, for listeners with tls-cert=
 * (docs/echod.md, "TLS"). Like proxy_accept.c it is the policy's: the
 * handshake runs on the server's loop (tls_handshake_start() of
 * apps/common/tls_stream.c, with --tls-timeout as its deadline), and only
 * a finished one is handed to the engine, through its admit_transport()
 * (engine.h): the connection becomes an iomux stream whose bytes go
 * through the TLS connection (tls_stream_transport), so backpressure,
 * half-close (close_notify, then the FIN), the idle timeout, the drain
 * and the statistics are the stream's and the policy's as for plain TCP.
 * Only the readiness engine has streams: with --engine uring, TLS
 * connections are admitted to the side engine (echod_side_start()), a
 * readiness engine on the same loop.
 *
 * Certificates: each TLS listener has an identity (an OpenSSL context
 * with its certificate, key, client CAs, ALPN list and versions), read at
 * start-up before privileges are dropped, and again on SIGHUP. A new one
 * serves new handshakes; one in progress keeps the identity it started
 * with (OpenSSL's callbacks for it point into it), so an identity is
 * freed when its listener has let it go and its last handshake is over.
 * An established connection needs nothing of it: its SSL holds OpenSSL's
 * own reference to the context.
 *
 * No bytes are parsed here: OpenSSL reads every one of them.
 */
#include "echod_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "strbuf.h"
#include "trace.h"

#ifdef IOMUX_HAVE_TLS

#include "tls.h"

struct echod_tls_identity {
    struct tls_ctx *ctx;
    size_t users; /* its listener (while current) and its handshakes */
};

/* A connection in its handshake. */
struct tls_pending {
    struct proxy_link link; /* first: d->tls_pending lists these */
    struct echod *d;
    struct echod_tls_identity *id;
    struct tls_conn *conn;
    struct tls_handshake h;
    int fd;
    struct iomux_addr peer;
};

static void identity_put(struct echod_tls_identity *id)
{
    if (id && --id->users == 0) {
        tls_ctx_free(id->ctx);
        free(id);
    }
}

/* A new identity from the listener's files: NULL with err said. */
static struct echod_tls_identity *identity_read(const struct listener_opts *lo, char *err,
                                                size_t errsize)
{
    const struct tls_server_config cfg = {
        .cert_file = lo->tls_cert,
        .key_file = lo->tls_key[0] ? lo->tls_key : NULL,
        .client_ca_file = lo->tls_ca[0] ? lo->tls_ca : NULL,
        .alpn = lo->alpn[0] ? lo->alpn : NULL,
        .version = lo->tls_version,
    };
    struct echod_tls_identity *id = calloc(1, sizeof(*id));
    if (!id) {
        snprintf(err, errsize, "%s", strerror(ENOMEM));
        return NULL;
    }
    if (tls_ctx_server(&id->ctx, &cfg, err, errsize) < 0) {
        free(id);
        return NULL;
    }
    id->users = 1;
    return id;
}

int echod_tls_load(struct echod *d, struct listener *l)
{
    char err[400];
    l->tls = identity_read(l->opts, err, sizeof(err));
    if (!l->tls) {
        fprintf(stderr, "echod: --listen %s: %s\n", l->opts->addr, err);
        return -EIO;
    }
    d->tls_listeners = true;
    return 0;
}

bool echod_tls_reload(struct echod *d, char *said, size_t size)
{
    /* What is said is cut short rather than overflow `said`. */
    struct strbuf out;
    strbuf_init(&out, said, size);
    if (!d->tls_listeners)
        return false;
    for (size_t i = 0; i < d->nlisteners; i++) {
        struct listener *l = &d->listeners[i];
        if (!l->tls)
            continue;
        char err[400], shown[ECHOD_LISTEN_ADDR_MAX];
        if (iomux_addr_format(&l->addr, shown, sizeof(shown)) < 0)
            snprintf(shown, sizeof(shown), "%s", l->opts->addr);
        struct echod_tls_identity *id = identity_read(l->opts, err, sizeof(err));
        if (!id) {
            strbuf_appendf(&out, "echod: SIGHUP: --listen %s: %s; keeping the certificate in use\n",
                           shown, err);
            continue;
        }
        identity_put(l->tls);
        l->tls = id;
        if (!d->opt->quiet)
            strbuf_appendf(&out, "echod: SIGHUP: --listen %s: certificate %s read again\n", shown,
                           l->opts->tls_cert);
    }
    return true;
}

/* Off the loop (the handshake's watch and timer) and the list; the conn
   and the fd stay the caller's. */
static void pending_unlist(struct tls_pending *p)
{
    struct echod *d = p->d;
    proxy_link_remove(&p->link);
    d->ntls_pending--;
    echod_pending_count(d, -1);
    identity_put(p->id);
}

/* A handshake that did not finish: counted, said (each with --trace,
   else at most once a second, with OpenSSL's reason), closed. */
static void handshake_failed(struct tls_pending *p, int status)
{
    struct echod *d = p->d;
    const char *why = status == -ETIMEDOUT               ? "not done within --tls-timeout"
                      : status == IOMUX_STREAM_TRUNCATED ? "closed during the handshake"
                      : status == -EPROTO                ? tls_conn_error(p->conn)
                                                         : strerror(-status);
    if (status == -ETIMEDOUT)
        d->tls.timed_out++;
    else
        d->tls.failed++;
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        trace_addr(&p->peer, name, sizeof(name));
        fprintf(stderr, "  refusing %s: TLS handshake: %s\n", name, why);
    } else {
        char text[IOMUX_ADDR_STRLEN];
        if (iomux_addr_format(&p->peer, text, sizeof(text)) < 0)
            snprintf(text, sizeof(text), "?");
        ratelog_say(&d->logs[LOG_TLS], iomux_loop_now(d->loop), "TLS handshake with %s failed: %s",
                    text, why);
    }
}

static void on_handshake_done(struct tls_conn *conn, int status, void *data)
{
    struct tls_pending *p = data;
    struct echod *d = p->d;
    int fd = p->fd;
    struct iomux_addr peer = p->peer;
    pending_unlist(p);
    if (status != 0) {
        handshake_failed(p, status);
        tls_conn_free(conn);
        close(fd);
        free(p);
        return;
    }
    free(p);
    d->tls.ok++;
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN], what[512];
        trace_addr(&peer, name, sizeof(name));
        tls_conn_describe(conn, what, sizeof(what));
        fprintf(stderr, "  TLS handshake with %s: %s\n", name, what);
    }
    /* Many small records in one recv(): the stream asks the transport
       for what is held after every read (stream.h, pending). */
    tls_conn_read_ahead(conn);
    if (echod_admit_transport(d, fd, &peer, &tls_stream_transport, conn) < 0)
        tls_conn_free(conn); /* the fd is closed already */
}

void echod_tls_start(struct echod *d, struct listener *l, int fd, const struct iomux_addr *peer)
{
    /* A connection in its handshake holds a descriptor and memory: it
       counts, as one waiting for its PROXY header does. */
    if (d->opt->max_conns && echod_conns_counted(d) >= d->opt->max_conns) {
        d->refused_max++;
        echod_refuse(d, fd, peer, LOG_MAXCONNS, "--max-conns reached");
        return;
    }
    echod_side_nonblocking(d, fd);
    struct tls_pending *p = calloc(1, sizeof(*p));
    struct tls_conn *conn = p ? tls_conn_new(l->tls->ctx, fd) : NULL;
    if (!conn) {
        free(p);
        d->errors++;
        echod_refuse(d, fd, peer, LOG_ACCEPT, strerror(ENOMEM));
        return;
    }
    *p = (struct tls_pending){.d = d, .id = l->tls, .conn = conn, .fd = fd, .peer = *peer};
    int rc =
        tls_handshake_start(&p->h, d->loop, conn, d->opt->tls_timeout_ms, on_handshake_done, p);
    if (rc < 0) {
        tls_conn_free(conn);
        free(p);
        if (rc == -ERANGE)
            d->refused_watch++;
        else
            d->errors++;
        echod_refuse(d, fd, peer, rc == -ERANGE ? LOG_WATCH : LOG_ACCEPT, strerror(-rc));
        return;
    }
    p->id->users++;
    proxy_link_append(&d->tls_pending, &p->link);
    d->ntls_pending++;
    echod_pending_count(d, 1);
}

void echod_tls_close_all(struct echod *d)
{
    while (d->tls_pending.next != &d->tls_pending) {
        struct tls_pending *p = (struct tls_pending *)(void *)d->tls_pending.next;
        tls_handshake_cancel(&p->h);
        pending_unlist(p);
        tls_conn_free(p->conn);
        close(p->fd);
        free(p);
    }
}

void echod_tls_free(struct echod *d)
{
    bool had = d->tls_listeners;
    for (size_t i = 0; i < ECHOD_MAX_LISTEN; i++) {
        identity_put(d->listeners[i].tls);
        d->listeners[i].tls = NULL;
    }
    d->tls_listeners = false;
    /* OpenSSL's own state goes too, so that leak checkers see only ours; with workers,
       once all have ended (echod_tls_library_end()): the others still use it. */
    if (had && !d->server)
        tls_library_cleanup();
}

void echod_tls_library_end(void)
{
    tls_library_cleanup();
}

#else /* no OpenSSL: listen_opts.c refuses tls-cert=, so none of this runs */

void echod_tls_library_end(void) {}

int echod_tls_load(struct echod *d, struct listener *l)
{
    fprintf(stderr, "echod: --listen %s: built without TLS\n", l->opts->addr);
    return -EIO;
}

bool echod_tls_reload(struct echod *d, char *said, size_t size)
{
    (void)size;
    said[0] = '\0';
    return false;
}

void echod_tls_start(struct echod *d, struct listener *l, int fd, const struct iomux_addr *peer)
{
    echod_refuse(d, fd, peer, LOG_ACCEPT, "built without TLS");
}

void echod_tls_close_all(struct echod *d) {}

void echod_tls_free(struct echod *d) {}

#endif

void echod_tls_print_stats(const struct echod *d, FILE *f)
{
    const struct echod_tls_stats *s = &d->tls;
    fprintf(f,
            "; tls handshakes %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64 " timed out, %" PRIu64
            " in progress; tls ended %" PRIu64 " truncated, %" PRIu64 " record errors",
            s->ok, s->failed, s->timed_out, d->ntls_pending, s->truncated, s->record_errors);
}
