/* SPDX-License-Identifier: MIT */
/*
 * engine_uring_internal.h - what the files of the io_uring engine share:
 * its state, a connection's state, and the few functions one file calls
 * in another. engine_uring.c tells the whole story (the life of a receive
 * buffer, steps 1 to 5, which the comments here and in the other files
 * refer to); the files split it along that story:
 *
 *   engine_uring.c       the story; creation, teardown, accepting, the
 *                        public side (the operations of engine.h)
 *   engine_uring_buf.c   the buffer ring: steps 1, 4 and 5
 *   engine_uring_conn.c  connections: receives, sends, backpressure
 *                        (steps 2, 3 and 5)
 *   engine_uring_wait.c  submitting and waiting: the pump, batched waits,
 *                        busy polling, spinning
 *   engine_uring_splice.c  --splice on: the echo through a pipe
 *
 * Only built with liburing.
 */
#ifndef ECHOD_ENGINE_URING_INTERNAL_H
#define ECHOD_ENGINE_URING_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <liburing.h>

#include "engine.h"

/* Submission entries: one batch of sends, accepts and re-arms; when full
   it is submitted early. Completions: many more, since every armed
   multishot request can post at any time. */
#define SQ_ENTRIES 1024u
#define CQ_ENTRIES 16384u
/* Provided buffers: --uring-buffers of them (a power of two), BUF_SIZE
   bytes each. Their pages are touched only when used. */
#define BUF_SIZE 16384u
/* --trace reads as the seed does, recv(1024), so its lines match. */
#define TRACE_BUF_SIZE 1024u
#define BGID           0
#define NO_BID         0xffffu
/* Passes of reap-and-submit per wake-up: enough to finish the sends of a
   batch, bounded so timers and signals are never starved. */
#define PUMP_ROUNDS 8
/* The smallest window of ring buffers (step 4): 16 of 16 KiB fill a
   quarter of a 1 MiB L2 cache. */
#define WINDOW_MIN 16u
/* The least the memory budget leaves in the ring (uring_budget_window()):
   a receive each for 32 clients per batch, 512 KiB past the budget's mark
   at most. */
#define BUDGET_WINDOW_MIN 32u
/* Shutdown: how long to wait for cancelled requests to end (drain()). */
#define DRAIN_WAIT_MS 100
#define DRAIN_ROUNDS  20
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
    OP_SPLICE = 6, /* --splice on: a poll or splice of a spliced connection */
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
    U_SINGLE = 1u << 9,    /* bytes are queued: one buffer per receive (step 3) */
    U_HELD = 1u << 10,     /* the memory budget: not receiving until the queue is empty */
    U_BEHIND = 1u << 11,   /* once paused at --high-water: U_SINGLE for good */
    U_SPLICE = 1u << 12,   /* --splice on: echoed through a pipe (engine_uring_splice.c) */
    U_SP_COPY = 1u << 13,  /* spliced, but this round copies: one-shot receive */
};

/* The one operation in flight on a spliced connection (OP_SPLICE). */
enum sp_op {
    SP_NONE = 0,
    SP_POLL_IN, /* waiting for the socket to be readable */
    SP_IN,      /* splice socket -> pipe */
    SP_OUT,     /* splice pipe -> socket */
};

/* The engine's list of every connection it allocated, open or closed
   with operations still in flight: spinning walks it, free() empties it. */
struct ulink {
    struct ulink *prev, *next;
};

struct uconn {
    struct ulink all; /* first: a struct ulink * of the list is a struct uconn * */
    struct uconn *next_starved;
    uint64_t last_io; /* loop ms */
    int fd;
    uint16_t flags;
    uint16_t send_bid;    /* ring buffer being sent, or NO_BID: from `out` */
    uint32_t send_off;    /* ring buffer: bytes of it sent so far */
    uint32_t send_len;    /* ring buffer: bytes to send from it */
    uint32_t seen_epoch;  /* --batch-wait: last epoch it received in */
    struct iomux_buf out; /* bytes behind the send in flight */
    /* --splice on (U_SPLICE): the pipe lent for a round, {-1, -1} without. */
    int pipe[2];
    uint32_t in_pipe; /* bytes in it */
    uint8_t sp_op;    /* enum sp_op */
    /* Last: with keep_peer the peer's address follows it (conn_peer()). */
    struct conn link;
};

/* A listening socket: its address is the user_data of its accept. */
struct ulistener {
    _Alignas(8) void *token; /* the policy's, for accept_error */
    int fd;
    sa_family_t family;
    bool armed; /* the multishot accept is in flight */
};

struct engine_uring {
    struct engine_config cfg;
    struct engine_hooks hooks;
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
    unsigned taken;   /* taken by the kernel since the last uring_publish() */
    unsigned taken_peak;
    uint64_t window_checked; /* ms */
    bool window_grew;        /* since the last check */
    bool ran_dry;            /* a receive found the ring empty in this batch */
    unsigned sending;        /* of those, how many are in sends (step 3) */
    bool pumping;            /* inside pump(): it submits when done */
    bool over_budget;        /* past the budget's mark: one-shot receives */
    /* Owner mode: the engine waits for the loop (in the ring, on its
       backend fd). Guest mode: the loop waits for the ring (its fd). */
    bool owner;
    bool loop_armed; /* owner: the poll of loop_fd is in flight */
    bool loop_ready; /* owner: the loop has something to dispatch */
    int loop_fd;
    bool accepting; /* accepts should be armed */
    struct ulistener listeners[ENGINE_MAX_LISTEN];
    size_t nlisteners;
    uint64_t kick_timer;
    size_t conn_size;
    struct uconn *starved, *starved_tail; /* first in, first out */
    struct ulink all;                     /* every connection (struct uconn) */
    uint64_t open;                        /* of those, not closed yet */
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

/*
 * The helpers below are on every message's path and the engine's files
 * are separate translation units: inline, so that splitting the engine
 * costs no call.
 */

static inline struct engine_uring *uring_of(struct engine *e)
{
    return (struct engine_uring *)(void *)e;
}

static inline struct uconn *uconn_of(struct conn *c)
{
    return (struct uconn *)(void *)((char *)c - offsetof(struct uconn, link));
}

static inline uint64_t now_ms(struct engine_uring *e)
{
    return iomux_loop_now(e->cfg.loop);
}

static inline char *buf_addr(struct engine_uring *e, unsigned bid)
{
    return e->bufs + (size_t)bid * e->buf_size;
}

/* Step 4: the buffer goes back to the kernel at the next uring_publish(). */
static inline void recycle(struct engine_uring *e, unsigned bid)
{
    e->free_bids[e->nfree++] = (uint16_t)bid;
    e->held--;
}

/* Step 2: the kernel took a buffer from the ring. */
static inline void ring_took(struct engine_uring *e)
{
    e->in_ring--;
    e->held++;
    e->taken++;
}

void uring_kick_later(struct engine_uring *e);

/* Called after an entry is prepared. Entries queued outside pump() (by a
   timer, a signal, start-up) must be submitted too: from a zero-delay
   timer, so that a sweep that cuts a thousand connections still enters
   the kernel once. */
static inline void kick(struct engine_uring *e)
{
    if (e->owner || e->pumping || e->kick_timer)
        return; /* the owner submits at its next wait anyway */
    uring_kick_later(e);
}

static inline struct io_uring_sqe *get_sqe(struct engine_uring *e)
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

static inline void cancel(struct engine_uring *e, void *owner, enum op op)
{
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe)
        return; /* io_uring_queue_exit() cancels whatever is left */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)owner | op, 0);
    io_uring_sqe_set_data64(sqe, OP_IGNORE);
    kick(e);
}

/* engine_uring_buf.c: the buffer ring (steps 1, 4, 5). */
int uring_bufs_init(struct engine_uring *e);
void uring_bufs_free(struct engine_uring *e);
void uring_publish(struct engine_uring *e);

/* engine_uring_conn.c: connections. */
void uring_arm_recv(struct engine_uring *e, struct uconn *c);
void uring_conn_close(struct engine_uring *e, struct uconn *c);
bool uring_drained(const struct uconn *c);
void uring_starve(struct engine_uring *e, struct uconn *c);
void uring_feed_starved(struct engine_uring *e);
void uring_on_recv(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe);
void uring_on_send(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe);
size_t uring_buffered(struct engine *eng);
unsigned uring_budget_window(struct engine_uring *e);
size_t uring_queued(struct engine *eng, struct conn *conn);
bool uring_hold(struct engine *eng, struct conn *conn);

/* engine_uring_conn.c, for engine_uring_splice.c: ends a connection
   (error 0 or -errno, through the policy); frees a closed one whose last
   operation has ended. */
void uring_conn_finish(struct engine_uring *e, struct uconn *c, int error);
void uring_conn_release(struct uconn *c);
void uring_conn_queued(struct engine_uring *e, struct uconn *c);

/* Everything the connection had to send has gone (a copying queue or a
   splice pipe): an ending connection's write side is shut, once, and one
   whose peer has sent EOF is finished. True when it was finished: the
   caller touches c no more. Inline: it runs on every send completion. */
static inline bool uring_output_done(struct engine_uring *e, struct uconn *c)
{
    if ((c->flags & U_ENDING) && !(c->flags & U_WR_SHUT)) {
        c->flags |= U_WR_SHUT;
        (void)shutdown(c->fd, SHUT_WR);
    }
    if (c->flags & U_EOF) {
        uring_conn_finish(e, c, 0);
        return true;
    }
    return false;
}

/* engine_uring_splice.c: --splice on. */
void uring_splice_start(struct engine_uring *e, struct uconn *c);
void uring_splice_arm(struct engine_uring *e, struct uconn *c);
void uring_splice_on_cqe(struct engine_uring *e, struct uconn *c, const struct io_uring_cqe *cqe);
void uring_splice_put_pipe(struct engine_uring *e, struct uconn *c);

/* engine_uring.c: accepting. */
void uring_on_accept(struct engine_uring *e, struct ulistener *l, const struct io_uring_cqe *cqe);

/* engine_uring_wait.c: submitting and waiting. */
void uring_on_ring(struct iomux_loop *loop, int fd, unsigned events, void *data);
void uring_drain(struct engine_uring *e);
int uring_run_once(struct engine *eng, int timeout_ms);

#endif /* ECHOD_ENGINE_URING_INTERNAL_H */
