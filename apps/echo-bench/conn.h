/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one TCP connection of a worker, inside echo-bench: worker.c
 * moves its messages, connect.c opens it (and --churn's connections,
 * churn.c).
 */
#ifndef ECHO_BENCH_CONN_H
#define ECHO_BENCH_CONN_H

#include <stdint.h>

#include "churn.h"
#include "worker.h"

enum conn_state {
    CONN_NEW, /* connect not started yet (pacing) */
    CONN_CONNECTING,
    CONN_HANDSHAKE, /* --tls: connected, TLS handshake under way */
    CONN_OPEN,
    CONN_CLOSED,
};

struct bench_conn {
    struct worker *w;
    int fd;
    enum conn_state state;
    int idle;           /* an idle connection: held open, no traffic */
    int read_paused;    /* --read-delay: waiting for the timer */
    unsigned id;        /* global connection number */
    unsigned mask;      /* interest currently given to the loop */
    uint64_t base;      /* where this connection's stream starts in the pattern */
    uint64_t sent;      /* stream bytes sent */
    uint64_t queued;    /* stream bytes released for sending */
    uint64_t received;  /* stream bytes echoed back and checked */
    uint64_t released;  /* messages released */
    uint64_t completed; /* messages whose echo is complete */
    uint64_t *send_ns;  /* closed loop: release time of each in-flight
                           message, indexed by message number % depth */
    uint64_t phase_ns;  /* open loop: offset of this connection's schedule */
    /* --churn (churn.c) */
    int busy;            /* its pool slot is taken */
    int in_window;       /* its connect started in the measurement window */
    uint64_t connect_ns; /* when its connect started */
    /* --tls (tls.h); NULL otherwise */
    struct tls_conn *tls;
    int read_wants_write; /* the last TLS read waits for writability */
    int write_wants_read; /* the last TLS write waits for readability */
};

/* Unwatches and closes it (any state); it is CONN_CLOSED after. */
void conn_close(struct bench_conn *c);

/* Gives the loop interest `mask` (closes the connection on failure). */
void conn_set_mask(struct bench_conn *c, unsigned mask);

/* Sends what is released and not yet sent, as far as the socket takes it. */
void conn_flush(struct bench_conn *c);

/* Reads, checks and completes what the server echoed. */
void conn_read(struct bench_conn *c);

/* Releases one closed-loop message, stamped with its release time. */
void release_closed(struct bench_conn *c, uint64_t now);

/* Starts a non-blocking connect; its end, either way, comes to
   on_conn_event(). */
void start_connect(struct bench_conn *c);

/* recv() and send() for the connection, through TLS with --tls: bytes, or
   -1 with errno (EAGAIN: wait, as conn_wanted_mask() says), or 0 at the
   server's end. */
ssize_t conn_recv(struct bench_conn *c, void *buf, size_t len);
ssize_t conn_send(struct bench_conn *c, const void *buf, size_t len);

/* The interest a connection needs now. */
unsigned conn_wanted_mask(const struct bench_conn *c);

/* Why the last conn_recv/conn_send failed, with --tls; else strerror. */
const char *conn_error(const struct bench_conn *c, int err);

/* --tls: starts or continues the handshake of a connected connection:
   1 done (or no TLS), 0 waiting (the mask is set), -1 failed (counted as a
   failed connect, closed). */
int conn_handshake(struct bench_conn *c);

/* Sends close_notify when it can, and frees the connection's TLS. */
void conn_tls_close(struct bench_conn *c);

/* Frees the worker's TLS context. */
void worker_tls_fini(struct worker *w);

/* Counts a failed connect (err: an errno) and closes the connection. */
void connect_failed(struct bench_conn *c, int err);

#endif /* ECHO_BENCH_CONN_H */
