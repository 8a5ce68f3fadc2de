/* SPDX-License-Identifier: MIT */
/*
 * sideport.h - a small TCP port beside the echo listeners, served on the
 * same loop, where each connection gets one answer and is closed: the
 * HAProxy agent (--agent, agent.c) and the Prometheus exporter (--metrics,
 * metrics.c). Its connections are not echo connections: the policy never
 * counts, limits or drains them.
 *
 * Bounded by construction: at most max_conns connections at once (more
 * are accepted and closed at once), each with a fixed buffer for the
 * request head and one for the answer, and a deadline after which it is
 * closed whatever it is doing. A client that never reads costs one
 * connection slot until the deadline, never more memory.
 */
#ifndef ECHOD_SIDEPORT_H
#define ECHOD_SIDEPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <iomux/loop.h>
#include <iomux/net.h>

/* What answer() returns when it needs more of the request head. */
#define SIDEPORT_MORE ((size_t)-1)

struct sideport_config {
    size_t head_max;      /* bytes of request read at most; 0: answer at once, read nothing */
    size_t answer_max;    /* room for the answer */
    unsigned max_conns;   /* connections at once */
    uint64_t deadline_ms; /* from accept to close */
    /*
     * Writes the answer to the `len` bytes received so far (none when
     * head_max is 0) into `out` (answer_max bytes) and returns its length,
     * or SIDEPORT_MORE to wait for more bytes (the connection is closed
     * without an answer once head_max bytes or the deadline pass).
     * `full` is true when no more bytes will come (head_max reached or
     * the peer's end), so the callback can answer "too large" instead.
     */
    size_t (*answer)(void *ctx, const char *head, size_t len, bool full, char *out, size_t size);
    void *ctx;
    void (*ctx_free)(void *ctx); /* NULL: ctx is not the port's to free */
};

/* Counters, for the exporter. */
struct sideport_stats {
    uint64_t answered;  /* connections that got their whole answer */
    uint64_t overflow;  /* closed at once: max_conns were open */
    uint64_t timed_out; /* closed by the deadline */
};

struct sideport;

/*
 * Binds `text` (HOST:PORT or [IPV6]:PORT; port 0 picks one) for `opt`.
 * Returns the port asked for (0..65535) and stores the listening fd (the
 * caller's) and its bound address; or says why on stderr and returns
 * -EINVAL (a usage error, said with the hint) or another -errno.
 */
int sideport_bind(const char *opt, const char *text, int *fd, struct iomux_addr *bound);

/* Serves the listening socket `fd` on `loop` with `cfg` (copied). Takes
   `fd` and cfg->ctx (with ctx_free), released by sideport_free() or on
   failure. 0 or -errno. */
int sideport_new(struct iomux_loop *loop, int fd, const struct sideport_config *cfg,
                 struct sideport **out);

/* Closes the listener and every connection; NULL is fine. */
void sideport_free(struct sideport *s);

void sideport_stats(const struct sideport *s, struct sideport_stats *out);

/* The listening socket, for an upgrade (upgrade.h). */
int sideport_fd(const struct sideport *s);

#endif /* ECHOD_SIDEPORT_H */
