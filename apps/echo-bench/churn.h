/* SPDX-License-Identifier: MIT */
/*
 * churn.h - connection churn (--churn N/s --per-conn K): each worker opens
 * its share of N connections per second on a fixed schedule, echoes K
 * messages (closed loop, --depth in flight) on each, closes it, and
 * counts connect latency and failures by kind. --conns is the pool: the
 * most connections open at once; a connect due while the pool is full
 * waits for a free slot (the achieved rate then falls short of N).
 */
#ifndef ECHO_BENCH_CHURN_H
#define ECHO_BENCH_CHURN_H

#include <stdint.h>

#include "hdr.h"

struct worker;
struct bench_conn;

/* Failures by kind, over the whole run. */
enum churn_failure {
    CHURN_REFUSED,   /* ECONNREFUSED: nothing listens, or the backlog is full */
    CHURN_RESET,     /* ECONNRESET or EPIPE, connecting or after */
    CHURN_TIMED_OUT, /* not connected within --connect-timeout */
    CHURN_CLOSED,    /* the server closed before the K echoes */
    CHURN_OTHER,
    CHURN_KINDS
};

struct churn {
    struct hdr connect_hist; /* connect latency, connects started in the window */
    unsigned *free_slots;    /* stack of free pool indexes */
    unsigned n_free;
    uint64_t started;       /* connects started by this worker (schedule index) */
    uint64_t period_ns;     /* between this worker's connects */
    uint64_t phase_ns;      /* offset of its schedule */
    uint64_t next_sweep_ns; /* next look for connects past --connect-timeout */
    uint64_t attempts;      /* connects started in the window */
    uint64_t connected;     /* of those, connected */
    uint64_t finished;      /* connections that echoed K messages and closed, in the window */
    uint64_t failures[CHURN_KINDS];
};

/* Allocates the pool's free list; 0 or -ENOMEM. */
int churn_init(struct worker *w);
void churn_fini(struct worker *w);

/* Traffic starts: the schedule begins at the run's start. */
void churn_start(struct worker *w);

/* Starts the connects that are due (as far as the pool allows) and ends
   those past --connect-timeout; returns the next due time. */
uint64_t churn_tick(struct worker *w, uint64_t now);

/* A connect succeeded: its latency, then the first messages. */
void churn_opened(struct bench_conn *c, uint64_t now);

/* A connection's K-th echo is back: it closes. */
void churn_finished(struct bench_conn *c);

/* A failure of a churned connection (err: an errno, or 0 when the server
   closed), counted by kind. */
void churn_failed(struct worker *w, int err);

/* A connection closed: its slot goes back to the pool. */
void churn_free(struct bench_conn *c);

#endif /* ECHO_BENCH_CHURN_H */
