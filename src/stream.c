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
 *
 * The other concern is size: a server with 10,000 idle clients pays for
 * this struct 10,000 times. So what all streams of one kind share (loop,
 * pool, callbacks, watermarks) is kept once, in a reference-counted
 * "config" interned in the pool; the output queue, which most streams of an
 * echo server never need, is allocated on the first short send; times and
 * flags are packed; and the owner's own per-connection state may live in
 * the same allocation (extra_size), saving it a malloc() and its header.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iomux/net.h"
#include "iomux/stream.h"
#include "buf_internal.h"
#include "loop_internal.h"
#include "stream_internal.h"

/* Chunks offered to one sendmsg(); 32 x 16 KiB is more than any socket
   send buffer takes in one go, so a bigger array would not help. */
#define FLUSH_IOV 32

struct stream_out *iomux__stream_out(struct iomux_stream *s)
{
    if (!s->out) {
        s->out = iomux__malloc(sizeof(*s->out));
        if (!s->out)
            return NULL;
        iomux_buf_init(&s->out->buf, s->cfg->pool);
        s->out->timer = 0;
        s->out->tx = NULL;
        s->out->tx_ctx = NULL;
    }
    return s->out;
}

/* Finds or makes the shared config matching these options. */
static struct iomux__stream_cfg *cfg_get(const struct iomux__stream_cfg *want)
{
    struct iomux__stream_cfg **list = iomux__buf_pool_stream_cfgs(want->pool);
    for (struct iomux__stream_cfg *c = *list; c; c = c->next) {
        if (c->loop == want->loop && c->on_data == want->on_data && c->on_eof == want->on_eof &&
            c->on_drain == want->on_drain && c->on_close == want->on_close &&
            c->high == want->high && c->low == want->low && c->read_max == want->read_max &&
            c->extra == want->extra) {
            c->refs++;
            return c;
        }
    }
    struct iomux__stream_cfg *c = iomux__malloc(sizeof(*c));
    if (!c)
        return NULL;
    *c = *want;
    c->refs = 1;
    c->next = *list;
    *list = c;
    return c;
}

static void cfg_put(struct iomux__stream_cfg *cfg)
{
    if (--cfg->refs > 0)
        return;
    struct iomux__stream_cfg **p = iomux__buf_pool_stream_cfgs(cfg->pool);
    while (*p != cfg)
        p = &(*p)->next;
    *p = cfg->next;
    iomux__free(cfg);
}

/* Frees the memory; the fd is closed and the queue empty by now. */
static void stream_free(struct iomux_stream *s)
{
    /* After on_close, so that it may still ask the transport why. */
    if (s->has_tx && s->out->tx->release)
        s->out->tx->release(s->out->tx_ctx);
    cfg_put(s->cfg);
    iomux__free(s->out);
    iomux__free(s);
}

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
    return !s->closed && !s->error && !s->eof && !s->backpressured && !s->held;
}

/* A transport's end of stream is due: everything queued went out after
   the peer's end or iomux_stream_end(). (A plain stream shuts its write
   side in teardown, or at once on end().) */
static bool tx_shut_due(const struct iomux_stream *s)
{
    return s->has_tx && !s->closed && !s->wr_shut && !s->error && (s->eof || s->ending) &&
           queued(s) == 0;
}

/* Something to send: bytes, or a transport's end of stream. */
static bool wants_output(const struct iomux_stream *s)
{
    return queued(s) > 0 || tx_shut_due(s);
}

/* True when nothing but closing is left to do. */
static bool finished(const struct iomux_stream *s)
{
    return s->error || (s->eof && queued(s) == 0 && (!s->has_tx || s->wr_shut));
}

/* Bytes inside the transport that the fd will not signal. */
static bool tx_pending(const struct iomux_stream *s)
{
    return s->has_tx && s->out->tx->pending(s->out->tx_ctx) != 0;
}

/* Bytes held by the transport that it can hand over now. */
static bool tx_held(const struct iomux_stream *s)
{
    return s->has_tx && !s->rd_wants_write && !s->rd_parked && tx_pending(s);
}

/* Gives the loop the interest that matches the state: READ unless paused,
   WRITE only while something is queued (watching WRITE on an empty queue
   would wake the loop on every iteration for nothing). */
static void update_mask(struct iomux_stream *s)
{
    if (!s->watched)
        return;
    unsigned mask = 0;
    if (want_read(s) && !s->rd_parked)
        mask |= s->rd_wants_write ? IOMUX_WRITE : IOMUX_READ;
    if (!s->error && wants_output(s) && !s->wr_parked)
        mask |= s->wr_wants_read ? IOMUX_READ : IOMUX_WRITE;
    if (mask == s->mask)
        return;
    int rc = iomux_fd_modify(s->cfg->loop, s->fd, mask);
    if (rc < 0)
        set_error(s, rc);
    else
        s->mask = (uint8_t)mask;
}

/* Unwatches and closes the fd and drops the queue; the struct remains. */
static void teardown(struct iomux_stream *s)
{
    if (timer_pending(s)) {
        iomux_timer_cancel(s->cfg->loop, s->out->timer);
        s->out->timer = 0;
    }
    if (s->watched) {
        iomux_fd_unwatch(s->cfg->loop, s->fd);
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
    if (s->out)
        iomux_buf_clear(&s->out->buf);
    s->closed = true;
}

/* Reports the end once and frees the stream. Only called at a safe point. */
static void finish(struct iomux_stream *s)
{
    teardown(s);
    if (s->cfg->on_close) {
        s->depth++;
        s->cfg->on_close(s, s->error, s->data);
        s->depth--;
    }
    stream_free(s);
}

/* Called when no callback of this stream is on the stack. */
static void settle(struct iomux_stream *s)
{
    if (s->dead) {
        stream_free(s);
        return;
    }
    if (!finished(s))
        update_mask(s);
    if (finished(s))
        finish(s);
}

/* The zero-delay timer: settles the stream, and reads what its transport
   holds when no fd event would ever come for it. */
static void on_settle_timer(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct iomux_stream *s = data;
    s->out->timer = 0;
    if (!finished(s) && want_read(s) && tx_pending(s))
        on_io(loop, s->fd, 0, s); /* settles when done */
    else
        settle(s);
}

bool iomux__stream_defer(struct iomux_stream *s)
{
    if (timer_pending(s))
        return true;
    struct stream_out *out = iomux__stream_out(s);
    if (out && iomux_timer_add(s->cfg->loop, 0, 0, on_settle_timer, s, &out->timer) == 0)
        return true;
    if (out)
        out->timer = 0;
    return false;
}

/* After a call from the owner: the mask may need changing, or the stream
   may be finished. Finishing would run on_close inside the owner's call,
   so it is deferred to a zero-delay timer that runs later in this loop
   iteration. */
void iomux__stream_after_call(struct iomux_stream *s)
{
    if (s->depth > 0)
        return; /* the callback we are in settles when it returns */
    if (!finished(s))
        update_mask(s);
    /* A transport's write may have read records the fd will not signal
       again (TLS renegotiation): the timer reads them. */
    bool late_read = !finished(s) && want_read(s) && tx_pending(s);
    if (late_read && !iomux__stream_defer(s))
        set_error(s, -ENOMEM);
    if (finished(s) && !iomux__stream_defer(s)) {
        /* No memory for a timer either. The stream is failing anyway:
           shutting the socket down both ways makes it readable (end of
           stream) and hung up on every backend, so on_io runs soon and
           settles it. */
        (void)shutdown(s->fd, SHUT_RDWR);
        unsigned mask = IOMUX_READ | IOMUX_WRITE;
        if (s->watched && iomux_fd_modify(s->cfg->loop, s->fd, mask) == 0)
            s->mask = (uint8_t)mask;
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

    if (opts->extra_size > SIZE_MAX / 2)
        return -EINVAL;
    struct iomux__stream_cfg want = {
        .loop = loop,
        .pool = pool,
        .on_data = opts->on_data,
        .on_eof = opts->on_eof,
        .on_drain = opts->on_drain,
        .on_close = opts->on_close,
        .high = high,
        .low = low,
        .read_max = opts->read_max,
        /* Rounded so that whatever the owner keeps there is aligned. */
        .extra = (opts->extra_size + 7) & ~(size_t)7,
    };
    struct iomux__stream_cfg *cfg = cfg_get(&want);
    if (!cfg)
        return -ENOMEM;
    struct iomux_stream *s = iomux__calloc(1, sizeof(*s) + cfg->extra);
    if (!s) {
        cfg_put(cfg);
        return -ENOMEM;
    }
    s->cfg = cfg;
    s->fd = fd;
    s->data = opts->data;
    touch(s);
    int rc = iomux_fd_watch(loop, fd, IOMUX_READ, on_io, s);
    if (rc < 0) {
        stream_free(s);
        return rc;
    }
    s->watched = true;
    s->mask = IOMUX_READ;
    *out = s;
    return 0;
}

/* Sends from the queue with sendmsg() until it is empty or the socket is
   full. */
static void flush_plain(struct iomux_stream *s)
{
    while (queued(s) > 0) {
        struct iovec iov[FLUSH_IOV];
        int n = iomux_buf_iov(&s->out->buf, iov, FLUSH_IOV);
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
        touch(s);
        iomux_buf_consume(&s->out->buf, (size_t)w);
        if ((size_t)w < offered)
            break; /* the socket buffer is full: wait for IOMUX_WRITE */
    }
}

/* Shuts our write side down: the transport's end of stream first, if
   there is one (it may have to wait), then the fd's. */
static void shut_write(struct iomux_stream *s)
{
    if (s->has_tx) {
        int rc = iomux__stream_tx_close_write(s);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            set_error(s, rc);
            return;
        }
    }
    if (shutdown(s->fd, SHUT_WR) < 0)
        set_error(s, -errno);
    s->wr_shut = true;
}

/* Sends what is queued, then the end of stream when it is due. */
static void flush(struct iomux_stream *s)
{
    bool had_bytes = queued(s) > 0;
    if (s->has_tx)
        iomux__stream_tx_flush(s);
    else
        flush_plain(s);
    if (s->error)
        return;
    if (s->backpressured && queued(s) <= s->cfg->low)
        s->backpressured = false;
    if (queued(s) > 0)
        return;
    s->held = false; /* its peer took everything: it reads its echoes */
    if ((s->ending || tx_shut_due(s)) && !s->wr_shut)
        shut_write(s);
    if (had_bytes && s->cfg->on_drain && !s->ending && !s->error)
        s->cfg->on_drain(s, s->data);
}

/* recv(), or the transport's read: bytes, 0 at the end, or -errno. */
static ssize_t read_some(struct iomux_stream *s, char *buf, size_t cap)
{
    if (s->has_tx) {
        ssize_t n = iomux__stream_tx_read(s, buf, cap);
        /* After end() input is only dropped, so a peer that answers our
           end of stream by closing without its own loses us nothing. */
        return n == IOMUX_STREAM_TRUNCATED && s->ending ? 0 : n;
    }
    ssize_t n;
    do
        n = recv(s->fd, buf, cap, 0);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* One read, delivered; true when bytes came. */
static bool read_once(struct iomux_stream *s)
{
    size_t cap;
    char *buf = iomux_buf_pool_read_buffer(s->cfg->pool, &cap);
    if (!buf) {
        set_error(s, -ENOMEM);
        return false;
    }
    if (s->cfg->read_max && s->cfg->read_max < cap)
        cap = s->cfg->read_max;
    ssize_t n = read_some(s, buf, cap);
    if (n > 0) {
        touch(s);
        if (!s->ending) /* after end(), input is read only to be dropped */
            s->cfg->on_data(s, buf, (size_t)n, s->data);
        return true;
    }
    if (n == 0) {
        s->eof = true;
        if (s->cfg->on_eof && !s->ending && !s->no_writes)
            s->cfg->on_eof(s, s->data);
        s->no_writes = true;
    } else if (n != -EAGAIN) {
        set_error(s, (int)n);
    }
    return false;
}

static void on_io(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct iomux_stream *s = data;
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
       whose system call then reports the actual condition. A transport's
       write may wait for READ and its read for WRITE. */
    const unsigned fault = IOMUX_HUP | IOMUX_ERROR;
    unsigned wr_ready = s->wr_wants_read ? IOMUX_READ : IOMUX_WRITE;
    unsigned rd_ready = s->rd_wants_write ? IOMUX_WRITE : IOMUX_READ;
    if (!s->error && !s->closed && wants_output(s) && (events & (wr_ready | fault)))
        flush(s);
    /* Bytes the transport took from the fd already (a record decrypted,
       or read ahead) raise no readiness: they are read without it, until
       a read has to wait (an incomplete record, or a write the transport
       must make first). One call site, so that the plain path inlines. */
    bool go = (events & (rd_ready | fault)) || tx_held(s);
    while (go && !s->error && want_read(s))
        go = read_once(s) && tx_held(s);
    if (tx_shut_due(s))
        shut_write(s);
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
    if (queued(s) == 0) {
        /* Nothing queued: try the socket directly, which in the common
           case sends everything without copying or touching the loop. */
        ssize_t w;
        if (s->has_tx) {
            w = iomux__stream_tx_write(s, p, len);
        } else {
            do
                w = send(s->fd, p, len, MSG_NOSIGNAL);
            while (w < 0 && errno == EINTR);
            if (w < 0)
                w = errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        if (w < 0) {
            if (w != -EAGAIN) {
                set_error(s, (int)w);
                iomux__stream_after_call(s);
                return -EPIPE;
            }
            w = 0;
        } else {
            touch(s);
        }
        p += w;
        len -= (size_t)w;
    }
    if (len > 0) {
        struct stream_out *out = iomux__stream_out(s);
        if (!out || iomux_buf_append(&out->buf, p, len) < 0) {
            /* Part may have been sent already, so the byte stream cannot
               be continued correctly: the stream fails. */
            set_error(s, -ENOMEM);
            iomux__stream_after_call(s);
            return -ENOMEM;
        }
        if (queued(s) > s->cfg->high)
            s->backpressured = true;
        iomux__stream_after_call(s);
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
    s->held = false;
    if (!s->error && queued(s) == 0 && !s->wr_shut)
        shut_write(s);
    iomux__stream_after_call(s);
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
        stream_free(s);
}

int iomux_stream_fd(const struct iomux_stream *s)
{
    return s->fd;
}

size_t iomux_stream_queued(const struct iomux_stream *s)
{
    return queued(s);
}

void iomux_stream_touch(struct iomux_stream *s)
{
    touch(s);
}

uint64_t iomux_stream_last_io(const struct iomux_stream *s)
{
    /* Only the low 32 bits are kept; the age they give is exact for 49
       days, which no idle timeout comes near. */
    uint64_t now = iomux_loop_now(s->cfg->loop);
    return now - (uint32_t)((uint32_t)now - s->last_io);
}

void *iomux_stream_extra(struct iomux_stream *s)
{
    return s->cfg->extra ? (void *)(s + 1) : NULL;
}

struct iomux_stream *iomux_stream_of_extra(void *extra)
{
    return (struct iomux_stream *)extra - 1;
}

int iomux_stream_backpressured(const struct iomux_stream *s)
{
    return s->backpressured ? 1 : 0;
}

int iomux_stream_hold(struct iomux_stream *s)
{
    /* With nothing queued no flush would ever lift the hold; and a stream
       that ends drops its input, so holding it back would help nobody. */
    if (s->closed || s->ending || queued(s) == 0)
        return 0;
    s->held = true;
    iomux__stream_after_call(s);
    return 1;
}
