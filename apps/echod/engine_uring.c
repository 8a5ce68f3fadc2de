/* SPDX-License-Identifier: MIT */
/*
 * engine_uring.c - echod's io_uring completion engine (engine.h): how it
 * works, and its public side (creation, accepting, the graceful end, the
 * statistics). engine_uring_internal.h lists the other files.
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
 *      per batch of completions, uring_publish() tops the ring up to the
 *      window from the top of that stack and moves the ring's tail. The ring is
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
 *     cancelled, and re-armed below --low-water. A cancel reaches the
 *     kernel only at the next io_uring_enter(), and a multishot receive
 *     fills buffers until then: once bytes are queued on a connection it
 *     receives one buffer at a time (receive_singly()), so its queue ends
 *     one buffer above the mark, not a batch above it.
 *   - The memory budget (engine.h): the ring is counted whole, and topped
 *     up only to the room the budget has left (uring_budget_window()); past
 *     its mark a connection that queues is held until its queue is empty.
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
 *
 * Where the steps are: 1 (uring_bufs_init()), 4 (uring_publish()) and the
 * window of 5 in engine_uring_buf.c; 2, 3 (on_data()) and the starved
 * list of 5 in engine_uring_conn.c; the waits in engine_uring_wait.c.
 */
#include "engine.h"

#include <errno.h>

#ifndef ECHOD_HAVE_URING

/* Not built (no liburing): --engine uring says so and exits. */
static int uring_missing(const struct engine_config *cfg, const struct engine_hooks *hooks,
                         struct engine **out)
{
    *out = NULL;
    return -ENOENT;
}

const struct engine_ops engine_uring_ops = {
    .name = "uring",
    .needs = "liburing",
    .create = uring_missing,
};

#else /* ECHOD_HAVE_URING */

#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "engine_uring_internal.h"

/* conn_peer() finds the address right after the struct conn. */
_Static_assert(offsetof(struct uconn, link) + sizeof(struct conn) == sizeof(struct uconn),
               "struct conn must end struct uconn");

/* --- accepting ----------------------------------------------------------- */

static void arm_accept(struct engine_uring *e, struct ulistener *l)
{
    if (l->armed || !e->accepting)
        return;
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe)
        return; /* tried again at the next accept-state change */
    io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)l | OP_ACCEPT);
    kick(e);
    l->armed = true;
}

static int uring_admit(struct engine *eng, int fd, const struct iomux_addr *peer)
{
    struct engine_uring *e = uring_of(eng);
    struct uconn *c = calloc(1, e->conn_size);
    if (!c) {
        close(fd); /* taken in every case (engine.h) */
        return -ENOMEM;
    }
    c->fd = fd;
    c->send_bid = NO_BID;
    c->pipe[0] = c->pipe[1] = -1;
    c->last_io = now_ms(e);
    iomux_buf_init(&c->out, e->cfg.pool);
    c->all.prev = e->all.prev;
    c->all.next = &e->all;
    e->all.prev->next = &c->all;
    e->all.prev = &c->all;
    e->open++;
    e->hooks.opened(e->hooks.policy, &c->link, peer);
    if (e->cfg.splice_pool && e->cfg.splice_from == 0)
        uring_splice_start(e, c);
    uring_arm_recv(e, c);
    return 0;
}

/* A socket the multishot accept took: to the policy, with its address. */
static void accepted(struct engine_uring *e, struct ulistener *l, int fd)
{
    struct iomux_addr peer;
    memset(&peer, 0, sizeof(peer));
    if (e->hooks.wants_peer(e->hooks.policy)) {
        /* A multishot accept has no per-connection address buffer: ask,
           but only when something needs the answer (a refusal names the
           client). */
        peer.len = sizeof(peer.ss);
        if (getpeername(fd, (struct sockaddr *)&peer.ss, &peer.len) < 0) {
            /* Reset already: the policy counts it as such. */
            peer.ss.ss_family = l->family;
            peer.len = 0;
        }
    } else {
        peer.ss.ss_family = l->family;
        peer.len = sizeof(peer.ss);
    }
    e->hooks.accepted(e->hooks.policy, l->token, fd, &peer);
}

void uring_on_accept(struct engine_uring *e, struct ulistener *l, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        l->armed = false;
    int res = cqe->res;
    if (res >= 0)
        accepted(e, l, res);
    else if (res != -ECANCELED)
        (void)e->hooks.accept_error(e->hooks.policy, l->token, res);
    /* Not while paused or stopping: the policy said so through
       set_accepting(), which `accepting` follows. */
    arm_accept(e, l);
}

static int uring_listen(struct engine *eng, int fd, const struct iomux_addr *bound, void *listener)
{
    struct engine_uring *e = uring_of(eng);
    if (e->nlisteners == ENGINE_MAX_LISTEN)
        return -ENOSPC;
    struct ulistener *l = &e->listeners[e->nlisteners++];
    l->token = listener;
    l->fd = fd;
    l->family = bound->ss.ss_family;
    /* Accepted sockets inherit TCP_NODELAY from the listener on Linux:
       one call here instead of one per connection. (Not a TCP socket, as
       for unix:PATH: nothing to set.) */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    e->accepting = true;
    arm_accept(e, l);
    return l->armed ? 0 : -ENOMEM;
}

static void uring_set_accepting(struct engine *eng, bool on)
{
    struct engine_uring *e = uring_of(eng);
    e->accepting = on;
    for (size_t i = 0; i < e->nlisteners; i++) {
        struct ulistener *l = &e->listeners[i];
        if (on)
            arm_accept(e, l);
        else if (l->armed)
            cancel(e, l, OP_ACCEPT); /* its end (-ECANCELED, no more) clears `armed` */
    }
}

/* A pending multishot accept holds the listening socket open in the
   kernel whatever the policy closes, and the socket goes on taking clients
   into its queue. With DEFER_TASKRUN its cancel completes only when this
   thread next enters the ring for events, which a worker with nothing
   left to drain never does (with --workers, its SO_REUSEPORT socket caught
   clients until the process ended): so enter it now. */
static void uring_unlisten(struct engine *eng)
{
    uring_set_accepting(eng, false);
    (void)io_uring_submit_and_get_events(&uring_of(eng)->ring);
}

/* --- the public side ------------------------------------------------------- */

static void uring_end(struct engine *eng, struct conn *conn)
{
    struct engine_uring *e = uring_of(eng);
    struct uconn *c = uconn_of(conn);
    if (c->flags & (U_ENDING | U_CLOSED))
        return;
    c->flags |= U_ENDING;
    /* Input is dropped from now on: nothing holds the peer back. The
       receive is armed again from the next reap (the starved list), not
       here: a failure to arm closes, and the caller is walking the list. */
    if (c->flags & (U_PAUSED | U_HELD)) {
        c->flags &= (uint16_t) ~(U_PAUSED | U_HELD);
        if (!(c->flags & (U_RECV | U_STARVED | U_EOF))) {
            uring_starve(e, c);
            kick(e); /* a guest's next reap may be far off otherwise */
        }
    }
    if (uring_drained(c)) {
        c->flags |= U_WR_SHUT;
        (void)shutdown(c->fd, SHUT_WR);
    }
}

static void uring_cut(struct engine *eng, struct conn *c)
{
    uring_conn_close(uring_of(eng), uconn_of(c));
}

static uint64_t uring_last_io(struct engine *eng, struct conn *c)
{
    return uconn_of(c)->last_io;
}

static void uring_print_stats(struct engine *eng, FILE *f)
{
    struct engine_uring *e = uring_of(eng);
    fprintf(
        f,
        "; ring buffers %u of %u held, %u in the ring (%zu bytes each); waits for buffers %" PRIu64
        "; re-armed receives %" PRIu64 "; io_uring_enter %" PRIu64,
        e->held, e->buf_count, e->in_ring, e->buf_size, e->nobufs, e->rearms, e->enters);
    if (e->batch_wait_us)
        fprintf(f, "; batch waits %" PRIu64 ", short %" PRIu64, e->batch_waits, e->batch_short);
    if (e->cfg.busy_poll_us)
        fprintf(f, "; busy polls %" PRIu64 ", found work %" PRIu64, e->busy_polls, e->busy_found);
    if (e->spin_auto || e->spin_starts)
        fprintf(f, "; spinning %s, started %" PRIu64 " times, receives that found nothing %" PRIu64,
                e->spinning ? "now" : "not now", e->spin_starts, e->spin_empty);
}

/* --- creation and teardown ------------------------------------------------- */

/*
 * Owner mode when the loop has a backend fd (epoll): the kernel runs the
 * receives only when we enter it (DEFER_TASKRUN), in batches, and never
 * interrupts us for them. Otherwise (poll, select, or an older kernel)
 * guest mode: the loop watches the ring's fd, and receives run at our
 * next system call instead of interrupting us (COOP_TASKRUN).
 */
static int ring_init(struct engine_uring *e, struct io_uring_params *p)
{
    /* --busy-poll watches IORING_SQ_TASKRUN for deferred receives. */
    const unsigned taskrun_flag = e->cfg.busy_poll_us ? IORING_SETUP_TASKRUN_FLAG : 0;
    const unsigned modes[] = {
        IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | taskrun_flag,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (size_t m = e->loop_fd >= 0 ? 0 : 1; m < sizeof(modes) / sizeof(modes[0]); m++) {
        memset(p, 0, sizeof(*p));
        p->flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL | modes[m];
        p->cq_entries = CQ_ENTRIES;
        rc = io_uring_queue_init_params(SQ_ENTRIES, &e->ring, p);
        if (rc != -EINVAL)
            break; /* -EINVAL: a flag this kernel does not know */
    }
    if (rc < 0)
        return rc;
    e->owner = p->flags & IORING_SETUP_DEFER_TASKRUN;
    if (!(p->features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&e->ring);
        return -ENOSYS; /* a kernel this old lacks multishot receive too */
    }
    /* io_uring_enter() then names the ring by a registered index, not by
       its fd: no file lookup per call (kernel 5.18; without it, the fd). */
    e->ring_registered = io_uring_register_ring_fd(&e->ring) == 1;
    if (e->owner && (p->features & FEAT_MIN_TIMEOUT))
        e->batch_wait_us = e->cfg.batch_wait_us;
    return 0;
}

/* The state of --spin-receive and of the epochs that --batch-wait counts. */
static void start_epochs(struct engine_uring *e)
{
    /* --spin-receive: "on" spins from the start and never stops. */
    e->spin_auto = e->cfg.spin == ENGINE_SPIN_AUTO && !e->cfg.trace;
    if (e->cfg.spin == ENGINE_SPIN_ON) {
        e->spinning = true;
        e->spin_starts = 1;
    }
    e->spin_epoch_ns = clock_ns(CLOCK_MONOTONIC);
    e->spin_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    e->epoch = 1; /* a new connection's seen_epoch is 0 */
}

static int uring_create(const struct engine_config *cfg, const struct engine_hooks *hooks,
                        struct engine **out)
{
    *out = NULL;
    struct engine_uring *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->cfg = *cfg;
    e->hooks = *hooks;
    e->all.next = e->all.prev = &e->all;
    e->buf_size = cfg->trace ? TRACE_BUF_SIZE : BUF_SIZE;
    e->buf_count = cfg->uring_buffers;
    e->conn_size = sizeof(struct uconn) + (cfg->keep_peer ? sizeof(union conn_peer_addr) : 0);
    e->loop_fd = iomux_loop_backend_fd(cfg->loop);
    struct io_uring_params p;
    int rc = ring_init(e, &p);
    if (rc < 0) {
        free(e);
        return rc;
    }
    start_epochs(e);
    rc = uring_bufs_init(e); /* step 1 */
    if (rc == 0 && !e->owner)
        rc = iomux_fd_watch(cfg->loop, e->ring.ring_fd, IOMUX_READ, uring_on_ring, e);
    if (rc < 0) {
        /* The ring first: it may still have the buffer ring registered. */
        io_uring_queue_exit(&e->ring);
        uring_bufs_free(e);
        free(e);
        return rc;
    }
    *out = (struct engine *)(void *)e;
    return 0;
}

static void uring_free(struct engine *eng)
{
    struct engine_uring *e = uring_of(eng);
    if (!e)
        return;
    if (e->kick_timer)
        iomux_timer_cancel(e->cfg.loop, e->kick_timer);
    if (!e->owner)
        iomux_fd_unwatch(e->cfg.loop, e->ring.ring_fd);
    uring_drain(e);
    io_uring_queue_exit(&e->ring);
    /* Every connection was cut: what is left waited for its operations. */
    while (e->all.next != &e->all) {
        struct uconn *c = (struct uconn *)e->all.next;
        e->all.next = c->all.next;
        c->in_pipe = 1; /* what a cancelled splice left: unknown, so closed */
        uring_splice_put_pipe(e, c);
        free(c);
    }
    uring_bufs_free(e);
    free(e);
}

const struct engine_ops engine_uring_ops = {
    .name = "uring",
    .needs = "liburing",
    .create = uring_create,
    .free = uring_free,
    .listen = uring_listen,
    .set_accepting = uring_set_accepting,
    .unlisten = uring_unlisten,
    .admit = uring_admit,
    .end = uring_end,
    .cut = uring_cut,
    .last_io = uring_last_io,
    .buffered = uring_buffered,
    .queued = uring_queued,
    .hold = uring_hold,
    .print_stats = uring_print_stats,
    .run_once = uring_run_once,
    .can_splice = true,
};

#endif /* ECHOD_HAVE_URING */
