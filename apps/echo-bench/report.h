/* SPDX-License-Identifier: MIT */
/*
 * report.h - echo-bench's report: the workers' results summed into
 * struct totals, then printed as text or as one JSON object.
 */
#ifndef ECHO_BENCH_REPORT_H
#define ECHO_BENCH_REPORT_H

#include <stdint.h>

#include "bench_args.h"
#include "churn.h"
#include "hdr.h"

struct worker;

struct totals {
    struct hdr hist;
    uint64_t messages, bytes, errors, connect_failures, idle_closed;
    uint64_t outstanding, timed_out; /* see struct worker */
    uint64_t ports_out;
    uint64_t max_wait_ns;
    struct hdr lag; /* open loop: schedule lag */
    uint64_t scheduled, unsent;
    uint64_t retransmits;                                    /* TCP, summed over connections */
    unsigned retrans_known; /* connections that told them */ /* open loop: messages due, not sent */
    uint64_t lost, late;                                     /* --udp */
    uint64_t nr_min, nr_max, nr_sum; /* --never-read: bytes taken per conn */
    unsigned nr_conns;
    /* --churn: connect latency (connects started in the window), counts
       over the whole run */
    struct hdr connect_hist;
    uint64_t churn_attempts, churn_connected, churn_finished;
    uint64_t churn_failures[CHURN_KINDS];
    uint64_t tls_handshakes, tls_resumed; /* --tls, whole run */
    int fatal;
    const char *first_error;
    double window_s;
    double cpu_s;      /* the workers' CPU time inside the window */
    unsigned nthreads; /* workers that ran */
    unsigned cpus;     /* CPUs this process may run on */
};

/* Sums the workers' results; window_s is the measured time. */
void totals_collect(struct totals *t, struct worker **w, unsigned n, const struct bench_options *o,
                    double window_s);

void report_json(const struct bench_options *o, const char *backend, unsigned idle,
                 const struct totals *t);
void report_text(const struct bench_options *o, const char *backend, unsigned idle,
                 const struct totals *t);

#endif /* ECHO_BENCH_REPORT_H */
