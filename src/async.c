/* SPDX-License-Identifier: MIT */
/*
 * async.c - waking a loop from another thread or a signal handler: async
 * handles over one wake fd per loop (an eventfd on Linux, a non-blocking
 * pipe elsewhere), watched like any other fd so every backend wakes the
 * same way.
 *
 * Two atomic flags make a burst of sends cost one write(2):
 *   - each handle's `pending` says "run my callback"; only the send that
 *     raises it goes on to the loop's flag;
 *   - the loop's `signalled` says "the fd has been (or is being) written
 *     and not drained yet"; only the send that raises it writes.
 * The loop side drains the fd, lowers `signalled`, then takes each
 * handle's `pending` back to 0 and runs the callbacks of those that were
 * raised. The order is what makes the classic lost wake-up impossible: a
 * send whose `pending` the scan missed raised it after the scan looked,
 * hence after `signalled` was lowered, so that send sees `signalled` at 0
 * and writes, and the loop wakes again. All operations are seq_cst (the
 * default), which is what this argument needs.
 *
 * The wake fd is made on the loop's thread by the first handle and kept
 * until iomux_loop_free(): a sender reads it without a lock, so it must
 * never change while a handle exists.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
/* IOMUX_WAKE_PIPE: the portable self-pipe on Linux too (its tests). */
#if defined(__linux__) && !defined(IOMUX_WAKE_PIPE)
#define USE_EVENTFD 1
#include <sys/eventfd.h>
#endif

#include "loop_internal.h"

/* A send may run in a signal handler: the flags must be lock-free. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "async flags must be lock-free");

struct iomux_async {
    struct iomux_loop *loop;
    iomux_async_cb *cb;
    void *data;
    unsigned slot; /* index in loop->wake.handles */
    atomic_uint pending;
};

void iomux__wake_init(struct iomux__wake *wake)
{
    memset(wake, 0, sizeof *wake);
    wake->fd[0] = wake->fd[1] = -1;
    atomic_init(&wake->signalled, 0u);
}

/* Empties the wake fd. An eventfd is emptied by one read of its counter;
   a pipe holds at most a byte or two (one per raise of `signalled`). */
static void drain(int fd)
{
    unsigned char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static void run_pending(struct iomux_loop *loop)
{
    struct iomux__wake *w = &loop->wake;
    w->scanning = true;
    /* Re-read count on every turn: a callback may add handles (their
       pending is 0 unless already sent, and then running them is right). */
    for (unsigned i = 0; i < w->count; i++) {
        struct iomux_async *a = w->handles[i];
        if (a && atomic_exchange(&a->pending, 0u)) {
            a->cb(loop, a, a->data);
            loop->internal_ran++;
        }
    }
    w->scanning = false;
    if (w->has_holes) {
        unsigned n = 0;
        for (unsigned i = 0; i < w->count; i++) {
            struct iomux_async *a = w->handles[i];
            if (a) {
                a->slot = n;
                w->handles[n++] = a;
            }
        }
        w->count = n;
        w->has_holes = false;
    }
}

static void on_wake(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    drain(fd);
    atomic_store(&loop->wake.signalled, 0u);
    run_pending(loop);
}

static int wake_open(int fds[2])
{
#ifdef USE_EVENTFD
    /* One fd instead of two, and an 8-byte counter that never fills. */
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd >= 0) {
        fds[0] = fds[1] = efd;
        return 0;
    }
    if (errno != ENOSYS && errno != EINVAL)
        return -errno;
#endif
    return iomux__pipe_open(fds);
}

static void wake_close(struct iomux__wake *w)
{
    close(w->fd[0]);
    if (w->fd[1] != w->fd[0])
        close(w->fd[1]);
    w->fd[0] = w->fd[1] = -1;
}

/* Makes and watches the wake fd, once per loop. */
static int wake_start(struct iomux_loop *loop)
{
    struct iomux__wake *w = &loop->wake;
    if (w->fd[0] >= 0)
        return 0;
    int fds[2];
    int rc = wake_open(fds);
    if (rc < 0)
        return rc;
    /* Set before watching: the core must already see it as internal. */
    w->fd[0] = fds[0];
    w->fd[1] = fds[1];
    rc = iomux_fd_watch(loop, fds[0], IOMUX_READ, on_wake, NULL);
    if (rc < 0)
        wake_close(w);
    return rc;
}

static int reserve_slot(struct iomux__wake *w)
{
    if (w->count < w->cap)
        return 0;
    unsigned cap = w->cap ? w->cap * 2 : 4;
    struct iomux_async **handles = iomux__reallocarray(w->handles, cap, sizeof *handles);
    if (!handles)
        return -ENOMEM;
    w->handles = handles;
    w->cap = cap;
    return 0;
}

int iomux_async_new(struct iomux_loop *loop, iomux_async_cb *cb, void *data,
                    struct iomux_async **out)
{
    if (!cb)
        return -EINVAL;
    struct iomux__wake *w = &loop->wake;
    int rc = reserve_slot(w);
    if (rc < 0)
        return rc;
    struct iomux_async *a = iomux__malloc(sizeof *a);
    if (!a)
        return -ENOMEM;
    rc = wake_start(loop);
    if (rc < 0) {
        iomux__free(a);
        return rc;
    }
    a->loop = loop;
    a->cb = cb;
    a->data = data;
    a->slot = w->count;
    atomic_init(&a->pending, 0u);
    w->handles[w->count++] = a;
    w->live++;
    *out = a;
    return 0;
}

int iomux_async_send(struct iomux_async *async)
{
    if (atomic_exchange(&async->pending, 1u))
        return 0; /* the loop has yet to see the previous send */
    struct iomux__wake *w = &async->loop->wake;
    if (atomic_exchange(&w->signalled, 1u))
        return 0; /* another send wrote, and the loop has not drained */
    int saved_errno = errno;
    int rc = 0;
    ssize_t n;
    /* 8 bytes: an eventfd takes nothing shorter; a pipe takes them too. */
    uint64_t one = 1;
    do
        n = write(w->fd[1], &one, sizeof one);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: a full pipe or counter is readable already, the loop will
       wake. Any other failure lowers the flag so the next send retries. */
    if (n < 0 && errno != EAGAIN) {
        rc = -errno;
        atomic_store(&w->signalled, 0u);
    }
    errno = saved_errno;
    return rc;
}

void iomux_async_free(struct iomux_async *async)
{
    if (!async)
        return;
    struct iomux__wake *w = &async->loop->wake;
    if (w->scanning) {
        /* The scan holds an index into the array: leave a hole. */
        w->handles[async->slot] = NULL;
        w->has_holes = true;
    } else {
        struct iomux_async *last = w->handles[--w->count];
        w->handles[async->slot] = last;
        last->slot = async->slot;
    }
    w->live--;
    iomux__free(async);
}

void iomux__wake_fini(struct iomux_loop *loop)
{
    struct iomux__wake *w = &loop->wake;
    for (unsigned i = 0; i < w->count; i++)
        iomux__free(w->handles[i]);
    iomux__free(w->handles);
    if (w->fd[0] >= 0) {
        iomux_fd_unwatch(loop, w->fd[0]);
        wake_close(w);
    }
    iomux__wake_init(w);
}
