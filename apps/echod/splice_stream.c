/* SPDX-License-Identifier: MIT */
/*
 * splice_stream.c - the splice echo of the readiness engine.
 *
 * The transport's read does the echo: splice(socket -> pipe), then
 * splice(pipe -> socket) until the pipe is empty, both SPLICE_F_MOVE |
 * SPLICE_F_NONBLOCK, one round per readiness event (as a copying read is
 * one recv()). It answers -EAGAIN, so the stream never sees the bytes.
 * When the client's socket is full, what is left in the pipe is read
 * into the stream's queue (spill_pipe()): from there on the connection
 * is a copying one until its queue is empty, bounded by --high-water and
 * the memory budget as any other, and a client that never reads holds no
 * pipe.
 *
 * Order is kept: a splice starts only with the stream's queue empty, the
 * pipe goes to the socket only with nothing queued ahead of it, and a
 * copying read (no pipe free) only with the pipe empty. The stream does
 * the rest as for any connection:
 * end of stream (read returns 0 once the pipe is flushed: the stream then
 * shuts the write side), errors and resets (the splice's errno fails the
 * stream, which reports it through on_close), the graceful end
 * (close_write flushes the pipe; later input is read and dropped).
 */
#include "splice_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct splice_conn {
    struct iomux_stream *s;
    struct splice_pool *pool;
    struct splice_counters n;
    int fd;
    int pipe[2];      /* -1 while none is lent */
    size_t in_pipe;   /* bytes in it */
    bool closing;     /* close_write was asked: input is dropped */
    bool unsupported; /* splice() refused this socket (EINVAL): copies */
};

static ssize_t errno_result(void)
{
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* Gives the pipe back once it is empty (or for good when not). */
static void put_pipe(struct splice_conn *c)
{
    if (c->pipe[0] < 0)
        return;
    splice_pool_give(c->pool, c->pipe, c->in_pipe == 0);
    c->pipe[0] = c->pipe[1] = -1;
    c->in_pipe = 0;
}

/* Sends what the pipe holds: 0 when it is empty, -EAGAIN, or -errno. */
static int flush_pipe(struct splice_conn *c)
{
    while (c->in_pipe > 0) {
        ssize_t n =
            splice(c->pipe[0], NULL, c->fd, NULL, c->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return (int)errno_result();
        }
        c->in_pipe -= (size_t)n;
        *c->n.bytes_out += (uint64_t)n;
        splice_pool_count(c->pool, (uint64_t)n);
        iomux_stream_touch(c->s);
    }
    put_pipe(c);
    return 0;
}

/* recv() for a read that copies (no pipe, or the stream still has bytes
   queued, or it is ending): the stream echoes or drops them. */
static ssize_t copy_read(struct splice_conn *c, void *buf, size_t len)
{
    ssize_t n;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : errno_result();
}

/* The client's socket is full: what the pipe holds joins the stream's
   queue instead (copied, as it would have been without splice), so that
   --high-water, the memory budget and holding apply to it as to any
   queue, and the pipe goes back to the pool rather than wait for a client
   that may never read. The stream counts these bytes in again. */
static ssize_t spill_pipe(struct splice_conn *c, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(c->pipe[0], buf, len < c->in_pipe ? len : c->in_pipe);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? errno_result() : -EIO; /* the pipe lost bytes: never */
    c->in_pipe -= (size_t)n;
    *c->n.bytes_in -= (uint64_t)n;
    if (c->in_pipe == 0)
        put_pipe(c);
    return n;
}

/* Empties the pipe: to the socket while nothing is queued ahead of it,
   else (or when the socket is full) into the stream's queue. */
static ssize_t pipe_out(struct splice_conn *c, void *buf, size_t len, unsigned *wait)
{
    if (iomux_stream_queued(c->s) == 0) {
        int rc = flush_pipe(c);
        if (rc == 0)
            return -EAGAIN; /* the round is done: wait for READ */
        if (rc != -EAGAIN)
            return rc;
    }
    if (c->closing) { /* close_write flushes it, when the socket takes it */
        *wait = IOMUX_WRITE;
        return -EAGAIN;
    }
    return spill_pipe(c, buf, len);
}

/* One round through a pipe. */
static ssize_t splice_round(struct splice_conn *c, void *buf, size_t len, unsigned *wait)
{
    ssize_t n;
    do
        n = splice(c->fd, NULL, c->pipe[1], NULL, SPLICE_PIPE_SIZE,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        ssize_t rc = n == 0 ? 0 : errno_result();
        put_pipe(c); /* empty */
        return rc;
    }
    c->in_pipe = (size_t)n;
    *c->n.bytes_in += (uint64_t)n;
    iomux_stream_touch(c->s);
    return pipe_out(c, buf, len, wait);
}

static ssize_t sp_read(void *ctx, void *buf, size_t len, unsigned *wait)
{
    struct splice_conn *c = ctx;
    if (c->in_pipe > 0)
        return pipe_out(c, buf, len, wait);
    if (c->closing || c->unsupported || iomux_stream_queued(c->s) > 0 ||
        !splice_pool_take(c->pool, c->pipe))
        return copy_read(c, buf, len);
    ssize_t n = splice_round(c, buf, len, wait);
    if (n == -EINVAL && c->in_pipe == 0) { /* a socket splice() does not take */
        c->unsupported = true;
        return copy_read(c, buf, len);
    }
    return n;
}

static ssize_t sp_write(void *ctx, const void *buf, size_t len, unsigned *wait)
{
    struct splice_conn *c = ctx;
    ssize_t n;
    do
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : errno_result();
}

/* The graceful end or the client's: what the pipe holds goes first. */
static int sp_close_write(void *ctx, unsigned *wait)
{
    struct splice_conn *c = ctx;
    c->closing = true;
    return flush_pipe(c);
}

/* Bytes left in the pipe after a spill (the read was capped): the stream
   takes them without waiting for the fd. */
static int sp_pending(void *ctx)
{
    const struct splice_conn *c = ctx;
    return c->in_pipe > 0;
}

static void sp_release(void *ctx)
{
    struct splice_conn *c = ctx;
    put_pipe(c);
    free(c);
}

static const struct iomux_stream_transport splice_transport = {
    .read = sp_read,
    .write = sp_write,
    .close_write = sp_close_write,
    .pending = sp_pending,
    .release = sp_release,
};

int splice_stream_start(struct iomux_stream *s, struct splice_pool *pool,
                        const struct splice_counters *counters)
{
    struct splice_conn *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (struct splice_conn){
        .s = s,
        .pool = pool,
        .n = *counters,
        .fd = iomux_stream_fd(s),
        .pipe = {-1, -1},
    };
    int rc = iomux_stream_set_transport(s, &splice_transport, c);
    if (rc < 0)
        free(c);
    return rc;
}
