/* SPDX-License-Identifier: MIT */
/*
 * echo-bench - a load generator for echo servers that verifies every byte.
 * main() parses the options, raises the descriptor limit, starts one
 * worker thread per --threads (worker.c does the traffic), sets the run's
 * timeline once every connection is up, prints progress on a terminal,
 * then merges the workers' statistics into one report (text or --json).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <iomux/loop.h>
#include <iomux/net.h>

#include "bench_args.h"
#ifdef IOMUX_HAVE_TLS
#include "tls.h"
#endif
#include "histogram.h"
#include "interval.h"
#include "pattern.h"
#include "report.h"
#include "udp_worker.h"
#include "worker.h"

static const char progname[] = "echo-bench";

/* Set by SIGINT/SIGTERM: end the run early, but still report it. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int signo)
{
    interrupted = 1;
}

/* Shared by all workers and read-only once they start. */
static struct pattern pattern;

/* Descriptors beyond the connections: stdio, the loops' own, slack. */
#define FD_SLACK 64u

/*
 * Raises the soft RLIMIT_NOFILE so that every connection fits. When the
 * hard limit is too low, says so and shrinks the idle connections (the
 * traffic ones are what was asked to be measured); returns -1 if even
 * those do not fit.
 */
static int fit_nofile(const struct bench_options *o, unsigned *idle)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    rlim_t need = (rlim_t)o->conns + *idle + FD_SLACK + 4u * o->threads;
    if (rl.rlim_cur >= need)
        return 0;
    rlim_t want = need < rl.rlim_max ? need : rl.rlim_max;
    struct rlimit nrl = {.rlim_cur = want, .rlim_max = rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &nrl) == 0)
        rl.rlim_cur = want;
    if (rl.rlim_cur >= need)
        return 0;
    rlim_t room =
        rl.rlim_cur > FD_SLACK + 4u * o->threads ? rl.rlim_cur - FD_SLACK - 4u * o->threads : 0;
    if (room < o->conns) {
        fprintf(stderr,
                "%s: RLIMIT_NOFILE: %llu connections need about %llu descriptors, the limit is "
                "%llu\n",
                progname, (unsigned long long)(o->conns + *idle), (unsigned long long)need,
                (unsigned long long)rl.rlim_cur);
        return -1;
    }
    unsigned fit = (unsigned)(room - o->conns);
    fprintf(stderr,
            "%s: RLIMIT_NOFILE: the hard limit is %llu; holding %u idle connections instead "
            "of %u\n",
            progname, (unsigned long long)rl.rlim_max, fit, *idle);
    *idle = fit;
    return 0;
}

/* EADDRNOTAVAIL on connect: the 4-tuples from the source addresses to the
   server ran out of local ports. Says so, with the range that bounds them. */
static void ports_ran_out(const struct bench_options *o, uint64_t n)
{
    char range[64] = "?";
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    unsigned lo, hi;
    if (f != NULL && fscanf(f, "%u %u", &lo, &hi) == 2)
        snprintf(range, sizeof range, "%u-%u, %u ports", lo, hi, hi - lo + 1);
    if (f != NULL)
        fclose(f);
    fprintf(stderr,
            "%s: the local ports ran out: %llu connect(s) failed with EADDRNOTAVAIL; each of the "
            "%u source address(es) has the ports of net.ipv4.ip_local_port_range (%s) per server "
            "address: add more with --source ADDR-ADDR\n",
            progname, (unsigned long long)n, o->source_count ? o->source_count : 1, range);
}

/* Turns --connect into an address: 0, 2 for a usage error or 1 for a
   name that does not resolve, with the reason in err. */
static int resolve(const struct bench_options *o, struct iomux_addr *addr, char *err,
                   size_t errsize)
{
    int unix_path = strncmp(o->connect, "unix:", 5) == 0;
    if (unix_path && o->udp) {
        snprintf(err, errsize, "--udp: needs HOST:PORT, not unix:PATH");
        return 2;
    }
    int rc = unix_path ? iomux_addr_unix(o->connect, addr) : iomux_addr_parse(o->connect, addr);
    if (rc == -EINVAL || rc == -ENAMETOOLONG) {
        snprintf(err, errsize, "--connect: '%s' is not HOST:PORT or unix:PATH%s", o->connect,
                 rc == -ENAMETOOLONG ? " (the path is too long)" : "");
        return 2;
    }
    if (rc < 0) {
        snprintf(err, errsize, "resolving '%s': %s", o->connect,
                 rc == -ENOENT ? "no such host" : strerror(-rc));
        return 1;
    }
    if (o->source_count && addr->ss.ss_family != AF_INET) {
        snprintf(err, errsize, "--source: IPv4 addresses, and --connect '%s' is not IPv4",
                 o->connect);
        return 2;
    }
    if (o->udp && addr->ss.ss_family == AF_INET && o->size > 65507) {
        snprintf(err, errsize, "--size: at most 65507 bytes in an IPv4 datagram");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char err[256];
    struct bench_options o;
    int rc = bench_args_parse(argc, argv, &o, err, sizeof err);
    if (rc == BENCH_ARGS_HELP) {
        bench_usage(stdout);
        return 0;
    }
    if (rc == BENCH_ARGS_VERSION) {
        printf("%s (iomux) %s\n", progname, iomux_version());
        return 0;
    }
    if (rc != BENCH_ARGS_OK) {
        bench_usage_error(err);
        return 2;
    }

    static struct bench_shared shared;
    shared.opt = &o;
    shared.pattern = &pattern;
    shared.total_conns = o.conns;
    shared.interval_ns = o.rate ? (uint64_t)o.conns * 1000000000u / o.rate : 0;
    bench_tuning(&shared);
    /* Lines per interval when asked, or on a terminal once a second (as
       text: --json without --interval keeps stdout to the summary). */
    shared.report_ns = o.interval_us           ? o.interval_us * 1000u
                       : isatty(STDERR_FILENO) ? 1000000000u
                                               : 0;
    shared.report_json = o.interval_us && o.json;
    /* --slo finds its knee in intervals, printed or not. */
    if (o.slo_ms && shared.report_ns == 0) {
        shared.report_ns = 1000000000u;
        shared.report_quiet = 1;
    }
    rc = resolve(&o, &shared.addr, err, sizeof err);
    if (rc != 0) {
        if (rc == 2)
            bench_usage_error(err);
        else
            fprintf(stderr, "%s: %s\n", progname, err);
        return rc;
    }
    unsigned idle = o.idle;
    if (fit_nofile(&o, &idle) != 0)
        return 1;

    /* The backend the workers will get, for the report. */
    const char *backend = o.backend;
    if (backend == NULL || strcmp(backend, "auto") == 0) {
        struct iomux_loop *probe;
        struct iomux_loop_options lo = {.backend = o.backend};
        rc = iomux_loop_new(&probe, &lo);
        if (rc < 0) {
            fprintf(stderr, "%s: creating the event loop: %s\n", progname, strerror(-rc));
            return 1;
        }
        backend = iomux_loop_backend(probe);
        iomux_loop_free(probe);
    }

    pattern_init(&pattern, 0x6563686f62656e63ULL); /* "echobenc" */
    atomic_init(&shared.connects_done, 0);
    atomic_init(&shared.connects_ok, 0);
    atomic_init(&shared.go, 0);
    atomic_init(&shared.abort_run, 0);

    struct worker **workers = calloc(o.threads, sizeof *workers);
    pthread_t *tids = calloc(o.threads, sizeof *tids);
    if (workers == NULL || tids == NULL) {
        fprintf(stderr, "%s: allocating: %s\n", progname, strerror(ENOMEM));
        return 1;
    }
    /* Ctrl-C ends the run early with a report. The workers block the
       signals (they inherit this mask), so only main() sees them. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    unsigned started = 0;
    for (unsigned i = 0; i < o.threads; i++) {
        /* Connection k goes to worker k % T, so the global number of a
           worker's i-th connection is index + i * T. */
        unsigned n = o.conns / o.threads + (i < o.conns % o.threads);
        unsigned ni = idle / o.threads + (i < idle % o.threads);
        workers[i] = malloc(sizeof *workers[i]);
        if (workers[i] == NULL || worker_init(workers[i], &shared, i, n, ni, i, o.threads) != 0 ||
            (o.udp && udp_worker_init(workers[i]) != 0)) {
            fprintf(stderr, "%s: allocating worker %u: %s\n", progname, i, strerror(ENOMEM));
            if (workers[i] != NULL)
                worker_fini(workers[i]);
            free(workers[i]);
            workers[i] = NULL;
            atomic_store(&shared.abort_run, 1);
            break;
        }
        rc = pthread_create(&tids[i], NULL, o.udp ? udp_worker_main : worker_main, workers[i]);
        if (rc != 0) {
            fprintf(stderr, "%s: starting thread %u: %s\n", progname, i, strerror(rc));
            udp_worker_fini(workers[i]);
            worker_fini(workers[i]);
            free(workers[i]);
            workers[i] = NULL;
            atomic_store(&shared.abort_run, 1);
            break;
        }
        started++;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

    /* Wait for every connect to finish, well or badly: at most
       --connect-timeout, plus the time a paced connect phase needs. */
    unsigned total = o.conns + idle;
    uint64_t limit_ns = o.connect_timeout_us * 1000u;
    if (o.connect_rate)
        limit_ns += (uint64_t)total * 1000000000u / o.connect_rate;
    uint64_t t0 = bench_now_ns();
    while (!o.churn && started == o.threads && !atomic_load(&shared.abort_run) && !interrupted &&
           atomic_load(&shared.connects_done) < total && bench_now_ns() - t0 < limit_ns)
        bench_sleep_until(bench_now_ns() + 2000000u);

    uint64_t now = bench_now_ns();
    shared.t_start_ns = now;
    shared.t_measure_ns = now + o.warmup_us * 1000u;
    shared.t_end_ns = shared.t_measure_ns + o.duration_us * 1000u;
    /* Nothing connected: nothing to measure, so the run ends now rather
       than after --warmup and --duration of nothing. */
    if (!o.churn && atomic_load(&shared.connects_ok) == 0)
        shared.t_measure_ns = shared.t_end_ns = now;
    atomic_store_explicit(&shared.go, 1, memory_order_release);

    if (started == o.threads)
        ival_run(&shared, workers, started, &interrupted);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    uint64_t end = bench_now_ns();
    if (end > shared.t_end_ns)
        end = shared.t_end_ns;
    if (started == o.threads)
        ival_final(&shared, workers, started, end);

    struct totals t;
    totals_collect(&t, workers, started, &o,
                   end > shared.t_measure_ns ? (double)(end - shared.t_measure_ns) / 1e9 : 0.0);

    if (o.json)
        report_json(&o, backend, idle, &t);
    else
        report_text(&o, backend, idle, &t);

    int status = 0;
    if (interrupted) {
        fprintf(stderr, "%s: interrupted; the report covers %.2f s\n", progname, t.window_s);
        status = 1;
    }
    if (started != o.threads || t.fatal)
        status = 1;
    if (t.errors || t.connect_failures)
        status = 1;
    if (!o.never_read && t.messages == 0)
        status = 1;
    if (t.timed_out) {
        fprintf(stderr,
                "%s: %llu message(s) waited longer than --timeout %.3g s (the longest %.2f s; "
                "%llu still unanswered at the end)\n",
                progname, (unsigned long long)t.timed_out, (double)o.timeout_us / 1e6,
                (double)t.max_wait_ns / 1e9, (unsigned long long)t.outstanding);
        status = 1;
    }
    if (t.ports_out)
        ports_ran_out(&o, t.ports_out);
    if (status != 0) {
        if (t.first_error != NULL)
            fprintf(stderr, "%s: %llu error(s), %llu connect failure(s); first: %s\n", progname,
                    (unsigned long long)t.errors, (unsigned long long)t.connect_failures,
                    t.first_error);
        else if (!o.never_read && t.messages == 0)
            fprintf(stderr, "%s: no echo completed during the measurement\n", progname);
    }
    for (unsigned i = 0; i < started; i++) {
        udp_worker_fini(workers[i]);
        worker_fini(workers[i]);
        free(workers[i]);
    }
    free(workers);
    free(tids);
#ifdef IOMUX_HAVE_TLS
    tls_library_cleanup(); /* so that leak checkers see only ours */
#endif
    return status;
}
