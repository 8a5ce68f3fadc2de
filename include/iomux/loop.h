/* SPDX-License-Identifier: MIT */
/*
 * iomux/loop.h - the event loop: file-descriptor readiness, timers and
 * signals, with a backend (select, poll, epoll, uring) chosen at run time.
 *
 * Rules that hold for every function here:
 *   - fallible calls return 0 (or a count) on success and a negative errno
 *     on failure; the library never prints, exits or aborts on a runtime
 *     condition;
 *   - one loop belongs to one thread; nothing here takes a lock; the one
 *     function that other threads (and signal handlers) may call is
 *     iomux_async_send();
 *   - callbacks may call any function of this header on their own loop,
 *     including iomux_loop_free() only after iomux_loop_run() returned.
 */
#ifndef IOMUX_LOOP_H
#define IOMUX_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "iomux/export.h"

IOMUX_BEGIN_DECLS

struct iomux_loop;
struct iomux_async;

/*
 * Event bits. IOMUX_READ, IOMUX_WRITE and IOMUX_PRI are interests a watcher
 * asks for and events it is told of; IOMUX_ERROR and IOMUX_HUP are always
 * reported, whether asked for or not, as poll(2) does.
 */
enum {
    IOMUX_READ = 1u << 0,    /* readable, or a listening socket can accept */
    IOMUX_WRITE = 1u << 1,   /* writable */
    IOMUX_PRI = 1u << 2,     /* "exceptional condition": TCP urgent data */
    IOMUX_ERROR = 1u << 3,   /* error pending on the fd (read it with the
                                next I/O call or SO_ERROR) */
    IOMUX_HUP = 1u << 4,     /* peer hung up; data may still be readable */
    IOMUX_INVALID = 1u << 5, /* the fd was closed while watched; the loop
                                has stopped watching it (mask set to 0) */
};

/* Called with the events that are ready; `events` is never 0. */
typedef void iomux_fd_cb(struct iomux_loop *loop, int fd, unsigned events, void *data);
/* Called when a timer expires. */
typedef void iomux_timer_cb(struct iomux_loop *loop, uint64_t timer_id, void *data);
/* Called once for every delivery of `signo` (a burst may be coalesced by
   the kernel for standard signals, never by the loop). */
typedef void iomux_signal_cb(struct iomux_loop *loop, int signo, void *data);

struct iomux_loop_options {
    /* Backend name ("epoll", "poll", "select", "uring" when built with
       liburing); NULL or "auto" picks the first one that initialises, in
       the order of iomux_backend_names() (uring comes last). */
    const char *backend;
    /* Highest fd number + 1 the loop accepts; 0 = the process's current
       RLIMIT_NOFILE soft limit. The table grows on demand up to this. */
    unsigned max_fds;
};

/*
 * Creates a loop. `opts` may be NULL (all defaults); it is only read.
 * Returns 0 and stores the loop in *out, or:
 *   -ENOENT  no backend of that name is compiled in;
 *   -ENOSYS/-EPERM  the named backend is not available on this system;
 *   -ENOMEM, -EMFILE  out of memory or descriptors (nothing is leaked).
 * The caller owns the loop and frees it with iomux_loop_free().
 */
int iomux_loop_new(struct iomux_loop **out, const struct iomux_loop_options *opts);

/* Frees the loop, its timers, signal handlers (previous signal
   dispositions are restored) and async handles. Does not close watched
   fds: they belong to the caller, who should unwatch and close them
   first. NULL is a no-op. */
void iomux_loop_free(struct iomux_loop *loop);

/* The library's version, "MAJOR.MINOR.PATCH" (a static string). */
const char *iomux_version(void);

/* NULL-terminated list of compiled-in backends, in preference order. */
const char *const *iomux_backend_names(void);

/* Name of the backend the loop uses (a static string). */
const char *iomux_loop_backend(const struct iomux_loop *loop);

/*
 * Runs iterations until iomux_loop_stop() is called or nothing is left to
 * wait for (no fd with a non-zero mask, no timer, no signal watcher).
 * Returns 0, or a negative errno if the backend failed.
 */
int iomux_loop_run(struct iomux_loop *loop);

/*
 * Runs one iteration: waits up to `timeout_ms` (-1 = until something
 * happens, 0 = do not block) for I/O, dispatches it, then runs expired
 * timers. Returns the number of callbacks run (0 on timeout), or a negative
 * errno. A signal that interrupts the wait is not an error.
 */
int iomux_loop_run_once(struct iomux_loop *loop, int timeout_ms);

/*
 * Embedding the loop in another one (what libuv offers as uv_backend_fd()
 * and uv_backend_timeout()): a caller that waits by other means (an
 * io_uring, say) waits for iomux_loop_backend_fd() to become readable or
 * for iomux_loop_timeout() milliseconds, whichever comes first, then calls
 * iomux_loop_run_once(loop, 0).
 *
 * iomux_loop_backend_fd(): the descriptor the backend waits on, readable
 * whenever run_once would dispatch I/O (watched fds, signals, async
 * sends), or -ENOTSUP when the backend has none (poll, select) or keeps
 * part of its readiness outside the kernel (uring). Owned by the loop.
 * iomux_loop_timeout(): refreshes the loop's clock and returns the
 * milliseconds until the next timer is due (0: one is due now), or -1
 * when there is no timer.
 */
int iomux_loop_backend_fd(const struct iomux_loop *loop);
int iomux_loop_timeout(struct iomux_loop *loop);

/* Makes iomux_loop_run() return after the current iteration. */
void iomux_loop_stop(struct iomux_loop *loop);

/* The loop's monotonic clock in milliseconds, refreshed once per
   iteration (after the wait). */
uint64_t iomux_loop_now(const struct iomux_loop *loop);

/* Refreshes the cached clock now; for callers that did long work. */
void iomux_loop_update_time(struct iomux_loop *loop);

/*
 * Watches `fd` for `mask` (IOMUX_READ | IOMUX_WRITE | IOMUX_PRI; 0 = watched
 * but paused). `cb` is called with the ready events and `data` (borrowed).
 * The fd stays owned by the caller: unwatch it before closing it.
 * Returns 0, or -EEXIST (already watched), -EINVAL (bad fd, mask or NULL
 * cb), -ERANGE (fd >= max_fds, or >= FD_SETSIZE on select), -ENOMEM, or
 * the backend's error (for example -EPERM: epoll cannot watch regular
 * files).
 */
int iomux_fd_watch(struct iomux_loop *loop, int fd, unsigned mask, iomux_fd_cb *cb, void *data);

/* Changes the interest mask of a watched fd. -ENOENT if not watched. */
int iomux_fd_modify(struct iomux_loop *loop, int fd, unsigned mask);

/* Stops watching `fd`. Events already collected for it in the current
   iteration are dropped. -ENOENT if not watched. */
int iomux_fd_unwatch(struct iomux_loop *loop, int fd);

/* Interest mask of a watched fd, or a negative errno. */
int iomux_fd_mask(const struct iomux_loop *loop, int fd);

/*
 * Adds a timer that fires `delay_ms` from now (never earlier), then, if
 * `repeat_ms` > 0, every `repeat_ms` after each run. Delays up to
 * UINT64_MAX are accepted (such a timer never fires). Returns 0 and a
 * non-zero id in *id, or -EINVAL / -ENOMEM.
 */
int iomux_timer_add(struct iomux_loop *loop, uint64_t delay_ms, uint64_t repeat_ms,
                    iomux_timer_cb *cb, void *data, uint64_t *id);

/* Cancels a timer; safe from any callback, the timer's own included.
   Returns 0, or -ENOENT if the id is not (any longer) a pending timer. */
int iomux_timer_cancel(struct iomux_loop *loop, uint64_t id);

/*
 * Delivers `signo` through the loop: the handler only records it and wakes
 * the loop through a self-pipe, and `cb` runs from the loop like any other
 * callback. One loop per signal at a time (-EBUSY otherwise).
 * Returns 0, or -EINVAL (bad signo, SIGKILL/SIGSTOP), -EEXIST, -EBUSY,
 * -ENOMEM, -EMFILE.
 */
int iomux_signal_watch(struct iomux_loop *loop, int signo, iomux_signal_cb *cb, void *data);

/* Stops delivering `signo` and restores its previous disposition. */
int iomux_signal_unwatch(struct iomux_loop *loop, int signo);

/*
 * Waking a loop from another thread (libuv's uv_async_t). An async handle
 * belongs to one loop and has one callback; any thread, or a signal
 * handler, calls iomux_async_send() on it, and the callback then runs on
 * the loop's thread, from the loop, like any other callback.
 *
 * Sends coalesce: however many sends happen before the loop gets to the
 * handle, its callback runs once; a send never goes unanswered, so every
 * send is followed by at least one run of the callback that starts after
 * it. What the sending thread wrote before iomux_async_send() is visible
 * to that callback. Carry the work itself in your own queue (with its own
 * lock or atomics); the handle only says "look at it".
 *
 * An open handle keeps iomux_loop_run() going, as a signal watcher does.
 * To stop a loop from another thread, send to a handle whose callback
 * calls iomux_loop_stop().
 * The first handle of a loop makes its wake fd (an eventfd on Linux, a
 * pipe elsewhere), watched like any fd; loops without handles have none.
 */
typedef void iomux_async_cb(struct iomux_loop *loop, struct iomux_async *async, void *data);

/* Creates a handle on `loop` (call on the loop's thread). `data` is
   borrowed. Returns 0 and the handle in *out, or -EINVAL (NULL cb),
   -ENOMEM, -EMFILE, or -ERANGE (select: the wake fd got a number at or
   above FD_SETSIZE). The caller owns the handle: iomux_async_free(). */
int iomux_async_new(struct iomux_loop *loop, iomux_async_cb *cb, void *data,
                    struct iomux_async **out);

/*
 * Asks the loop to run the handle's callback. Safe from any thread and
 * async-signal-safe: a few atomic operations and, for the first send since
 * the loop last looked, one write(2); errno is preserved. Returns 0, or a
 * negative errno if the wake fd could not be written (the next send tries
 * again). Never call it on a handle that is being or has been freed: stop
 * and join the senders first.
 */
int iomux_async_send(struct iomux_async *async);

/* Frees the handle (on the loop's thread; from any callback, its own
   included). A send not yet answered is dropped. NULL is a no-op.
   iomux_loop_free() frees the handles still open. */
void iomux_async_free(struct iomux_async *async);

/*
 * Replaces the allocator the library uses (for tests of allocation
 * failure, or a custom heap). Call before creating any loop; all three
 * must be given. Returns 0 or -EINVAL.
 */
int iomux_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                        void (*free_fn)(void *));

IOMUX_END_DECLS

#endif /* IOMUX_LOOP_H */
