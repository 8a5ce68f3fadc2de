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
#include "histogram.h"
#include "pattern.h"
#include "udp_worker.h"
#include "worker.h"

static const char progname[] = "echo-bench";

/* Set by SIGINT/SIGTERM: end the run early, but still report it. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int signo)
{
    (void)signo;
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

static void sleep_until(uint64_t deadline_ns)
{
    uint64_t now = bench_now_ns();
    if (deadline_ns <= now)
        return;
    uint64_t d = deadline_ns - now;
    struct timespec ts = {.tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Sums the workers' progress counters. */
static void progress_totals(struct worker **w, unsigned n, uint64_t *msgs, uint64_t *errs)
{
    *msgs = 0;
    *errs = 0;
    for (unsigned i = 0; i < n; i++) {
        *msgs += atomic_load_explicit(&w[i]->progress_messages, memory_order_relaxed);
        *errs += atomic_load_explicit(&w[i]->progress_errors, memory_order_relaxed);
    }
}

struct totals {
    struct histogram hist;
    uint64_t messages, bytes, errors, connect_failures, idle_closed;
    uint64_t lost, late;             /* --udp */
    uint64_t nr_min, nr_max, nr_sum; /* --never-read: bytes taken per conn */
    unsigned nr_conns;
    int fatal;
    const char *first_error;
    double window_s;
    double cpu_s;      /* the workers' CPU time inside the window */
    unsigned nthreads; /* workers that ran */
    unsigned cpus;     /* CPUs this process may run on */
};

/* CPUs the threads can use: with more threads than that, they share them. */
static unsigned usable_cpus(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* The share of the CPU time its threads could have had that the load
   generator used: one CPU per thread, up to the CPUs it may run on. */
static double busy_share(const struct totals *t)
{
    unsigned lanes = t->nthreads < t->cpus ? t->nthreads : t->cpus;
    double room = t->window_s * lanes;
    return room > 0 ? t->cpu_s / room : 0.0;
}

static double cpu_us_per_msg(const struct totals *t)
{
    return t->messages ? t->cpu_s * 1e6 / (double)t->messages : 0.0;
}

/* Above this, the load generator is the bottleneck, and messages/s says
   more about it than about the server. */
#define BUSY_LIMIT 0.95

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static const char *mode_name(const struct bench_options *o)
{
    if (o->never_read)
        return "never-read";
    return o->rate ? "open" : "closed";
}

static void report_json(const struct bench_options *o, const char *backend, unsigned idle,
                        const struct totals *t)
{
    const struct histogram *h = &t->hist;
    printf("{\"connect\":");
    json_string(o->connect);
    printf(",\"backend\":");
    json_string(backend);
    printf(",\"mode\":\"%s\",\"conns\":%u,\"idle\":%u,\"threads\":%u,\"size\":%llu,"
           "\"depth\":%u,\"rate\":%llu,\"duration_s\":%.3f,\"messages\":%llu,"
           "\"messages_per_s\":%.1f,\"bytes\":%llu,\"mb_per_s\":%.3f,",
           mode_name(o), o->conns, idle, o->threads, (unsigned long long)o->size, o->depth,
           (unsigned long long)o->rate, t->window_s, (unsigned long long)t->messages,
           t->window_s > 0 ? (double)t->messages / t->window_s : 0.0, (unsigned long long)t->bytes,
           t->window_s > 0 ? (double)t->bytes / t->window_s / 1e6 : 0.0);
    printf("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f,"
           "\"mean\":%.1f},",
           us(histogram_percentile(h, 50)), us(histogram_percentile(h, 90)),
           us(histogram_percentile(h, 99)), us(histogram_percentile(h, 99.9)), us(h->max),
           histogram_mean(h) / 1000.0);
    if (o->udp)
        printf("\"transport\":\"udp\",\"lost\":%llu,\"late\":%llu,", (unsigned long long)t->lost,
               (unsigned long long)t->late);
    if (o->never_read)
        printf("\"never_read_bytes\":{\"min\":%llu,\"max\":%llu,\"mean\":%.0f},",
               (unsigned long long)(t->nr_conns ? t->nr_min : 0), (unsigned long long)t->nr_max,
               t->nr_conns ? (double)t->nr_sum / t->nr_conns : 0.0);
    printf("\"cpu_s\":%.3f,\"cpu_us_per_msg\":%.3f,\"busy\":%.3f,\"cpus\":%u,", t->cpu_s,
           cpu_us_per_msg(t), busy_share(t), t->cpus);
    printf("\"connect_failures\":%llu,\"errors\":%llu,\"idle_closed\":%llu,\"first_error\":",
           (unsigned long long)t->connect_failures, (unsigned long long)t->errors,
           (unsigned long long)t->idle_closed);
    if (t->first_error != NULL)
        json_string(t->first_error);
    else
        printf("null");
    printf("}\n");
}

/* Latency for people: microseconds below 10 ms, milliseconds above. */
static void print_latency(const char *label, uint64_t ns)
{
    if (ns < 10000000u)
        printf("  %s %.1f us", label, us(ns));
    else
        printf("  %s %.2f ms", label, (double)ns / 1e6);
}

static void report_text(const struct bench_options *o, const char *backend, unsigned idle,
                        const struct totals *t)
{
    const struct histogram *h = &t->hist;
    printf("echo-bench: %s, %u %s", o->connect, o->conns, o->udp ? "UDP flow(s)" : "connection(s)");
    if (idle)
        printf(" + %u idle", idle);
    printf(", %llu-byte messages, ", (unsigned long long)o->size);
    if (o->never_read)
        printf("never reading");
    else if (o->rate)
        printf("open loop at %llu msg/s", (unsigned long long)o->rate);
    else
        printf("closed loop, depth %u", o->depth);
    printf(", %u thread(s), backend %s, %.2f s measured\n", o->threads, backend, t->window_s);
    if (o->never_read) {
        printf("server took    %.0f bytes per connection before pushing back (min %llu, max "
               "%llu)\n",
               t->nr_conns ? (double)t->nr_sum / t->nr_conns : 0.0,
               (unsigned long long)(t->nr_conns ? t->nr_min : 0), (unsigned long long)t->nr_max);
    } else {
        double w = t->window_s > 0 ? t->window_s : 1;
        printf("messages       %llu (%.0f/s)\n", (unsigned long long)t->messages,
               (double)t->messages / w);
        printf("throughput     %.2f MB/s echoed\n", (double)t->bytes / w / 1e6);
        printf("latency      ");
        print_latency("p50", histogram_percentile(h, 50));
        print_latency("p90", histogram_percentile(h, 90));
        print_latency("p99", histogram_percentile(h, 99));
        print_latency("p99.9", histogram_percentile(h, 99.9));
        print_latency("max", h->max);
        printf("\n");
    }
    if (o->udp)
        printf("datagrams lost %llu (no answer within %u ms), late %llu\n",
               (unsigned long long)t->lost, UDP_LOSS_MS, (unsigned long long)t->late);
    printf("echo-bench CPU %.2f s in %.2f s, %u thread(s) on %u CPU(s): %.0f%% busy", t->cpu_s,
           t->window_s, t->nthreads, t->cpus, busy_share(t) * 100);
    if (t->messages)
        printf(", %.2f us per message", cpu_us_per_msg(t));
    /* The open loop polls through the last millisecond before each due
       time, so there being busy says nothing about being at the limit. */
    printf(o->rate ? " (the open loop polls for its due times)\n" : "\n");
    if (!o->rate && !o->never_read && busy_share(t) >= BUSY_LIMIT)
        printf("note: echo-bench was at its limit; the messages/s may be its own, not the "
               "server's (more --threads, or other CPUs, would tell)\n");
    printf("connect failures %llu, errors %llu", (unsigned long long)t->connect_failures,
           (unsigned long long)t->errors);
    if (idle)
        printf(", idle connections closed by the server %llu", (unsigned long long)t->idle_closed);
    printf("\n");
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

    /* Wait for every connect to finish, well or badly; bounded, and a
       paced connect phase gets the time its pace needs. */
    unsigned total = o.conns + idle;
    uint64_t limit_ns = 10000000000u;
    if (o.connect_rate)
        limit_ns += (uint64_t)total * 1000000000u / o.connect_rate;
    uint64_t t0 = bench_now_ns();
    while (started == o.threads && !atomic_load(&shared.abort_run) && !interrupted &&
           atomic_load(&shared.connects_done) < total && bench_now_ns() - t0 < limit_ns)
        sleep_until(bench_now_ns() + 2000000u);

    uint64_t now = bench_now_ns();
    shared.t_start_ns = now;
    shared.t_measure_ns = now + o.warmup_us * 1000u;
    shared.t_end_ns = shared.t_measure_ns + o.duration_us * 1000u;
    atomic_store_explicit(&shared.go, 1, memory_order_release);

    int tty = isatty(STDERR_FILENO);
    uint64_t next_report = now + 1000000000u;
    uint64_t last_msgs = 0;
    while (started == o.threads && !atomic_load(&shared.abort_run) &&
           bench_now_ns() < shared.t_end_ns) {
        if (interrupted) {
            atomic_store(&shared.abort_run, 1);
            break;
        }
        uint64_t wake = next_report < shared.t_end_ns ? next_report : shared.t_end_ns;
        /* Short naps, so an aborted run ends promptly. */
        if (wake > bench_now_ns() + 50000000u)
            wake = bench_now_ns() + 50000000u;
        sleep_until(wake);
        /* The report time moves on even when nothing is printed: left
           behind, it would turn these naps into a spin on the clock that
           takes the workers' CPU. */
        if (bench_now_ns() >= next_report) {
            if (tty) {
                uint64_t msgs, errs;
                progress_totals(workers, started, &msgs, &errs);
                double t = (double)(next_report - shared.t_start_ns) / 1e9;
                fprintf(stderr, "%s: %3.0f s%s  %llu msg/s  errors %llu\n", progname, t,
                        next_report <= shared.t_measure_ns ? " (warm-up)" : "",
                        (unsigned long long)(msgs - last_msgs), (unsigned long long)errs);
                last_msgs = msgs;
            }
            next_report += 1000000000u;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    uint64_t end = bench_now_ns();
    if (end > shared.t_end_ns)
        end = shared.t_end_ns;

    struct totals t;
    memset(&t, 0, sizeof t);
    histogram_init(&t.hist);
    t.nr_min = UINT64_MAX;
    t.cpus = usable_cpus();
    t.window_s = end > shared.t_measure_ns ? (double)(end - shared.t_measure_ns) / 1e9 : 0.0;
    for (unsigned i = 0; i < started; i++) {
        struct worker *w = workers[i];
        histogram_merge(&t.hist, &w->hist);
        t.messages += w->messages;
        t.bytes += w->bytes;
        t.errors += w->errors;
        t.connect_failures += w->connect_failures;
        t.idle_closed += w->idle_closed;
        t.cpu_s += (double)w->cpu_window_ns / 1e9;
        t.nthreads++;
        t.lost += w->lost;
        t.late += w->late;
        t.fatal |= w->fatal;
        if (w->never_read_min < t.nr_min)
            t.nr_min = w->never_read_min;
        if (w->never_read_max > t.nr_max)
            t.nr_max = w->never_read_max;
        t.nr_sum += w->never_read_sum;
        if (t.first_error == NULL && w->first_error[0] != '\0')
            t.first_error = w->first_error;
    }
    if (o.never_read)
        t.nr_conns = o.conns - (unsigned)t.connect_failures - (unsigned)t.errors;

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
    return status;
}
