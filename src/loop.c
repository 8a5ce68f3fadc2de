/* SPDX-License-Identifier: MIT */
/*
 * loop.c - the loop core: the fd table, backend choice, and one iteration
 * written as its phases (timeout, wait, dispatch, timers).
 *
 * The backend only reports readiness into fired[]; this file decides what
 * reaches user code. Before each callback it re-reads the table, so an fd
 * that an earlier callback of the same batch unwatched, paused, or closed
 * and re-watched under the same number is never handed stale events.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "loop_internal.h"

/* The compiled-in backends, listed once: backends[] and the names that
   iomux_backend_names() returns both come from this list, so they cannot
   disagree. Preference order for "auto", as Python's DefaultSelector picks;
   uring last: a readiness backend that does epoll's work with more system
   calls, so "auto" never prefers it (see docs/design.md). X(n) stands for
   iomux__backend_n, whose .name is "n" (test_loop_api checks each name). */
#ifdef IOMUX_HAVE_EPOLL
#define EPOLL_BACKEND(X) X(epoll)
#else
#define EPOLL_BACKEND(X)
#endif
#ifdef IOMUX_HAVE_URING
#define URING_BACKEND(X) X(uring)
#else
#define URING_BACKEND(X)
#endif
#define BACKENDS(X) EPOLL_BACKEND(X) X(poll) X(select) URING_BACKEND(X)

#define BACKEND_ENTRY(n) &iomux__backend_##n,
static const struct iomux__backend *const backends[] = {BACKENDS(BACKEND_ENTRY)};
#define NBACKENDS (sizeof backends / sizeof backends[0])

#define NAME_ENTRY(n) #n,
static const char *const backend_names[] = {BACKENDS(NAME_ENTRY) NULL};

/* Start small: most loops watch a handful of fds, and the table grows by
   doubling up to max_fds. */
#define INITIAL_CAPACITY 64u

/* A loop must refuse more than this even if RLIMIT_NOFILE is unlimited,
   so the table size stays representable. */
#define MAX_FDS_CAP (1u << 24)

const char *iomux_version(void)
{
    return IOMUX_VERSION;
}

const char *const *iomux_backend_names(void)
{
    return backend_names;
}

const char *iomux_loop_backend(const struct iomux_loop *loop)
{
    return loop->backend->name;
}

uint64_t iomux__clock_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer on POSIX systems. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t iomux_loop_now(const struct iomux_loop *loop)
{
    return loop->now_ns / 1000000u;
}

void iomux_loop_update_time(struct iomux_loop *loop)
{
    loop->now_ns = iomux__clock_ns();
}

static unsigned default_max_fds(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > MAX_FDS_CAP)
        return MAX_FDS_CAP;
    return (unsigned)rl.rlim_cur;
}

/* fired[] entries a backend needs for a table of `capacity` slots. */
static unsigned fired_size(const struct iomux__backend *backend, unsigned capacity)
{
    return backend->max_fired && backend->max_fired < capacity ? backend->max_fired : capacity;
}

/* Grows the table, fired[] and the backend's arrays to hold `fd`. On
   failure the loop is unchanged (a larger array that was already
   reallocated is harmless; capacity only moves when all succeeded). */
static int grow(struct iomux_loop *loop, unsigned fd)
{
    unsigned cap = loop->capacity ? loop->capacity : INITIAL_CAPACITY;
    while (cap <= fd)
        cap = cap > loop->max_fds / 2 ? loop->max_fds : cap * 2;
    if (cap > loop->max_fds)
        cap = loop->max_fds;

    /* A zeroed new table rather than realloc + memset: calloc's fresh pages
       stay untouched (and cost no memory) until an fd that high is
       watched, so 10,000 connections pay for 10,000 slots, not for the
       16,384 the doubling reserved. */
    if (cap > loop->fds_cap) {
        struct iomux__fd *fds = iomux__calloc(cap, sizeof *fds);
        if (!fds)
            return -ENOMEM;
        memcpy(fds, loop->fds, loop->capacity * sizeof *fds);
        iomux__free(loop->fds);
        loop->fds = fds;
        loop->fds_cap = cap;
    }

    unsigned nfired = fired_size(loop->backend, cap);
    if (nfired > fired_size(loop->backend, loop->capacity)) {
        struct iomux__fired *fired = iomux__reallocarray(loop->fired, nfired, sizeof *fired);
        if (!fired)
            return -ENOMEM;
        loop->fired = fired;
    }

    int rc = loop->backend->resize(loop, cap);
    if (rc < 0)
        return rc;
    loop->capacity = cap;
    return 0;
}

static int backend_start(struct iomux_loop *loop, const struct iomux__backend *backend)
{
    loop->backend = backend;
    int rc = backend->init(loop);
    if (rc == 0)
        rc = backend->resize(loop, loop->capacity);
    if (rc < 0) {
        backend->fini(loop);
        loop->backend = NULL;
        loop->backend_state = NULL;
    }
    return rc;
}

int iomux_loop_new(struct iomux_loop **out, const struct iomux_loop_options *opts)
{
    const char *want = opts ? opts->backend : NULL;
    if (want && strcmp(want, "auto") == 0)
        want = NULL;
    if (want) {
        size_t i = 0;
        while (i < NBACKENDS && strcmp(backends[i]->name, want) != 0)
            i++;
        if (i == NBACKENDS)
            return -ENOENT;
    }

    struct iomux_loop *loop = iomux__calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    loop->max_fds = opts && opts->max_fds ? opts->max_fds : default_max_fds();
    if (loop->max_fds > MAX_FDS_CAP)
        loop->max_fds = MAX_FDS_CAP;
    iomux__timers_init(&loop->timers);
    iomux__signals_init(&loop->signals);
    iomux__wake_init(&loop->wake);

    unsigned cap = INITIAL_CAPACITY < loop->max_fds ? INITIAL_CAPACITY : loop->max_fds;
    int rc = -ENOMEM;
    loop->fds = iomux__calloc(cap, sizeof *loop->fds);
    loop->fired = iomux__calloc(cap, sizeof *loop->fired);
    if (!loop->fds || !loop->fired)
        goto fail;
    loop->capacity = loop->fds_cap = cap;

    rc = -ENOSYS;
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (want && strcmp(backends[i]->name, want) != 0)
            continue;
        rc = backend_start(loop, backends[i]);
        /* Only "not available here" falls through to the next backend;
           running out of memory or fds is the caller's to know. */
        if (rc != -ENOSYS && rc != -EPERM)
            break;
    }
    if (rc < 0)
        goto fail;

    loop->now_ns = iomux__clock_ns();
    *out = loop;
    return 0;

fail:
    iomux__free(loop->fds);
    iomux__free(loop->fired);
    iomux__free(loop);
    return rc;
}

void iomux_loop_free(struct iomux_loop *loop)
{
    if (!loop)
        return;
    iomux__signals_fini(loop);
    iomux__wake_fini(loop);
    iomux__timers_fini(&loop->timers);
    loop->backend->fini(loop);
    iomux__free(loop->fds);
    iomux__free(loop->fired);
    iomux__free(loop);
}

/* The signal self-pipe and the wake fd are watched like any fd, but their
   callbacks run other callbacks (counted by internal_ran) and they must
   not keep run() going by themselves: their watchers are counted
   separately. */
static bool is_internal(const struct iomux_loop *loop, int fd)
{
    return fd == loop->signals.pipe[0] || fd == loop->wake.fd[0];
}

static void set_mask(struct iomux_loop *loop, int fd, unsigned mask)
{
    struct iomux__fd *slot = &loop->fds[fd];
    if (!is_internal(loop, fd)) {
        if (slot->mask && !mask)
            loop->active--;
        else if (!slot->mask && mask)
            loop->active++;
    }
    slot->mask = mask;
}

static struct iomux__fd *lookup(const struct iomux_loop *loop, int fd)
{
    if (fd < 0 || (unsigned)fd >= loop->capacity || !loop->fds[fd].cb)
        return NULL;
    return &loop->fds[fd];
}

int iomux_fd_watch(struct iomux_loop *loop, int fd, unsigned mask, iomux_fd_cb *cb, void *data)
{
    if (fd < 0 || !cb || (mask & ~(unsigned)IOMUX__INTEREST))
        return -EINVAL;
    if ((unsigned)fd >= loop->max_fds || (loop->backend->fd_limit && fd >= loop->backend->fd_limit))
        return -ERANGE;
    if ((unsigned)fd >= loop->capacity) {
        int rc = grow(loop, (unsigned)fd);
        if (rc < 0)
            return rc;
    }
    struct iomux__fd *slot = &loop->fds[fd];
    if (slot->cb)
        return -EEXIST;
    if (mask) {
        int rc = loop->backend->modify(loop, fd, 0, mask);
        if (rc < 0)
            return rc;
    }
    slot->cb = cb;
    slot->data = data;
    slot->gen++;
    set_mask(loop, fd, mask);
    return 0;
}

int iomux_fd_modify(struct iomux_loop *loop, int fd, unsigned mask)
{
    struct iomux__fd *slot = lookup(loop, fd);
    if (!slot)
        return -ENOENT;
    if (mask & ~(unsigned)IOMUX__INTEREST)
        return -EINVAL;
    if (mask == slot->mask)
        return 0;
    int rc = loop->backend->modify(loop, fd, slot->mask, mask);
    if (rc < 0)
        return rc;
    set_mask(loop, fd, mask);
    return 0;
}

int iomux_fd_unwatch(struct iomux_loop *loop, int fd)
{
    struct iomux__fd *slot = lookup(loop, fd);
    if (!slot)
        return -ENOENT;
    /* Removing interest cannot fail by the backend contract; a backend
       that meets an already closed fd just forgets it. */
    if (slot->mask)
        (void)loop->backend->modify(loop, fd, slot->mask, 0);
    set_mask(loop, fd, 0);
    slot->cb = NULL;
    slot->data = NULL;
    slot->gen++;
    return 0;
}

int iomux_fd_mask(const struct iomux_loop *loop, int fd)
{
    const struct iomux__fd *slot = lookup(loop, fd);
    return slot ? (int)slot->mask : -ENOENT;
}

/* Phase 3: hand each fired fd to its callback, re-checking the table
   first (see the file comment). Returns the number of callbacks run. */
static int dispatch(struct iomux_loop *loop, int nfired)
{
    /* Stamp each entry with the generation it was reported for, before
       any callback can change the table. */
    for (int i = 0; i < nfired; i++)
        loop->fired[i].gen = loop->fds[loop->fired[i].fd].gen;

    int ran = 0;
    for (int i = 0; i < nfired; i++) {
        /* Re-read through loop->: a callback may grow the arrays. */
        struct iomux__fired f = loop->fired[i];
        struct iomux__fd *slot = &loop->fds[f.fd];
        if (!slot->cb || slot->gen != f.gen || !slot->mask)
            continue;
        unsigned events = f.events;
        if (events & IOMUX_INVALID) {
            /* The fd was closed behind the loop's back: stop watching it so
               the loop cannot spin on it, and tell the owner once. */
            (void)loop->backend->modify(loop, f.fd, slot->mask, 0);
            set_mask(loop, f.fd, 0);
            events |= IOMUX_ERROR;
        } else {
            events &= slot->mask | IOMUX_ERROR | IOMUX_HUP;
            if (!events)
                continue;
        }
        if (is_internal(loop, f.fd)) {
            loop->internal_ran = 0;
            slot->cb(loop, f.fd, events, slot->data);
            ran += (int)loop->internal_ran;
        } else {
            slot->cb(loop, f.fd, events, slot->data);
            ran++;
        }
    }
    return ran;
}

int iomux_loop_run_once(struct iomux_loop *loop, int timeout_ms)
{
    /* Phase 1: how long may we block? */
    int timeout = iomux__timers_timeout(loop);
    if (timeout_ms >= 0 && (timeout < 0 || timeout_ms < timeout))
        timeout = timeout_ms;

    /* Phase 2: wait for readiness. */
    int nfired = loop->backend->wait(loop, timeout);
    loop->now_ns = iomux__clock_ns();
    if (nfired < 0)
        return nfired;

    /* Phases 3 and 4: I/O callbacks, then the timers that are due. */
    int ran = dispatch(loop, nfired);
    return ran + iomux__timers_run(loop);
}

int iomux_loop_backend_fd(const struct iomux_loop *loop)
{
    if (!loop || !loop->backend->backend_fd)
        return -ENOTSUP;
    return loop->backend->backend_fd(loop);
}

int iomux_loop_timeout(struct iomux_loop *loop)
{
    loop->now_ns = iomux__clock_ns();
    return iomux__timers_timeout(loop);
}

static bool alive(const struct iomux_loop *loop)
{
    return loop->active > 0 || loop->timers.nheap > 0 || loop->signals.count > 0 ||
           loop->wake.live > 0;
}

int iomux_loop_run(struct iomux_loop *loop)
{
    int rc = 0;
    while (!loop->stop && alive(loop)) {
        rc = iomux_loop_run_once(loop, -1);
        if (rc < 0)
            break;
    }
    loop->stop = false;
    return rc < 0 ? rc : 0;
}

void iomux_loop_stop(struct iomux_loop *loop)
{
    loop->stop = true;
}
