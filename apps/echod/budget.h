/* SPDX-License-Identifier: MIT */
/*
 * budget.h - one memory budget for the whole server (--max-buffered):
 * however many clients send and never read, echod holds at most that
 * many bytes for them in user space.
 *
 * Two levels. Each connection's queue is bounded by --high-water, as
 * before; the budget bounds their sum. What counts: the chunks of queued
 * echoes, the io_uring engine's receive buffers held by its sends, and
 * the batch of datagrams the UDP echo receives before sending them back
 * (fixed: UDP never queues). Each engine counts what it holds where
 * chunks and buffers are taken and given back (engine.h: buffered());
 * the policy sums engines, so that workers, each with its own engine and
 * pool, can later add their share without a shared counter on the
 * per-message path.
 *
 * At the budget (its full mark, below it by a chunk per connection, at
 * least an eighth and at most half of it, so that the reads under way
 * fit: engine.h's engine_budget_mark()):
 *   1. Every connection with echoes waiting is held: it is not read from
 *      until its client has taken everything queued for it (engine.h:
 *      hold()). A client that reads its echoes empties its queue within
 *      a round trip and is read from again at once; one that does not
 *      stays held. An engine also holds, by itself, a connection that
 *      queues more while the budget is full (engine_config.buffered_limit).
 *   2. If the budget is still full --shed-after seconds later, the
 *      largest holders whose clients took nothing for half that time are
 *      closed ("shed for memory", counted and logged rate-limited) until
 *      a quarter of the budget is free. A client that keeps reading,
 *      however slowly, is never shed.
 */
#ifndef ECHOD_BUDGET_H
#define ECHOD_BUDGET_H

#include <stddef.h>
#include <stdint.h>

struct echod;

/* The policy's state of the budget, inside struct echod. */
struct echod_budget {
    size_t fixed;         /* bytes held outside engines (UDP's batch) */
    uint64_t full_since;  /* loop ms the budget filled; 0 while it is not full */
    uint64_t timer;       /* the shed check, armed while full */
    uint64_t shed_rounds; /* times shedding ran */
};

/* What the engine may hold: its share of --max-buffered (0: no budget).
   Call once UDP is set up, before the engine starts. */
size_t echod_budget_engine_share(struct echod *d);

/* Looks at what is held now, after a turn of the engine: cheap (a few
   counters) unless the budget has just filled. */
void echod_budget_check(struct echod *d);

/* The bytes held now (engines and fixed), stored in d->buffered_bytes. */
size_t echod_budget_buffered(struct echod *d);

#endif /* ECHOD_BUDGET_H */
