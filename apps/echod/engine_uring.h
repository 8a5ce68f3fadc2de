/* SPDX-License-Identifier: MIT */
/*
 * engine_uring.h - echod --engine uring: TCP accept, receive and send as
 * io_uring operations (a completion engine), with the same policy as the
 * default engine, whose I/O is done by iomux streams on a readiness loop.
 *
 * The engine's ring is one more fd on the server's iomux loop, which keeps
 * the timers, the signals and the datagram service. Built only with
 * liburing; without it engine_uring_new() returns -ENOENT.
 */
#ifndef ECHOD_ENGINE_URING_H
#define ECHOD_ENGINE_URING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "echod_internal.h"

/* Makes the ring and its buffers for server `d` and watches the ring on
   d->loop. 0, or -ENOENT (not built), -ENOSYS/-EPERM (refused by the kernel
   or a seccomp policy), -ENOMEM, another negative errno. */
int engine_uring_new(struct echod *d, struct engine_uring **out);

/* Waits for every operation still in flight, then frees. NULL is a no-op.
   Connections must have been cut first. */
void engine_uring_free(struct engine_uring *e);

/* One iteration of the server: the loop's (iomux_loop_run_once()), or, when
   the engine owns the wait, one io_uring_enter() that submits, runs the
   receives and waits for the ring and the loop at once, then the loop's
   callbacks if it has some. Returns as iomux_loop_run_once(). */
int engine_uring_run_once(struct engine_uring *e, int timeout_ms);

/* Starts accepting on `l` (one multishot accept). 0 or a negative errno. */
int engine_uring_listen(struct engine_uring *e, struct listener *l);

/* Stops (cancels the accepts) or resumes accepting on every listener. */
void engine_uring_set_accepting(struct engine_uring *e, bool on);

/* Serves an accepted, admitted socket (takes `fd`). On failure closes it
   and says why. */
void engine_uring_admit(struct engine_uring *e, int fd, const struct iomux_addr *peer);

/* The stored peer address of a connection of this engine. */
union conn_peer_addr *engine_uring_peer(struct conn *c);

/* When the connection last sent or received, in loop milliseconds. */
uint64_t engine_uring_last_io(struct conn *c);

/* The graceful end, as iomux_stream_end(): input is dropped, what is
   queued is sent, then the write side is shut and the peer's end awaited.
   Never closes from inside the call. */
void engine_uring_end(struct engine_uring *e, struct conn *c);

/* Closes at once (the caller took it off the list and said why). */
void engine_uring_cut(struct engine_uring *e, struct conn *c);

/* The engine's part of the SIGUSR1 statistics line, ending the line. */
void engine_uring_print_stats(struct engine_uring *e, FILE *f);

#endif /* ECHOD_ENGINE_URING_H */
