/* SPDX-License-Identifier: MIT */
/*
 * stream_tx.c - a stream's bytes through a transport (stream.h's
 * iomux_stream_transport) instead of recv()/send(): TLS, in practice.
 *
 * Two rules of such transports shape this file. A write that must wait
 * has committed to its first bytes (OpenSSL has encrypted them into a
 * record) and must be offered them again, at least as many: so a write
 * offers at most one pool chunk, and what it could not take goes to the
 * queue, whose first chunk then holds exactly those bytes; flushing offers
 * the first chunk alone. And a read or write may wait on the other
 * direction's readiness: the wait is noted in the stream's flags, which
 * update_mask() and on_io() in stream.c follow.
 */
#include <errno.h>

#include "buf_internal.h"
#include "stream_internal.h"

/* Notes which readiness the last read waits for. */
ssize_t iomux__stream_tx_read(struct iomux_stream *s, void *buf, size_t len)
{
    unsigned wait = IOMUX_READ;
    ssize_t n = s->out->tx->read(s->out->tx_ctx, buf, len, &wait);
    s->rd_wants_write = n == -EAGAIN && wait == IOMUX_WRITE;
    s->rd_parked = n == -EAGAIN && wait == 0;
    return n;
}

/* One call of the transport's write; notes what it waits for. */
static ssize_t write_one(struct iomux_stream *s, const char *bytes, size_t len)
{
    unsigned wait = IOMUX_WRITE;
    ssize_t n = s->out->tx->write(s->out->tx_ctx, bytes, len, &wait);
    s->wr_wants_read = n == -EAGAIN && wait == IOMUX_READ;
    s->wr_parked = n == -EAGAIN && wait == 0;
    return n;
}

ssize_t iomux__stream_tx_write(struct iomux_stream *s, const char *bytes, size_t len)
{
    size_t chunk = iomux__buf_pool_chunk_size(s->cfg->pool);
    size_t done = 0;
    while (done < len) {
        size_t offer = len - done < chunk ? len - done : chunk;
        ssize_t n = write_one(s, bytes + done, offer);
        if (n < 0)
            return done > 0 ? (ssize_t)done : n;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

void iomux__stream_tx_flush(struct iomux_stream *s)
{
    while (queued(s) > 0) {
        struct iovec first;
        (void)iomux_buf_iov(&s->out->buf, &first, 1);
        ssize_t n = write_one(s, first.iov_base, first.iov_len);
        if (n < 0) {
            if (n != -EAGAIN) {
                if (!s->error)
                    s->error = (int)n;
                s->no_writes = true;
            }
            return;
        }
        touch(s);
        iomux_buf_consume(&s->out->buf, (size_t)n);
    }
}

int iomux__stream_tx_close_write(struct iomux_stream *s)
{
    unsigned wait = IOMUX_WRITE;
    int rc = s->out->tx->close_write(s->out->tx_ctx, &wait);
    s->wr_wants_read = rc == -EAGAIN && wait == IOMUX_READ;
    return rc;
}

int iomux_stream_set_transport(struct iomux_stream *s, const struct iomux_stream_transport *ops,
                               void *ctx)
{
    if (!ops || !ops->read || !ops->write || !ops->close_write || !ops->pending || s->has_tx ||
        queued(s) > 0 || s->ending || s->error || s->eof || s->closed)
        return -EINVAL;
    struct stream_out *out = iomux__stream_out(s);
    if (!out)
        return -ENOMEM;
    out->tx = ops;
    out->tx_ctx = ctx;
    s->has_tx = true;
    /* Bytes it holds already (a handshake that read the first record of
       data with it) would never be announced by the fd. */
    if (ops->pending(ctx) && !iomux__stream_defer(s)) {
        s->has_tx = false;
        out->tx = NULL;
        out->tx_ctx = NULL;
        return -ENOMEM;
    }
    return 0;
}

void iomux_stream_resume(struct iomux_stream *s)
{
    if (s->closed || !(s->rd_parked || s->wr_parked))
        return;
    s->rd_parked = false;
    s->wr_parked = false;
    iomux__stream_after_call(s);
}
