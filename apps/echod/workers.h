/* SPDX-License-Identifier: MIT */
/*
 * workers.h - the server's own state (server.h), shared by server.c (limits, statistics, the
 * workers' commands) and workers.c (threads, start-up, signals, the end).
 */
#ifndef ECHOD_WORKERS_H
#define ECHOD_WORKERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <iomux/loop.h>

#include "server.h"

/* What the main thread asks of a worker (struct echod's commands). */
enum {
    ECHOD_CMD_STATS = 1,      /* publish your counters */
    ECHOD_CMD_QUIT = 2,       /* SIGQUIT: cut everything, now */
    ECHOD_CMD_ENDED = 4,      /* to the first: another worker has ended */
    ECHOD_CMD_RELOAD = 8,     /* SIGHUP: read the TLS listeners' files again */
    ECHOD_CMD_HAND_OVER = 16, /* SIGUSR2: the new echod serves; stop accepting, drain */
};

struct echod_server {
    const struct echod_options *opt; /* as given; each worker has its share (worker_opt) */
    struct echod_options *worker_opt;
    unsigned nworkers;
    struct echod **workers;
    pthread_t *threads;
    struct iomux_loop *loop;      /* the main thread's: signals, and done */
    struct iomux_async *done;     /* a worker's loop has ended */
    atomic_uint running;          /* workers not yet done */
    atomic_uint ended;            /* workers but the first done (it ends last) */
    atomic_uint_fast64_t open;    /* connections admitted, every worker's (--max-conns) */
    atomic_uint_fast64_t pending; /* ... and waiting for their PROXY header */
    atomic_int stop_signo;        /* SIGINT or SIGTERM, for the workers' lines */
    bool quit;                    /* SIGQUIT seen (main thread only) */
    /* The lock guards the --max-conns-per-ip table, the snapshots, and start-up's steps. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t asked; /* snapshots asked for so far */
    int step;       /* start-up: how far the workers may go (workers.c) */
    int *rc;        /* start-up: each worker's outcome of its last step */
    struct echod_perip *perip;
    struct echod *view;                /* echod_totals_view()'s copy (worker 0's thread only) */
    unsigned *cpus;                    /* --steer cpu: worker k's CPU (steer.h); NULL without */
    atomic_uint_fast64_t fault_serial; /* fault connections so far (struct fault_env) */
    char reload_said[ECHOD_RELOAD_SAID_MAX]; /* SIGHUP: the first worker's lines (under lock) */
};

/* Every worker's counters, fresh: each is asked through its async handle (`self`, the caller's
   own worker or NULL, publishes at once) and waited for, 2 s at most. `each` may be NULL. */
void echod_server_collect(struct echod_server *s, struct echod *self, struct echod_counters *sum,
                          struct echod_counters *each);

/* On the worker's thread: its async handle, for the server's commands (0 or -errno); and, once
   its loop has ended, the last counters and the word to the server. */
int echod_worker_ready(struct echod *d);
void echod_worker_finished(struct echod *d);

/* An upgrade's new echod serves (upgrade.c, on the main thread): every worker stops accepting,
   closes its copies of the sockets and drains, as echod_hand_over() does for one. */
void echod_server_hand_over(struct echod_server *s);

#endif /* ECHOD_WORKERS_H */
