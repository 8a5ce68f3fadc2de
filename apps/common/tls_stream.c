/* SPDX-License-Identifier: MIT */
/*
 * tls_stream.c - TLS on the iomux loop: a handshake driven by readiness
 * with a deadline, and the stream transport (stream.h) that maps tls.h's
 * statuses onto the stream's "bytes, -EAGAIN and the readiness to wait
 * for, 0 at the end, or an error".
 */
#include <errno.h>

#include "tls.h"

/* ---------------------------------------------------------- handshake */

static void handshake_end(struct tls_handshake *h, int status)
{
    iomux_timer_cancel(h->loop, h->timer);
    h->timer = 0;
    iomux_fd_unwatch(h->loop, tls_conn_fd(h->conn));
    h->cb(h->conn, status, h->data);
}

static void on_handshake_io(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct tls_handshake *h = data;
    int st = tls_conn_handshake(h->conn);
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        int rc = iomux_fd_modify(loop, fd, st == TLS_WANT_READ ? IOMUX_READ : IOMUX_WRITE);
        if (rc < 0)
            handshake_end(h, rc);
        return;
    }
    handshake_end(h, st == TLS_OK ? 0 : st == TLS_ERROR ? -EPROTO : IOMUX_STREAM_TRUNCATED);
}

static void on_handshake_deadline(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct tls_handshake *h = data;
    h->timer = 0; /* fired: nothing to cancel */
    iomux_fd_unwatch(loop, tls_conn_fd(h->conn));
    h->cb(h->conn, -ETIMEDOUT, h->data);
}

int tls_handshake_start(struct tls_handshake *h, struct iomux_loop *loop, struct tls_conn *conn,
                        uint64_t timeout_ms, tls_handshake_cb *cb, void *data)
{
    *h = (struct tls_handshake){.loop = loop, .conn = conn, .cb = cb, .data = data};
    /* A client speaks first; a server waits for the ClientHello. Either
       way the first step runs from the loop, so cb never runs in here. */
    int rc = iomux_fd_watch(loop, tls_conn_fd(conn), IOMUX_READ | IOMUX_WRITE, on_handshake_io, h);
    if (rc < 0)
        return rc;
    rc = iomux_timer_add(loop, timeout_ms, 0, on_handshake_deadline, h, &h->timer);
    if (rc < 0)
        iomux_fd_unwatch(loop, tls_conn_fd(conn));
    return rc;
}

void tls_handshake_cancel(struct tls_handshake *h)
{
    if (h->timer != 0)
        iomux_timer_cancel(h->loop, h->timer);
    h->timer = 0;
    iomux_fd_unwatch(h->loop, tls_conn_fd(h->conn));
}

/* ---------------------------------------------------------- transport */

/* A status that is not TLS_OK, as the stream wants it. */
static ssize_t not_ok(const struct tls_conn *c, int st, unsigned *wait)
{
    switch (st) {
    case TLS_WANT_READ:
        *wait = IOMUX_READ;
        return -EAGAIN;
    case TLS_WANT_WRITE:
        *wait = IOMUX_WRITE;
        return -EAGAIN;
    case TLS_CLOSED:
        return 0;
    case TLS_EOF:
        return IOMUX_STREAM_TRUNCATED;
    default: /* the reason is in tls_conn_error() */
        return tls_conn_errno(c) != 0 ? -tls_conn_errno(c) : -EPROTO;
    }
}

static ssize_t tx_read(void *ctx, void *buf, size_t len, unsigned *wait)
{
    size_t n;
    int st = tls_conn_read(ctx, buf, len, &n);
    return st == TLS_OK ? (ssize_t)n : not_ok(ctx, st, wait);
}

static ssize_t tx_write(void *ctx, const void *buf, size_t len, unsigned *wait)
{
    size_t n;
    int st = tls_conn_write(ctx, buf, len, &n);
    if (st == TLS_OK)
        return (ssize_t)n;
    /* The peer's close_notify does not stop us writing; its FIN or a
       reset does, and a write has no "end" to report. */
    ssize_t r = not_ok(ctx, st, wait);
    return r == 0 || r == IOMUX_STREAM_TRUNCATED ? -EPIPE : r;
}

static int tx_close_write(void *ctx, unsigned *wait)
{
    int st = tls_conn_shutdown(ctx);
    if (st == TLS_OK)
        return 0;
    ssize_t r = not_ok(ctx, st, wait);
    return r == 0 || r == IOMUX_STREAM_TRUNCATED ? -EPIPE : (int)r;
}

static int tx_pending(void *ctx)
{
    return tls_conn_pending(ctx);
}

static void tx_release(void *ctx)
{
    tls_conn_free(ctx);
}

const struct iomux_stream_transport tls_stream_transport = {
    .read = tx_read,
    .write = tx_write,
    .close_write = tx_close_write,
    .pending = tx_pending,
    .release = tx_release,
};
