/* SPDX-License-Identifier: MIT */
/*
 * echod_engine.c - the policy's side of engine.h: the configuration an
 * engine is made with, and the hooks through which it calls the policy
 * (echod.c's functions, behind a `void *` the engine passes back).
 */
#include "echod_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A proxy= listener's connections read their header first. */
static void hook_accepted(void *policy, void *listener, int fd, const struct iomux_addr *peer)
{
    struct listener *l = listener;
    struct echod *d = policy;
    if (peer->len == 0) { /* reset before its address could be read */
        d->resets++;
        if (l->proxy != ECHOD_PROXY_OFF)
            d->proxy.rejected_closed++;
        close(fd);
        return;
    }
    if (l->proxy != ECHOD_PROXY_OFF)
        echod_proxy_start(policy, l, fd, peer);
    else
        echod_admit(policy, fd, peer);
}

/* Kept peers need it, and so does a refusal for --max-conns, which names
   the client it refuses, and --proxy-from's check. */
static bool hook_wants_peer(void *policy)
{
    const struct echod *d = policy;
    return echod_keeps_peer(d) || d->proxy_listeners ||
           (d->opt->max_conns && echod_conns_counted(d) >= d->opt->max_conns);
}

static bool hook_accept_error(void *policy, void *listener, int err)
{
    return echod_accept_error(policy, listener, err);
}

static void hook_opened(void *policy, struct conn *c, const struct iomux_addr *peer)
{
    echod_conn_opened(policy, c, conn_peer(c), peer);
}

static void hook_closed(void *policy, struct conn *c, int error)
{
    echod_conn_closed(policy, c, error);
}

static void hook_echoed(void *policy, struct conn *c, const char *bytes, size_t len)
{
    echod_trace_echo(policy, c, bytes, len);
}

static void hook_queue_empty(void *policy, struct conn *c)
{
    echod_trace_queue_empty(policy, c);
}

static void hook_io_error(void *policy, const char *what, int err)
{
    struct echod *d = policy;
    ratelog_say(&d->logs[LOG_IO], iomux_loop_now(d->loop), "%s: %s", what, strerror(-err));
}

static enum engine_spin spin_mode(int spin_receive)
{
    if (spin_receive == ECHOD_SPIN_ON)
        return ENGINE_SPIN_ON;
    return spin_receive == ECHOD_SPIN_OFF ? ENGINE_SPIN_OFF : ENGINE_SPIN_AUTO;
}

/* Says why an engine could not be made; returns -errno, -EINVAL when it
   was not built (a usage error, as for a backend that is not built). */
static int engine_failed(const struct engine_ops *ops, int rc)
{
    if (rc == -ENOENT) {
        echod_usage_error("--engine %s: not compiled in (no %s)", ops->name, ops->needs);
        return -EINVAL;
    }
    if (rc == -ENOSYS || rc == -EPERM)
        fprintf(stderr, "echod: --engine %s: not available on this system (%s)\n", ops->name,
                strerror(-rc));
    else
        fprintf(stderr, "echod: --engine %s: %s\n", ops->name, strerror(-rc));
    return rc;
}

/* Makes the engine `ops` on d's loop, with the hooks above: 0 or -errno. */
static int engine_create(struct echod *d, const struct engine_ops *ops)
{
    const struct echod_options *opt = d->opt;
    const struct engine_config cfg = {
        .loop = d->loop,
        .pool = d->pool,
        .high_water = opt->high_water,
        .low_water = opt->low_water,
        .uring_buffers = (unsigned)opt->uring_buffers,
        .busy_poll_us = (unsigned)opt->busy_poll_us,
        .batch_wait_us = (unsigned)opt->batch_wait_us,
        .spin = spin_mode(opt->spin_receive),
        .trace = opt->trace,
        .keep_peer = echod_keeps_peer(d),
        .buffered_limit = echod_budget_engine_share(d),
        .bytes_in = &d->bytes_in,
        .bytes_out = &d->bytes_out,
    };
    const struct engine_hooks hooks = {
        .policy = d,
        .accepted = hook_accepted,
        .wants_peer = hook_wants_peer,
        .accept_error = hook_accept_error,
        .opened = hook_opened,
        .closed = hook_closed,
        .echoed = hook_echoed,
        .queue_empty = hook_queue_empty,
        .io_error = hook_io_error,
    };
    int rc = ops->create(&cfg, &hooks, &d->engine);
    if (rc == 0)
        d->engine_ops = ops;
    return rc;
}

/* --engine auto, left for now by the options: io_uring if this build and
   kernel (or a seccomp policy) let it be made, else the readiness engine,
   which runs wherever the loop does. `why` says what was chosen and why. */
static int engine_auto(struct echod *d, char *why, size_t size)
{
    const struct engine_ops *uring = engine_find(echod_engine_names[ECHOD_ENGINE_URING]);
    const struct engine_ops *loop = engine_find(echod_engine_names[ECHOD_ENGINE_LOOP]);
    int rc = engine_create(d, uring);
    if (rc == 0) {
        snprintf(why, size, "engine %s (--engine auto)", uring->name);
        return 0;
    }
    if (rc == -ENOENT)
        snprintf(why, size, "engine %s (--engine auto: %s not compiled in, no %s)", loop->name,
                 uring->name, uring->needs);
    else
        snprintf(why, size, "engine %s (--engine auto: %s not available here: %s)", loop->name,
                 uring->name, strerror(-rc));
    rc = engine_create(d, loop);
    return rc < 0 ? engine_failed(loop, rc) : 0;
}

int echod_engine_start(struct echod *d, char *why, size_t size)
{
    const struct echod_options *opt = d->opt;
    why[0] = '\0';
    if (opt->engine == ECHOD_ENGINE_AUTO)
        return engine_auto(d, why, size);
    const struct engine_ops *ops = engine_find(echod_engine_names[opt->engine]);
    if (!ops) {
        fprintf(stderr, "echod: --engine %s: no such engine\n", echod_engine_names[opt->engine]);
        return -EINVAL;
    }
    if (opt->engine_given)
        snprintf(why, size, "engine %s (--engine auto: --%s given)", ops->name, opt->engine_given);
    int rc = engine_create(d, ops);
    return rc < 0 ? engine_failed(ops, rc) : 0;
}
