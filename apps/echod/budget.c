/* SPDX-License-Identifier: MIT */
/*
 * budget.c - the memory budget's policy (budget.h says what it does):
 * when the budget fills, hold the connections with echoes waiting; when
 * it stays full past --shed-after, shed the largest holders that are not
 * reading.
 */
#include "budget.h"

#include <inttypes.h>
#include <stdlib.h>

#include "echod_internal.h"
#include "udp.h"

/* A connection that may be shed, and what closing it frees. */
struct holder {
    struct conn *c;
    size_t queued;
    bool side; /* the side engine's (echod_side_start()) */
};

/* Below the budget by what the reads under way when it fills may bring
   (engine_budget_mark()). */
static size_t full_mark(const struct echod *d)
{
    return engine_budget_mark(d->max_buffered, d->open);
}

/* Shedding stops, and the budget counts as full no more, an eighth of it
   below the full mark: room for new clients' queues, and no shedding of
   one connection at a time as every held one adds a byte. */
static size_t free_mark(const struct echod *d)
{
    size_t full = full_mark(d), eighth = d->max_buffered / 8;
    return full > eighth ? full - eighth : 0;
}

size_t echod_budget_engine_share(struct echod *d)
{
    d->max_buffered = (size_t)d->opt->max_buffered;
    d->budget.fixed = d->udp ? echod_udp_buffered(d->udp) : 0;
    if (!d->max_buffered)
        return 0;
    /* A budget that UDP's batch alone fills leaves the engine nothing:
       then it holds every client that has anything queued (1 byte). */
    return d->max_buffered > d->budget.fixed ? d->max_buffered - d->budget.fixed : 1;
}

size_t echod_budget_buffered(struct echod *d)
{
    d->buffered_bytes = d->engine_ops->buffered(d->engine) + d->budget.fixed;
    return d->buffered_bytes;
}

static void on_shed_check(struct iomux_loop *loop, uint64_t id, void *data);

static void arm_shed_check(struct echod *d)
{
    /* Without a timer the check still runs after each turn of the engine,
       but an idle server would never shed: say so. */
    if (iomux_timer_add(d->loop, d->opt->shed_after_ms, 0, on_shed_check, d, &d->budget.timer) <
        0) {
        d->budget.timer = 0;
        ratelog_say(&d->logs[LOG_MEMORY], iomux_loop_now(d->loop),
                    "memory budget: no timer to shed with");
    }
}

/* The budget has just filled: every connection with echoes waiting stops
   being read from until its client has taken them (budget.h, 1). */
static void filled(struct echod *d)
{
    uint64_t now = iomux_loop_now(d->loop);
    d->budget.full_since = now ? now : 1;
    /* Free chunks kept for reuse are memory too, and none is needed
       while nobody is read from. */
    iomux_buf_pool_trim(d->pool);
    for (struct conn *c = d->conns.next; c != &d->conns; c = c->next)
        (void)d->engine_ops->hold(d->engine, c);
    for (struct conn *c = d->side_conns.next; d->side && c != &d->side_conns; c = c->next)
        (void)d->side_ops->hold(d->side, c);
    arm_shed_check(d);
}

static void emptied(struct echod *d)
{
    d->budget.full_since = 0;
    if (d->budget.timer) {
        iomux_timer_cancel(d->loop, d->budget.timer);
        d->budget.timer = 0;
    }
}

void echod_budget_check(struct echod *d)
{
    if (!d->max_buffered)
        return;
    size_t held = echod_budget_buffered(d);
    if (held >= full_mark(d)) {
        if (!d->budget.full_since)
            filled(d);
    } else if (d->budget.full_since && held < free_mark(d)) {
        emptied(d);
    }
}

static int by_queued_desc(const void *a, const void *b)
{
    size_t qa = ((const struct holder *)a)->queued, qb = ((const struct holder *)b)->queued;
    return qa < qb ? 1 : qa > qb ? -1 : 0;
}

/* Those of `list` (the side engine's if `side`) into h, *n of d->open. */
static void add_holders(struct echod *d, struct conn *list, bool side, uint64_t now, uint64_t quiet,
                        struct holder *h, size_t *n)
{
    const struct engine_ops *ops = side ? d->side_ops : d->engine_ops;
    struct engine *e = side ? d->side : d->engine;
    for (struct conn *c = list->next; c != list && *n < d->open; c = c->next) {
        size_t q = ops->queued(e, c);
        if (q && now - ops->last_io(e, c) >= quiet)
            h[(*n)++] = (struct holder){.c = c, .queued = q, .side = side};
    }
}

/* The connections that hold echoes and whose clients took nothing for
   half the grace period, largest first, in an array the caller frees
   (NULL with *n 0 when there are none or no memory for the list). */
static struct holder *idle_holders(struct echod *d, size_t *n)
{
    *n = 0;
    uint64_t now = iomux_loop_now(d->loop), quiet = d->opt->shed_after_ms / 2;
    struct holder *h = malloc(d->open * sizeof(*h)); /* shedding is rare: no cache */
    if (!h)
        return NULL;
    add_holders(d, &d->conns, false, now, quiet, h, n);
    if (d->side)
        add_holders(d, &d->side_conns, true, now, quiet, h, n);
    qsort(h, *n, sizeof(*h), by_queued_desc);
    return h;
}

/* The budget stayed full for the grace period (budget.h, 2). */
static void shed(struct echod *d)
{
    size_t n, cut = 0, held = d->buffered_bytes;
    struct holder *h = idle_holders(d, &n);
    for (size_t i = 0; i < n && held >= free_mark(d); i++) {
        held -= h[i].queued < held ? h[i].queued : held;
        echod_conn_cut_on(d, h[i].side, h[i].c, "shed for memory");
        cut++;
    }
    free(h);
    d->shed_memory += cut;
    if (cut)
        ratelog_say(&d->logs[LOG_MEMORY], iomux_loop_now(d->loop),
                    "shed %zu connections for memory (%zu bytes held, --max-buffered %zu; %" PRIu64
                    " shed in all)",
                    cut, d->buffered_bytes, d->max_buffered, d->shed_memory);
}

static void on_shed_check(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct echod *d = data;
    d->budget.timer = 0;
    echod_budget_check(d);
    if (!d->budget.full_since)
        return;
    shed(d);
    echod_budget_check(d);
    /* Still full: the holders left are reading, however slowly, or hold
       nothing alone. Look again after another grace period. */
    if (d->budget.full_since && !d->budget.timer)
        arm_shed_check(d);
}
