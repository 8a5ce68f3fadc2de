/* SPDX-License-Identifier: MIT */
/*
 * stream.c - buffered stream sockets on the loop: reading into the pool's
 * shared buffer, writing through a chunked queue, backpressure, half-close
 * and the one-time report of how the stream ended.
 *
 * The delicate part is re-entrancy. The owner's callbacks may call back
 * into the stream (write from on_data, close from anywhere), so teardown is
 * only ever done at a "safe point": when no callback of this stream is on
 * the stack (depth == 0). Functions the owner calls never end the stream
 * themselves; they record what happened and let the loop finish the job,
 * from the stream's fd callback or from a zero-delay timer.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iomux/net.h"
#include "iomux/stream.h"
#include "loop_internal.h"

/* Chunks offered to one sendmsg(); 32 x 16 KiB is more than any socket
   send buffer takes in one go, so a bigger array would not help. */
#define FLUSH_IOV 32

struct iomux_stream {
    struct iomux_loop *loop;
    struct iomux_buf out; /* bytes accepted by write() and not sent yet;
                             out.pool is also where reads go */
    int fd;
    unsigned mask;  /* interest the loop currently has for fd */
    int error;      /* first failure, 0 if none */
    unsigned depth; /* callbacks of this stream on the stack */
    uint64_t timer; /* pending zero-delay "settle" timer, 0 if none */
    uint64_t last_io;
    size_t high, low, read_max;
    bool eof;           /* the peer shut down its write side */
    bool no_writes;     /* write() refuses: ending, failed, or past on_eof */
    bool ending;        /* iomux_stream_end() was called */
    bool wr_shut;       /* we shut down our write side */
    bool backpressured; /* reading paused: queue above high water */
    bool watched;       /* fd is in the loop */
    bool closed;        /* fd closed; only freeing is left */
    bool user_closed;   /* closed by iomux_stream_close(): no on_close */
    bool dead;          /* free when depth drops to 0 */
    iomux_stream_data_cb *on_data;
    iomux_stream_event_cb *on_eof;
    iomux_stream_event_cb *on_drain;
    iomux_stream_close_cb *on_close;
    void *data;
};

static void on_io(struct iomux_loop *loop, int fd, unsigned events, void *data);

/* Records the first error; later ones are consequences of it. */
static void set_error(struct iomux_stream *s, int err)
{
    if (!s->error)
        s->error = err;
    s->no_writes = true;
}

static bool want_read(const struct iomux_stream *s)
{
    return !s->closed && !s->error && !s->eof && !s->backpressured;
}

/* True when nothing but closing is left to do. */
static bool finished(const struct iomux_stream *s)
{
    return s->error || (s->eof && iomux_buf_len(&s->out) == 0);
}

/* Gives the loop the interest that matches the state: READ unless paused,
   WRITE only while something is queued (watching WRITE on an empty queue
   would wake the loop on every iteration for nothing). */
static void update_mask(struct iomux_stream *s)
{
    if (!s->watched)
        return;
    unsigned mask = 0;
    if (want_read(s))
        mask |= IOMUX_READ;
    if (!s->error && iomux_buf_len(&s->out) > 0)
        mask |= IOMUX_WRITE;
    if (mask == s->mask)
        return;
    int rc = iomux_fd_modify(s->loop, s->fd, mask);
    if (rc < 0)
        set_error(s, rc);
    else
        s->mask = mask;
}

/* Unwatches and closes the fd and drops the queue; the struct remains. */
static void teardown(struct iomux_stream *s)
{
    if (s->timer) {
        iomux_timer_cancel(s->loop, s->timer);
        s->timer = 0;
    }
    if (s->watched) {
        iomux_fd_unwatch(s->loop, s->fd);
        s->watched = false;
    }
    /* A clean end shuts the write side first, so the peer sees end of
       stream after the last byte even if it still has the fd shared. */
    if (s->fd >= 0) {
        if (!s->error && !s->wr_shut && !s->user_closed)
            (void)shutdown(s->fd, SHUT_WR);
        close(s->fd);
        s->fd = -1;
    }
    iomux_buf_clear(&s->out);
    s->closed = true;
}

/* Reports the end once and frees the stream. Only called at a safe point. */
static void finish(struct iomux_stream *s)
{
    teardown(s);
    if (s->on_close) {
        s->depth++;
        s->on_close(s, s->error, s->data);
        s->depth--;
    }
    iomux__free(s);
}

/* Called when no callback of this stream is on the stack. */
static void settle(struct iomux_stream *s)
{
    if (s->dead) {
        iomux__free(s);
        return;
    }
    if (!finished(s))
        update_mask(s);
    if (finished(s))
        finish(s);
}

static void on_settle_timer(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct iomux_stream *s = data;
    (void)loop;
    (void)id;
    s->timer = 0;
    settle(s);
}

/* After a call from the owner: the mask may need changing, or the stream
   may be finished. Finishing would run on_close inside the owner's call,
   so it is deferred to a zero-delay timer that runs later in this loop
   iteration. */
static void after_call(struct iomux_stream *s)
{
    if (s->depth > 0)
        return; /* the callback we are in settles when it returns */
    if (!finished(s))
        update_mask(s);
    if (finished(s) && !s->timer) {
        if (iomux_timer_add(s->loop, 0, 0, on_settle_timer, s, &s->timer) < 0) {
            /* No memory for a timer either. The stream is failing anyway:
               shutting the socket down both ways makes it readable (end of
               stream) and hung up on every backend, so on_io runs soon
               and settles it. */
            s->timer = 0;
            (void)shutdown(s->fd, SHUT_RDWR);
            unsigned mask = IOMUX_READ | IOMUX_WRITE;
            if (s->watched && iomux_fd_modify(s->loop, s->fd, mask) == 0)
                s->mask = mask;
        }
    }
}

int iomux_stream_new(struct iomux_loop *loop, struct iomux_buf_pool *pool, int fd,
                     const struct iomux_stream_options *opts, struct iomux_stream **out)
{
    if (!loop || !pool || fd < 0 || !opts || !opts->on_data || !out)
        return -EINVAL;
    size_t high = opts->high_water ? opts->high_water : IOMUX_STREAM_HIGH_WATER;
    size_t low = opts->low_water ? opts->low_water : IOMUX_STREAM_LOW_WATER;
    if (!opts->low_water && low > high / 4)
        low = high / 4;
    if (low > high)
        return -EINVAL;

    struct iomux_stream *s = iomux__calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    iomux_buf_init(&s->out, pool);
    s->fd = fd;
    s->high = high;
    s->low = low;
    s->read_max = opts->read_max;
    s->on_data = opts->on_data;
    s->on_eof = opts->on_eof;
    s->on_drain = opts->on_drain;
    s->on_close = opts->on_close;
    s->data = opts->data;
    s->last_io = iomux_loop_now(loop);
    int rc = iomux_fd_watch(loop, fd, IOMUX_READ, on_io, s);
    if (rc < 0) {
        iomux__free(s);
        return rc;
    }
    s->watched = true;
    s->mask = IOMUX_READ;
    *out = s;
    return 0;
}

/* Sends from the queue until it is empty or the socket is full. */
static void flush(struct iomux_stream *s)
{
    while (iomux_buf_len(&s->out) > 0) {
        struct iovec iov[FLUSH_IOV];
        int n = iomux_buf_iov(&s->out, iov, FLUSH_IOV);
        size_t offered = 0;
        for (int i = 0; i < n; i++)
            offered += iov[i].iov_len;
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)n;
        ssize_t w = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                set_error(s, -errno);
            break;
        }
        s->last_io = iomux_loop_now(s->loop);
        iomux_buf_consume(&s->out, (size_t)w);
        if ((size_t)w < offered)
            break; /* the socket buffer is full: wait for IOMUX_WRITE */
    }
    if (s->error)
        return;
    if (s->backpressured && iomux_buf_len(&s->out) <= s->low)
        s->backpressured = false;
    if (iomux_buf_len(&s->out) > 0)
        return;
    if (s->ending && !s->wr_shut) {
        if (shutdown(s->fd, SHUT_WR) < 0)
            set_error(s, -errno);
        s->wr_shut = true;
    }
    if (s->on_drain && !s->ending && !s->error)
        s->on_drain(s, s->data);
}

static void read_once(struct iomux_stream *s)
{
    size_t cap;
    char *buf = iomux_buf_pool_read_buffer(s->out.pool, &cap);
    if (!buf) {
        set_error(s, -ENOMEM);
        return;
    }
    if (s->read_max && s->read_max < cap)
        cap = s->read_max;
    ssize_t n;
    do
        n = recv(s->fd, buf, cap, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        s->last_io = iomux_loop_now(s->loop);
        if (!s->ending) /* after end(), input is read only to be dropped */
            s->on_data(s, buf, (size_t)n, s->data);
    } else if (n == 0) {
        s->eof = true;
        if (s->on_eof && !s->ending && !s->no_writes)
            s->on_eof(s, s->data);
        s->no_writes = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        set_error(s, -errno);
    }
}

static void on_io(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct iomux_stream *s = data;
    (void)loop;
    (void)fd;
    s->depth++;
    if (events & IOMUX_INVALID) {
        /* Someone closed our fd behind our back and the loop dropped it.
           The number may already name another file: never close it. */
        s->watched = false;
        s->fd = -1;
        set_error(s, -EBADF);
    }
    if (!s->error && (events & IOMUX_ERROR)) {
        int err = iomux_socket_error(s->fd);
        if (err < 0)
            set_error(s, err);
    }
    /* Flush first: it frees room, and may lift backpressure so that this
       same event can read. HUP and ERROR go to whichever I/O is pending,
       whose system call then reports the actual condition. */
    if (!s->error && !s->closed && iomux_buf_len(&s->out) > 0 &&
        (events & (IOMUX_WRITE | IOMUX_HUP | IOMUX_ERROR)))
        flush(s);
    if (!s->error && want_read(s) && (events & (IOMUX_READ | IOMUX_HUP | IOMUX_ERROR)))
        read_once(s);
    s->depth--;
    if (s->depth == 0)
        settle(s);
}

int iomux_stream_write(struct iomux_stream *s, const void *bytes, size_t len)
{
    if (s->no_writes || s->closed)
        return -EPIPE;
    if (len == 0)
        return 0;
    const char *p = bytes;
    if (iomux_buf_len(&s->out) == 0) {
        /* Nothing queued: try the socket directly, which in the common
           case sends everything without copying or touching the loop. */
        ssize_t w;
        do
            w = send(s->fd, p, len, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                set_error(s, -errno);
                after_call(s);
                return -EPIPE;
            }
            w = 0;
        } else {
            s->last_io = iomux_loop_now(s->loop);
        }
        p += w;
        len -= (size_t)w;
    }
    if (len > 0) {
        if (iomux_buf_append(&s->out, p, len) < 0) {
            /* Part may have been sent already, so the byte stream cannot
               be continued correctly: the stream fails. */
            set_error(s, -ENOMEM);
            after_call(s);
            return -ENOMEM;
        }
        if (iomux_buf_len(&s->out) > s->high)
            s->backpressured = true;
        after_call(s);
    }
    return 0;
}

void iomux_stream_end(struct iomux_stream *s)
{
    if (s->closed || s->ending)
        return;
    s->ending = true;
    s->no_writes = true;
    /* Input is now dropped, never queued, so backpressure has no reason
       to hold the peer back any more. */
    s->backpressured = false;
    if (!s->error && iomux_buf_len(&s->out) == 0 && !s->wr_shut) {
        if (shutdown(s->fd, SHUT_WR) < 0)
            set_error(s, -errno);
        s->wr_shut = true;
    }
    after_call(s);
}

void iomux_stream_close(struct iomux_stream *s)
{
    if (s->closed)
        return;
    s->user_closed = true;
    teardown(s);
    if (s->depth > 0)
        s->dead = true;
    else
        iomux__free(s);
}

int iomux_stream_fd(const struct iomux_stream *s)
{
    return s->fd;
}

size_t iomux_stream_queued(const struct iomux_stream *s)
{
    return iomux_buf_len(&s->out);
}

uint64_t iomux_stream_last_io(const struct iomux_stream *s)
{
    return s->last_io;
}

int iomux_stream_backpressured(const struct iomux_stream *s)
{
    return s->backpressured ? 1 : 0;
}
