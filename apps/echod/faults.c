/* SPDX-License-Identifier: MIT */
/*
 * faults.c - one connection's faults, as a stream transport (faults.h).
 *
 * The stream calls read() when the socket is readable and write() with
 * the head of its queue; this file decides what may move now:
 *   read   records when each chunk arrived (delay=) and whether it is to be
 *          corrupted (corrupt=), holds a new connection (accept-delay=) and
 *          the client's FIN (slow-close=), and reads nothing once stalled;
 *   write  sends no more than is due: the delayed chunks whose time came,
 *          the token bucket's bytes (rate=), one piece (slice=), and stops
 *          at the byte count of stall-, reset- or close-after.
 * What may not move yet parks (*wait = 0): the stream then watches the
 * socket for nothing in that direction, and this connection's one timer
 * calls iomux_stream_resume() when the earliest wait is over. Everything
 * not sent stays in the stream's queue, whose high-water mark stops the
 * reading, so a slow echo never grows memory past that mark.
 */
#include "faults.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <iomux/loop.h>
#include <iomux/stream.h>

/* Arrivals remembered for delay=: when more chunks are waiting than this,
   the newest ones share a deadline (the latest: never earlier than due). */
#define DELAY_RING 16
/* How often a reset-after waits for its last bytes to leave the socket
   (a reset drops what is not yet sent, and they must be seen first). */
#define RESET_RETRY_MS 5

struct arrival {
    uint64_t end; /* input offset after the chunk */
    uint64_t due; /* loop ms from which it may be echoed */
};

struct fault_conn {
    const struct fault_spec *spec;
    struct fault_env *env;
    struct iomux_stream *stream;
    void *owner;
    int fd;
    uint64_t rng;
    uint64_t in, out; /* bytes received, bytes echoed */
    uint64_t limit;   /* the first of the *-after counts, UINT64_MAX if none */
    enum fault_kind limit_kind;
    uint64_t timer, wake_at;
    uint64_t hold_until; /* accept-delay: no read before */
    uint64_t eof_at;     /* slow-close: the client's FIN passed on from */
    uint64_t tokens;     /* rate: bytes x 1000 (one per ms of rate) */
    uint64_t refilled_at;
    uint64_t next_piece_at; /* slice=N:MS */
    uint64_t flip_at;       /* corrupt: the input offset of the bit flipped */
    struct arrival ring[DELAY_RING];
    uint8_t head, count;
    uint8_t flip_bit;
    bool flip_pending, stalled, write_closed, eof_seen, paced, sliced, reset;
};

size_t fault_conn_size(void)
{
    return sizeof(struct fault_conn);
}

static void fire(struct fault_conn *fc, enum fault_kind kind)
{
    fc->env->counts[kind]++;
    if (fc->env->fired)
        fc->env->fired(fc->env->ctx, fc->owner, kind, fc->out);
}

static void on_timer(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct fault_conn *fc = data;
    fc->timer = 0;
    iomux_stream_resume(fc->stream);
}

/* Waits for the owner (iomux_stream_resume()): from the timer at `at`
   (loop ms), or for good with `at` 0. One timer per connection: the
   earliest wait arms it, and a later one finds it armed. */
static ssize_t park(struct fault_conn *fc, uint64_t at, unsigned *wait)
{
    *wait = 0;
    if (!at || (fc->timer && fc->wake_at <= at))
        return -EAGAIN;
    if (fc->timer)
        iomux_timer_cancel(fc->env->loop, fc->timer);
    uint64_t now = iomux_loop_now(fc->env->loop);
    fc->timer = 0;
    fc->wake_at = at;
    /* Out of memory for a timer: wake at the next readiness instead. */
    if (iomux_timer_add(fc->env->loop, at > now ? at - now : 0, 0, on_timer, fc, &fc->timer) < 0)
        *wait = IOMUX_WRITE;
    return -EAGAIN;
}

/* A parked read is called on a hang-up or error the socket reports
   regardless: that error (or the end) must end the wait, not spin. */
static ssize_t parked_read(struct fault_conn *fc, uint64_t at, unsigned *wait)
{
    char c;
    ssize_t n = recv(fc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return -errno;
    return park(fc, at, wait);
}

/* delay=: the arrival of `n` bytes now, due after the delay +- jitter,
   never before an earlier chunk (the order is kept). The +1 makes up for
   the loop's whole milliseconds: no echo leaves sooner than the delay. */
static void note_arrival(struct fault_conn *fc, uint64_t now, size_t n)
{
    const struct fault_spec *f = fc->spec;
    uint64_t delay = f->delay_ms;
    if (f->jitter_ms) {
        uint64_t span = 2 * (uint64_t)f->jitter_ms + 1;
        uint64_t shift = fault_rand(&fc->rng) % span;
        delay = delay + shift > f->jitter_ms ? delay + shift - f->jitter_ms : 0;
    }
    uint64_t due = now + delay + 1;
    if (fc->count > 0) {
        struct arrival *last = &fc->ring[(fc->head + fc->count - 1) % DELAY_RING];
        if (due < last->due)
            due = last->due;
        if (fc->count == DELAY_RING) {
            last->end = fc->in + n;
            last->due = due;
            return;
        }
    }
    fc->ring[(fc->head + fc->count) % DELAY_RING] = (struct arrival){fc->in + n, due};
    fc->count++;
    fire(fc, FAULT_DELAY);
}

static void note_received(struct fault_conn *fc, size_t n)
{
    const struct fault_spec *f = fc->spec;
    if (f->given & (1u << FAULT_DELAY))
        note_arrival(fc, iomux_loop_now(fc->env->loop), n);
    if (f->corrupt_ppm && !fc->flip_pending && fault_chance(&fc->rng, f->corrupt_ppm)) {
        uint64_t r = fault_rand(&fc->rng);
        fc->flip_at = fc->in + r % n;
        fc->flip_bit = (uint8_t)((r >> 32) % 8);
        fc->flip_pending = true;
    }
    fc->in += n;
}

static ssize_t fault_read(void *ctx, void *buf, size_t len, unsigned *wait)
{
    struct fault_conn *fc = ctx;
    uint64_t now = iomux_loop_now(fc->env->loop);
    if (fc->stalled)
        return parked_read(fc, 0, wait);
    if (now < fc->hold_until)
        return parked_read(fc, fc->hold_until, wait);
    if (fc->eof_seen)
        return now < fc->eof_at ? park(fc, fc->eof_at, wait) : 0;
    ssize_t n;
    do
        n = recv(fc->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        note_received(fc, (size_t)n);
    } else if (n == 0 && fc->spec->slow_close_ms) {
        fc->eof_seen = true;
        fc->eof_at = now + fc->spec->slow_close_ms + 1;
        fire(fc, FAULT_SLOW_CLOSE);
        return park(fc, fc->eof_at, wait);
    } else if (n < 0) {
        *wait = IOMUX_READ;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return n;
}

/* The byte count of stall-, reset- or close-after is reached. */
static ssize_t at_limit(struct fault_conn *fc, size_t len, unsigned *wait)
{
    if (fc->limit_kind == FAULT_STALL) {
        fc->stalled = true;
        fire(fc, FAULT_STALL);
        return park(fc, 0, wait);
    }
    if (fc->limit_kind == FAULT_CLOSE) {
        /* The FIN now; what the client sends after it is read and
           dropped, so that closing later sends no reset either. */
        (void)shutdown(fc->fd, SHUT_WR);
        fc->write_closed = true;
        fire(fc, FAULT_CLOSE);
        return (ssize_t)len;
    }
    /* Said once: a write that sent bytes before this one returns their
       count, and the stream asks again. */
    if (fc->reset)
        return -ECONNRESET;
    int unsent = 0;
    if (ioctl(fc->fd, SIOCOUTQ, &unsent) == 0 && unsent > 0)
        return park(fc, iomux_loop_now(fc->env->loop) + RESET_RETRY_MS, wait);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    fc->reset = true;
    fire(fc, FAULT_RESET);
    return -ECONNRESET; /* the stream fails and closes: a reset, with linger 0 */
}

/* rate=: the bucket holds at most 20 ms of the rate (small bursts) and
   starts empty; an empty one waits until a piece worth sending is in. */
static uint64_t rate_allows(struct fault_conn *fc, uint64_t now, size_t want, uint64_t *wake)
{
    uint64_t rate = fc->spec->rate, cap = rate * 20;
    if (cap < 1000)
        cap = 1000;
    fc->tokens += (now - fc->refilled_at) * rate;
    fc->refilled_at = now;
    if (fc->tokens > cap)
        fc->tokens = cap;
    uint64_t whole = fc->tokens / 1000;
    if (whole > 0)
        return whole;
    uint64_t need = (uint64_t)want * 1000 < cap ? (uint64_t)want * 1000 : cap;
    *wake = now + (need - fc->tokens + rate - 1) / rate;
    if (!fc->paced) {
        fc->paced = true;
        fire(fc, FAULT_RATE);
    }
    return 0;
}

/* How much of `len` may be sent now: 0 with *wake set when none may. */
static size_t allowed(struct fault_conn *fc, uint64_t now, size_t len, uint64_t *wake)
{
    const struct fault_spec *f = fc->spec;
    size_t n = len;
    if (fc->limit - fc->out < n)
        n = (size_t)(fc->limit - fc->out);
    if (fc->count > 0) {
        struct arrival *a = &fc->ring[fc->head];
        if (a->due > now) {
            *wake = a->due;
            return 0;
        }
        if (a->end - fc->out < n)
            n = (size_t)(a->end - fc->out);
    }
    if (f->slice) {
        if (now < fc->next_piece_at) {
            *wake = fc->next_piece_at;
            return 0;
        }
        if (n > f->slice)
            n = f->slice;
    }
    if (f->rate) {
        uint64_t r = rate_allows(fc, now, n, wake);
        if (r < n)
            n = (size_t)r;
    }
    if (fc->flip_pending && fc->flip_at >= fc->out && fc->flip_at - fc->out < n)
        n = fc->flip_at > fc->out ? (size_t)(fc->flip_at - fc->out) : 1;
    return n;
}

/* `n` bytes went out at `now`: the bucket, the pieces, the arrivals. */
static void sent(struct fault_conn *fc, uint64_t now, size_t n)
{
    const struct fault_spec *f = fc->spec;
    fc->out += n;
    if (f->rate)
        fc->tokens -= (uint64_t)n * 1000;
    if (f->slice) {
        fc->next_piece_at = f->slice_ms ? now + f->slice_ms : 0;
        if (!fc->sliced && n == f->slice) { /* the first piece that may have been cut */
            fc->sliced = true;
            fire(fc, FAULT_SLICE);
        }
    }
    while (fc->count > 0 && fc->ring[fc->head].end <= fc->out) {
        fc->head = (uint8_t)((fc->head + 1) % DELAY_RING);
        fc->count--;
    }
}

static ssize_t fault_write(void *ctx, const void *buf, size_t len, unsigned *wait)
{
    struct fault_conn *fc = ctx;
    if (fc->stalled)
        return park(fc, 0, wait);
    if (fc->write_closed)
        return (ssize_t)len; /* close-after: the rest is dropped */
    if (fc->out >= fc->limit)
        return at_limit(fc, len, wait);
    uint64_t now = iomux_loop_now(fc->env->loop), wake = 0;
    size_t n = allowed(fc, now, len, &wake);
    if (n == 0)
        return park(fc, wake, wait);
    char flipped;
    const void *from = buf;
    if (fc->flip_pending && fc->flip_at == fc->out) {
        flipped = (char)(*(const unsigned char *)buf ^ (1u << fc->flip_bit));
        from = &flipped;
    }
    ssize_t w;
    do
        w = send(fc->fd, from, n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        *wait = IOMUX_WRITE;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    if (from != buf) {
        fc->flip_pending = false;
        fire(fc, FAULT_CORRUPT);
    }
    sent(fc, now, (size_t)w);
    return w;
}

static int fault_close_write(void *ctx, unsigned *wait)
{
    return 0; /* the stream shuts the socket's write side itself */
}

static int fault_pending(void *ctx)
{
    return 0;
}

static void fault_release(void *ctx)
{
    struct fault_conn *fc = ctx;
    if (fc->timer)
        iomux_timer_cancel(fc->env->loop, fc->timer);
    fc->timer = 0;
}

static const struct iomux_stream_transport fault_transport = {
    .read = fault_read,
    .write = fault_write,
    .close_write = fault_close_write,
    .pending = fault_pending,
    .release = fault_release,
};

/* The first byte count among stall-, reset- and close-after. */
static void first_limit(struct fault_conn *fc)
{
    const struct fault_spec *f = fc->spec;
    static const enum fault_kind kinds[] = {FAULT_STALL, FAULT_RESET, FAULT_CLOSE};
    const uint64_t counts[] = {f->stall_after, f->reset_after, f->close_after};
    fc->limit = UINT64_MAX;
    for (size_t i = 0; i < 3; i++) {
        if ((f->given & (1u << kinds[i])) && counts[i] < fc->limit) {
            fc->limit = counts[i];
            fc->limit_kind = kinds[i];
        }
    }
}

int fault_conn_start(void *mem, struct fault_env *env, const struct fault_spec *spec,
                     struct iomux_stream *stream, int fd, void *owner)
{
    struct fault_conn *fc = mem;
    uint64_t serial =
        env->shared_serial ? atomic_fetch_add(env->shared_serial, 1) + 1 : ++env->serial;
    uint64_t rng = env->seed ^ (0x9e3779b97f4a7c15u * serial);
    if (!fault_chance(&rng, spec->p_ppm))
        return 0;
    *fc = (struct fault_conn){
        .spec = spec, .env = env, .stream = stream, .owner = owner, .fd = fd, .rng = rng};
    first_limit(fc);
    uint64_t now = iomux_loop_now(env->loop);
    fc->refilled_at = now;
    if (spec->accept_delay_ms) {
        fc->hold_until = now + spec->accept_delay_ms + 1;
        fire(fc, FAULT_ACCEPT_DELAY);
    }
    /* Pieces leave as they are cut, not merged by Nagle's algorithm
       (fails harmlessly on a Unix-domain socket). */
    if (spec->slice) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = iomux_stream_set_transport(stream, &fault_transport, fc);
    return rc < 0 ? rc : 1;
}
