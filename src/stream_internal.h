/* SPDX-License-Identifier: MIT */
/*
 * stream_internal.h - the stream's private state, shared by stream.c (the
 * stream itself, reading and writing with recv()/send()) and stream_tx.c
 * (the same operations through a transport: see iomux_stream_transport).
 */
#ifndef IOMUX_STREAM_INTERNAL_H
#define IOMUX_STREAM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "iomux/stream.h"
#include "loop_internal.h"

/* What the streams made with the same options share; one per distinct
   set of options in a pool, found by comparing them (a server has one or
   two), freed with its last stream. */
struct iomux__stream_cfg {
    struct iomux__stream_cfg *next; /* the pool's list */
    size_t refs;
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool; /* chunks for the queue; the read buffer */
    iomux_stream_data_cb *on_data;
    iomux_stream_event_cb *on_eof;
    iomux_stream_event_cb *on_drain;
    iomux_stream_close_cb *on_close;
    size_t high, low, read_max, extra;
};

/* Allocated on the first write that cannot go out at once (or when the
   settle timer is needed), then kept: a stream that queued once is likely
   to again, and "no allocation per message" matters more than 48 bytes. */
struct stream_out {
    struct iomux_buf buf;                    /* bytes accepted by write() and not sent yet */
    uint64_t timer;                          /* pending zero-delay "settle" timer, 0 if none */
    const struct iomux_stream_transport *tx; /* NULL: recv()/send() */
    void *tx_ctx;
};

/* 40 bytes on LP64; the owner's extra bytes follow it. */
struct iomux_stream {
    struct iomux__stream_cfg *cfg;
    struct stream_out *out; /* NULL until needed */
    void *data;
    int fd;
    int error;              /* first failure, 0 if none */
    uint32_t last_io;       /* low 32 bits of the loop's ms clock: 49 days of range */
    uint8_t mask;           /* interest the loop currently has for fd */
    uint8_t depth;          /* callbacks of this stream on the stack */
    bool eof : 1;           /* the peer shut down its write side */
    bool no_writes : 1;     /* write() refuses: ending, failed, or past on_eof */
    bool ending : 1;        /* iomux_stream_end() was called */
    bool wr_shut : 1;       /* we shut down our write side */
    bool backpressured : 1; /* reading paused: queue above high water */
    bool held : 1;          /* reading paused by iomux_stream_hold() until the queue empties */
    bool watched : 1;       /* fd is in the loop */
    bool closed : 1;        /* fd closed; only freeing is left */
    bool user_closed : 1;   /* closed by iomux_stream_close(): no on_close */
    bool dead : 1;          /* free when depth drops to 0 */
    /* A transport (out->tx) moves the bytes. Its reads and writes may
       each wait on the other direction's readiness (TLS). Bits that fit
       in the flags' word, so plain streams stay 40 bytes. */
    bool has_tx : 1;
    bool rd_wants_write : 1; /* the last read waits for IOMUX_WRITE */
    bool wr_wants_read : 1;  /* the last write waits for IOMUX_READ */
    bool rd_parked : 1;      /* the last read waits for iomux_stream_resume() */
    bool wr_parked : 1;      /* the last write waits for iomux_stream_resume() */
};

static inline bool timer_pending(const struct iomux_stream *s)
{
    return s->out && s->out->timer;
}

static inline size_t queued(const struct iomux_stream *s)
{
    return s->out ? iomux_buf_len(&s->out->buf) : 0;
}

static inline void touch(struct iomux_stream *s)
{
    s->last_io = (uint32_t)iomux_loop_now(s->cfg->loop);
}

/* The queue's holder, allocated on first use; NULL when out of memory. */
struct stream_out *iomux__stream_out(struct iomux_stream *s);

/* After a call from the owner: the mask follows the state, or a finished
   stream is settled from a zero-delay timer (never inside the call). */
void iomux__stream_after_call(struct iomux_stream *s);

/* Arms the zero-delay timer (unless armed): it settles the stream, or
   reads what its transport holds. False when out of memory. */
bool iomux__stream_defer(struct iomux_stream *s);

/* The transport's operations (stream_tx.c), called only when s->has_tx.
   Reads and writes return bytes, -EAGAIN (having noted which readiness
   to wait for) or a negative errno, as recv()/send() would. */
ssize_t iomux__stream_tx_read(struct iomux_stream *s, void *buf, size_t len);
/* Writes up to `len` bytes as far as the transport takes them, one pool
   chunk per call (the retry rule): bytes taken, -EAGAIN or -errno. */
ssize_t iomux__stream_tx_write(struct iomux_stream *s, const char *bytes, size_t len);
/* Sends from the queue until it is empty or the transport waits. */
void iomux__stream_tx_flush(struct iomux_stream *s);
/* The transport's end of stream: 0 sent, -EAGAIN, or -errno. */
int iomux__stream_tx_close_write(struct iomux_stream *s);

#endif /* IOMUX_STREAM_INTERNAL_H */
