/* SPDX-License-Identifier: MIT */
/*
 * client.h - echo-client's engine: connects the sockets, sends each part on
 * all of them, reads every echo back in full and checks it, on one loop.
 */
#ifndef ECHO_CLIENT_CLIENT_H
#define ECHO_CLIENT_CLIENT_H

#include <stddef.h>

#include <iomux/net.h>

#include "client_args.h"

/* What to send: n parts of the given lengths (borrowed for the run). */
struct client_parts {
    const char *const *data;
    const size_t *len;
    size_t n;
};

/*
 * Runs the whole exchange with the server at `addr`: the parts on every
 * socket, or with parts NULL (--file) what input_fd holds, as one stream
 * on one socket (input_fd stays the caller's). The echo goes to standard
 * output (the first socket's), the trace to stderr. Returns 0 when every
 * byte of every echo came back identical on every socket; otherwise 1,
 * with a one-line reason in err.
 */
int client_run(const struct client_options *o, const struct iomux_addr *addr,
               const struct client_parts *parts, int input_fd, char *err, size_t errsize);

#endif /* ECHO_CLIENT_CLIENT_H */
