/* SPDX-License-Identifier: MIT */
/*
 * test_batch.c - the io_uring engine's batched-wait policy (apps/echod/
 * batch.h): how many receives it waits for and how long at least. The
 * end-to-end test_batch_wait sees that batches happen and every byte comes
 * back; only here can the minimum wait's length be checked, since the
 * kernel does not say how long it waited.
 *
 * Also the policy of --spin-receive auto (apps/echod/spin.h): when the
 * engine starts and stops spinning. The end-to-end test_spin_receive runs
 * the spinning engine itself (--spin-receive on); whether a given load
 * saturates echod depends on the machine, so the decision is checked here.
 */
#include "check.h"

#include "batch.h"
#include "spin.h"

static void test_want_examples(void)
{
    CHECK_EQ_U64(batch_want(0, 100), 0);   /* a lull: no batch */
    CHECK_EQ_U64(batch_want(1, 1), 0);     /* a lone client */
    CHECK_EQ_U64(batch_want(40, 3), 0);    /* fewer than 4 active */
    CHECK_EQ_U64(batch_want(7, 100), 7);   /* no more than the last batch */
    CHECK_EQ_U64(batch_want(50, 100), 25); /* a quarter of the active */
    CHECK_EQ_U64(batch_want(10, 10), 2);   /* 10 clients (S4) */
    CHECK_EQ_U64(batch_want(1000, 10000), BATCH_MAX);
}

/* Over a grid, the rule as properties rather than the formula again: no
   more than any of its three bounds, and equal to one of them (the least,
   so no smaller than needed). Stops at the first violation. */
static void test_want_rule(void)
{
    for (unsigned last = 0; last <= 300; last++)
        for (unsigned active = 0; active <= 2000; active += 7) {
            unsigned want = batch_want(last, active);
            if (!CHECK(want <= last && want <= active / 4 && want <= BATCH_MAX) ||
                !CHECK(want == last || want == active / 4 || want == BATCH_MAX)) {
                fprintf(stderr, "  at last %u, active %u: want %u\n", last, active, want);
                return;
            }
        }
}

static void test_min_wait_examples(void)
{
    CHECK_EQ_U64(batch_min_wait_us(200, BATCH_FULL), 200); /* a full batch: all of it */
    CHECK_EQ_U64(batch_min_wait_us(200, BATCH_MAX), 200);  /* never more */
    CHECK_EQ_U64(batch_min_wait_us(200, 8), 100);          /* half a batch: half */
    CHECK_EQ_U64(batch_min_wait_us(200, 2), 25);           /* 2 of 16 */
    CHECK_EQ_U64(batch_min_wait_us(1000, 4), 250);
    CHECK_EQ_U64(batch_min_wait_us(1, 2), 1); /* rounds to 0: 1, not "no minimum" */
    CHECK_EQ_U64(batch_min_wait_us(7, 1), 1);
}

/* For every --batch-wait the option accepts (1..1000) and every batch:
   at least 1 us, at most --batch-wait, growing with the batch, and the
   whole of --batch-wait from BATCH_FULL on. Stops at the first violation. */
static void test_min_wait_rule(void)
{
    for (unsigned wait = 1; wait <= 1000; wait++) {
        unsigned prev = 1;
        for (unsigned want = 2; want <= BATCH_MAX; want++) {
            unsigned us = batch_min_wait_us(wait, want);
            if (!CHECK_U64(us, >=, prev) || !CHECK_U64(us, <=, wait) ||
                (want >= BATCH_FULL && !CHECK_EQ_U64(us, wait)))
                return;
            prev = us;
        }
    }
}

static void test_spin_examples(void)
{
    CHECK(!spin_next(false, 899, 10));                 /* not yet saturated */
    CHECK(spin_next(false, 900, 10));                  /* saturated: start */
    CHECK(spin_next(true, 750, 10));                   /* still busy enough: go on */
    CHECK(!spin_next(true, 749, 10));                  /* mostly finding nothing: stop */
    CHECK(!spin_next(false, 1000, 0));                 /* nobody to receive from */
    CHECK(!spin_next(true, 1000, SPIN_MAX_CONNS + 1)); /* a crowd: every turn too long */
    CHECK(spin_next(false, 1000, SPIN_MAX_CONNS));
}

/* Over a grid: it spins only with 1..SPIN_MAX_CONNS clients; starting
   needs more than going on (the gap that stops it switching every epoch);
   and more busy never means less spinning. */
static void test_spin_rule(void)
{
    for (unsigned conns = 0; conns <= 2 * SPIN_MAX_CONNS; conns++)
        for (unsigned busy = 0; busy <= 1000; busy++) {
            bool start = spin_next(false, busy, conns), keep = spin_next(true, busy, conns);
            bool ok = (conns >= 1 && conns <= SPIN_MAX_CONNS) || (!start && !keep);
            ok = ok && (!start || keep);
            ok = ok && (busy == 0 || !spin_next(false, busy - 1, conns) || start);
            ok = ok && (busy == 0 || !spin_next(true, busy - 1, conns) || keep);
            if (!CHECK(ok)) {
                fprintf(stderr, "  at busy %u, conns %u: start %d, keep %d\n", busy, conns, start,
                        keep);
                return;
            }
        }
    /* The gap is there: some load keeps spinning that would not start it. */
    CHECK(spin_next(true, SPIN_STOP_PERMILLE, 1) && !spin_next(false, SPIN_STOP_PERMILLE, 1));
}

int main(void)
{
    test_want_examples();
    test_want_rule();
    test_min_wait_examples();
    test_min_wait_rule();
    test_spin_examples();
    test_spin_rule();
    return check_exit();
}
