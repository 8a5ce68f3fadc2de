/* SPDX-License-Identifier: MIT */
/*
 * echod.h - the echo server: listeners, connections and their policy
 * (limits, idle timeout, graceful shutdown, statistics, trace output).
 */
#ifndef ECHOD_ECHOD_H
#define ECHOD_ECHOD_H

#include "options.h"

struct echod;

/*
 * Sets the server up from `opts` (borrowed; must outlive the server):
 * creates the loop, listens, prints bound port-0 addresses on stdout and
 * the start-up line on stderr. On failure prints `echod: what: why` and
 * returns the exit status (1 runtime, 2 usage); otherwise returns 0 and the
 * server in *out.
 */
int echod_new(const struct echod_options *opts, struct echod **out);

/* Serves until SIGINT/SIGTERM and the drain that follows; returns the exit
   status (0, or 1 if the loop failed). */
int echod_run(struct echod *d);

/* Closes everything and frees the server. */
void echod_free(struct echod *d);

#endif /* ECHOD_ECHOD_H */
