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
#include "clock.h"
#ifdef ECHO_BENCH_HAVE_ZLIB
#include "hdr_log.h"
#endif
#ifdef IOMUX_HAVE_TLS
#include "tls.h"
#endif
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

/* What main() holds for the run: its options, the workers and their
   threads, and the --hdr-log file. */
struct run {
    struct bench_options o;
    struct bench_shared *shared;
    struct worker **workers;
    pthread_t *tids;
    unsigned started; /* threads running */
    unsigned idle;    /* idle connections, after fit_nofile() */
    const char *backend;
    FILE *hdr_file;
};

/* Lines per interval when asked, or on a terminal once a second (as text:
   --json without --interval keeps stdout to the summary); --slo finds its
   knee in intervals and --hdr-log logs them, printed or not. */
static void plan_intervals(struct bench_shared *s, const struct bench_options *o)
{
    s->report_ns = o->interval_us          ? o->interval_us * 1000u
                   : isatty(STDERR_FILENO) ? 1000000000u
                                           : 0;
    s->report_json = o->interval_us && o->json;
    if ((o->slo_ms || o->hdr_log) && s->report_ns == 0) {
        s->report_ns = 1000000000u;
        s->report_quiet = 1;
    }
}

/* The backend the workers will get, for the report; NULL if no loop can
   be created. */
static const char *probe_backend(const struct bench_options *o)
{
    if (o->backend != NULL && strcmp(o->backend, "auto") != 0)
        return o->backend;
    struct iomux_loop *probe;
    struct iomux_loop_options lo = {.backend = o->backend};
    int rc = iomux_loop_new(&probe, &lo);
    if (rc < 0) {
        fprintf(stderr, "%s: creating the event loop: %s\n", progname, strerror(-rc));
        return NULL;
    }
    const char *name = iomux_loop_backend(probe);
    iomux_loop_free(probe);
    return name;
}

/* Parses the options and prepares everything the workers need before they
   start; returns -1 to go on, or the exit status. */
static int prepare(struct run *r, int argc, char **argv)
{
    char err[256];
    int rc = bench_args_parse(argc, argv, &r->o, err, sizeof err);
    if (rc == BENCH_ARGS_HELP || rc == BENCH_ARGS_VERSION) {
        if (rc == BENCH_ARGS_HELP)
            bench_usage(stdout);
        else
            printf("%s (iomux) %s\n", progname, iomux_version());
        return 0;
    }
    if (rc != BENCH_ARGS_OK) {
        bench_usage_error(err);
        return 2;
    }
    struct bench_shared *s = r->shared;
    const struct bench_options *o = &r->o;
    s->opt = o;
    s->pattern = &pattern;
    s->total_conns = o->conns;
    s->interval_ns = o->rate ? (uint64_t)o->conns * 1000000000u / o->rate : 0;
    bench_tuning(s);
    plan_intervals(s, o);
    rc = resolve(o, &s->addr, err, sizeof err);
    if (rc != 0) {
        if (rc == 2)
            bench_usage_error(err);
        else
            fprintf(stderr, "%s: %s\n", progname, err);
        return rc;
    }
    r->idle = o->idle;
    if (fit_nofile(o, &r->idle) != 0 || (r->backend = probe_backend(o)) == NULL)
        return 1;
    if (o->hdr_log != NULL && (r->hdr_file = fopen(o->hdr_log, "w")) == NULL) {
        fprintf(stderr, "%s: --hdr-log %s: %s\n", progname, o->hdr_log, strerror(errno));
        return 1;
    }
    pattern_init(&pattern, 0x6563686f62656e63ULL); /* "echobenc" */
    atomic_init(&s->connects_done, 0);
    atomic_init(&s->connects_ok, 0);
    atomic_init(&s->go, 0);
    atomic_init(&s->abort_run, 0);
    return -1;
}

/* Allocates and starts worker i; -1 (the run is aborted) if it cannot. */
static int start_worker(struct run *r, unsigned i)
{
    const struct bench_options *o = &r->o;
    /* Connection k goes to worker k % T, so the global number of a
       worker's i-th connection is index + i * T. */
    unsigned n = o->conns / o->threads + (i < o->conns % o->threads);
    unsigned ni = r->idle / o->threads + (i < r->idle % o->threads);
    struct worker *w = malloc(sizeof *w);
    int rc = ENOMEM;
    if (w != NULL && worker_init(w, r->shared, i, n, ni, i, o->threads) == 0 &&
        (!o->udp || udp_worker_init(w) == 0))
        rc = pthread_create(&r->tids[i], NULL, o->udp ? udp_worker_main : worker_main, w);
    if (rc == 0) {
        r->workers[i] = w;
        return 0;
    }
    fprintf(stderr, "%s: %s worker %u: %s\n", progname, rc == ENOMEM ? "allocating" : "starting", i,
            strerror(rc));
    if (w != NULL) {
        udp_worker_fini(w);
        worker_fini(w);
        free(w);
    }
    atomic_store(&r->shared->abort_run, 1);
    return -1;
}

/* Starts the threads with SIGINT and SIGTERM blocked (they inherit the
   mask), so that only main() sees them: Ctrl-C ends the run early with a
   report. Returns -1 if the arrays cannot be allocated. */
static int start_workers(struct run *r)
{
    r->workers = calloc(r->o.threads, sizeof *r->workers);
    r->tids = calloc(r->o.threads, sizeof *r->tids);
    if (r->workers == NULL || r->tids == NULL) {
        fprintf(stderr, "%s: allocating: %s\n", progname, strerror(ENOMEM));
        return -1;
    }
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    while (r->started < r->o.threads && start_worker(r, r->started) == 0)
        r->started++;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return 0;
}

/* Waits for every connect to finish, well or badly (at most
   --connect-timeout plus the time a paced connect phase needs), then sets
   the run's timeline and lets the traffic go. */
static void set_timeline(struct run *r)
{
    const struct bench_options *o = &r->o;
    struct bench_shared *s = r->shared;
    unsigned total = o->conns + r->idle;
    uint64_t limit_ns = o->connect_timeout_us * 1000u;
    if (o->connect_rate)
        limit_ns += (uint64_t)total * 1000000000u / o->connect_rate;
    uint64_t t0 = bench_now_ns();
    while (!o->churn && r->started == o->threads && !atomic_load(&s->abort_run) && !interrupted &&
           atomic_load(&s->connects_done) < total && bench_now_ns() - t0 < limit_ns)
        bench_sleep_until(bench_now_ns() + 2000000u);
    uint64_t now = bench_now_ns();
    s->t_start_ns = now;
    s->t_measure_ns = now + o->warmup_us * 1000u;
    s->t_end_ns = s->t_measure_ns + o->duration_us * 1000u;
    /* Nothing connected: nothing to measure, so the run ends now rather
       than after --warmup and --duration of nothing. */
    if (!o->churn && atomic_load(&s->connects_ok) == 0)
        s->t_measure_ns = s->t_end_ns = now;
#ifdef ECHO_BENCH_HAVE_ZLIB
    /* The log's time 0 is the traffic's start. */
    if (r->hdr_file != NULL &&
        (s->hdr_log = hdrlog_open(r->hdr_file, (double)clock_ns(CLOCK_REALTIME) / 1e9)) == NULL)
        s->hdr_log_errno = errno ? errno : EIO;
#endif
    atomic_store_explicit(&s->go, 1, memory_order_release);
}

/* Flushes and closes the --hdr-log file; -1 (said on stderr) if any write
   to it failed. */
static int close_hdr_log(struct run *r)
{
    if (r->hdr_file == NULL)
        return 0;
    struct bench_shared *s = r->shared;
#ifdef ECHO_BENCH_HAVE_ZLIB
    if (hdrlog_close(s->hdr_log) < 0 && s->hdr_log_errno == 0)
        s->hdr_log_errno = errno;
#endif
    if (fclose(r->hdr_file) != 0 && s->hdr_log_errno == 0)
        s->hdr_log_errno = errno ? errno : EIO;
    r->hdr_file = NULL;
    if (s->hdr_log_errno == 0)
        return 0;
    fprintf(stderr, "%s: --hdr-log %s: writing: %s\n", progname, r->o.hdr_log,
            strerror(s->hdr_log_errno));
    return -1;
}

/* The exit status, with a line on stderr for each reason it is not 0. */
static int exit_status(const struct run *r, const struct totals *t)
{
    const struct bench_options *o = &r->o;
    int status = 0;
    if (interrupted) {
        fprintf(stderr, "%s: interrupted; the report covers %.2f s\n", progname, t->window_s);
        status = 1;
    }
    if (r->started != o->threads || t->fatal || t->errors || t->connect_failures ||
        (!o->never_read && t->messages == 0))
        status = 1;
    if (t->timed_out) {
        fprintf(stderr,
                "%s: %llu message(s) waited longer than --timeout %.3g s (the longest %.2f s; "
                "%llu still unanswered at the end)\n",
                progname, (unsigned long long)t->timed_out, (double)o->timeout_us / 1e6,
                (double)t->max_wait_ns / 1e9, (unsigned long long)t->outstanding);
        status = 1;
    }
    if (t->ports_out)
        ports_ran_out(o, t->ports_out);
    if (status != 0 && t->first_error != NULL)
        fprintf(stderr, "%s: %llu error(s), %llu connect failure(s); first: %s\n", progname,
                (unsigned long long)t->errors, (unsigned long long)t->connect_failures,
                t->first_error);
    else if (status != 0 && !o->never_read && t->messages == 0)
        fprintf(stderr, "%s: no echo completed during the measurement\n", progname);
    return status;
}

static void free_run(struct run *r)
{
    for (unsigned i = 0; i < r->started; i++) {
        udp_worker_fini(r->workers[i]);
        worker_fini(r->workers[i]);
        free(r->workers[i]);
    }
    free(r->workers);
    free(r->tids);
    if (r->hdr_file != NULL)
        fclose(r->hdr_file);
}

int main(int argc, char **argv)
{
    static struct bench_shared shared;
    static struct run r = {.shared = &shared};
    int rc = prepare(&r, argc, argv);
    if (rc >= 0)
        return rc;
    if (start_workers(&r) < 0) {
        free_run(&r);
        return 1;
    }
    set_timeline(&r);
    if (r.started == r.o.threads)
        ival_run(&shared, r.workers, r.started, &interrupted);
    for (unsigned i = 0; i < r.started; i++)
        pthread_join(r.tids[i], NULL);
    uint64_t end = bench_now_ns();
    if (end > shared.t_end_ns)
        end = shared.t_end_ns;
    if (r.started == r.o.threads)
        ival_final(&shared, r.workers, r.started, end);

    static struct totals t; /* three 216 KiB histograms: not on the stack */
    totals_collect(&t, r.workers, r.started, &r.o,
                   end > shared.t_measure_ns ? (double)(end - shared.t_measure_ns) / 1e9 : 0.0);
    if (r.o.json)
        report_json(&r.o, r.backend, r.idle, &t);
    else
        report_text(&r.o, r.backend, r.idle, &t);
    int status = exit_status(&r, &t);
    if (close_hdr_log(&r) < 0)
        status = 1;
    free_run(&r);
#ifdef IOMUX_HAVE_TLS
    tls_library_cleanup(); /* so that leak checkers see only ours */
#endif
    return status;
}
