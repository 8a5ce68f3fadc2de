/* SPDX-License-Identifier: MIT */
/*
 * loop_internal.h - the loop's private state, shared by the core, the
 * timer and signal modules and the backends. Apps never include it;
 * white-box tests may.
 */
#ifndef IOMUX_LOOP_INTERNAL_H
#define IOMUX_LOOP_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "iomux/loop.h"

/* Interest bits a watcher may ask for. */
#define IOMUX__INTEREST (IOMUX_READ | IOMUX_WRITE | IOMUX_PRI)

/* One slot of the fd-indexed table, as in Redis's ae. */
struct iomux__fd {
    iomux_fd_cb *cb; /* NULL: not watched */
    void *data;
    unsigned mask; /* current interest; 0 = watched but paused */
    unsigned gen;  /* bumped on every watch, to recognise fd reuse */
};

/* What a backend reports for one fd in one wait. */
struct iomux__fired {
    int fd;
    unsigned events;
    unsigned gen; /* table generation when the wait returned */
};

struct iomux__timer {
    uint64_t deadline_ns;
    uint64_t seq;       /* insertion order: ties and the no-starvation rule */
    uint64_t repeat_ns; /* 0: one-shot */
    iomux_timer_cb *cb;
    void *data;
    uint32_t gen;      /* part of the public id, so stale ids are refused */
    uint32_t heap_pos; /* index in the heap, or IOMUX__TIMER_IDLE */
};

#define IOMUX__TIMER_IDLE UINT32_MAX

struct iomux__timers {
    struct iomux__timer *slots; /* slab; ids name slots */
    uint32_t *heap;             /* min-heap of slot indices */
    uint32_t *free_list;        /* unused slot indices */
    uint32_t nslots, nheap, nfree, cap;
    uint64_t next_seq;
    uint32_t running; /* slot whose callback runs now, or IOMUX__TIMER_IDLE */
    bool running_cancelled;
};

struct iomux__signals {
    int pipe[2]; /* self-pipe; -1 until the first signal watcher */
    unsigned count;
    iomux_signal_cb *cb[NSIG];
    void *data[NSIG];
    struct sigaction previous[NSIG];
};

/* Cross-thread wake-ups (async.c): one wake fd per loop, made by the first
   async handle, shared by all of them. */
struct iomux__wake {
    int fd[2]; /* read and write end (the same eventfd twice on Linux);
                  -1 until the first handle */
    /* 1 from the first send after a drain until the next drain: only the
       send that sets it writes to the fd, so a burst costs one write. */
    atomic_uint signalled;
    struct iomux_async **handles; /* live handles; NULL holes while scanning */
    unsigned count, cap;
    unsigned live;  /* handles not freed: keep run() going */
    bool scanning;  /* the callbacks run: free leaves a hole, not a swap */
    bool has_holes; /* compact after the scan */
};

struct iomux_loop {
    const struct iomux__backend *backend;
    void *backend_state;

    struct iomux__fd *fds;      /* indexed by fd, `capacity` entries */
    struct iomux__fired *fired; /* `capacity` entries */
    unsigned capacity;
    unsigned fds_cap; /* slots allocated in fds (>= capacity) */
    unsigned max_fds;
    unsigned active; /* user fds with a non-zero mask: keeps run() going */

    uint64_t now_ns;
    bool stop;
    /* Callbacks run by the internal fd (signal pipe, wake fd) whose
       callback runs now: run_once() counts those, not the fd's own. */
    unsigned internal_ran;

    struct iomux__timers timers;
    struct iomux__signals signals;
    struct iomux__wake wake;
};

/* alloc.c: the replaceable allocator. */
void *iomux__malloc(size_t size);
void *iomux__calloc(size_t count, size_t size);
void *iomux__realloc(void *ptr, size_t size);
void *iomux__reallocarray(void *ptr, size_t count, size_t size);
void iomux__free(void *ptr);

/* loop.c */
uint64_t iomux__clock_ns(void);

/* timer.c */
void iomux__timers_init(struct iomux__timers *timers);
void iomux__timers_fini(struct iomux__timers *timers);
/* Milliseconds until the first deadline, rounded up; -1 if none. */
int iomux__timers_timeout(const struct iomux_loop *loop);
/* Runs the timers that expired at loop->now_ns; returns how many ran. */
int iomux__timers_run(struct iomux_loop *loop);

/* signal.c */
void iomux__signals_init(struct iomux__signals *signals);
void iomux__signals_fini(struct iomux_loop *loop);
/* A pipe with both ends non-blocking and close-on-exec; 0 or -errno. */
int iomux__pipe_open(int fds[2]);

/* async.c */
void iomux__wake_init(struct iomux__wake *wake);
/* Frees the handles still open and closes the wake fd. */
void iomux__wake_fini(struct iomux_loop *loop);

#endif /* IOMUX_LOOP_INTERNAL_H */
