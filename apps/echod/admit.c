/* SPDX-License-Identifier: MIT */
/*
 * admit.c - who is served: --max-conns (for the whole process, with
 * workers) and --max-conns-per-ip, then the engine that serves an accepted
 * socket by its listener's settings (the main engine, fault modes, a TLS
 * connection's transport; the side engine where the main one has no such
 * admit), and what is said when a client is refused. Part of the policy
 * (echod.c).
 */
#include "echod_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <iomux/loop.h>
#include <iomux/net.h>

#include "server.h"
#include "trace.h"

/* Says why `peer` was refused: each with --trace, else rate-limited. */
static void say_refused(struct echod *d, const struct iomux_addr *peer, enum log_kind kind,
                        const char *why)
{
    if (d->opt->trace) {
        char name[TRACE_ADDR_STRLEN];
        trace_addr(peer, name, sizeof(name));
        fprintf(stderr, "  refusing %s: %s\n", name, why);
    } else {
        char text[IOMUX_ADDR_STRLEN];
        if (iomux_addr_format(peer, text, sizeof(text)) < 0)
            snprintf(text, sizeof(text), "?");
        ratelog_say(&d->logs[kind], iomux_loop_now(d->loop), "refusing connection from %s: %s",
                    text, why);
    }
}

void echod_refuse(struct echod *d, int fd, const struct iomux_addr *peer, enum log_kind kind,
                  const char *why)
{
    close(fd);
    say_refused(d, peer, kind, why);
}

uint64_t echod_staged(const struct echod *d)
{
    return d->npending + d->ntls_pending;
}

/* --max-conns and --max-conns-per-ip: true if `fd` may be served (its
   per-address slot is then taken); otherwise it is closed and refused. */
static bool admissible(struct echod *d, int fd, const struct iomux_addr *peer)
{
    if (!echod_slot_take(d)) {
        d->refused_max++;
        echod_refuse(d, fd, peer, LOG_MAXCONNS, "--max-conns reached");
        return false;
    }
    int prc = echod_perip_take(d, peer);
    if (prc < 0) {
        echod_slot_give(d);
        d->refused_perip++;
        echod_refuse(d, fd, peer, LOG_PERIP,
                     prc == -EDQUOT ? "--max-conns-per-ip reached" : strerror(-prc));
        return false;
    }
    return true;
}

/* The engine could not serve `fd` (`err`) and has closed it (every admit
   op takes the fd, engine.h): its slots are given back, and the refusal
   said and counted. */
static void admit_failed(struct echod *d, int fd, const struct iomux_addr *peer, int err)
{
    char why[128];
    echod_perip_give(d, peer);
    echod_slot_give(d);
    if (err == -ERANGE) {
        d->refused_watch++;
        if (strcmp(iomux_loop_backend(d->loop), "select") == 0)
            snprintf(why, sizeof(why), "fd %d is beyond what select can watch (FD_SETSIZE %d)", fd,
                     FD_SETSIZE);
        else
            snprintf(why, sizeof(why), "fd %d is beyond the loop's limit", fd);
        say_refused(d, peer, LOG_WATCH, why);
    } else {
        /* Out of memory, most likely: not a descriptor shortage. */
        d->errors++;
        say_refused(d, peer, LOG_ACCEPT, strerror(-err));
    }
}

void echod_admit(struct echod *d, int fd, const struct iomux_addr *peer)
{
    echod_admit_from(d, NULL, fd, peer);
}

void echod_side_nonblocking(const struct echod *d, int fd)
{
    if (!d->side)
        return;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void echod_admit_from(struct echod *d, const struct listener *l, int fd,
                      const struct iomux_addr *peer)
{
    if (!admissible(d, fd, peer))
        return;
    int rc;
    if (l && l->faults) {
        echod_side_nonblocking(d, fd);
        rc = d->side ? d->side_ops->admit_faults(d->side, fd, peer, l->faults)
                     : d->engine_ops->admit_faults(d->engine, fd, peer, l->faults);
    } else
        rc = d->engine_ops->admit(d->engine, fd, peer);
    if (rc < 0)
        admit_failed(d, fd, peer, rc);
}

int echod_admit_transport(struct echod *d, int fd, const struct iomux_addr *peer,
                          const struct iomux_stream_transport *tx, void *ctx)
{
    if (!admissible(d, fd, peer))
        return -1;
    int rc = d->side ? d->side_ops->admit_transport(d->side, fd, peer, tx, ctx)
                     : d->engine_ops->admit_transport(d->engine, fd, peer, tx, ctx);
    if (rc < 0)
        admit_failed(d, fd, peer, rc);
    return rc < 0 ? -1 : 0;
}
