/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - --metrics: echod's counters as Prometheus text exposition
 * (format 0.0.4) for `GET /metrics` over HTTP/1.1, on a side port of the
 * loop (sideport.c), parsed by http_head.c. One answer per connection,
 * then close.
 */
#ifndef ECHOD_METRICS_H
#define ECHOD_METRICS_H

struct echod;

/* Serves --metrics on the listening socket `fd` (taken) on d's loop; the
   start time it reports is now. 0 or -errno. */
int echod_metrics_start(struct echod *d, int fd);

#endif /* ECHOD_METRICS_H */
