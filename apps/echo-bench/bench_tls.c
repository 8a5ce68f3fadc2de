/* SPDX-License-Identifier: MIT */
/*
 * bench_tls.c - echo-bench's bytes on a connection, plain or through TLS
 * (--tls, apps/common/tls.h): the handshake after the connect, and the
 * recv()/send() the worker calls. A TLS read may wait for writability and
 * a write for readability (a key update, a renegotiation): the flags this
 * sets make conn_wanted_mask() watch for that. Reads are a record at a
 * time (no read-ahead), so nothing decrypted waits inside OpenSSL while
 * the socket looks idle.
 */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <iomux/loop.h>

#ifdef IOMUX_HAVE_TLS
#include "tls.h"

/* The worker's context, made on its first connect; 0 or -1 (said why). */
static int worker_tls_ctx(struct worker *w)
{
    if (w->tls != NULL)
        return 0;
    const struct bench_options *o = w->shared->opt;
    char why[400];
    if (tls_cli_ctx(&o->tls, o->connect, &w->tls, why, sizeof why) < 0) {
        worker_error(w, "TLS: %s", why);
        w->fatal = 1;
        atomic_store(&w->shared->abort_run, 1);
        return -1;
    }
    return 0;
}

/* A status other than TLS_OK as recv()/send() would say it. */
static ssize_t tls_result(struct bench_conn *c, int st, int reading)
{
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        if (reading)
            c->read_wants_write = st == TLS_WANT_WRITE;
        else
            c->write_wants_read = st == TLS_WANT_READ;
        errno = EAGAIN;
        return -1;
    }
    if (st == TLS_CLOSED || st == TLS_EOF) {
        if (reading)
            return 0;
        errno = EPIPE;
        return -1;
    }
    errno = tls_conn_errno(c->tls) != 0 ? tls_conn_errno(c->tls) : EPROTO;
    return -1;
}
#endif

ssize_t conn_recv(struct bench_conn *c, void *buf, size_t len)
{
#ifdef IOMUX_HAVE_TLS
    if (c->tls != NULL) {
        size_t n;
        int st = tls_conn_read(c->tls, buf, len, &n);
        c->read_wants_write = 0;
        return st == TLS_OK ? (ssize_t)n : tls_result(c, st, 1);
    }
#endif
    return recv(c->fd, buf, len, 0);
}

ssize_t conn_send(struct bench_conn *c, const void *buf, size_t len)
{
#ifdef IOMUX_HAVE_TLS
    if (c->tls != NULL) {
        size_t n;
        int st = tls_conn_write(c->tls, buf, len, &n);
        c->write_wants_read = 0;
        return st == TLS_OK ? (ssize_t)n : tls_result(c, st, 0);
    }
#endif
    return send(c->fd, buf, len, MSG_NOSIGNAL);
}

const char *conn_error(const struct bench_conn *c, int err)
{
#ifdef IOMUX_HAVE_TLS
    if (c->tls != NULL && tls_conn_error(c->tls)[0] != '\0')
        return tls_conn_error(c->tls);
#endif
    return strerror(err);
}

int conn_handshake(struct bench_conn *c)
{
#ifdef IOMUX_HAVE_TLS
    struct worker *w = c->w;
    if (!w->shared->opt->tls.on)
        return 1;
    if (c->tls == NULL) {
        if (worker_tls_ctx(w) < 0)
            return -1;
        c->read_wants_write = c->write_wants_read = 0;
        c->state = CONN_HANDSHAKE;
        if ((c->tls = tls_conn_new(w->tls, c->fd)) == NULL) {
            connect_failed(c, ENOMEM);
            return -1;
        }
        /* One that does not fit is not offered: a full handshake. */
        if (w->tls_session != NULL)
            (void)tls_conn_offer_session(c->tls, w->tls_session);
    }
    int st = tls_conn_handshake(c->tls);
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        conn_set_mask(c, st == TLS_WANT_READ ? IOMUX_READ : IOMUX_WRITE);
        return c->state == CONN_HANDSHAKE ? 0 : -1;
    }
    if (st != TLS_OK) {
        if (w->first_error[0] == '\0')
            snprintf(w->first_error, sizeof w->first_error, "conn %u: TLS handshake: %s", c->id,
                     st == TLS_ERROR ? tls_conn_error(c->tls) : "the server closed the connection");
        connect_failed(c, st == TLS_ERROR && tls_conn_errno(c->tls) != 0 ? tls_conn_errno(c->tls)
                                                                         : EPROTO);
        return -1;
    }
    w->tls_handshakes++;
    w->tls_resumed += (uint64_t)tls_conn_resumed(c->tls);
#endif
    return 1;
}

void conn_tls_close(struct bench_conn *c)
{
#ifdef IOMUX_HAVE_TLS
    if (c->tls == NULL)
        return;
    /* Best effort: a server that sees close_notify logs no truncation. */
    if (c->state == CONN_OPEN)
        (void)tls_conn_shutdown(c->tls);
    /* After the echo: a TLS 1.3 ticket has been read by now. */
    if (c->state == CONN_OPEN && c->w->shared->opt->tls_resume) {
        struct tls_session *s = tls_conn_session(c->tls);
        if (s != NULL) {
            tls_session_free(c->w->tls_session);
            c->w->tls_session = s;
        }
    }
    tls_conn_free(c->tls);
    c->tls = NULL;
#endif
}

void worker_tls_fini(struct worker *w)
{
#ifdef IOMUX_HAVE_TLS
    tls_session_free(w->tls_session);
    w->tls_session = NULL;
    tls_ctx_free(w->tls);
    w->tls = NULL;
#endif
}
