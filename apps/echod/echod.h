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
 * checks what can be checked, creates the loop, binds, drops privileges,
 * then (only once serving is certain) prints bound port-0 addresses on
 * stdout and the start-up lines on stderr. On failure prints `echod: what:
 * why` and returns a negative errno: -EINVAL for a usage error (printed
 * with the --help hint), which the caller maps to exit status 2, anything
 * else to 1. Otherwise returns 0 and the server in *out.
 */
int echod_new(const struct echod_options *opts, struct echod **out);

/* Serves until SIGINT/SIGTERM and the drain that follows (or SIGQUIT);
   returns 0, or -errno if the loop failed (said on stderr). */
int echod_run(struct echod *d);

/* Closes everything and frees the server. */
void echod_free(struct echod *d);

#endif /* ECHOD_ECHOD_H */
