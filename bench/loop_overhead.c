/* SPDX-License-Identifier: MIT */
/*
 * loop_overhead - what one loop iteration and one dispatched event cost, per
 * backend, as the number of watched fds grows.
 *
 * Each cell of the table watches W socketpair read ends for IOMUX_READ and
 * keeps A of them readable for the whole run: one byte is written into each
 * active pair once and never read, so level-triggered readiness reports it
 * on every iteration. The callbacks only count, so the time measured is the
 * loop itself: the backend's wait (select and poll hand the kernel every
 * watched fd on every call and scan them all afterwards; epoll keeps the
 * interest list in the kernel and returns only the ready ones) plus the
 * core's dispatch. Two shapes per W:
 *   - A = 1: one active fd among W watched. ns/event = ns/iteration, and it
 *     shows the cost of the idle fds: it grows with W on select and poll and
 *     stays flat on epoll.
 *   - A = W: every watched fd active. The scan is amortised over W events;
 *     this is the per-event dispatch cost on a busy loop.
 * No byte is moved during the measurement, so no read() or write() syscall
 * is counted; a real server adds those on top.
 *
 * Where the active fd sits matters for select and poll: Linux registers a
 * wait-queue entry on every fd it scans until it finds the first ready one,
 * so idle fds before the active one cost about three times more than idle
 * fds after it. By default the active fds are the highest-numbered ones
 * (the worst case, and the usual one: new connections get high numbers);
 * --first puts them at the lowest numbers instead.
 *
 * select cannot watch an fd >= FD_SETSIZE (1024). To keep the 1,000-fd cell
 * honest on select, the write ends are moved above FD_SETSIZE and the read
 * ends stay packed below it; if a read end still lands too high, the cell
 * says "n/a (FD_SETSIZE)" instead of measuring something else.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <iomux/loop.h>

static const char *progname = "loop_overhead";

/* One measured cell of the table. */
struct cell {
    const char *backend;
    unsigned watched;
    unsigned active;
    const char *skipped; /* NULL when measured, else why not */
    double ns_per_iter;
    double ns_per_event;
    double events_per_iter;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The only work a callback does: count, so the loop is what is measured. */
static void on_readable(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    uint64_t *count = data;
    (*count)++;
}

/* Raises the soft RLIMIT_NOFILE to the hard limit; W = 1,000 needs 2,000
   descriptors and many systems start at a soft limit of 1,024. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "%s: raising RLIMIT_NOFILE: %s\n", progname, strerror(errno));
    }
}

/*
 * Makes `n` socketpairs: rd[i] is the end the loop watches, wr[i] the end a
 * byte is written into. Write ends go to fd numbers >= FD_SETSIZE when the
 * limit allows, so the read ends stay within select's reach.
 * Returns 0 or a negative errno (everything made so far is closed).
 */
static int make_pairs(unsigned n, int *rd, int *wr)
{
    for (unsigned i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
            int err = -errno;
            for (unsigned j = 0; j < i; j++) {
                close(rd[j]);
                close(wr[j]);
            }
            return err;
        }
        rd[i] = sv[0];
        wr[i] = sv[1];
        int high = fcntl(sv[1], F_DUPFD_CLOEXEC, FD_SETSIZE);
        if (high >= 0) {
            close(sv[1]);
            wr[i] = high;
        }
    }
    return 0;
}

static void close_pairs(unsigned n, const int *rd, const int *wr)
{
    for (unsigned i = 0; i < n; i++) {
        close(rd[i]);
        close(wr[i]);
    }
}

/*
 * Runs iterations for about `budget_ns` and returns the elapsed time and the
 * counts. The clock is read every 16 iterations so that reading it does not
 * dominate the cheapest cells.
 */
static int run_for(struct iomux_loop *loop, uint64_t budget_ns, const uint64_t *events,
                   uint64_t *iters_out, uint64_t *events_out, uint64_t *elapsed_out)
{
    uint64_t start_events = *events;
    uint64_t iters = 0;
    uint64_t start = now_ns();
    uint64_t t = start;
    while (t - start < budget_ns) {
        for (int i = 0; i < 16; i++) {
            /* A timeout, not -1: something is always readable, so it never
               expires, but a loop bug shows up as an error, not a hang. */
            int rc = iomux_loop_run_once(loop, 1000);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return -ETIMEDOUT;
        }
        iters += 16;
        t = now_ns();
    }
    *iters_out = iters;
    *events_out = *events - start_events;
    *elapsed_out = t - start;
    return 0;
}

/*
 * Measures one cell: best of `reps` runs of `budget_ns` each, after a short
 * warm-up. "Best" because on a shared machine the noise only ever adds time.
 */
static int measure(struct cell *c, uint64_t budget_ns, int reps, int active_first)
{
    struct iomux_loop_options opts = {.backend = c->backend, .max_fds = 0};
    struct iomux_loop *loop = NULL;
    int rc = iomux_loop_new(&loop, &opts);
    if (rc == -ENOSYS || rc == -EPERM) {
        c->skipped = "unavailable";
        return 0;
    }
    if (rc < 0)
        return rc;

    int *rd = calloc(c->watched, sizeof *rd);
    int *wr = calloc(c->watched, sizeof *wr);
    if (rd == NULL || wr == NULL) {
        rc = -ENOMEM;
        goto out_free;
    }
    rc = make_pairs(c->watched, rd, wr);
    if (rc == -EMFILE || rc == -ENFILE) {
        /* The hard limit is too low for this many pairs: say so, as for
           FD_SETSIZE, rather than fail the whole run. */
        c->skipped = "n/a (RLIMIT_NOFILE)";
        rc = 0;
        goto out_free;
    }
    if (rc < 0)
        goto out_free;

    uint64_t events = 0;
    unsigned watched = 0;
    for (; watched < c->watched; watched++) {
        rc = iomux_fd_watch(loop, rd[watched], IOMUX_READ, on_readable, &events);
        if (rc < 0)
            break;
    }
    if (rc == -ERANGE && rd[watched] >= FD_SETSIZE) {
        c->skipped = "n/a (FD_SETSIZE)";
        rc = 0;
        goto out_unwatch;
    }
    if (rc < 0)
        goto out_unwatch;

    /* By default the active fds are the last ones, the highest numbers: the
       position select and poll reach last in their scans. */
    unsigned first_active = active_first ? 0 : c->watched - c->active;
    for (unsigned i = first_active; i < first_active + c->active; i++) {
        if (write(wr[i], "x", 1) != 1) {
            rc = -errno;
            goto out_unwatch;
        }
    }

    uint64_t iters, n_events, elapsed;
    rc = run_for(loop, budget_ns / 4, &events, &iters, &n_events, &elapsed);
    double best_iter = 0, best_event = 0, per_iter_events = 0;
    for (int r = 0; rc == 0 && r < reps; r++) {
        rc = run_for(loop, budget_ns, &events, &iters, &n_events, &elapsed);
        if (rc < 0 || n_events == 0)
            break;
        double ns_iter = (double)elapsed / (double)iters;
        if (r == 0 || ns_iter < best_iter) {
            best_iter = ns_iter;
            best_event = (double)elapsed / (double)n_events;
            per_iter_events = (double)n_events / (double)iters;
        }
    }
    c->ns_per_iter = best_iter;
    c->ns_per_event = best_event;
    c->events_per_iter = per_iter_events;

out_unwatch:
    for (unsigned i = 0; i < watched; i++)
        iomux_fd_unwatch(loop, rd[i]);
    close_pairs(c->watched, rd, wr);
out_free:
    free(rd);
    free(wr);
    iomux_loop_free(loop);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--json] [--backend NAME] [--time MS] [--reps N] [--first]\n"
            "  Loop overhead per dispatched event with 1, 100 and 1,000 watched fds,\n"
            "  one active or all active, for every compiled backend.\n"
            "  --time MS  length of one measured run per cell (default 40)\n"
            "  --reps N   runs per cell, the best is kept (default 3)\n"
            "  --first    the active fds are the lowest-numbered (default: highest)\n",
            progname);
}

static int parse_uint(const char *text, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void print_table(const struct cell *cells, size_t n)
{
    printf("%-8s %8s %7s %12s %12s %12s\n", "backend", "watched", "active", "ns/iter", "ns/event",
           "events/iter");
    for (size_t i = 0; i < n; i++) {
        const struct cell *c = &cells[i];
        if (c->skipped != NULL) {
            printf("%-8s %8u %7u %38s\n", c->backend, c->watched, c->active, c->skipped);
            continue;
        }
        printf("%-8s %8u %7u %12.0f %12.1f %12.1f\n", c->backend, c->watched, c->active,
               c->ns_per_iter, c->ns_per_event, c->events_per_iter);
    }
}

static void print_json(const struct cell *cells, size_t n, int active_first)
{
    printf("{\"benchmark\":\"loop_overhead\",\"active_fds\":\"%s\",\"results\":[",
           active_first ? "lowest" : "highest");
    for (size_t i = 0; i < n; i++) {
        const struct cell *c = &cells[i];
        printf("%s{\"backend\":\"%s\",\"watched\":%u,\"active\":%u,", i ? "," : "", c->backend,
               c->watched, c->active);
        if (c->skipped != NULL)
            printf("\"skipped\":\"%s\"}", c->skipped);
        else
            printf("\"ns_per_iter\":%.1f,\"ns_per_event\":%.1f,\"events_per_iter\":%.2f}",
                   c->ns_per_iter, c->ns_per_event, c->events_per_iter);
    }
    printf("]}\n");
}

int main(int argc, char **argv)
{
    int json = 0, active_first = 0;
    const char *only = NULL;
    unsigned long time_ms = 40, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--first") == 0) {
            active_first = 1;
        } else if (strcmp(a, "--backend") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(a, "--time") == 0 && i + 1 < argc) {
            if (parse_uint(argv[++i], 1, 60000, &time_ms) != 0) {
                fprintf(stderr, "%s: --time: expected 1..60000 ms, got '%s'\n", progname, argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
            if (parse_uint(argv[++i], 1, 100, &reps) != 0) {
                fprintf(stderr, "%s: --reps: expected 1..100, got '%s'\n", progname, argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n", progname, a);
            usage(stderr);
            return 2;
        }
    }

    raise_nofile();

    static const unsigned sizes[] = {1, 100, 1000};
    enum { n_sizes = sizeof sizes / sizeof sizes[0] };
    struct cell cells[16 * n_sizes * 2];
    size_t n = 0;
    int found = 0;
    for (const char *const *b = iomux_backend_names(); *b != NULL; b++) {
        if (only != NULL && strcmp(only, *b) != 0)
            continue;
        found = 1;
        for (int shape = 0; shape < 2; shape++) {
            for (size_t s = 0; s < n_sizes; s++) {
                /* W = 1 with all active is the same cell as one active. */
                if (shape == 1 && sizes[s] == 1)
                    continue;
                if (n == sizeof cells / sizeof cells[0])
                    break;
                struct cell *c = &cells[n++];
                *c = (struct cell){.backend = *b, .watched = sizes[s]};
                c->active = shape == 0 ? 1 : sizes[s];
                int rc = measure(c, (uint64_t)time_ms * 1000000u, (int)reps, active_first);
                if (rc < 0) {
                    fprintf(stderr, "%s: %s with %u fds: %s\n", progname, *b, c->watched,
                            strerror(-rc));
                    c->skipped = "error";
                }
            }
        }
    }
    if (!found) {
        fprintf(stderr, "%s: --backend: '%s' is not compiled in\n", progname, only);
        return 2;
    }

    if (json) {
        print_json(cells, n, active_first);
    } else {
        cpu_set_t set;
        int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
        printf("loop overhead: W fds watched for READ, the A %s-numbered of them kept "
               "readable;\nbest of %lu runs of %lu ms per cell; %d CPU(s) allowed\n",
               active_first ? "lowest" : "highest", reps, time_ms, cpus);
        print_table(cells, n);
    }
    for (size_t i = 0; i < n; i++)
        if (cells[i].skipped != NULL && strcmp(cells[i].skipped, "error") == 0)
            return 1;
    return 0;
}
