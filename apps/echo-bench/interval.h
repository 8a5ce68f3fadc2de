/* SPDX-License-Identifier: MIT */
/*
 * interval.h - latency over time (--interval, --hdr-log): each worker
 * records every completion into a private histogram as well, and at each
 * interval boundary hands it to main() through a one-slot mailbox,
 * without a lock:
 *
 *   worker: at a boundary it counts the interval as ended; on that turn of
 *       its loop (or a later one, if main() has not emptied the mailbox
 *       yet) it swaps its `cur` histogram with the empty mailbox one,
 *       stores the count of ended intervals in `seq` (release) and clears
 *       the new `cur`, which main() has finished with.
 *   main(): sees `seq` move (acquire), merges the mailbox histogram into
 *       the interval's total and stores `seq` in `taken` (release), which
 *       frees the mailbox for the worker's next swap.
 *
 * The per-message cost is one hdr_record() more; the swap, a
 * pointer exchange and one clear, happens once per interval per thread.
 * A mailbox that main() was too slow to empty makes the worker keep
 * recording into `cur`: those completions show in the next line rather
 * than being lost.
 */
#ifndef ECHO_BENCH_INTERVAL_H
#define ECHO_BENCH_INTERVAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hdr.h"

struct worker;
struct bench_shared;

struct ival_box {
    struct hdr *cur;            /* the worker records here */
    struct hdr *box;            /* published; main() reads it while seq > taken */
    uint64_t box_outstanding;   /* messages in flight when it was published */
    uint64_t ended;             /* worker: intervals ended so far */
    uint64_t next_ns;           /* worker: when the current interval ends */
    uint64_t period_ns;         /* --interval */
    atomic_uint_fast64_t seq;   /* ended intervals the mailbox covers */
    atomic_uint_fast64_t taken; /* seq main() has merged */
    struct hdr bufs[2];
};

/* Empties the mailbox. */
void ival_init(struct ival_box *b);

/* Worker: traffic starts; the first interval ends at t_start + period. */
void ival_start(struct ival_box *b, const struct bench_shared *s);

/* Worker, every turn of its loop: ends the intervals `now` is past and
   publishes when the mailbox is free. Returns when the current interval
   ends, for the loop's wait. */
uint64_t ival_tick(struct ival_box *b, uint64_t now, uint64_t outstanding);

/* main(): waits for the end of the run (t_end, an abort, or *interrupted,
   which aborts it), printing a line per interval when s->report_ns is
   set: text on stderr, or JSON lines on stdout with --json, and writing
   each interval to s->hdr_log when there is one. */
void ival_run(struct bench_shared *s, struct worker **w, unsigned n,
              volatile sig_atomic_t *interrupted);

/* main(), once the workers are joined: the last, partial interval up to
   end_ns (what the workers recorded after the last line). */
void ival_final(struct bench_shared *s, struct worker **w, unsigned n, uint64_t end_ns);

/* --slo: the rate offered (the ramp's, mid-interval) in the first
   measured interval from which every interval's p99 exceeded the SLO to
   the end, and when that interval ended (seconds from the start);
   returns 0 if there is none. */
int ival_knee(double *rate, double *t_s);

#endif /* ECHO_BENCH_INTERVAL_H */
