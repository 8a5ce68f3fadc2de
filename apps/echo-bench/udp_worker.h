/* SPDX-License-Identifier: MIT */
/*
 * udp_worker.h - echo-bench --udp: one thread's datagram flows.
 *
 * Datagram echo semantics: every message is one datagram of --size bytes,
 * answered by one datagram with the same bytes. A flow is a UDP socket
 * connected to the server (so only the server's replies reach it) keeping
 * --depth datagrams in flight. A reply is matched to its request by a
 * 16-byte header (flow, slot, sequence number) and every byte is checked;
 * replies may come back in any order, as UDP allows. A datagram not
 * answered within UDP_LOSS_MS is counted as lost and replaced, so loss
 * slows a flow down but never stalls it. With --rate the flows follow the
 * open loop's schedule instead, latency counted from the scheduled time.
 */
#ifndef ECHO_BENCH_UDP_WORKER_H
#define ECHO_BENCH_UDP_WORKER_H

#include "worker.h"

/* Bytes of every datagram taken by the header; --size must be at least this. */
#define UDP_HEADER_SIZE 16u
/* A datagram unanswered this long is lost. */
#define UDP_LOSS_MS 1000u

/* Allocates the worker's flows (after worker_init()); 0 or -ENOMEM. */
int udp_worker_init(struct worker *w);

/* Thread body for --udp, in place of worker_main(). */
void *udp_worker_main(void *arg);

/* Frees what udp_worker_init() allocated. */
void udp_worker_fini(struct worker *w);

#endif /* ECHO_BENCH_UDP_WORKER_H */
