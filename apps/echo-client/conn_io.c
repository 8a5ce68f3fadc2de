/* SPDX-License-Identifier: MIT */
/*
 * conn_io.c - echo-client's bytes on a connection, plain or TLS (--tls).
 *
 * client.c and stream.c call conn_recv/conn_send as they would recv/send
 * (-1 with errno EAGAIN when they must wait, 0 at the end); over TLS the
 * record layer of apps/common/tls.c sits in between, a failure reads as
 * errno EPROTO with its reason in conn_strerror(), and a read that needs
 * a write first (or the reverse) is noted so conn_mask() asks the loop
 * for the readiness that moves it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_impl.h"
#ifdef IOMUX_HAVE_TLS
#include "tls.h"
#endif

int conn_tls_init(struct client *c)
{
#ifdef IOMUX_HAVE_TLS
    const struct client_options *o = c->opt;
    if (!o->tls.on)
        return 0;
    char why[400];
    if (tls_cli_ctx(&o->tls, o->connect, &c->tls, why, sizeof why) < 0) {
        client_fail(c, "TLS: %s", why);
        return -1;
    }
    /* OpenSSL writes with write(): a reset peer must give EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
#else
#endif
    return 0;
}

void conn_tls_free(struct client *c)
{
#ifdef IOMUX_HAVE_TLS
    tls_ctx_free(c->tls);
    c->tls = NULL;
#else
#endif
}

#ifdef IOMUX_HAVE_TLS
/* Maps a tls.h status onto the recv()/send() convention. */
static ssize_t tls_result(struct conn *k, int st, size_t n, int reading)
{
    switch (st) {
    case TLS_OK:
        if (reading)
            k->read_wants_write = 0;
        else
            k->write_wants_read = 0;
        return (ssize_t)n;
    case TLS_CLOSED:
    case TLS_EOF:
        k->peer_closed = 1;
        return 0;
    case TLS_WANT_READ:
    case TLS_WANT_WRITE:
        if (reading)
            k->read_wants_write = st == TLS_WANT_WRITE;
        else
            k->write_wants_read = st == TLS_WANT_READ;
        errno = EAGAIN;
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}
#endif

int conn_handshake(struct conn *k)
{
#ifdef IOMUX_HAVE_TLS
    struct client *c = k->client;
    if (c->tls == NULL)
        k->handshaken = 1;
    if (k->handshaken)
        return 1;
    if (k->tls == NULL && (k->tls = tls_conn_new(c->tls, k->fd)) == NULL) {
        client_fail(c, "%s: TLS: %s", k->name, strerror(ENOMEM));
        return -1;
    }
    int st = tls_conn_handshake(k->tls);
    if (st == TLS_ERROR || st == TLS_CLOSED || st == TLS_EOF) {
        client_fail(c, "%s: TLS handshake: %s", k->name,
                    st == TLS_ERROR ? tls_conn_error(k->tls) : "the server closed the connection");
        return -1;
    }
    if (st != TLS_OK) {
        int rc = iomux_fd_modify(c->loop, k->fd, st == TLS_WANT_READ ? IOMUX_READ : IOMUX_WRITE);
        if (rc < 0)
            client_fail(c, "%s: watching the socket: %s", k->name, strerror(-rc));
        return rc < 0 ? -1 : 0;
    }
    k->handshaken = 1;
    if (!c->opt->quiet) {
        char what[512];
        tls_conn_describe(k->tls, what, sizeof what);
        fprintf(stderr, "%s: TLS handshake: %s\n", k->name, what);
    }
#else
    k->handshaken = 1;
#endif
    return 1;
}

ssize_t conn_recv(struct conn *k, void *buf, size_t len)
{
#ifdef IOMUX_HAVE_TLS
    if (k->tls != NULL) {
        size_t n;
        int st = tls_conn_read(k->tls, buf, len, &n);
        return tls_result(k, st, n, 1);
    }
#endif
    ssize_t n = recv(k->fd, buf, len, 0);
    if (n == 0)
        k->peer_closed = 1;
    return n;
}

ssize_t conn_send(struct conn *k, const void *buf, size_t len)
{
#ifdef IOMUX_HAVE_TLS
    if (k->tls != NULL) {
        size_t n;
        int st = tls_conn_write(k->tls, buf, len, &n);
        if (st == TLS_CLOSED || st == TLS_EOF) {
            errno = EPIPE;
            return -1;
        }
        return tls_result(k, st, n, 0);
    }
#endif
    return send(k->fd, buf, len, MSG_NOSIGNAL);
}

int conn_close_write(struct conn *k)
{
#ifdef IOMUX_HAVE_TLS
    if (k->tls != NULL) {
        int st = tls_conn_shutdown(k->tls);
        if (st != TLS_OK) {
            ssize_t r = tls_result(k, st, 0, 0);
            if (r == 0)
                errno = EPIPE;
            return -1;
        }
    }
#endif
    return shutdown(k->fd, SHUT_WR);
}

unsigned conn_mask(const struct conn *k, int want_send)
{
    unsigned mask = IOMUX_READ;
    if ((want_send && !k->write_wants_read) || k->read_wants_write)
        mask |= IOMUX_WRITE;
    return mask;
}

int conn_read_more(const struct conn *k, size_t n)
{
    /* A short recv() drained the socket; a TLS read returns one record. */
    return k->tls != NULL || n == sizeof client_read_buf;
}

const char *conn_strerror(const struct conn *k, int err)
{
#ifdef IOMUX_HAVE_TLS
    if (err == EPROTO && k->tls != NULL)
        return tls_conn_error(k->tls);
#else
#endif
    return strerror(err);
}

void conn_release(struct conn *k)
{
#ifdef IOMUX_HAVE_TLS
    /* Our close_notify, if it fits now: a courtesy, never waited for. */
    if (k->tls != NULL && k->handshaken && !k->peer_closed)
        (void)tls_conn_shutdown(k->tls);
    tls_conn_free(k->tls);
    k->tls = NULL;
#else
#endif
}
