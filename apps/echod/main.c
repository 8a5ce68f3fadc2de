/* SPDX-License-Identifier: MIT */
/*
 * main.c - echod: a TCP echo server on the iomux loop, the C rebuild of the
 * Python select/poll echo server. Parses options, runs the server, maps
 * the outcome to an exit status (0 ok, 1 runtime failure, 2 usage error).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "echod.h"
#include "options.h"
#include "upgrade.h"
#include "server.h"

int main(int argc, char **argv)
{
    struct echod_options opts;
    int rc = echod_options_parse(argc, argv, &opts);
    if (rc == ECHOD_DONE)
        return 0;
    if (rc != ECHOD_RUN)
        return 2;

    /* Sockets never raise SIGPIPE (MSG_NOSIGNAL), but stderr and stdout
       may be pipes whose reader went away: that must not kill a server
       that still has clients. */
    signal(SIGPIPE, SIG_IGN);
    /* Trace lines are written piecewise; line buffering makes each one a
       single write. */
    setvbuf(stderr, NULL, _IOLBF, BUFSIZ);

    if (echod_upgrade_init(argc, argv) < 0)
        return 1;
    unsigned workers = echod_workers_wanted(&opts);
    /* One connection on stdin, or sockets systemd made once: nothing to spread. An upgrade's
       sockets are each worker's own (upgrade.h). */
    if (workers > 1 && (opts.inetd || (getenv("LISTEN_FDS") && !echod_upgrade_keeps_workers()))) {
        if (!opts.quiet && !opts.inetd) /* --inetd: stderr may be the client */
            fprintf(stderr,
                    "echod: --workers %u: --inetd and socket-activated sockets are "
                    "served by one worker\n",
                    workers);
        workers = 1;
    }
    echod_upgrade_layout(&opts, workers);
    if (workers > 1) {
        rc = echod_server_main(&opts, workers);
        return rc == -EINVAL ? 2 : rc < 0 ? 1 : 0;
    }
    struct echod *d;
    rc = echod_new(&opts, &d);
    if (rc < 0)
        return rc == -EINVAL ? 2 : 1;
    echod_upgrade_ready(&opts);
    rc = echod_run(d);
    echod_free(d);
    return rc < 0 ? 1 : 0;
}
