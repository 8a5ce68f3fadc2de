/* SPDX-License-Identifier: MIT */
/*
 * engine_uring.c - echod's io_uring completion engine.
 *
 * The readiness engine asks the kernel "which sockets can I read?" and
 * then makes one read and one write system call per message. This one
 * hands the kernel the work itself: one multishot accept per listener and
 * one multishot receive per connection stay armed for as long as they
 * last, each posting a completion per accepted socket or per received
 * chunk, and sends are queued in the submission ring. One io_uring_enter()
 * then submits every send of a batch of completions.
 *
 * The life of a receive buffer, step by step:
 *
 *   1. At start-up, --uring-buffers buffers of buf_size bytes are made,
 *      and a provided-buffer ring (buffer group BGID) to hand them to the
 *      kernel. Only a window of them is in the ring at a time; the rest
 *      wait on a stack of free buffers (step 4 says why).
 *   2. A connection's multishot receive names the group, not a buffer:
 *      when data arrives the kernel takes the next free buffer, fills it
 *      and posts a completion carrying its id (IORING_CQE_F_BUFFER).
 *      From then on the buffer is ours ("held").
 *   3. If nothing is waiting to go out on that connection, the buffer is
 *      sent as it is: no copy. It is held until that send completes.
 *      Otherwise its bytes are copied behind the queued ones (the
 *      connection's iomux_buf, chunks from the server's pool) and the
 *      buffer is given back at once, so a client that does not read holds
 *      at most one ring buffer however much it sends. And sends may hold
 *      at most half of the buffers: beyond that they copy too, so clients
 *      that never read cannot starve the receives of everyone else.
 *   4. Giving back (recycle()) pushes the buffer on the free stack. Once
 *      per batch of completions, publish() tops the ring up to the window
 *      from the top of that stack and moves the ring's tail. The ring is
 *      first in, first out: with every buffer in it, a buffer came back
 *      to be filled only after all the others, and the kernel copied each
 *      message into memory that had left the cache (at 16 KiB messages
 *      that doubled the cost of the copy). With a small window and the
 *      most recently used buffers first, the same few stay warm.
 *   5. If the ring is empty when data arrives, the receive completes with
 *      -ENOBUFS and ends: the window doubles (once per batch, however
 *      many receives found the ring dry), the connection waits on the
 *      starved list, and its receive is armed again once buffers are
 *      back. The window shrinks again, a half at a time, once a second
 *      without -ENOBUFS in which no batch took more than a quarter of it.
 *
 * What the public demos get wrong, and what this file does instead:
 *   - A multishot request can end at any time (a completion without
 *     IORING_CQE_F_MORE: no buffers, CQ overflow, an error, our cancel):
 *     every such end is looked at and the request re-armed if still
 *     wanted.
 *   - Connections close while operations are in flight: user_data is the
 *     connection's address plus the operation, never the fd, so fd reuse
 *     cannot confuse them; a closed connection's operations are cancelled
 *     and its memory is freed only when the last one has completed.
 *   - Sends are never overlapped on one socket (their order would be the
 *     kernel's): one send at a time, the rest queued behind it.
 *   - Backpressure: above --high-water queued bytes the receive is
 *     cancelled, and re-armed below --low-water.
 *
 * Spinning (--spin-receive; spin.h says when and why): the multishot
 * receives are cancelled, and each ends as usual, re-armed as a one-shot
 * non-blocking receive from the same buffer group. Such a receive
 * completes in the io_uring_enter() that submits it, with data or
 * -EAGAIN, and is re-armed for the next turn; the engine does not sleep.
 * Stopping is just arming multishot receives again at those re-arms.
 *
 * System calls: the ring's fd is watched by the server's iomux loop
 * (epoll by default), so one batch costs that wait plus one
 * io_uring_enter(); accept, receive and send themselves cost none.
 */
#include "engine_uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef ECHOD_HAVE_URING

int engine_uring_new(struct echod *d, struct engine_uring **out)
{
    (void)d;
    *out = NULL;
    return -ENOENT;
}

void engine_uring_free(struct engine_uring *e)
{
    (void)e;
}

int engine_uring_run_once(struct engine_uring *e, int timeout_ms)
{
    (void)e;
    (void)timeout_ms;
    return -ENOSYS; /* never made, never run */
}

int engine_uring_listen(struct engine_uring *e, struct listener *l)
{
    (void)e;
    (void)l;
    return -ENOENT;
}

void engine_uring_set_accepting(struct engine_uring *e, bool on)
{
    (void)e;
    (void)on;
}

void engine_uring_admit(struct engine_uring *e, int fd, const struct iomux_addr *peer)
{
    (void)e;
    (void)peer;
    close(fd);
}

union conn_peer_addr *engine_uring_peer(struct conn *c)
{
    (void)c;
    return NULL;
}

uint64_t engine_uring_last_io(struct conn *c)
{
    (void)c;
    return 0;
}

void engine_uring_end(struct engine_uring *e, struct conn *c)
{
    (void)e;
    (void)c;
}

void engine_uring_cut(struct engine_uring *e, struct conn *c)
{
    (void)e;
    (void)c;
}

void engine_uring_print_stats(struct engine_uring *e, FILE *f)
{
    (void)e;
    (void)f;
}

#else /* ECHOD_HAVE_URING */

#include <inttypes.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>

#include "batch.h"
#include "clock.h"
#include "daemon.h"
#include "spin.h"

/* Submission entries: one batch of sends, accepts and re-arms; when full
   it is submitted early. Completions: many more, since every armed
   multishot request can post at any time. */
#define SQ_ENTRIES     1024u
#define CQ_ENTRIES     16384u
/* Provided buffers: --uring-buffers of them (a power of two), BUF_SIZE
   bytes each. Their pages are touched only when used. */
#define BUF_SIZE       16384u
/* --trace reads as the seed does, recv(1024), so its lines match. */
#define TRACE_BUF_SIZE 1024u
#define BGID           0
#define NO_BID         0xffffu
/* Passes of reap-and-submit per wake-up: enough to finish the sends of a
   batch, bounded so timers and signals are never starved. */
#define PUMP_ROUNDS    8
/* The smallest window of ring buffers (step 4): 16 of 16 KiB fill a
   quarter of a 1 MiB L2 cache. */
#define WINDOW_MIN     16u
/* Shutdown: how long to wait for cancelled requests to end (drain()). */
#define DRAIN_WAIT_MS  100
#define DRAIN_ROUNDS   20
/* The kernel's minimum wait (6.12); liburing before 2.8 does not name it. */
#ifndef IORING_FEAT_MIN_TIMEOUT
#define FEAT_MIN_TIMEOUT (1u << 15)
#else
#define FEAT_MIN_TIMEOUT IORING_FEAT_MIN_TIMEOUT
#endif

/* user_data: the address of a listener or connection (8-byte aligned)
   plus the operation in the low bits. */
enum op {
    OP_ACCEPT = 1,
    OP_RECV = 2,
    OP_SEND = 3,
    OP_IGNORE = 4, /* cancellations: their own completion says nothing */
    OP_LOOP = 5,   /* owner mode: the iomux loop's fd is readable */
};
#define OP_MASK 7u

enum {
    U_RECV = 1u << 0,      /* the multishot receive is armed */
    U_SEND = 1u << 1,      /* a send is in flight */
    U_EOF = 1u << 2,       /* the peer sent its end of stream */
    U_PAUSED = 1u << 3,    /* backpressure: not receiving */
    U_STARVED = 1u << 4,   /* on the starved list, waiting for buffers */
    U_ENDING = 1u << 5,    /* graceful end: input dropped */
    U_WR_SHUT = 1u << 6,   /* our write side is shut */
    U_CLOSED = 1u << 7,    /* fd closed; waiting for operations to end */
    U_CANCELLED = 1u << 8, /* the receive's cancellation is on its way */
};

struct uconn {
    struct conn link; /* first: on the server's list, then the zombies' */
    struct uconn *next_starved;
    uint64_t last_io;
    int fd;
    uint16_t flags;
    uint16_t send_bid;           /* ring buffer being sent, or NO_BID: from `out` */
    uint32_t send_off;           /* ring buffer: bytes of it sent so far */
    uint32_t send_len;           /* ring buffer: bytes to send from it */
    uint32_t seen_epoch;         /* --batch-wait: last epoch it received in */
    struct iomux_buf out;        /* bytes behind the send in flight */
    union conn_peer_addr peer[]; /* only when echod_keeps_peer() */
};

struct engine_uring {
    struct echod *d;
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    size_t buf_size;
    unsigned buf_count;
    size_t br_bytes, bufs_bytes;
    unsigned held;       /* buffers the kernel gave us, not yet returned */
    uint16_t *free_bids; /* step 4: the free stack, most recent on top */
    unsigned nfree;
    unsigned in_ring; /* published, not yet taken by the kernel */
    unsigned window;  /* how many to keep in the ring */
    unsigned taken;   /* taken by the kernel since the last publish() */
    unsigned taken_peak;
    uint64_t window_checked; /* ms */
    bool window_grew;        /* since the last check */
    bool ran_dry;            /* a receive found the ring empty in this batch */
    unsigned sending;        /* of those, how many are in sends (step 3) */
    bool pumping;            /* inside pump(): it submits when done */
    /* Owner mode: the engine waits for the loop (in the ring, on its
       backend fd). Guest mode: the loop waits for the ring (its fd). */
    bool owner;
    bool loop_armed; /* owner: the poll of loop_fd is in flight */
    bool loop_ready; /* owner: the loop has something to dispatch */
    int loop_fd;
    bool accepting; /* accepts should be armed */
    bool armed[ECHOD_MAX_LISTEN];
    uint64_t kick_timer;
    size_t conn_size;
    struct uconn *starved, *starved_tail; /* first in, first out */
    struct conn zombies;                  /* closed, with operations still in flight */
    unsigned inflight; /* requests submitted whose last completion has not come */
    /* statistics */
    uint64_t enters, nobufs, rearms;
    uint64_t busy_polls, busy_found; /* --busy-poll: spins, and those that found work */
    /* --batch-wait (owner mode): how full the next batch may be asked to be */
    unsigned batch_wait_us;       /* 0: off, or the kernel lacks the minimum wait */
    unsigned batch_recvs;         /* receives handled in the current batch */
    unsigned last_recvs;          /* ... and in the last one */
    unsigned batch_sends;         /* sends queued since the last io_uring_enter() */
    unsigned active, active_prev; /* clients that received, this epoch and the last */
    uint32_t epoch;
    uint64_t epoch_start; /* ms */
    bool ring_registered;
    /* --spin-receive */
    bool spinning;
    bool spin_auto;
    uint64_t spin_epoch_ns;           /* when the current epoch started (CLOCK_MONOTONIC) */
    uint64_t spin_cpu_ns;             /* our CPU time then */
    uint64_t spin_idle_ns;            /* this epoch: empty turns, --busy-poll's waits */
    uint64_t spin_starts, spin_empty; /* statistics: times spinning started, -EAGAIN receives */
    uint64_t data_recvs;              /* receives that brought data, ever */
    uint64_t batch_waits, batch_short;
};

static struct uconn *uconn_of(struct conn *c)
{
    return (struct uconn *)c;
}

static uint64_t now_ms(struct engine_uring *e)
{
    return iomux_loop_now(e->d->loop);
}

static char *buf_addr(struct engine_uring *e, unsigned bid)
{
    return e->bufs + (size_t)bid * e->buf_size;
}

/* Step 4: the buffer goes back to the kernel at the next publish(). */
static void recycle(struct engine_uring *e, unsigned bid)
{
    e->free_bids[e->nfree++] = (uint16_t)bid;
    e->held--;
}

/* Step 2: the kernel took a buffer from the ring. */
static void ring_took(struct engine_uring *e)
{
    e->in_ring--;
    e->held++;
    e->taken++;
}

/* Step 5: the window follows what a batch takes: it doubles once after a
   batch that ran the ring dry, however many receives found it empty. */
static void size_window(struct engine_uring *e)
{
    if (e->ran_dry && e->window < e->buf_count) {
        e->window *= 2;
        e->window_grew = true;
    }
    e->ran_dry = false;
    if (e->taken > e->taken_peak)
        e->taken_peak = e->taken;
    e->taken = 0;
    uint64_t now = now_ms(e);
    if (now - e->window_checked < 1000)
        return;
    if (!e->window_grew && e->window > WINDOW_MIN && e->taken_peak * 4 <= e->window)
        e->window /= 2;
    e->window_checked = now;
    e->window_grew = false;
    e->taken_peak = 0;
}

static void publish(struct engine_uring *e)
{
    size_window(e);
    unsigned n = 0, mask = (unsigned)io_uring_buf_ring_mask(e->buf_count);
    while (e->in_ring + n < e->window && e->nfree > 0) {
        unsigned bid = e->free_bids[--e->nfree];
        io_uring_buf_ring_add(e->br, buf_addr(e, bid), (unsigned)e->buf_size, (unsigned short)bid,
                              (int)mask, (int)n);
        n++;
    }
    if (n) {
        io_uring_buf_ring_advance(e->br, (int)n);
        e->in_ring += n;
    }
}

static void pump(struct engine_uring *e);

static void on_kick(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct engine_uring *e = data;
    (void)loop;
    (void)id;
    e->kick_timer = 0;
    pump(e);
}

/* Called after an entry is prepared. Entries queued outside pump() (by a
   timer, a signal, start-up) must be submitted too: from a zero-delay
   timer, so that a sweep that cuts a thousand connections still enters
   the kernel once. */
static void kick(struct engine_uring *e)
{
    if (e->owner || e->pumping || e->kick_timer)
        return; /* the owner submits at its next wait anyway */
    if (iomux_timer_add(e->d->loop, 0, 0, on_kick, e, &e->kick_timer) < 0) {
        e->kick_timer = 0;
        e->enters++;
        (void)io_uring_submit(&e->ring);
    }
}

static struct io_uring_sqe *get_sqe(struct engine_uring *e)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe) {
        /* Full: submit what is queued and take a fresh one. */
        e->enters++;
        (void)io_uring_submit(&e->ring);
        e->batch_sends = 0; /* their completions are in */
        sqe = io_uring_get_sqe(&e->ring);
    }
    if (sqe)
        e->inflight++; /* every caller prepares and submits it */
    return sqe;
}

static void cancel(struct engine_uring *e, void *owner, enum op op)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe)
        return; /* io_uring_queue_exit() cancels whatever is left */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)owner | op, 0);
    io_uring_sqe_set_data64(sqe, OP_IGNORE);
    kick(e);
}

/* --- connections ------------------------------------------------------- */

static void uconn_maybe_free(struct uconn *c)
{
    if ((c->flags & U_CLOSED) && !(c->flags & (U_RECV | U_SEND | U_STARVED))) {
        c->link.prev->next = c->link.next;
        c->link.next->prev = c->link.prev;
        free(c);
    }
}

/* Closes the fd and cancels what is in flight; the memory goes when the
   last operation has completed. Echod's bookkeeping is the caller's. */
static void uconn_close(struct engine_uring *e, struct uconn *c)
{
    if (c->flags & U_CLOSED)
        return;
    c->flags |= U_CLOSED;
    if ((c->flags & U_RECV) && !(c->flags & U_CANCELLED))
        cancel(e, c, OP_RECV);
    if (c->flags & U_SEND)
        cancel(e, c, OP_SEND);
    iomux_buf_clear(&c->out);
    /* The operations hold the file open until they end; close() drops
       our reference only. */
    close(c->fd);
    c->fd = -1;
    c->link.prev = &e->zombies;
    c->link.next = e->zombies.next;
    e->zombies.next->prev = &c->link;
    e->zombies.next = &c->link;
    uconn_maybe_free(c);
}

/* The connection ended on its own (error < 0) or cleanly (0). */
static void uconn_finish(struct engine_uring *e, struct uconn *c, int error)
{
    echod_conn_closed(e->d, &c->link, error);
    uconn_close(e, c);
}

static void arm_recv(struct engine_uring *e, struct uconn *c)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe) {
        uconn_finish(e, c, -ENOMEM);
        return;
    }
    if (e->spinning)
        io_uring_prep_recv(sqe, c->fd, NULL, 0, MSG_DONTWAIT); /* no wait queue entry */
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
    if (c->flags & (U_RECV | U_CLOSED | U_EOF | U_PAUSED | U_STARVED))
        return false;
    if (!e->spinning)
        e->rearms++;
    arm_recv(e, c);
    return true;
}

static void start_send(struct engine_uring *e, struct uconn *c, const void *p, size_t len)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe) {
        uconn_finish(e, c, -ENOMEM);
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

static size_t queued(const struct uconn *c)
{
    size_t n = iomux_buf_len(&c->out);
    if ((c->flags & U_SEND) && c->send_bid != NO_BID)
        n += c->send_len - c->send_off;
    return n;
}

/* No send in flight and nothing waiting behind one. */
static bool drained(const struct uconn *c)
{
    return !(c->flags & U_SEND) && iomux_buf_len(&c->out) == 0;
}

/* Puts `c` at the end of the list whose receives are armed again as
   buffers come back (step 5). */
static void starve(struct engine_uring *e, struct uconn *c)
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

static void pause_recv(struct engine_uring *e, struct uconn *c)
{
    c->flags |= U_PAUSED;
    if ((c->flags & U_RECV) && !(c->flags & U_CANCELLED)) {
        c->flags |= U_CANCELLED;
        cancel(e, c, OP_RECV);
    }
}

static void resume_recv(struct engine_uring *e, struct uconn *c)
{
    if (!(c->flags & U_PAUSED))
        return;
    c->flags &= (uint16_t)~U_PAUSED;
    rearm_recv(e, c); /* if the cancelled receive is still live, its end does it */
}

/* Step 3: `len` bytes arrived in ring buffer `bid`. */
static void on_data(struct engine_uring *e, struct uconn *c, unsigned bid, size_t len)
{
    struct echod *d = e->d;
    const char *p = buf_addr(e, bid);
    if (c->flags & U_ENDING) {
        recycle(e, bid); /* dropped, as a stream that ends drops input */
        return;
    }
    d->bytes_in += len;
    if (d->opt->trace)
        echod_trace_echo(d, &c->link, p, len);
    bool idle = drained(c);
    if (idle && e->sending < e->buf_count / 2) {
        c->send_bid = (uint16_t)bid;
        c->send_off = 0;
        c->send_len = (uint32_t)len;
        e->sending++;
        start_send(e, c, p, len);
        d->bytes_out += len;
        return;
    }
    /* Behind a send in flight, or too many buffers are out already in
       sends that may wait for slow readers: copy, give the buffer back. */
    int rc = iomux_buf_append(&c->out, p, len);
    recycle(e, bid);
    if (rc < 0) {
        uconn_finish(e, c, rc);
        return;
    }
    d->bytes_out += len;
    if (idle)
        send_queued(e, c);
    else if (queued(c) > d->opt->high_water)
        pause_recv(e, c);
}

static void on_recv(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    unsigned bid = NO_BID;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        ring_took(e);
    }
    if (!more)
        c->flags &= (uint16_t) ~(U_RECV | U_CANCELLED);
    if (c->flags & U_CLOSED) {
        if (bid != NO_BID)
            recycle(e, bid);
        uconn_maybe_free(c);
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
            if (drained(c)) {
                uconn_finish(e, c, 0);
                return;
            }
        } else if (res == -ENOBUFS) {
            /* Step 5: the ring ran dry. Wait for buffers to come back. */
            e->nobufs++;
            e->ran_dry = true;
            if (!more && !(c->flags & U_STARVED))
                starve(e, c);
        } else if (res == -EAGAIN) {
            e->spin_empty++; /* spinning: nothing yet; again next turn */
        } else if (res != -ECANCELED) {
            uconn_finish(e, c, res);
            return;
        }
    }
    if (!more)
        rearm_recv(e, c);
}

static void on_send(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe)
{
    struct echod *d = e->d;
    int res = cqe->res;
    c->flags &= (uint16_t)~U_SEND;
    if ((c->flags & U_CLOSED) || res < 0) {
        release_send_buf(e, c);
        if (c->flags & U_CLOSED)
            uconn_maybe_free(c);
        else
            uconn_finish(e, c, res);
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
    if (iomux_buf_len(&c->out) > 0) {
        send_queued(e, c);
    } else {
        if (d->opt->trace)
            echod_trace_queue_empty(d, &c->link);
        if ((c->flags & U_ENDING) && !(c->flags & U_WR_SHUT)) {
            c->flags |= U_WR_SHUT;
            (void)shutdown(c->fd, SHUT_WR);
        }
        if (c->flags & U_EOF) {
            uconn_finish(e, c, 0);
            return;
        }
    }
    if ((c->flags & U_PAUSED) && queued(c) <= d->opt->low_water)
        resume_recv(e, c);
}

/* --- accepting ----------------------------------------------------------- */

static void arm_accept(struct engine_uring *e, size_t i)
{
    struct echod *d = e->d;
    struct listener *l = &d->listeners[i];
    if (e->armed[i] || !e->accepting || l->fd < 0)
        return;
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe)
        return; /* tried again at the next accept-state change */
    io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)l | OP_ACCEPT);
    kick(e);
    e->armed[i] = true;
}

void engine_uring_admit(struct engine_uring *e, int fd, const struct iomux_addr *peer)
{
    struct echod *d = e->d;
    struct uconn *c = calloc(1, e->conn_size);
    if (!c) {
        d->errors++;
        ratelog_say(&d->logs[LOG_ACCEPT], now_ms(e), "refusing a connection: %s", strerror(ENOMEM));
        echod_perip_release(d->perip, peer);
        close(fd);
        return;
    }
    c->fd = fd;
    c->send_bid = NO_BID;
    c->last_io = now_ms(e);
    iomux_buf_init(&c->out, d->pool);
    echod_conn_opened(d, &c->link, echod_keeps_peer(d) ? c->peer : NULL, peer);
    arm_recv(e, c);
}

static void on_accept(struct engine_uring *e, struct listener *l, const struct io_uring_cqe *cqe)
{
    struct echod *d = e->d;
    size_t i = (size_t)(l - d->listeners);
    if (!(cqe->flags & IORING_CQE_F_MORE))
        e->armed[i] = false;
    int res = cqe->res;
    if (res >= 0) {
        struct iomux_addr peer;
        memset(&peer, 0, sizeof(peer));
        if (echod_keeps_peer(d) || (d->opt->max_conns && d->open >= d->opt->max_conns)) {
            /* A multishot accept has no per-connection address buffer:
               ask, but only when something needs the answer (a refusal
               names the client). */
            peer.len = sizeof(peer.ss);
            if (getpeername(res, (struct sockaddr *)&peer.ss, &peer.len) < 0) {
                close(res); /* it is gone already */
                return;
            }
        } else {
            peer.ss.ss_family = l->addr.ss.ss_family;
            peer.len = sizeof(peer.ss);
        }
        echod_admit(d, res, &peer);
    } else if (res != -ECANCELED) {
        (void)echod_accept_error(d, l, res);
    }
    if (!e->armed[i] && !d->stopping && !d->accepting_paused)
        arm_accept(e, i);
}

int engine_uring_listen(struct engine_uring *e, struct listener *l)
{
    /* Accepted sockets inherit TCP_NODELAY from the listener on Linux:
       one call here instead of one per connection. (Not a TCP socket, as
       for unix:PATH: nothing to set.) */
    int one = 1;
    (void)setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    e->accepting = true;
    arm_accept(e, (size_t)(l - e->d->listeners));
    return e->armed[l - e->d->listeners] ? 0 : -ENOMEM;
}

void engine_uring_set_accepting(struct engine_uring *e, bool on)
{
    struct echod *d = e->d;
    e->accepting = on;
    for (size_t i = 0; i < d->nlisteners; i++) {
        if (on) {
            arm_accept(e, i);
        } else if (e->armed[i]) {
            /* Its end (-ECANCELED, no more) clears `armed`. */
            cancel(e, &d->listeners[i], OP_ACCEPT);
        }
    }
}

/* --- the pump -------------------------------------------------------------- */

static void handle(struct engine_uring *e, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    void *owner = (void *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);
    switch (ud & OP_MASK) {
    case OP_ACCEPT:
        on_accept(e, owner, cqe);
        break;
    case OP_RECV:
        on_recv(e, owner, cqe);
        break;
    case OP_SEND:
        on_send(e, owner, cqe);
        break;
    case OP_LOOP:
        e->loop_armed = false;
        e->loop_ready = true;
        break;
    default:
        break;
    }
}

/* Receives waiting for buffers are armed again once some are back. */
static void feed_starved(struct engine_uring *e)
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
            uconn_maybe_free(c);
        else if (rearm_recv(e, c)) {
            budget--;
            if (e->spinning)
                e->rearms++; /* rearm_recv() counts only multishot ends */
        }
    }
}

/* Takes every completion there is, acting on each if `act`; returns how
   many. A completion without IORING_CQE_F_MORE is its request's last. */
static unsigned take_completions(struct engine_uring *e, bool act)
{
    unsigned head, seen = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&e->ring, head, cqe)
    {
        if (!(cqe->flags & IORING_CQE_F_MORE))
            e->inflight--;
        if (act)
            handle(e, cqe);
        seen++;
    }
    io_uring_cq_advance(&e->ring, seen);
    return seen;
}

/* Handles every completion there is; returns how many. */
static unsigned reap(struct engine_uring *e)
{
    unsigned seen = take_completions(e, true);
    publish(e);
    feed_starved(e);
    return seen;
}

static void say_enter_error(struct engine_uring *e, int rc)
{
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
        ratelog_say(&e->d->logs[LOG_IO], now_ms(e), "io_uring_enter: %s", strerror(-rc));
}

/* Guest mode: handles every completion there is, submits what that
   queued, and again while submitting made more (sends complete inline on
   loopback). */
static void pump(struct engine_uring *e)
{
    e->pumping = true;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        reap(e);
        bool overflow = io_uring_cq_has_overflow(&e->ring);
        if (!io_uring_sq_ready(&e->ring) && !overflow)
            break;
        e->enters++;
        int rc = overflow ? io_uring_submit_and_get_events(&e->ring) : io_uring_submit(&e->ring);
        if (rc < 0) {
            say_enter_error(e, rc);
            break;
        }
    }
    e->pumping = false;
    if (io_uring_sq_ready(&e->ring))
        kick(e); /* the rounds ran out: finish in the next iteration */
}

static void on_ring(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    pump(data);
}

/* --- busy polling ----------------------------------------------------------- */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The kernel has queued a receive for us to run (IORING_SQ_TASKRUN) or
   posted a completion. */
static bool ring_has_work(struct engine_uring *e)
{
    return (IO_URING_READ_ONCE(*e->ring.sq.kflags) & IORING_SQ_TASKRUN) ||
           io_uring_cq_ready(&e->ring);
}

/*
 * --busy-poll: spins, for at most the budget, until the ring has work. A
 * task asleep in the ring's wait must be woken by whoever brings it data:
 * on loopback that is the client, whose send then pays for waking us (an
 * inter-processor interrupt; in a VM, a hypervisor exit), and we pay for
 * sleeping and waking. While we spin the kernel only queues the work. The
 * price is the CPU the spin burns; it ends when the budget does, so an
 * idle server still sleeps.
 */
static void busy_poll(struct engine_uring *e, int timeout_ms)
{
    uint64_t budget = e->d->opt->busy_poll_us * 1000u;
    if (timeout_ms > 0 && (uint64_t)timeout_ms * 1000000u < budget)
        budget = (uint64_t)timeout_ms * 1000000u; /* not past the loop's next timer */
    uint64_t start = clock_ns(CLOCK_MONOTONIC);
    e->busy_polls++;
    for (unsigned i = 1;; i++) {
        if (ring_has_work(e)) {
            e->busy_found++;
            break;
        }
        cpu_relax();
        if (i % 64 == 0 && clock_ns(CLOCK_MONOTONIC) - start >= budget)
            break;
    }
    /* Waiting, not working: --spin-receive auto must not take it for load. */
    e->spin_idle_ns += clock_ns(CLOCK_MONOTONIC) - start;
}

/* Spin only where we would sleep: nothing to submit or handle yet (a
   loop that had something re-arms its poll first: that is a submission). */
static bool may_busy_poll(struct engine_uring *e, int timeout)
{
    return e->d->opt->busy_poll_us && timeout != 0 && !io_uring_sq_ready(&e->ring) &&
           !io_uring_cq_ready(&e->ring);
}

/* How long the next wait may last: the caller's bound or the loop's next
   timer, whichever comes first; -1 for no bound. */
static int wait_ms(struct iomux_loop *loop, int timeout_ms)
{
    int next = iomux_loop_timeout(loop);
    if (timeout_ms >= 0 && (next < 0 || timeout_ms < next))
        next = timeout_ms;
    return next;
}

/* Owner mode: the loop's own wait happens in the ring, as a poll of its
   epoll fd; one-shot, so that it is level-triggered (armed on a ready fd
   it completes at once). */
static void arm_loop_poll(struct engine_uring *e)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe)
        return; /* run_once() then does not block */
    io_uring_prep_poll_add(sqe, e->loop_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)e | OP_LOOP);
    e->loop_armed = true;
}

/* --- batched waits ------------------------------------------------------------ */

/* The policy is in batch.h; here, the clients active in the last two
   epochs that it divides. */
enum { EPOCH_MS = 100 };

static unsigned batch_target(struct engine_uring *e)
{
    uint64_t now = now_ms(e);
    if (now - e->epoch_start >= EPOCH_MS) {
        e->active_prev = e->active;
        e->active = 0;
        e->epoch = e->epoch + 1 ? e->epoch + 1 : 1;
        e->epoch_start = now;
    }
    unsigned active = e->active > e->active_prev ? e->active : e->active_prev;
    return batch_want(e->last_recvs, active);
}

/* io_uring_submit_and_wait_timeout() with the kernel's minimum wait, which
   liburing before 2.8 cannot pass: the same system call, by hand. */
static int submit_and_wait_batch(struct engine_uring *e, unsigned want,
                                 const struct __kernel_timespec *ts)
{
    /* Without a bound, the minimum wait's end would end the wait too. */
    static const struct __kernel_timespec one_second = {.tv_sec = 1};
    struct io_uring_sq *sq = &e->ring.sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    unsigned to_submit = tail - IO_URING_READ_ONCE(*sq->khead);
    struct io_uring_getevents_arg arg;
    memset(&arg, 0, sizeof(arg));
    arg.pad = batch_min_wait_us(e->batch_wait_us, want); /* min_wait_usec since kernel 6.12 */
    arg.ts = (uint64_t)(uintptr_t)(ts ? ts : &one_second);
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG |
                     (e->ring_registered ? IORING_ENTER_REGISTERED_RING : 0);
    /* Sends complete during the submission on loopback and count towards
       the minimum: wait for those and then `want` more. */
    return io_uring_enter2((unsigned)e->ring.enter_ring_fd, to_submit, e->batch_sends + want, flags,
                           (sigset_t *)&arg, sizeof(arg));
}

/* --- spinning (spin.h) ---------------------------------------------------- */

enum { SPIN_EPOCH_NS = 100 * 1000 * 1000 };

/* Each armed multishot receive is cancelled; its last completion re-arms
   it as a one-shot non-blocking receive (arm_recv()). */
static void spin_start(struct engine_uring *e)
{
    e->spinning = true;
    e->spin_starts++;
    for (struct conn *l = e->d->conns.next; l != &e->d->conns; l = l->next) {
        struct uconn *c = uconn_of(l);
        if ((c->flags & U_RECV) && !(c->flags & U_CANCELLED)) {
            c->flags |= U_CANCELLED;
            cancel(e, c, OP_RECV);
        }
    }
}

/* --spin-receive auto: once an epoch, how busy were we, and spin or not?
   Stopping needs nothing else: a one-shot receive never outlives the
   system call that submits it, so the next re-arms are multishot again. */
static void spin_check(struct engine_uring *e, uint64_t now)
{
    if (e->spinning && e->d->open > SPIN_MAX_CONNS) {
        e->spinning = false; /* a crowd arrived: not for another epoch */
        return;
    }
    uint64_t wall = now - e->spin_epoch_ns;
    if (wall < SPIN_EPOCH_NS)
        return;
    uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t used = cpu - e->spin_cpu_ns;
    uint64_t work = used > e->spin_idle_ns ? used - e->spin_idle_ns : 0;
    uint64_t permille = work * 1000u / wall;
    bool spin = spin_next(e->spinning, permille > 1000 ? 1000u : (unsigned)permille, e->d->open);
    e->spin_epoch_ns = now;
    e->spin_cpu_ns = cpu;
    e->spin_idle_ns = 0;
    if (spin && !e->spinning)
        spin_start(e);
    else if (!spin)
        e->spinning = false;
}

/* One turn of the engine: wait (not when spinning), submit, handle. */
static int run_turn(struct engine_uring *e, int timeout_ms)
{
    struct iomux_loop *loop = e->d->loop;
    if (!e->owner) {
        int next = wait_ms(loop, timeout_ms);
        if (may_busy_poll(e, next))
            busy_poll(e, next);
        return iomux_loop_run_once(loop, timeout_ms);
    }
    if (!e->loop_armed)
        arm_loop_poll(e);
    int timeout = wait_ms(loop, timeout_ms);
    if (!e->loop_armed)
        timeout = 0;
    /* One system call per batch: submit the sends (and re-arms) of the
       last one, run the receives the kernel deferred to us, and wait if
       there is nothing yet. */
    struct __kernel_timespec ts = {
        .tv_sec = timeout / 1000,
        .tv_nsec = (long long)(timeout % 1000) * 1000000,
    };
    if (may_busy_poll(e, timeout))
        busy_poll(e, timeout);
    struct io_uring_cqe *cqe;
    e->enters++;
    unsigned want = e->batch_wait_us && timeout != 0 ? batch_target(e) : 0;
    int rc;
    if (e->spinning) {
        rc = io_uring_submit_and_get_events(&e->ring); /* runs the receives; never sleeps */
    } else if (want > 1) {
        e->batch_waits++;
        rc = submit_and_wait_batch(e, want, timeout >= 0 ? &ts : NULL);
    } else {
        rc = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, timeout >= 0 ? &ts : NULL, NULL);
    }
    e->batch_sends = 0;
    say_enter_error(e, rc);
    e->loop_ready = false;
    e->batch_recvs = 0;
    int n = (int)reap(e);
    e->last_recvs = e->batch_recvs;
    if (want > 1 && e->batch_recvs < want)
        e->batch_short++;
    /* Spinning, the loop runs only when it has something: the poll of its
       fd completed, or a timer is due. */
    bool run_loop = e->spinning ? e->loop_ready || iomux_loop_timeout(loop) == 0
                                : e->loop_ready || rc == -ETIME || timeout == 0;
    if (run_loop) {
        int ran = iomux_loop_run_once(loop, 0);
        if (ran < 0 && ran != -EINTR)
            return ran;
        if (ran > 0)
            n += ran;
    }
    return n;
}

int engine_uring_run_once(struct engine_uring *e, int timeout_ms)
{
    uint64_t start = e->spin_auto || e->spinning ? clock_ns(CLOCK_MONOTONIC) : 0;
    if (e->spin_auto)
        spin_check(e, start);
    if (!e->spinning)
        return run_turn(e, timeout_ms);
    uint64_t recvs = e->data_recvs;
    int n = run_turn(e, 0);
    if (e->data_recvs == recvs)
        e->spin_idle_ns += clock_ns(CLOCK_MONOTONIC) - start; /* a turn that found nothing */
    return n;
}

/* --- the public side ------------------------------------------------------- */

union conn_peer_addr *engine_uring_peer(struct conn *c)
{
    return uconn_of(c)->peer;
}

uint64_t engine_uring_last_io(struct conn *c)
{
    return uconn_of(c)->last_io;
}

void engine_uring_end(struct engine_uring *e, struct conn *conn)
{
    struct uconn *c = uconn_of(conn);
    if (c->flags & (U_ENDING | U_CLOSED))
        return;
    c->flags |= U_ENDING;
    /* Input is dropped from now on: nothing holds the peer back. The
       receive is armed again from the next reap (the starved list), not
       here: a failure to arm closes, and the caller is walking the list. */
    if (c->flags & U_PAUSED) {
        c->flags &= (uint16_t)~U_PAUSED;
        if (!(c->flags & (U_RECV | U_STARVED | U_EOF))) {
            starve(e, c);
            kick(e); /* a guest's next reap may be far off otherwise */
        }
    }
    if (drained(c)) {
        c->flags |= U_WR_SHUT;
        (void)shutdown(c->fd, SHUT_WR);
    }
}

void engine_uring_cut(struct engine_uring *e, struct conn *c)
{
    uconn_close(e, uconn_of(c));
}

void engine_uring_print_stats(struct engine_uring *e, FILE *f)
{
    fprintf(
        f,
        "ring buffers %u of %u held, %u in the ring (%zu bytes each); waits for buffers %" PRIu64
        "; re-armed receives %" PRIu64 "; io_uring_enter %" PRIu64,
        e->held, e->buf_count, e->in_ring, e->buf_size, e->nobufs, e->rearms, e->enters);
    if (e->batch_wait_us)
        fprintf(f, "; batch waits %" PRIu64 ", short %" PRIu64, e->batch_waits, e->batch_short);
    if (e->d->opt->busy_poll_us)
        fprintf(f, "; busy polls %" PRIu64 ", found work %" PRIu64, e->busy_polls, e->busy_found);
    if (e->spin_auto || e->spin_starts)
        fprintf(f, "; spinning %s, started %" PRIu64 " times, receives that found nothing %" PRIu64,
                e->spinning ? "now" : "not now", e->spin_starts, e->spin_empty);
    fputc('\n', f);
}

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int engine_uring_new(struct echod *d, struct engine_uring **out)
{
    *out = NULL;
    struct engine_uring *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->d = d;
    e->zombies.next = e->zombies.prev = &e->zombies;
    e->buf_size = d->opt->trace ? TRACE_BUF_SIZE : BUF_SIZE;
    e->buf_count = (unsigned)d->opt->uring_buffers;
    e->conn_size = sizeof(struct uconn) + (echod_keeps_peer(d) ? sizeof(union conn_peer_addr) : 0);

    /*
     * Owner mode when the loop has a backend fd (epoll): the kernel runs
     * the receives only when we enter it (DEFER_TASKRUN), in batches, and
     * never interrupts us for them. Otherwise (poll, select, or an older
     * kernel) guest mode: the loop watches the ring's fd, and receives run
     * at our next system call instead of interrupting us (COOP_TASKRUN).
     */
    e->loop_fd = iomux_loop_backend_fd(d->loop);
    /* --busy-poll watches IORING_SQ_TASKRUN for deferred receives. */
    const unsigned taskrun_flag = d->opt->busy_poll_us ? IORING_SETUP_TASKRUN_FLAG : 0;
    const unsigned modes[] = {
        IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | taskrun_flag,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    struct io_uring_params p;
    for (size_t m = e->loop_fd >= 0 ? 0 : 1; m < sizeof(modes) / sizeof(modes[0]); m++) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL | modes[m];
        p.cq_entries = CQ_ENTRIES;
        rc = io_uring_queue_init_params(SQ_ENTRIES, &e->ring, &p);
        if (rc != -EINVAL)
            break; /* -EINVAL: a flag this kernel does not know */
    }
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->owner = p.flags & IORING_SETUP_DEFER_TASKRUN;
    if (!(p.features & IORING_FEAT_NODROP)) {
        rc = -ENOSYS; /* a kernel this old lacks multishot receive too */
        goto fail_ring;
    }
    /* io_uring_enter() then names the ring by a registered index, not by
       its fd: no file lookup per call (kernel 5.18; without it, the fd). */
    e->ring_registered = io_uring_register_ring_fd(&e->ring) == 1;
    if (e->owner && (p.features & FEAT_MIN_TIMEOUT))
        e->batch_wait_us = (unsigned)d->opt->batch_wait_us;
    /* --spin-receive: "on" spins from the start and never stops. */
    e->spin_auto = d->opt->spin_receive == ECHOD_SPIN_AUTO && !d->opt->trace;
    if (d->opt->spin_receive == ECHOD_SPIN_ON) {
        e->spinning = true;
        e->spin_starts = 1;
    }
    e->spin_epoch_ns = clock_ns(CLOCK_MONOTONIC);
    e->spin_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    e->epoch = 1; /* a new connection's seen_epoch is 0 */
    /* Step 1: the buffers and the ring that hands them to the kernel. */
    e->br_bytes = e->buf_count * sizeof(struct io_uring_buf);
    e->bufs_bytes = (size_t)e->buf_count * e->buf_size;
    e->br = map_zeroed(e->br_bytes);
    e->bufs = map_zeroed(e->bufs_bytes);
    e->free_bids = calloc(e->buf_count, sizeof(*e->free_bids));
    if (!e->br || !e->bufs || !e->free_bids) {
        rc = -ENOMEM;
        goto fail_maps;
    }
    io_uring_buf_ring_init(e->br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)e->br;
    reg.ring_entries = e->buf_count;
    reg.bgid = BGID;
    rc = io_uring_register_buf_ring(&e->ring, &reg, 0);
    if (rc < 0)
        goto fail_maps;
    e->held = e->buf_count;
    for (unsigned i = e->buf_count; i-- > 0;)
        recycle(e, i); /* buffer 0 on top */
    e->window = e->buf_count < WINDOW_MIN ? e->buf_count : WINDOW_MIN;
    e->window_checked = now_ms(e);
    publish(e);

    if (!e->owner) {
        rc = iomux_fd_watch(d->loop, e->ring.ring_fd, IOMUX_READ, on_ring, e);
        if (rc < 0)
            goto fail_maps;
    }
    *out = e;
    return 0;

fail_maps:
    /* The ring first: it may still have the buffer ring registered. */
    io_uring_queue_exit(&e->ring);
    if (e->br)
        munmap(e->br, e->br_bytes);
    if (e->bufs)
        munmap(e->bufs, e->bufs_bytes);
    free(e->free_bids);
    free(e);
    return rc;
fail_ring:
    io_uring_queue_exit(&e->ring);
    free(e);
    return rc;
}

/* Every connection and listener is closed by now, but a request in
   flight holds its socket open, and tearing the ring down ends them in
   the background, after we exit: a listener would outlive the process,
   and an echod started again at once could not bind its port. So cancel
   them all and wait, briefly, for their last completions. What comes in
   now is not acted on. */
static void drain(struct engine_uring *e)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (sqe) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, OP_IGNORE);
    }
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = DRAIN_WAIT_MS * 1000000L};
    for (int i = 0; i < DRAIN_ROUNDS && e->inflight > 0; i++) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR)
            break;
        (void)take_completions(e, false);
    }
}

void engine_uring_free(struct engine_uring *e)
{
    if (!e)
        return;
    if (e->kick_timer)
        iomux_timer_cancel(e->d->loop, e->kick_timer);
    if (!e->owner)
        iomux_fd_unwatch(e->d->loop, e->ring.ring_fd);
    drain(e);
    io_uring_queue_exit(&e->ring);
    while (e->zombies.next != &e->zombies) {
        struct uconn *c = uconn_of(e->zombies.next);
        e->zombies.next = c->link.next;
        free(c);
    }
    munmap(e->br, e->br_bytes);
    munmap(e->bufs, e->bufs_bytes);
    free(e->free_bids);
    free(e);
}

#endif /* ECHOD_HAVE_URING */
