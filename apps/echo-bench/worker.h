/* SPDX-License-Identifier: MIT */
/*
 * worker.h - one echo-bench thread: a loop, its share of the connections,
 * and its own statistics. Threads share nothing but the read-only options
 * and pattern and the run's timeline in `struct bench_shared`.
 */
#ifndef ECHO_BENCH_WORKER_H
#define ECHO_BENCH_WORKER_H

#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>

#include <iomux/net.h>

#include "bench_args.h"
#include "hdr.h"
#include "interval.h"
#include "pattern.h"
#include "sockopt.h"
#include "wake.h"

/* What main() tells the workers. The timeline is written once, before
   `go` is set (release); workers read it after seeing `go` (acquire). */
struct bench_shared {
    const struct bench_options *opt;
    const struct pattern *pattern;
    struct iomux_addr addr;
    unsigned total_conns;      /* traffic connections over all workers */
    uint64_t interval_ns;      /* open loop: between one connection's messages */
    struct sock_tuning tuning; /* what to set on each socket (bench_tuning()) */
    int tune;                  /* 0: nothing to set, no system call */
    atomic_uint connects_done; /* connects finished, well or badly */
    atomic_uint connects_ok;   /* connects that succeeded */
    atomic_int go;             /* 1: traffic may start (timeline is set) */
    atomic_int abort_run;      /* 1: stop now (a fatal error elsewhere) */
    uint64_t t_start_ns;       /* traffic starts (warm-up begins) */
    uint64_t t_measure_ns;     /* measurement window: [t_measure, t_end) */
    uint64_t t_end_ns;
    uint64_t report_ns;     /* a line per interval this long (interval.h); 0: none */
    int report_json;        /* those lines in JSON on stdout, else text on stderr */
    int report_quiet;       /* none printed: intervals only for --slo's knee */
    struct hdrlog *hdr_log; /* --hdr-log (hdr_log.h), main() only; NULL: none */
    int hdr_log_errno;      /* the first failed write to it, 0 if none */
};

struct bench_conn;
struct hdrlog;
struct udp_flow;

struct worker {
    struct bench_shared *shared;
    unsigned index;
    struct iomux_loop *loop;
    struct bench_conn *conns; /* traffic connections, then idle ones */
    unsigned n_conns;         /* traffic connections of this worker */
    unsigned n_idle;          /* idle connections of this worker */
    unsigned first_id;        /* global number of conns[0] */
    unsigned id_stride;       /* global ids are first_id + i * id_stride */
    unsigned n_started;       /* connects started (pacing) */
    uint64_t connect_t0_ns;
    int started;      /* traffic started on this worker */
    struct wake wake; /* open loop: wakes the loop at the next due time */
    int fatal;        /* the worker could not run at all */

    /* Results, owned by the worker; main() reads them after the join. */
    struct hdr hist;
    uint64_t messages; /* echoes completed inside the window */
    uint64_t bytes;    /* bytes echoed back inside the window */
    uint64_t errors;
    uint64_t connect_failures;
    uint64_t ports_out;   /* connects that found no local port (EADDRNOTAVAIL) */
    uint64_t idle_closed; /* idle connections the server closed */
    uint64_t outstanding; /* messages sent and still unanswered at the end */
    uint64_t timed_out;   /* messages that waited longer than --timeout */
    uint64_t max_wait_ns; /* the longest wait, answered or not, whole run */
    /* Open loop: how late each message due in the window was released for
       sending, and the messages due that the sockets had not taken. */
    struct hdr *lag;    /* allocated with --rate only: 216 KiB */
    uint64_t scheduled; /* messages released over the whole run */
    uint64_t unsent;
    uint64_t retransmits;   /* TCP_INFO tcpi_total_retrans, summed at the end */
    unsigned retrans_known; /* connections whose TCP_INFO was read */
    uint64_t never_read_min, never_read_max, never_read_sum; /* bytes taken */
    /* --udp (udp_worker.c) */
    struct udp_flow *flows;
    uint64_t lost; /* datagrams never answered (UDP_LOSS_MS) */
    uint64_t late; /* answers that came after being counted lost */
    /* This thread's CPU time inside the measurement window (worker_cpu_*) */
    uint64_t cpu_window_ns;
    uint64_t cpu_mark_ns; /* CPU time when the window opened; 0: not yet */
    char first_error[256];

    /* Latency over time (interval.h); NULL when no lines are printed. */
    struct ival_box *ival;
    struct churn *churn;             /* --churn (churn.h); NULL otherwise */
    struct tls_ctx *tls;             /* --tls: this worker's client context (tls.h) */
    struct tls_session *tls_session; /* --tls-resume: the one to offer next */
    uint64_t tls_handshakes;         /* --tls: completed, whole run */
    uint64_t tls_resumed;            /* of which resumed a session */
    uint64_t in_flight;              /* messages released and not yet complete */

    /* Progress for the once-a-second line, stored with relaxed atomics. */
    atomic_uint_fast64_t progress_messages;
    atomic_uint_fast64_t progress_errors;

    unsigned char read_buf[65536];
};

/* Prepares a worker (allocates its connections); 0 or -errno. */
int worker_init(struct worker *w, struct bench_shared *shared, unsigned index, unsigned n_conns,
                unsigned n_idle, unsigned first_id, unsigned id_stride);

/* The thread's CPU time in the measurement window: call worker_cpu_tick()
   at each turn of the loop (it marks the window's start the first time it
   sees the window open) and worker_cpu_close() when the loop ends. */
void worker_cpu_tick(struct worker *w, uint64_t now);
void worker_cpu_close(struct worker *w);

/* Counts an error and keeps the text of the first one for the report
   (shared by the TCP and UDP workers). */
void worker_error(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void worker_verror(struct worker *w, const char *fmt, va_list ap);

/* Creates w->loop with the --backend option. On failure it records a fatal
   error, stops the whole run and returns -1. */
int worker_open_loop(struct worker *w);

/* Fills shared->tuning and ->tune from the options: TCP_NODELAY "on" is
   what iomux_tcp_connect() sets already, so it costs no call here. */
void bench_tuning(struct bench_shared *shared);

/* Thread body: connects, waits for `go`, runs until t_end, closes all. */
void *worker_main(void *arg);

/* Frees what worker_init() allocated. */
void worker_fini(struct worker *w);

uint64_t bench_now_ns(void);

/* --rate A:B: when message m (over all connections) is due, the rate
   going from A to B over the measured time (A during the warm-up);
   UINT64_MAX if never. And the rate at time t_ns. */
uint64_t ramp_due(const struct bench_shared *s, uint64_t m);
double ramp_rate_at(const struct bench_shared *s, uint64_t t_ns);

/* The open loop's schedule (--rate): when message k of connection or
   flow `id` (whose schedule starts phase_ns after the start) is due, and
   how many of its messages from `from` on are due before the end. */
uint64_t sched_due(const struct bench_shared *s, unsigned id, uint64_t phase_ns, uint64_t k);
uint64_t sched_due_count(const struct bench_shared *s, unsigned id, uint64_t phase_ns,
                         uint64_t from);

/* Sleeps until bench_now_ns() reaches deadline_ns. */
void bench_sleep_until(uint64_t deadline_ns);

#endif /* ECHO_BENCH_WORKER_H */
