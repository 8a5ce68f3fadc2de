/* SPDX-License-Identifier: MIT */
/*
 * echod_engine.c - the policy's side of engine.h: the configuration an
 * engine is made with, and the hooks through which it calls the policy
 * (echod.c's functions, behind a `void *` the engine passes back).
 */
#include "echod_internal.h"
#include "workers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "splice_pool.h"

/* A proxy= listener's connections read their header first, a TLS
   listener's do their handshake (after the header, with both). */
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
    else if (l->tls)
        echod_tls_start(policy, l, fd, peer);
    else
        echod_admit_from(policy, l, fd, peer);
}

/* Kept peers need it, and so does a refusal for --max-conns, which names
   the client it refuses, and --proxy-from's check. */
static bool hook_wants_peer(void *policy)
{
    const struct echod *d = policy;
    return echod_keeps_peer(d) || d->proxy_listeners || d->tls_listeners ||
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

/* The side engine's connections go on a list of their own, which the
   policy walks with the side engine (echod_side_start()). */
static void hook_side_opened(void *policy, struct conn *c, const struct iomux_addr *peer)
{
    struct echod *d = policy;
    echod_conn_opened_on(d, &d->side_conns, c, conn_peer(c), peer);
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

static void hook_fault_fired(void *policy, struct conn *c, const char *what, uint64_t bytes)
{
    echod_trace_fault(policy, c, what, bytes);
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

/* --splice: the pipes, bounded under RLIMIT_NOFILE and the budget. None
   with --trace, which needs the bytes, nor for an engine that never
   splices (!can_splice). */
static int splice_setup(struct echod *d, const struct engine_ops *ops)
{
    const struct echod_options *opt = d->opt;
    if (opt->splice == ECHOD_SPLICE_OFF || opt->trace || d->splice || !ops->can_splice)
        return 0;
    /* io_uring runs every splice on a worker thread: auto never wins
       there (docs/design.md, "The splice path"), so only on splices. */
    if (opt->splice == ECHOD_SPLICE_AUTO && ops == &engine_uring_ops)
        return 0;
    struct rlimit rl;
    uint64_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                          ? (uint64_t)rl.rlim_cur
                          : 1u << 20;
    size_t max = splice_pool_max(nofile, (size_t)opt->max_buffered);
    if (ops == &engine_uring_ops && max > SPLICE_URING_MAX)
        max = SPLICE_URING_MAX;
    d->splice = splice_pool_new(max);
    return d->splice ? 0 : -ENOMEM;
}

/* Makes an engine `ops` on d's loop, with the hooks above, in *out: 0
   or -errno. A side engine lists its connections apart. */
static int engine_make(struct echod *d, const struct engine_ops *ops, bool side,
                       struct engine **out)
{
    const struct echod_options *opt = d->opt;
    /* The side engine serves fault listeners only: never spliced. */
    int src = side ? 0 : splice_setup(d, ops);
    if (src < 0)
        return src;
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
        .splice_pool = side ? NULL : d->splice,
        .splice_from = opt->splice == ECHOD_SPLICE_ON ? 0 : SPLICE_AUTO_FROM,
        .fault_seed = d->fault_seed,
        .fault_counts = d->faults_fired,
        .fault_serial = d->server ? &d->server->fault_serial : NULL,
    };
    const struct engine_hooks hooks = {
        .policy = d,
        .accepted = hook_accepted,
        .wants_peer = hook_wants_peer,
        .accept_error = hook_accept_error,
        .opened = side ? hook_side_opened : hook_opened,
        .closed = hook_closed,
        .echoed = hook_echoed,
        .queue_empty = hook_queue_empty,
        .io_error = hook_io_error,
        .fault_fired = hook_fault_fired,
    };
    return ops->create(&cfg, &hooks, out);
}

/* The main engine. */
static int engine_create(struct echod *d, const struct engine_ops *ops)
{
    int rc = engine_make(d, ops, false, &d->engine);
    if (rc == 0)
        d->engine_ops = ops;
    return rc;
}

/*
 * The side engine: an engine whose admit_faults or admit_transport is NULL
 * (io_uring moves bytes the kernel's way, never through a user-space stage:
 * fault modes, TLS records) gets the
 * readiness engine beside it, on the same loop, which that engine runs
 * (the ring polls the loop's fd). Only admitting goes to the side: the
 * listeners stay the main engine's, whose accept hands the socket to the
 * policy, which admits it to the side by its listener's settings.
 */
int echod_side_start(struct echod *d)
{
    bool faults = false, tls = false;
    for (size_t i = 0; i < d->nlisteners; i++) {
        faults |= d->listeners[i].faults != NULL;
        tls |= d->listeners[i].tls != NULL;
    }
    if (!(faults && !d->engine_ops->admit_faults) && !(tls && !d->engine_ops->admit_transport))
        return 0;
    const struct engine_ops *ops = engine_find(echod_engine_names[ECHOD_ENGINE_LOOP]);
    int rc = engine_make(d, ops, true, &d->side);
    if (rc < 0) {
        fprintf(stderr, "echod: the readiness engine for %s listeners: %s\n",
                faults ? "fault" : "TLS", strerror(-rc));
        return rc;
    }
    d->side_ops = ops;
    return 0;
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
