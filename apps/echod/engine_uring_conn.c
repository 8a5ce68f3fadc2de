/* SPDX-License-Identifier: MIT */
/*
 * engine_uring_conn.c - the io_uring engine's connections: the receive
 * armed on each (step 2 of the life of a buffer in engine_uring.c), the
 * echo from the buffer or from a copy (step 3), sends one at a time,
 * backpressure, the wait for buffers (step 5), and the close that waits
 * for the operations still in flight before freeing.
 */
#include "engine_uring_internal.h"

#include "splice_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

void uring_conn_release(struct uconn *c)
{
    if ((c->flags & U_CLOSED) && !(c->flags & (U_RECV | U_SEND | U_STARVED)) && !c->sp_op) {
        c->all.prev->next = c->all.next;
        c->all.next->prev = c->all.prev;
        free(c);
    }
}

/* Closes the fd and cancels what is in flight; the memory goes when the
   last operation has completed. The policy's bookkeeping is the caller's. */
void uring_conn_close(struct engine_uring *e, struct uconn *c)
{
    if (c->flags & U_CLOSED)
        return;
    c->flags |= U_CLOSED;
    e->open--;
    if ((c->flags & U_RECV) && !(c->flags & U_CANCELLED))
        cancel(e, c, OP_RECV);
    if (c->flags & U_SEND)
        cancel(e, c, OP_SEND);
    if (c->sp_op)
        cancel(e, c, OP_SPLICE); /* its end gives the pipe back */
    else
        uring_splice_put_pipe(e, c);
    iomux_buf_clear(&c->out);
    /* The operations hold the file open until they end; close() drops
       our reference only. */
    close(c->fd);
    c->fd = -1;
    uring_conn_release(c);
}

/* The connection ended on its own (error < 0) or cleanly (0). */
void uring_conn_finish(struct engine_uring *e, struct uconn *c, int error)
{
    e->hooks.closed(e->hooks.policy, &c->link, error);
    uring_conn_close(e, c);
}

void uring_arm_recv(struct engine_uring *e, struct uconn *c)
{
    if ((c->flags & U_SPLICE) && !(c->flags & U_SP_COPY)) {
        uring_splice_arm(e, c); /* waits for POLLIN, then splices */
        return;
    }
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe) {
        uring_conn_finish(e, c, -ENOMEM);
        return;
    }
    if (e->spinning)
        io_uring_prep_recv(sqe, c->fd, NULL, 0, MSG_DONTWAIT); /* no wait queue entry */
    else if ((c->flags & (U_SINGLE | U_SP_COPY)) || e->over_budget)
        io_uring_prep_recv(sqe, c->fd, NULL, 0, 0); /* one buffer, then look again */
    else
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
    kick(e);
    c->flags |= U_RECV;
    c->flags &= (uint16_t)~U_CANCELLED;
}

/* Arms the receive again if it ended and is still wanted; says if it did. */
static bool rearm_recv(struct engine_uring *e, struct uconn *c)
{
    if (c->flags & (U_RECV | U_CLOSED | U_EOF | U_PAUSED | U_STARVED | U_HELD))
        return false;
    if (!e->spinning)
        e->rearms++;
    uring_arm_recv(e, c);
    return true;
}

static void start_send(struct engine_uring *e, struct uconn *c, const void *p, size_t len)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe) {
        uring_conn_finish(e, c, -ENOMEM);
        return;
    }
    /* MSG_WAITALL: the kernel retries a short send on a stream socket
       itself, so a completion normally means all of it went out. */
    io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL | MSG_WAITALL);
    e->batch_sends++;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
    kick(e);
    c->flags |= U_SEND;
}

/* Sends the oldest queued bytes, one chunk per send. */
static void send_queued(struct engine_uring *e, struct uconn *c)
{
    struct iovec iov;
    if (iomux_buf_iov(&c->out, &iov, 1) == 1) {
        c->send_bid = NO_BID;
        start_send(e, c, iov.iov_base, iov.iov_len);
    }
}

static size_t queued(const struct uconn *c);

size_t uring_queued(struct engine *eng, struct conn *conn)
{
    return queued(uconn_of(conn));
}

static size_t queued(const struct uconn *c)
{
    size_t n = iomux_buf_len(&c->out) + c->in_pipe;
    if ((c->flags & U_SEND) && c->send_bid != NO_BID)
        n += c->send_len - c->send_off;
    return n;
}

/* No send in flight and nothing waiting behind one (nor in a pipe, nor
   on its way into one). */
bool uring_drained(const struct uconn *c)
{
    return !(c->flags & U_SEND) && iomux_buf_len(&c->out) == 0 && c->in_pipe == 0 &&
           c->sp_op <= SP_POLL_IN;
}

/* Puts `c` at the end of the list whose receives are armed again as
   buffers come back (step 5). */
void uring_starve(struct engine_uring *e, struct uconn *c)
{
    c->flags |= U_STARVED;
    c->next_starved = NULL;
    if (e->starved)
        e->starved_tail->next_starved = c;
    else
        e->starved = c;
    e->starved_tail = c;
}

/* The ring buffer a finished or failed send was sending goes back. */
static void release_send_buf(struct engine_uring *e, struct uconn *c)
{
    if (c->send_bid != NO_BID) {
        recycle(e, c->send_bid);
        e->sending--;
        c->send_bid = NO_BID;
    }
}

/* Ends the receive armed on `c`, if any; the end of it re-arms it, as
   its flags then say. */
static void stop_recv(struct engine_uring *e, struct uconn *c)
{
    if ((c->flags & U_RECV) && !(c->flags & U_CANCELLED)) {
        c->flags |= U_CANCELLED;
        cancel(e, c, OP_RECV);
    }
}

static void pause_recv(struct engine_uring *e, struct uconn *c)
{
    c->flags |= U_PAUSED | U_BEHIND;
    stop_recv(e, c);
}

/*
 * Step 3, once bytes are queued: one buffer per receive. A multishot
 * receive goes on filling buffers, a completion each, until the cancel
 * that pauses it reaches the kernel at the next io_uring_enter(); from a
 * client with megabytes in its socket a batch brought 16 buffers and more
 * after the one that crossed --high-water, and every one was copied into
 * the queue: 300 clients that never read cost echod about 500 KiB each at
 * a 256 KiB mark. A one-shot receive brings one buffer, and the next is
 * armed only after the queue has been looked at, so a queue ends at most
 * one buffer above the mark. Clients that keep up never get here: their
 * echoes go out while the receive is armed, and the multishot receive
 * comes back as soon as the queue is empty. Not for a client that once
 * fell a whole mark behind (U_BEHIND): its queue empties whenever the
 * kernel's send buffer grows, and each return to multishot brought a
 * batch again (1,000 clients that never read, --high-water 64K: 131 KiB
 * queued each; 78 KiB, the mark and one buffer, receiving one buffer at a
 * time from then on).
 */
static void receive_singly(struct engine_uring *e, struct uconn *c)
{
    if (c->flags & U_SINGLE)
        return;
    c->flags |= U_SINGLE;
    if (!e->spinning) /* spinning receives are one-shot already */
        stop_recv(e, c);
}

bool uring_hold(struct engine *eng, struct conn *conn)
{
    struct engine_uring *e = uring_of(eng);
    struct uconn *c = uconn_of(conn);
    if ((c->flags & (U_CLOSED | U_ENDING)) || uring_drained(c))
        return false;
    c->flags |= U_HELD;
    stop_recv(e, c);
    return true;
}

/* Chunks taken from the system (queued or kept for reuse), and every
   receive buffer: they are ours wherever they are (in the ring, in a
   send, being copied), and resident once touched. */
size_t uring_buffered(struct engine *eng)
{
    struct engine_uring *e = uring_of(eng);
    struct iomux_buf_pool_stats ps;
    iomux_buf_pool_stats(e->cfg.pool, &ps);
    return (ps.chunks_in_use + ps.chunks_cached) * ps.chunk_size + e->bufs_bytes +
           splice_pool_held(e->cfg.splice_pool);
}

/*
 * Once per batch (step 4): how many buffers the ring may hold. Every byte
 * copied into a queue came in a ring buffer, so one batch can add no more
 * than the ring holds: with no more than the budget has room for, a batch
 * cannot carry echod past it, whether receives are multishot or not. At
 * least BUDGET_WINDOW_MIN buffers stay, for the clients that read: their
 * buffers come back within the batch, as their echoes go out. But then a
 * client that has just stopped reading could take them all, every batch
 * another: past the mark every receive is one-shot (one buffer, then the
 * engine looks), until shedding or readers make room again.
 */
unsigned uring_budget_window(struct engine_uring *e)
{
    if (!e->cfg.buffered_limit)
        return e->window;
    size_t limit = engine_budget_mark(e->cfg.buffered_limit, e->open);
    size_t held = uring_buffered((struct engine *)(void *)e);
    size_t room = held < limit ? (limit - held) / e->buf_size : 0;
    e->over_budget = held >= limit;
    if (room >= e->window)
        return e->window;
    return room > BUDGET_WINDOW_MIN ? (unsigned)room : BUDGET_WINDOW_MIN;
}

static void resume_recv(struct engine_uring *e, struct uconn *c)
{
    if (!(c->flags & U_PAUSED))
        return;
    c->flags &= (uint16_t)~U_PAUSED;
    rearm_recv(e, c); /* if the cancelled receive is still live, its end does it */
}

/* The memory budget (engine.h): past the engine's mark, a connection
   that queues receives no more until it has sent it all. (A send from a
   ring buffer adds nothing: the ring is counted whole.) */
static void hold_if_over(struct engine_uring *e, struct uconn *c)
{
    if (e->cfg.buffered_limit && !(c->flags & U_HELD) &&
        uring_buffered((struct engine *)(void *)e) >=
            engine_budget_mark(e->cfg.buffered_limit, e->open))
        (void)uring_hold((struct engine *)(void *)e, &c->link);
}

/* Bytes were queued on `c` outside on_data() (what a spliced
   connection's pipe held, engine_uring_splice.c): sent, and bounded by
   --high-water and the budget as any queue. */
void uring_conn_queued(struct engine_uring *e, struct uconn *c)
{
    if (!(c->flags & U_SEND))
        send_queued(e, c);
    if (queued(c) > e->cfg.high_water)
        pause_recv(e, c);
    hold_if_over(e, c);
}

/* Step 3: `len` bytes arrived in ring buffer `bid`. */
static void on_data(struct engine_uring *e, struct uconn *c, unsigned bid, size_t len)
{
    const char *p = buf_addr(e, bid);
    if (c->flags & U_ENDING) {
        recycle(e, bid); /* dropped, as a stream that ends drops input */
        return;
    }
    *e->cfg.bytes_in += len;
    if (e->cfg.trace)
        e->hooks.echoed(e->hooks.policy, &c->link, p, len);
    if (e->over_budget)
        receive_singly(e, c);
    bool idle = uring_drained(c);
    if (idle && e->sending < e->buf_count / 2) {
        c->send_bid = (uint16_t)bid;
        c->send_off = 0;
        c->send_len = (uint32_t)len;
        e->sending++;
        start_send(e, c, p, len);
        *e->cfg.bytes_out += len;
        return;
    }
    /* Behind a send in flight, or too many buffers are out already in
       sends that may wait for slow readers: copy, give the buffer back. */
    int rc = iomux_buf_append(&c->out, p, len);
    recycle(e, bid);
    if (rc < 0) {
        uring_conn_finish(e, c, rc);
        return;
    }
    *e->cfg.bytes_out += len;
    receive_singly(e, c);
    if (idle)
        send_queued(e, c);
    else if (queued(c) > e->cfg.high_water)
        pause_recv(e, c);
    hold_if_over(e, c);
}

void uring_on_recv(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    unsigned bid = NO_BID;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        ring_took(e);
    }
    if (!more)
        c->flags &= (uint16_t) ~(U_RECV | U_CANCELLED | U_SP_COPY);
    if (c->flags & U_CLOSED) {
        if (bid != NO_BID)
            recycle(e, bid);
        uring_conn_release(c);
        return;
    }
    int res = cqe->res;
    if (res > 0 && bid == NO_BID)
        res = -EIO; /* data without a buffer: not something a kernel does */
    if (res > 0) {
        c->last_io = now_ms(e);
        e->batch_recvs++;
        e->data_recvs++;
        if (c->seen_epoch != e->epoch) {
            c->seen_epoch = e->epoch;
            e->active++;
        }
        on_data(e, c, bid, (size_t)res);
        if (c->flags & U_CLOSED)
            return;
    } else {
        if (bid != NO_BID)
            recycle(e, bid);
        if (res == 0) {
            c->flags |= U_EOF;
            if (uring_drained(c)) {
                uring_conn_finish(e, c, 0);
                return;
            }
        } else if (res == -ENOBUFS) {
            /* Step 5: the ring ran dry. Wait for buffers to come back. */
            e->nobufs++;
            e->ran_dry = true;
            if (!more && !(c->flags & U_STARVED))
                uring_starve(e, c);
        } else if (res == -EAGAIN) {
            e->spin_empty++; /* spinning: nothing yet; again next turn */
        } else if (res != -ECANCELED) {
            uring_conn_finish(e, c, res);
            return;
        }
    }
    if (!more)
        rearm_recv(e, c);
}

void uring_on_send(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    c->flags &= (uint16_t)~U_SEND;
    if ((c->flags & U_CLOSED) || res < 0) {
        release_send_buf(e, c);
        if (c->flags & U_CLOSED)
            uring_conn_release(c);
        else
            uring_conn_finish(e, c, res);
        return;
    }
    c->last_io = now_ms(e);
    if (c->send_bid != NO_BID) {
        c->send_off += (uint32_t)res;
        if (c->send_off < c->send_len) {
            /* A short send: the rest of the same buffer, before anything
               queued behind it. */
            start_send(e, c, buf_addr(e, c->send_bid) + c->send_off, c->send_len - c->send_off);
            return;
        }
        release_send_buf(e, c);
    } else {
        iomux_buf_consume(&c->out, (size_t)res);
    }
    bool was_held = false;
    if (iomux_buf_len(&c->out) > 0) {
        send_queued(e, c);
    } else {
        /* Everything went: receive in multishot again, and a client held
           for the memory budget reads its echoes. */
        was_held = c->flags & U_HELD;
        c->flags &= (uint16_t)~U_HELD;
        if (!(c->flags & U_BEHIND))
            c->flags &= (uint16_t)~U_SINGLE;
        if (e->cfg.trace)
            e->hooks.queue_empty(e->hooks.policy, &c->link);
        if (uring_output_done(e, c))
            return;
    }
    if ((c->flags & U_PAUSED) && queued(c) <= e->cfg.low_water)
        resume_recv(e, c);
    else if (was_held)
        rearm_recv(e, c); /* if nothing else holds it back */
}

/* Step 5: receives waiting for buffers are armed again once some are back. */
void uring_feed_starved(struct engine_uring *e)
{
    /* Each receive armed again takes a buffer at once (its data is
       waiting), so arm no more than the ring holds: with 1,000 clients
       and 256 buffers, arming them all made most fail again with -ENOBUFS,
       three times per message echoed. The rest wait their turn, in order. */
    unsigned budget = e->in_ring;
    while (e->starved && budget > 0) {
        struct uconn *c = e->starved;
        e->starved = c->next_starved;
        c->flags &= (uint16_t)~U_STARVED;
        c->next_starved = NULL;
        if (c->flags & U_CLOSED)
            uring_conn_release(c);
        else if (rearm_recv(e, c)) {
            budget--;
            if (e->spinning)
                e->rearms++; /* rearm_recv() counts only multishot ends */
        }
    }
}
