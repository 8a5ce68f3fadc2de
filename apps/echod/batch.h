/* SPDX-License-Identifier: MIT */
/*
 * batch.h - the io_uring engine's batched waits (--batch-wait): how many
 * receives it asks the kernel to wait for, and how long at least. Pure
 * functions, so that tests/test_batch.c checks the policy on any kernel.
 *
 * Each wake-up is paid for twice: by the client, whose send wakes us (an
 * inter-processor interrupt), and by us. Under load with many clients, a
 * plain wait wakes for every single receive; measured at 100 clients, 1.03
 * receives per wake-up. So the engine asks the kernel to wake it for a
 * batch (the wait's minimum count): with DEFER_TASKRUN, receives before
 * that only queue work, and nobody is woken. If the batch is not full
 * after the minimum wait (kernel 6.12), the kernel wakes it for what there
 * is.
 */
#ifndef ECHOD_BATCH_H
#define ECHOD_BATCH_H

enum { BATCH_MAX = 64, BATCH_FULL = 16 };

/*
 * How full: no more than the last batch had, so a lone client (or a lull)
 * waits for one as before; and no more than a quarter of the clients that
 * are active, so the clients held back are fewer than those still sending
 * work (with 10 clients, waiting for all of them would make the load
 * generator wait for us). Below 2 there is no batch to wait for.
 */
static inline unsigned batch_want(unsigned last_recvs, unsigned active)
{
    unsigned want = last_recvs;
    if (want > active / 4)
        want = active / 4;
    return want < BATCH_MAX ? want : BATCH_MAX;
}

/*
 * How long at least, in microseconds: the time a batch takes to arrive
 * grows with its size, so a batch of BATCH_FULL or more is waited for
 * batch_wait_us at most, and a smaller one for its share of that. Every
 * wake-up avoided is a sleep and a wake less (in a VM, about 20 us of our
 * CPU and an interrupt the client pays for), so under load large batches
 * are worth a longer wait. Never 0: to the kernel that is no minimum, and
 * the wait would last until the batch is full.
 */
static inline unsigned batch_min_wait_us(unsigned batch_wait_us, unsigned want)
{
    unsigned share = want < BATCH_FULL ? want : BATCH_FULL;
    unsigned us = batch_wait_us * share / BATCH_FULL;
    return us ? us : 1;
}

#endif
