/* SPDX-License-Identifier: MIT */
/*
 * engine_uring_splice.c - --splice on with the io_uring engine: a
 * connection echoed through a pipe of the pool (splice_pool.h) with
 * IORING_OP_SPLICE, never copying its bytes into echod.
 *
 * One operation at a time is in flight on a spliced connection (c->sp_op,
 * user_data OP_SPLICE), each submitted when the one before completes:
 *
 *   1. POLL_ADD(POLLIN): the socket is readable (data, end of stream or an
 *      error). The kernel runs every IORING_OP_SPLICE on an io-wq worker
 *      thread, never inline, and a splice that blocked there would hold a
 *      worker per idle client: so a splice is submitted only once the
 *      socket has something, and the socket is O_NONBLOCK (a splice's
 *      socket side blocks or not by the file's flag alone), so a spurious
 *      wake costs one -EAGAIN, never a parked thread.
 *   2. SPLICE socket -> pipe, up to the pipe's capacity, with a pipe taken
 *      from the pool for this round. None free, or bytes still queued by
 *      a copying round, or the graceful end: the round copies instead (a
 *      one-shot receive through the engine's buffer ring, U_SP_COPY), as
 *      the readiness engine's splice transport does.
 *   3. SPLICE pipe -> socket, for what the pipe holds, until it is empty.
 *      -EAGAIN or a short splice: the client's socket is full. What the
 *      pipe still holds is read into the connection's queue (spill_pipe():
 *      the copy the copying path would have made) and sent from there as
 *      any queued echo, and the connection copies until that queue is
 *      empty: so --high-water, the memory budget and holding bound it as
 *      any other, and a client that never reads holds no pipe (the
 *      readiness engine's splice_stream.c does the same). Waiting for
 *      POLLOUT with the bytes in the pipe instead would make the pipe
 *      the queue: 64 KiB, whatever --high-water says, and a client that
 *      sends 10 MiB before it reads (tests/echod_e2e.py half_close)
 *      would wait for echod forever.
 *   4. The pipe is empty: back to the pool, then 1 (or, after the
 *      graceful end, the write side is shut first).
 *
 * End of stream is a splice of 0 bytes in 2, with the pipe empty: the
 * connection closes as a copying one does with nothing queued. An error
 * (a reset) ends the connection; a pipe that still holds bytes then is
 * closed, never lent again. Closing with an operation in flight cancels
 * it; the pipe goes back when its completion comes.
 */
#include "engine_uring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "splice_pool.h"

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

/* Gives the connection's pipe back: to be lent again if empty, else
   closed. Nothing may be in flight on it. */
void uring_splice_put_pipe(struct engine_uring *e, struct uconn *c)
{
    if (!(c->flags & U_SPLICE) || c->pipe[0] < 0)
        return;
    splice_pool_give(e->cfg.splice_pool, c->pipe, c->in_pipe == 0);
    c->pipe[0] = c->pipe[1] = -1;
    c->in_pipe = 0;
}

/* Splices `c` from now on (nothing has been read from it yet). A socket
   that cannot be made non-blocking copies, as one splice() refuses. */
void uring_splice_start(struct engine_uring *e, struct uconn *c)
{
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return;
    c->flags |= U_SPLICE;
}

static struct io_uring_sqe *sp_sqe(struct engine_uring *e, struct uconn *c, enum sp_op op)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe) {
        uring_conn_finish(e, c, -ENOMEM);
        return NULL;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SPLICE);
    c->sp_op = (uint8_t)op;
    kick(e);
    return sqe;
}

/* Step 1, from uring_arm_recv(): wait until the socket is readable. */
void uring_splice_arm(struct engine_uring *e, struct uconn *c)
{
    if (c->sp_op != SP_NONE)
        return; /* its completion goes on */
    struct io_uring_sqe *sqe = sp_sqe(e, c, SP_POLL_IN);
    if (sqe)
        io_uring_prep_poll_add(sqe, c->fd, POLLIN);
}

static void splice_out(struct engine_uring *e, struct uconn *c)
{
    struct io_uring_sqe *sqe = sp_sqe(e, c, SP_OUT);
    if (sqe)
        io_uring_prep_splice(sqe, c->pipe[0], -1, c->fd, -1, c->in_pipe, SPLICE_FLAGS);
}

/* Arms step 1 again unless something holds the connection back. */
static void read_again(struct engine_uring *e, struct uconn *c)
{
    if (!(c->flags & (U_CLOSED | U_EOF | U_PAUSED | U_HELD | U_STARVED | U_RECV)))
        uring_arm_recv(e, c);
}

/* This round copies: one receive into the buffer ring (uring_on_recv()). */
static void copy_round(struct engine_uring *e, struct uconn *c)
{
    c->flags |= U_SP_COPY;
    uring_arm_recv(e, c);
}

/* Step 1 done: splice if a round may, else copy. */
static void on_readable(struct engine_uring *e, struct uconn *c, int res)
{
    if (res < 0 && res != -ECANCELED) {
        uring_conn_finish(e, c, res);
        return;
    }
    if (c->flags & (U_PAUSED | U_HELD | U_EOF))
        return; /* whatever lets it go arms step 1 again */
    if (res == -ECANCELED) {
        read_again(e, c);
        return;
    }
    if ((c->flags & U_ENDING) || !uring_drained(c) ||
        !splice_pool_take(e->cfg.splice_pool, c->pipe)) {
        copy_round(e, c);
        return;
    }
    c->in_pipe = 0;
    struct io_uring_sqe *sqe = sp_sqe(e, c, SP_IN);
    if (sqe)
        io_uring_prep_splice(sqe, c->fd, -1, c->pipe[1], -1, SPLICE_PIPE_SIZE, SPLICE_FLAGS);
}

/* Step 2 done: `res` bytes in the pipe, the end of stream, or an error. */
static void on_spliced_in(struct engine_uring *e, struct uconn *c, int res)
{
    if (res > 0) {
        c->in_pipe = (uint32_t)res;
        c->last_io = now_ms(e);
        *e->cfg.bytes_in += (uint64_t)res;
        splice_out(e, c);
        return;
    }
    uring_splice_put_pipe(e, c); /* empty */
    if (res == 0) {
        c->flags |= U_EOF;
        if (uring_drained(c))
            uring_conn_finish(e, c, 0);
    } else if (res == -EAGAIN || res == -EINTR) {
        read_again(e, c); /* a spurious wake */
    } else if (res == -EINVAL) {
        c->flags &= (uint16_t)~U_SPLICE; /* a socket splice() does not take: copy */
        read_again(e, c);
    } else {
        uring_conn_finish(e, c, res);
    }
}

/* Step 4: everything the pipe held went out. */
static void pipe_empty(struct engine_uring *e, struct uconn *c)
{
    uring_splice_put_pipe(e, c);
    /* As when a copying queue empties: a held client is read again. */
    c->flags &= (uint16_t)~U_HELD;
    if (!uring_output_done(e, c))
        read_again(e, c);
}

/* Step 3, the client's socket full: what the pipe holds joins the queue. */
static void spill_pipe(struct engine_uring *e, struct uconn *c)
{
    char chunk[IOMUX_BUF_CHUNK_SIZE];
    while (c->in_pipe > 0) {
        size_t want = c->in_pipe < sizeof(chunk) ? c->in_pipe : sizeof(chunk);
        ssize_t n = read(c->pipe[0], chunk, want);
        if (n < 0 && errno == EINTR)
            continue;
        int rc = n > 0 ? iomux_buf_append(&c->out, chunk, (size_t)n) : n < 0 ? -errno : -EIO;
        if (rc < 0) {
            uring_conn_finish(e, c, rc); /* EIO: the pipe lost bytes, never */
            return;
        }
        c->in_pipe -= (uint32_t)n;
        *e->cfg.bytes_out += (uint64_t)n; /* queued: counted as the copying path does */
    }
    uring_splice_put_pipe(e, c);
    uring_conn_queued(e, c);
    read_again(e, c); /* the next rounds copy, until the queue is empty */
}

/* Step 3 done: `res` bytes went from the pipe to the client. */
static void on_spliced_out(struct engine_uring *e, struct uconn *c, int res, uint32_t asked)
{
    if (res == -EAGAIN) {
        spill_pipe(e, c);
        return;
    }
    if (res <= 0) {
        uring_conn_finish(e, c, res == 0 ? -EIO : res); /* 0: the pipe lost bytes, never */
        return;
    }
    c->in_pipe -= (uint32_t)res;
    c->last_io = now_ms(e);
    *e->cfg.bytes_out += (uint64_t)res;
    splice_pool_count(e->cfg.splice_pool, (uint64_t)res);
    if (c->in_pipe == 0)
        pipe_empty(e, c);
    else if ((uint32_t)res < asked)
        spill_pipe(e, c); /* the socket is full */
    else
        splice_out(e, c);
}

void uring_splice_on_cqe(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe)
{
    enum sp_op op = (enum sp_op)c->sp_op;
    c->sp_op = SP_NONE;
    if (c->flags & U_CLOSED) {
        if (op == SP_OUT && cqe->res > 0 && (uint32_t)cqe->res <= c->in_pipe)
            c->in_pipe -= (uint32_t)cqe->res;
        else if (op == SP_IN && cqe->res > 0)
            c->in_pipe = (uint32_t)cqe->res;
        uring_splice_put_pipe(e, c);
        uring_conn_release(c);
        return;
    }
    switch (op) {
    case SP_POLL_IN:
        on_readable(e, c, cqe->res);
        break;
    case SP_IN:
        on_spliced_in(e, c, cqe->res);
        break;
    case SP_OUT:
        on_spliced_out(e, c, cqe->res, c->in_pipe);
        break;
    default:
        break;
    }
}
