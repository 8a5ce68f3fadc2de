/* SPDX-License-Identifier: MIT */
/*
 * iomux/stream.h - a buffered, non-blocking stream socket on the loop.
 *
 * A stream owns one connected socket and its output queue. It reads when
 * the socket is readable and hands the bytes to on_data(); writes are sent
 * at once when nothing is queued and the rest is copied into the queue,
 * which is flushed when the socket becomes writable (IOMUX_WRITE is watched
 * only while something is queued). Short writes, EAGAIN and EINTR are
 * handled here, and SIGPIPE is never raised (MSG_NOSIGNAL).
 *
 * Backpressure: when more than `high_water` bytes are queued the stream
 * stops reading from its peer, and starts again once the queue is down to
 * `low_water`. An echo built on a stream therefore holds at most about
 * high_water + one read buffer per connection, however fast the peer sends
 * and however slowly it reads.
 *
 * Lifetime: a stream ends exactly once, with on_close(stream, error):
 *   - error 0: the peer shut down its side and everything queued was sent
 *     (the stream then shuts down its write side and closes), or
 *     iomux_stream_end() finished;
 *   - error < 0: the connection failed (-ECONNRESET, -EPIPE, -ENOMEM...,
 *     and with a transport IOMUX_STREAM_TRUNCATED or the transport's own).
 * The stream and its fd are freed when on_close returns. on_close is not
 * called after iomux_stream_close(): the owner knows already.
 * on_close never runs from inside a function of this header called by the
 * owner (it runs from the loop), so the owner may keep using its own state
 * after iomux_stream_write() or iomux_stream_end() return.
 *
 * Memory: reads go into the pool's one shared read buffer and queued bytes
 * live in chunks borrowed from the pool, returned as soon as they are sent.
 * An idle stream holds no buffer, only its own small struct (40 bytes on
 * 64-bit Linux, plus the owner's extra_size; what streams with the same
 * options have in common is kept once, in the pool).
 */
#ifndef IOMUX_STREAM_H
#define IOMUX_STREAM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "iomux/buf.h"
#include "iomux/loop.h"

#include "iomux/export.h"

IOMUX_BEGIN_DECLS

struct iomux_stream;

/* Defaults for iomux_stream_options fields left at 0. */
#define IOMUX_STREAM_HIGH_WATER 262144u /* 256 KiB */
#define IOMUX_STREAM_LOW_WATER  65536u  /* 64 KiB (or high_water / 4 if that is smaller) */

/* Bytes from the peer. `bytes` is borrowed (it points into the pool's
   shared read buffer) and is valid only until the callback returns. */
typedef void iomux_stream_data_cb(struct iomux_stream *stream, const char *bytes, size_t len,
                                  void *data);
/* A notification without payload: see on_eof and on_drain. */
typedef void iomux_stream_event_cb(struct iomux_stream *stream, void *data);
/* The stream ended; `error` is 0 or a negative errno. Last callback. */
typedef void iomux_stream_close_cb(struct iomux_stream *stream, int error, void *data);

struct iomux_stream_options {
    iomux_stream_data_cb *on_data;   /* required */
    iomux_stream_event_cb *on_eof;   /* optional: the peer shut down its
                                        write side. Writes made during the
                                        callback are still sent; after it
                                        returns, the stream flushes what is
                                        queued and ends with error 0. */
    iomux_stream_event_cb *on_drain; /* optional: the queue became empty
                                        after a flush on writability */
    iomux_stream_close_cb *on_close; /* optional */
    void *data;                      /* passed to the callbacks (borrowed) */
    size_t high_water;               /* 0 = IOMUX_STREAM_HIGH_WATER */
    size_t low_water;                /* 0 = the default above; must be <= high_water */
    size_t read_max;                 /* largest single read; 0 = the pool's read size */
    size_t extra_size;               /* bytes of the owner's per-stream state to
                                        allocate with the stream: see
                                        iomux_stream_extra(); 0 = none */
};

/*
 * Makes a stream of the connected, non-blocking socket `fd` and starts
 * reading. `fd` may also be a TCP socket whose non-blocking connect is
 * still in progress (iomux_tcp_connect() gave -EINPROGRESS): writes queue
 * until it completes, and a failed connect ends the stream with its error
 * (-ECONNREFUSED...). `loop` and `pool` are borrowed and must outlive the stream;
 * `opts` is copied. On success the stream owns `fd` (it closes it) and the
 * caller owns the stream until on_close returns or iomux_stream_close() is
 * called. On failure `fd` is left open and still the caller's.
 * Returns 0, or -EINVAL, -ENOMEM, or the error of iomux_fd_watch() (for
 * example -ERANGE: the fd is beyond what the loop's backend can watch).
 */
int iomux_stream_new(struct iomux_loop *loop, struct iomux_buf_pool *pool, int fd,
                     const struct iomux_stream_options *opts, struct iomux_stream **out);

/*
 * Sends `len` bytes (copied; `bytes` is only read during the call).
 * Returns 0 when the bytes were sent or queued, or
 *   -EPIPE   the stream takes no more writes (it is ending, or it failed:
 *            on_close will give the reason);
 *   -ENOMEM  they could not be queued; the stream fails with -ENOMEM.
 */
int iomux_stream_write(struct iomux_stream *stream, const void *bytes, size_t len);

/*
 * Ends the stream gracefully: stops delivering data (what arrives is read
 * and dropped, so the peer is never stalled), sends what is queued, shuts
 * down the write side, waits for the peer's end of stream, then closes and
 * calls on_close(stream, 0). A peer that never closes keeps the stream
 * open: bound it with a timer and iomux_stream_close(). Idempotent.
 */
void iomux_stream_end(struct iomux_stream *stream);

/*
 * Closes the stream at once: queued output is dropped, the fd is closed,
 * and on_close is NOT called. The stream must not be used afterwards. Safe
 * from any callback, this stream's own included (the memory is then freed
 * when that callback returns). A no-op from inside on_close.
 */
void iomux_stream_close(struct iomux_stream *stream);

/*
 * Transports. A stream moves its bytes with recv()/send() on its fd unless
 * it is given a transport: operations that move them some other way over
 * the same fd (TLS is the case in point: apps/common/tls_stream.c), while
 * the stream keeps doing the queueing, backpressure, half-close and
 * lifetime above. Every operation gets the transport's `ctx`, returns at
 * once and never calls into the stream. On -EAGAIN it sets *wait to the
 * readiness that lets it go on: IOMUX_READ or IOMUX_WRITE, which need not
 * be its own direction (a TLS read may have to send first, a TLS write may
 * have to receive first); the stream's watch mask follows.
 *
 *   read        fills up to `len` bytes of `buf`: returns how many (> 0);
 *               0 at the transport's clean end of stream (TLS: the peer's
 *               close_notify); -EAGAIN; IOMUX_STREAM_TRUNCATED when the fd
 *               reached end of stream without that end marker; or another
 *               negative errno, with which the stream fails.
 *   write       takes up to `len` bytes: returns how many (> 0), -EAGAIN or
 *               a negative errno. After -EAGAIN the stream offers the same
 *               first bytes again and at least as many (TLS's retry rule;
 *               the buffer may have moved): it offers at most one chunk of
 *               its pool per call, which the queue's first chunk then holds.
 *   close_write sends the transport's end of stream (TLS: close_notify):
 *               0 once done (the stream then shuts down the fd's write
 *               side), -EAGAIN, or a negative errno.
 *   pending     non-zero when the transport holds bytes it has already
 *               taken from the fd (TLS: a record decrypted, or read ahead):
 *               the fd will not signal them, so the stream reads them
 *               without waiting for readiness. Called after every read.
 *   release     frees `ctx` (optional); called once, when the stream is
 *               freed however it ended: after on_close returns (which may
 *               still ask the transport why), the fd closed already.
 *
 * A read or write may also set *wait to 0: it waits for its owner, not
 * for the fd (a transport that paces or delays what it sends, and wakes
 * on a timer of its own). The stream then watches the fd for nothing in
 * that direction until the owner calls iomux_stream_resume(). Events the
 * fd reports regardless (a hang-up, an error) still call the operation,
 * which may say so or wait again.
 *
 * A stream without a transport pays one flag test per operation for this.
 */
#define IOMUX_STREAM_TRUNCATED (-ECONNABORTED)

struct iomux_stream_transport {
    ssize_t (*read)(void *ctx, void *buf, size_t len, unsigned *wait);
    ssize_t (*write)(void *ctx, const void *buf, size_t len, unsigned *wait);
    int (*close_write)(void *ctx, unsigned *wait);
    int (*pending)(void *ctx);
    void (*release)(void *ctx);
};

/*
 * Makes the stream move its bytes through `ops` (borrowed: it must outlive
 * the stream) on `ctx`. Call it right after iomux_stream_new(), before the
 * loop runs and before any write, or later while nothing is queued (an
 * owner that switches a running connection to a transport of its own,
 * such as splice()). On success the stream owns `ctx` (it
 * calls ops->release(ctx) when it closes, on_close or iomux_stream_close()
 * alike); on failure `ctx` stays the caller's. Bytes the transport already
 * holds (ops->pending) are delivered from the loop, as soon as it runs.
 * Returns 0, -EINVAL (an operation but release missing, a transport set
 * already, or the stream has queued, ended or failed already) or -ENOMEM.
 */
int iomux_stream_set_transport(struct iomux_stream *stream,
                               const struct iomux_stream_transport *ops, void *ctx);

/*
 * Ends the wait of a transport's read or write that set *wait to 0: the
 * stream watches the fd again for what it needs, and calls the operation
 * when the fd is ready. Never calls back from inside. A no-op when
 * nothing waits, or the stream is closed.
 */
void iomux_stream_resume(struct iomux_stream *stream);

/* The socket (owned by the stream), or -1 once it is closed. */
int iomux_stream_fd(const struct iomux_stream *stream);

/* Bytes queued for sending. */
size_t iomux_stream_queued(const struct iomux_stream *stream);

/* Loop time (iomux_loop_now()) of the last successful read or write, or of
   the stream's creation: for idle timeouts. */
uint64_t iomux_stream_last_io(const struct iomux_stream *stream);

/* Records I/O the owner made on the stream's fd itself (a transport
   that moves bytes without handing them to the stream, as splice() does):
   iomux_stream_last_io() then says now. */
void iomux_stream_touch(struct iomux_stream *stream);

/* 1 while reading is paused because the queue is above the high
   watermark, else 0. */
int iomux_stream_backpressured(const struct iomux_stream *stream);

/*
 * Stops reading from the stream until everything queued on it has been
 * sent, below the high watermark too: for an owner that runs short of
 * memory as a whole (a budget over many streams). A peer that reads what
 * is sent to it is read from again as soon as it has taken it all.
 * Returns 1 if reading stopped, 0 if there was nothing queued to wait for
 * (or the stream is ending or closed): then nothing changed.
 */
int iomux_stream_hold(struct iomux_stream *stream);

/*
 * The owner's `extra_size` bytes allocated with the stream (zeroed at
 * creation, aligned for any object of 8-byte alignment), or NULL if
 * extra_size was 0. They belong to the stream's memory: valid until
 * on_close returns or iomux_stream_close() is called. Putting per-connection
 * state here instead of in a malloc() of its own saves the owner an
 * allocation, its header, and a pointer each way.
 */
void *iomux_stream_extra(struct iomux_stream *stream);

/* The stream whose extra bytes `extra` are (the inverse of the above). */
struct iomux_stream *iomux_stream_of_extra(void *extra);

IOMUX_END_DECLS

#endif /* IOMUX_STREAM_H */
