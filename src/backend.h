/* SPDX-License-Identifier: MIT */
/*
 * backend.h - the one contract every readiness backend implements.
 *
 * A backend only translates between the loop's fd table and one kernel
 * interface (select, poll, epoll, io_uring). It keeps its own state behind
 * loop->backend_state, learns of every interest change through modify(),
 * and on wait() fills loop->fired[] with (fd, events) pairs. It never calls
 * user code: the loop core dispatches afterwards, so every backend gets
 * the same dispatch rules for free.
 */
#ifndef IOMUX_BACKEND_H
#define IOMUX_BACKEND_H

struct iomux_loop;

struct iomux__backend {
    const char *name;
    /* fds at or above this cannot be watched (select's FD_SETSIZE); 0 = no
       limit but the loop's max_fds. Checked by the core for every mask. */
    int fd_limit;
    /* Most entries one wait() reports; 0 = one per table slot. A backend
       whose kernel interface round-robins ready fds (epoll) reports in
       bounded batches, so fired[] need not grow with the table. */
    unsigned max_fired;
    /* Allocates loop->backend_state. 0, or -errno; -ENOSYS / -EPERM mean
       "not available here" and make the automatic choice try the next. */
    int (*init)(struct iomux_loop *loop);
    /* Releases everything init and resize took. Called once, also after a
       failed init, never twice. */
    void (*fini)(struct iomux_loop *loop);
    /* The fd table and loop->fired[] grew to `capacity` entries. */
    int (*resize)(struct iomux_loop *loop, unsigned capacity);
    /* Interest of `fd` changes from old_mask to new_mask (either may be 0:
       the backend decides between add, modify and delete). On failure the
       backend's state is as it was before the call. */
    int (*modify)(struct iomux_loop *loop, int fd, unsigned old_mask, unsigned new_mask);
    /* Waits up to timeout_ms (-1: no limit) and fills loop->fired[].
       Returns the number of entries, 0 on timeout or EINTR, or -errno. */
    int (*wait)(struct iomux_loop *loop, int timeout_ms);
    /* Optional: a descriptor that is readable whenever wait() would report
       something (iomux_loop_backend_fd()). */
    int (*backend_fd)(const struct iomux_loop *loop);
};

/* Defined in backend_<name>.c. */
extern const struct iomux__backend iomux__backend_epoll;
extern const struct iomux__backend iomux__backend_poll;
extern const struct iomux__backend iomux__backend_select;
extern const struct iomux__backend iomux__backend_uring;

#endif /* IOMUX_BACKEND_H */
