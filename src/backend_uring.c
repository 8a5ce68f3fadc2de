/* SPDX-License-Identifier: MIT */
/*
 * backend_uring.c - Linux io_uring (through liburing) as a readiness
 * backend: one multishot poll request per watched fd, level-triggered from
 * the core's point of view.
 *
 * Multishot poll (IORING_POLL_ADD_MULTI) is not level-triggered: it posts a
 * completion when armed on a ready fd and then one per wake-up of the fd's
 * wait queue, never again for data that simply stays unread (and the
 * kernel refuses IORING_POLL_ADD_LEVEL together with multishot). The core
 * expects epoll's level-triggered rule instead, so this file does what
 * epoll does inside the kernel for its ready list:
 *
 *   - completions are hints: the fd becomes a candidate;
 *   - every fd reported by one wait stays a candidate for the next one;
 *   - candidates are checked with one poll() of timeout 0; the ready ones
 *     are reported (with poll's fresh mask), the others are dropped, and
 *     their still-armed multishot request reports the next wake-up.
 *
 * Only when no candidate is ready do we block in io_uring_enter(), and what
 * wakes it is checked the same way: a completion's mask is the wake-up's,
 * what *may* have happened (a socket's "data arrived" wake-up says
 * POLLIN|POLLPRI, urgent data or not), so every report is the fd's state
 * at the check, as epoll's would be.
 *
 * Every request carries (generation << 32 | fd) in its user_data; the
 * generation grows on every arm, so a completion for an fd that was
 * unwatched, paused, re-watched or changed its mask since is recognised
 * and dropped. A multishot request can end (a completion without
 * IORING_CQE_F_MORE: the CQ ring was full, a regular file that cannot be
 * waited on, a cancellation); the fd is then armed again if still watched.
 *
 * A poll request holds its own reference to the open file. Unwatching
 * therefore submits the removal at once, so that the caller's close() that
 * follows really closes (a peer sees EOF). An fd closed *without*
 * unwatching stays open inside the kernel, silent, until it is unwatched.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "loop_internal.h"

/* Submission queue size; completions are four times as many, so a burst
   of wake-ups rarely ends multishot requests by filling the CQ ring. */
#define SQ_ENTRIES 256u
#define CQ_ENTRIES 4096u

/* user_data: bit 63 marks our own poll-remove requests (their completions
   carry nothing we need); bits 32..62 the generation; bits 0..31 the fd. */
#define UD_REMOVE (1ull << 63)
#define GEN_MASK  0x7fffffffu

enum {
    UFD_ARMED = 1u << 0,     /* a poll request with `gen` is live */
    UFD_CANDIDATE = 1u << 1, /* on the candidate list */
    UFD_DIRTY = 1u << 2,     /* on the arm list: must be (re)armed */
};

struct uring_fd {
    uint32_t gen;  /* generation of the newest poll request */
    unsigned mask; /* interest (IOMUX_ bits); 0 = not watched */
    unsigned hint; /* what completions of this wait said; only a failed
                      request's ERROR|INVALID is reported as such */
    unsigned flags;
};

struct uring_state {
    struct io_uring ring;
    bool ring_ok; /* `ring` was made (fini must close it) */
    bool waited;  /* the first wait began */
    uid_t euid;   /* effective ids when the ring was made */
    gid_t egid;
    struct uring_fd *fds; /* indexed by fd, `capacity` entries */
    int *cand;            /* candidates: reported last time, or hinted */
    int *dirty;           /* fds to arm before the next wait */
    struct pollfd *pfds;  /* scratch for the check of the candidates */
    unsigned ncand, ndirty;
    unsigned capacity;
};

static uint64_t ud_make(int fd, uint32_t gen)
{
    return (uint64_t)(gen & GEN_MASK) << 32 | (uint32_t)fd;
}

static short to_poll(unsigned mask)
{
    return (short)((mask & IOMUX_READ ? POLLIN : 0) | (mask & IOMUX_WRITE ? POLLOUT : 0) |
                   (mask & IOMUX_PRI ? POLLPRI : 0));
}

static unsigned from_poll(unsigned re)
{
    return (re & POLLIN ? (unsigned)IOMUX_READ : 0u) | (re & POLLOUT ? (unsigned)IOMUX_WRITE : 0u) |
           (re & POLLPRI ? (unsigned)IOMUX_PRI : 0u) | (re & POLLERR ? (unsigned)IOMUX_ERROR : 0u) |
           (re & POLLHUP ? (unsigned)IOMUX_HUP : 0u) |
           (re & POLLNVAL ? (unsigned)IOMUX_INVALID : 0u);
}

/* Creates a ring with `sq` submission entries (and CQ_ENTRIES completion
   entries) and checks that the kernel has what this file uses. */
static int ring_open(struct io_uring *ring, unsigned sq)
{
    /* COOP_TASKRUN (5.19): a poll completion is posted at the loop's next
       system call instead of interrupting it with an IPI, one per wake-up
       of a watched socket, which in a virtual machine costs a VM exit each.
       A sleeping loop is still woken. Older kernels refuse the flag. */
    static const unsigned extra[] = {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0};
    struct io_uring_params p;
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof extra / sizeof extra[0] && rc == -EINVAL; i++) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | extra[i];
        p.cq_entries = CQ_ENTRIES;
        /* -ENOSYS (no io_uring in this kernel) and -EPERM (a seccomp
           policy, or kernel.io_uring_disabled) come back as they are:
           "auto" and the tests then know the backend is unavailable. */
        rc = io_uring_queue_init_params(sq, ring, &p);
    }
    if (rc < 0)
        return rc;
    /* Timed waits without a timeout request in the ring need EXT_ARG
       (5.11); multishot poll came with 5.13, whose marker is RSRC_TAGS.
       An older kernel is "not available here". */
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_RSRC_TAGS)) {
        io_uring_queue_exit(ring);
        return -ENOSYS;
    }
    return 0;
}

/*
 * The ring is made here, like epoll's descriptor, so a loop's descriptors
 * exist from iomux_loop_new() on. A server that drops privileges between
 * making its loop and running it must not keep a ring made as root
 * (kernel.io_uring_disabled and io_uring_group are checked when a ring is
 * made), so the first wait makes a new one if the effective ids changed
 * (see fresh_ring()).
 */
static int uring_init(struct iomux_loop *loop)
{
    struct uring_state *st = iomux__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    loop->backend_state = st;
    st->euid = geteuid();
    st->egid = getegid();
    int rc = ring_open(&st->ring, SQ_ENTRIES);
    if (rc < 0)
        return rc;
    st->ring_ok = true;
    return 0;
}

/* Before the first wait nothing was submitted (arming waits for it and
   only armed fds are removed), so a ring can be swapped for a new one
   made with the ids the process runs with now. */
static int fresh_ring(struct uring_state *st)
{
    st->waited = true;
    if (geteuid() == st->euid && getegid() == st->egid)
        return 0;
    struct io_uring ring;
    int rc = ring_open(&ring, SQ_ENTRIES);
    if (rc < 0)
        return rc;
    io_uring_queue_exit(&st->ring);
    st->ring = ring;
    return 0;
}

static void uring_fini(struct iomux_loop *loop)
{
    struct uring_state *st = loop->backend_state;
    if (!st)
        return;
    /* Closing the ring cancels every poll request and drops the file
       references they hold. */
    if (st->ring_ok)
        io_uring_queue_exit(&st->ring);
    iomux__free(st->fds);
    iomux__free(st->cand);
    iomux__free(st->dirty);
    iomux__free(st->pfds);
    iomux__free(st);
    loop->backend_state = NULL;
}

static int uring_resize(struct iomux_loop *loop, unsigned capacity)
{
    struct uring_state *st = loop->backend_state;
    /* Each array may already have grown when a later one fails; that is
       harmless, and `capacity` only moves once all of them have. */
    struct uring_fd *fds = iomux__reallocarray(st->fds, capacity, sizeof *fds);
    if (!fds)
        return -ENOMEM;
    st->fds = fds;
    int *cand = iomux__reallocarray(st->cand, capacity, sizeof *cand);
    if (!cand)
        return -ENOMEM;
    st->cand = cand;
    int *dirty = iomux__reallocarray(st->dirty, capacity, sizeof *dirty);
    if (!dirty)
        return -ENOMEM;
    st->dirty = dirty;
    struct pollfd *pfds = iomux__reallocarray(st->pfds, capacity, sizeof *pfds);
    if (!pfds)
        return -ENOMEM;
    st->pfds = pfds;
    if (capacity > st->capacity)
        memset(fds + st->capacity, 0, (capacity - st->capacity) * sizeof *fds);
    st->capacity = capacity;
    return 0;
}

/* A free submission entry; a full queue is submitted to make room. NULL
   only when the kernel refuses the submission too. */
static struct io_uring_sqe *get_sqe(struct uring_state *st)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (!sqe && io_uring_submit(&st->ring) >= 0)
        sqe = io_uring_get_sqe(&st->ring);
    return sqe;
}

static void mark_dirty(struct uring_state *st, int fd)
{
    struct uring_fd *u = &st->fds[fd];
    if (!(u->flags & UFD_DIRTY)) {
        u->flags |= UFD_DIRTY;
        st->dirty[st->ndirty++] = fd;
    }
}

static void add_candidate(struct uring_state *st, int fd)
{
    struct uring_fd *u = &st->fds[fd];
    if (!(u->flags & UFD_CANDIDATE)) {
        u->flags |= UFD_CANDIDATE;
        st->cand[st->ncand++] = fd;
    }
}

/* Cancels the live request of `fd`, if any. Its completions are stale from
   now on whatever happens, because the fd is no longer UFD_ARMED. */
static void disarm(struct uring_state *st, int fd)
{
    struct uring_fd *u = &st->fds[fd];
    if (!(u->flags & UFD_ARMED))
        return;
    u->flags &= ~(unsigned)UFD_ARMED;
    struct io_uring_sqe *sqe = get_sqe(st);
    /* With no room at all the request stays in the kernel until the ring
       closes; its completions are dropped as stale meanwhile. */
    if (!sqe)
        return;
    io_uring_prep_poll_remove(sqe, ud_make(fd, u->gen));
    io_uring_sqe_set_data64(sqe, UD_REMOVE);
}

/* Arms the fds on the dirty list that are still watched. Stops early (and
   keeps the rest for the next wait) only if the kernel refuses to take
   submissions. */
static void arm_dirty(struct uring_state *st)
{
    unsigned i = 0;
    for (; i < st->ndirty; i++) {
        int fd = st->dirty[i];
        struct uring_fd *u = &st->fds[fd];
        if (u->mask && !(u->flags & UFD_ARMED)) {
            struct io_uring_sqe *sqe = get_sqe(st);
            if (!sqe)
                break;
            u->gen = (u->gen + 1) & GEN_MASK;
            io_uring_prep_poll_multishot(sqe, fd, (unsigned)to_poll(u->mask));
            io_uring_sqe_set_data64(sqe, ud_make(fd, u->gen));
            u->flags |= UFD_ARMED;
        }
        u->flags &= ~(unsigned)UFD_DIRTY;
    }
    memmove(st->dirty, st->dirty + i, (st->ndirty - i) * sizeof *st->dirty);
    st->ndirty -= i;
}

/*
 * Interest changes cost no system call except a removal: the new request
 * is armed at the start of the next wait, together with every other change
 * of the iteration, and the kernel checks readiness when it arms it. A
 * removal is submitted at once (see the file comment). A changed mask is
 * a removal plus a new request, so the old request's completions are
 * recognised by their generation.
 */
static int uring_modify(struct iomux_loop *loop, int fd, unsigned old_mask, unsigned new_mask)
{
    struct uring_state *st = loop->backend_state;
    struct uring_fd *u = &st->fds[fd];
    disarm(st, fd);
    u->mask = new_mask;
    u->hint = 0;
    if (new_mask) {
        mark_dirty(st, fd);
    } else if (io_uring_sq_ready(&st->ring) > 0) {
        /* Removing interest never fails: an error here means the removal
           waits in the queue for the next wait's submission. */
        (void)io_uring_submit(&st->ring);
    }
    return 0;
}

/* Reads one completion into the candidate list and the fd's hint. */
static void note_cqe(struct uring_state *st, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    if (ud & UD_REMOVE)
        return;
    int fd = (int)(uint32_t)ud;
    if (fd < 0 || (unsigned)fd >= st->capacity)
        return;
    struct uring_fd *u = &st->fds[fd];
    if (!(u->flags & UFD_ARMED) || u->gen != (uint32_t)(ud >> 32))
        return; /* unwatched, paused, re-watched or changed since */
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        /* The multishot request ended; arm another before the next wait
           (a regular file ends it every time: that costs one request per
           iteration and keeps the file "always ready", as poll says). */
        u->flags &= ~(unsigned)UFD_ARMED;
        mark_dirty(st, fd);
    }
    int res = cqe->res;
    if (res > 0) {
        u->hint |= from_poll((unsigned)res);
    } else if (res == -EBADF) {
        /* The fd was closed before the request was armed. */
        u->hint |= IOMUX_INVALID;
    } else if (res < 0 && res != -ECANCELED && res != -ENOMEM && res != -EAGAIN && res != -EINTR) {
        /* Cannot be waited on at all: tell the owner once, and let the
           core stop watching rather than re-arm in a loop. */
        u->hint |= IOMUX_ERROR | IOMUX_INVALID;
    }
    /* A cancellation we did not ask for (the task that armed the request
       exited, say) or a transient failure only re-arms. */
    if (u->hint)
        add_candidate(st, fd);
}

/* Reaps every completion the kernel has posted, without blocking. */
static void reap(struct uring_state *st)
{
    /* Completions that overflowed the CQ ring wait in the kernel until
       asked for. */
    if (io_uring_cq_has_overflow(&st->ring))
        (void)io_uring_get_events(&st->ring);
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&st->ring, head, cqe)
    {
        note_cqe(st, cqe);
        seen++;
    }
    io_uring_cq_advance(&st->ring, seen);
}

/*
 * Checks the candidates with one poll() of timeout 0 and reports the ready
 * ones; they stay candidates for the next wait, the others are dropped.
 * IOMUX_INVALID and IOMUX_ERROR learnt from a failed request are reported
 * whatever poll() says. Returns the number of fired entries or -errno
 * (the candidates then unchanged).
 */
static int check_candidates(struct iomux_loop *loop, struct uring_state *st)
{
    nfds_t n = 0;
    for (unsigned i = 0; i < st->ncand; i++) {
        int fd = st->cand[i];
        st->pfds[n].fd = fd;
        st->pfds[n].events = to_poll(st->fds[fd].mask);
        st->pfds[n].revents = 0;
        n++;
    }
    /* On failure (-EINTR included) the candidates stay as they are. */
    if (n && poll(st->pfds, n, 0) < 0)
        return -errno;
    int nfired = 0;
    for (nfds_t i = 0; i < n; i++) {
        int fd = st->pfds[i].fd;
        struct uring_fd *u = &st->fds[fd];
        unsigned events = from_poll((unsigned)(unsigned short)st->pfds[i].revents) |
                          (u->hint & (IOMUX_ERROR | IOMUX_INVALID));
        u->hint = 0;
        if (!u->mask || !events) {
            u->flags &= ~(unsigned)UFD_CANDIDATE;
            continue;
        }
        loop->fired[nfired].fd = fd;
        loop->fired[nfired].events = events;
        st->cand[nfired] = fd;
        nfired++;
    }
    st->ncand = (unsigned)nfired;
    return nfired;
}

static int uring_wait(struct iomux_loop *loop, int timeout_ms)
{
    struct uring_state *st = loop->backend_state;
    if (!st->waited) {
        int rc = fresh_ring(st);
        if (rc < 0)
            return rc;
    }
    uint64_t deadline = 0;
    for (;;) {
        /* Submit the interest changes (and re-arms) first: arming checks
           readiness, so what is ready now is posted before we look. */
        arm_dirty(st);
        if (io_uring_sq_ready(&st->ring) > 0) {
            int rc = io_uring_submit(&st->ring);
            if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
                return rc;
        }
        reap(st);
        if (st->ncand > 0) {
            int n = check_candidates(loop, st);
            /* A signal during the check is "nothing happened"; blocking
               now could sit on candidates that are still ready. */
            if (n == -EINTR)
                return 0;
            if (n != 0)
                return n;
        }
        if (timeout_ms == 0)
            return 0;

        struct __kernel_timespec ts, *tsp = NULL;
        if (timeout_ms > 0) {
            /* Only stale completions woke us: wait for what is left of
               the time, never return early. */
            uint64_t now = iomux__clock_ns();
            if (!deadline)
                deadline = now + (uint64_t)timeout_ms * 1000000u;
            else if (now >= deadline)
                return 0;
            uint64_t left = deadline - now;
            ts.tv_sec = (long long)(left / 1000000000u);
            ts.tv_nsec = (long long)(left % 1000000000u);
            tsp = &ts;
        }
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1, tsp, NULL);
        if (rc == -ETIME || rc == -EINTR)
            return 0;
        if (rc < 0 && rc != -EAGAIN && rc != -EBUSY)
            return rc;
    }
}

const struct iomux__backend iomux__backend_uring = {
    .name = "uring",
    .init = uring_init,
    .fini = uring_fini,
    .resize = uring_resize,
    .modify = uring_modify,
    .wait = uring_wait,
};
