/* SPDX-License-Identifier: MIT */
/*
 * spin.h - when the io_uring engine receives by trying each client's socket
 * instead of waiting to be told it has data (--spin-receive auto). A pure
 * function, so that tests/test_batch.c checks the policy on any kernel.
 *
 * On loopback the client's send() runs our socket's receive path on the
 * client's CPU, including the callback that tells us about the data: for a
 * multishot receive, io_uring's poll callback and the task work it queues,
 * which cost the client more than epoll's callback does (perf: 5.9 against
 * 2.5 samples per 1,000 messages at 10 clients and 16 KiB). When echod's
 * CPU is saturated anyway, the client is the other bottleneck, so the
 * engine stops arming receives: it submits a non-blocking receive for each
 * client on every turn and never sleeps, and a send into our socket wakes
 * nobody. Each turn costs one receive per client, so only with few clients.
 */
#ifndef ECHOD_SPIN_H
#define ECHOD_SPIN_H

#include <stdbool.h>
#include <stdint.h>

enum {
    SPIN_MAX_CONNS = 32,       /* more, and the turns that find nothing cost too much */
    SPIN_START_PERMILLE = 900, /* busy for this share of an epoch: start spinning */
    SPIN_STOP_PERMILLE = 750,  /* spinning, and busy for less: stop */
};

/*
 * Whether to spin in the next epoch. `busy_permille` is the share of the
 * last epoch echod's CPU did work: its CPU time, less the turns that found
 * nothing while it spins and the waits of --busy-poll (waiting, not work).
 * The gap between the two thresholds keeps it from switching every epoch.
 */
static inline bool spin_next(bool spinning, unsigned busy_permille, uint64_t conns)
{
    if (conns == 0 || conns > SPIN_MAX_CONNS)
        return false;
    return busy_permille >= (spinning ? SPIN_STOP_PERMILLE : SPIN_START_PERMILLE);
}

#endif
