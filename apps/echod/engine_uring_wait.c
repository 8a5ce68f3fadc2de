/* SPDX-License-Identifier: MIT */
/*
 * engine_uring_wait.c - how the io_uring engine submits and waits: the
 * pump that handles completions and submits what they queued (guest
 * mode), one io_uring_enter() per batch that also waits for the loop
 * (owner mode), batched waits (batch.h), busy polling, and spinning
 * (spin.h). engine_uring.c's opening comment says what each is for.
 */
#include "engine_uring_internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "clock.h"
#include "spin.h"

static void pump(struct engine_uring *e);

static void on_kick(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct engine_uring *e = data;
    e->kick_timer = 0;
    pump(e);
}

/* kick(), when it must: a zero-delay timer submits, or, without one, a
   system call now. */
void uring_kick_later(struct engine_uring *e)
{
    if (iomux_timer_add(e->cfg.loop, 0, 0, on_kick, e, &e->kick_timer) < 0) {
        e->kick_timer = 0;
        e->enters++;
        (void)io_uring_submit(&e->ring);
    }
}

/* --- the pump -------------------------------------------------------------- */

static void handle(struct engine_uring *e, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    void *owner = (void *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);
    switch (ud & OP_MASK) {
    case OP_ACCEPT:
        uring_on_accept(e, owner, cqe);
        break;
    case OP_RECV:
        uring_on_recv(e, owner, cqe);
        break;
    case OP_SEND:
        uring_on_send(e, owner, cqe);
        break;
    case OP_SPLICE:
        uring_splice_on_cqe(e, owner, cqe);
        break;
    case OP_LOOP:
        e->loop_armed = false;
        e->loop_ready = true;
        break;
    default:
        break;
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
    uring_publish(e);
    uring_feed_starved(e);
    return seen;
}

static void say_enter_error(struct engine_uring *e, int rc)
{
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
        e->hooks.io_error(e->hooks.policy, "io_uring_enter", rc);
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

void uring_on_ring(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
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
    uint64_t budget = e->cfg.busy_poll_us * 1000u;
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
    return e->cfg.busy_poll_us && timeout != 0 && !io_uring_sq_ready(&e->ring) &&
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
   it as a one-shot non-blocking receive (uring_arm_recv()). */
static void spin_start(struct engine_uring *e)
{
    e->spinning = true;
    e->spin_starts++;
    for (struct ulink *l = e->all.next; l != &e->all; l = l->next) {
        struct uconn *c = (struct uconn *)l;
        if ((c->flags & (U_RECV | U_CANCELLED | U_CLOSED)) == U_RECV) {
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
    if (e->spinning && e->open > SPIN_MAX_CONNS) {
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
    bool spin = spin_next(e->spinning, permille > 1000 ? 1000u : (unsigned)permille, e->open);
    e->spin_epoch_ns = now;
    e->spin_cpu_ns = cpu;
    e->spin_idle_ns = 0;
    if (spin && !e->spinning)
        spin_start(e);
    else if (!spin)
        e->spinning = false;
}

/* Owner mode: one system call per batch: submit the sends (and re-arms)
   of the last one, run the receives the kernel deferred to us, and wait
   (for `want` receives, with --batch-wait) if there is nothing yet. */
static int owner_enter(struct engine_uring *e, int timeout, unsigned want)
{
    struct __kernel_timespec ts = {
        .tv_sec = timeout / 1000,
        .tv_nsec = (long long)(timeout % 1000) * 1000000,
    };
    struct io_uring_cqe *cqe;
    e->enters++;
    if (e->spinning)
        return io_uring_submit_and_get_events(&e->ring); /* runs the receives; never sleeps */
    if (want > 1) {
        e->batch_waits++;
        return submit_and_wait_batch(e, want, timeout >= 0 ? &ts : NULL);
    }
    return io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, timeout >= 0 ? &ts : NULL, NULL);
}

/* One turn of the engine: wait (not when spinning), submit, handle. */
static int run_turn(struct engine_uring *e, int timeout_ms)
{
    struct iomux_loop *loop = e->cfg.loop;
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
    if (may_busy_poll(e, timeout))
        busy_poll(e, timeout);
    unsigned want = e->batch_wait_us && timeout != 0 ? batch_target(e) : 0;
    int rc = owner_enter(e, timeout, want);
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

int uring_run_once(struct engine *eng, int timeout_ms)
{
    struct engine_uring *e = uring_of(eng);
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

/* Every connection and listener is closed by now, but a request in
   flight holds its socket open, and tearing the ring down ends them in
   the background, after we exit: a listener would outlive the process,
   and an echod started again at once could not bind its port. So cancel
   them all and wait, briefly, for their last completions. What comes in
   now is not acted on. */
void uring_drain(struct engine_uring *e)
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
