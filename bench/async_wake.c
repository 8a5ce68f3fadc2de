/* SPDX-License-Identifier: MIT */
/*
 * async_wake - what waking a loop from another thread costs
 * (iomux_async_send), coalesced and not, and how long a wake-up takes to
 * reach the loop's thread.
 *
 *   coalesced, 1 thread   the handle is already pending (nobody drains it):
 *                         a send is one atomic exchange on a cache line
 *                         that stays in this core's cache;
 *   coalesced, N threads  N threads send to one pending handle at once: the
 *                         same exchange with the cache line moving between
 *                         cores (the price of contention);
 *   not coalesced         the loop drains between sends, so every send
 *                         raises both flags and writes the wake fd: the
 *                         time inside iomux_async_send alone, and the whole
 *                         cycle (send + run_once(0) that drains and calls);
 *   loop running          one thread sends as fast as it can while the
 *                         loop's thread runs: ns per send, and how many
 *                         sends each callback answered;
 *   round trip            send, then wait for the callback to have run,
 *                         repeated: the wake-up latency.
 *
 * Usage: async_wake [--backend NAME] [--threads N] [--quick]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iomux/loop.h>

static const char *progname = "async_wake";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts callbacks, and remembers `sent` as the newest callback saw it. */
struct target {
    atomic_uint_fast64_t calls;
    atomic_uint_fast64_t sent;
    uint64_t last_seen;
};

static void count_cb(struct iomux_loop *loop, struct iomux_async *async, void *data)
{
    struct target *t = data;
    t->last_seen = atomic_load(&t->sent);
    atomic_fetch_add(&t->calls, 1);
}

static void start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
    int err = pthread_create(th, NULL, fn, arg);
    if (err != 0) {
        fprintf(stderr, "%s: starting a thread: %s\n", progname, strerror(err));
        exit(1);
    }
}

struct sender {
    struct iomux_async *async;
    struct target *target; /* NULL: do not count sends */
    uint64_t sends;
    uint64_t ns;
    int errors;
};

static void *send_loop(void *arg)
{
    struct sender *s = arg;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < s->sends; i++) {
        if (s->target)
            atomic_fetch_add(&s->target->sent, 1);
        s->errors += iomux_async_send(s->async) != 0;
    }
    s->ns = now_ns() - t0;
    return NULL;
}

/* N threads send to one handle that nobody drains; ns per send, the mean
   of the threads. */
static double coalesced(struct iomux_async *async, unsigned threads, uint64_t sends)
{
    struct sender s[64];
    pthread_t th[64];
    iomux_async_send(async); /* pending from here on */
    for (unsigned i = 0; i < threads; i++) {
        s[i] = (struct sender){.async = async, .sends = sends};
        start_thread(&th[i], send_loop, &s[i]);
    }
    double sum = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        sum += (double)s[i].ns / (double)sends;
    }
    return sum / threads;
}

static void not_coalesced(struct iomux_loop *loop, struct iomux_async *async, uint64_t rounds,
                          double *send_ns, double *cycle_ns)
{
    uint64_t in_send = 0, t0 = now_ns();
    for (uint64_t i = 0; i < rounds; i++) {
        uint64_t a = now_ns();
        iomux_async_send(async);
        in_send += now_ns() - a;
        iomux_loop_run_once(loop, 0);
    }
    *cycle_ns = (double)(now_ns() - t0) / (double)rounds;
    *send_ns = (double)in_send / (double)rounds;
}

/* One sender against the running loop. Returns ns per send; *per_cb gets
   sends per callback. */
static double loop_running(struct iomux_loop *loop, struct iomux_async *async, struct target *t,
                           uint64_t sends, double *per_cb)
{
    atomic_store(&t->sent, 0);
    atomic_store(&t->calls, 0);
    t->last_seen = 0;
    struct sender s = {.async = async, .target = t, .sends = sends};
    pthread_t th;
    start_thread(&th, send_loop, &s);
    while (t->last_seen < sends)
        if (iomux_loop_run_once(loop, 1000) < 0)
            break;
    pthread_join(th, NULL);
    *per_cb = (double)sends / (double)atomic_load(&t->calls);
    return (double)s.ns / (double)sends;
}

struct pinger {
    struct iomux_async *async;
    struct target *target;
    uint64_t rounds;
    uint64_t ns;
};

static void *ping_loop(void *arg)
{
    struct pinger *p = arg;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < p->rounds; i++) {
        iomux_async_send(p->async);
        while (atomic_load(&p->target->calls) <= i)
            sched_yield();
    }
    p->ns = now_ns() - t0;
    return NULL;
}

/* Microseconds from a send to its callback having run, round trip. */
static double round_trip(struct iomux_loop *loop, struct iomux_async *async, struct target *t,
                         uint64_t rounds)
{
    atomic_store(&t->calls, 0);
    struct pinger p = {.async = async, .target = t, .rounds = rounds};
    pthread_t th;
    start_thread(&th, ping_loop, &p);
    while (atomic_load(&t->calls) < rounds)
        if (iomux_loop_run_once(loop, 1000) < 0)
            break;
    pthread_join(th, NULL);
    return (double)p.ns / (double)rounds / 1000.0;
}

static void usage(void)
{
    fprintf(stderr, "usage: %s [--backend NAME] [--threads N] [--quick]\n", progname);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *backend = NULL;
    unsigned threads = 2;
    uint64_t scale = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--quick") == 0)
            scale = 1;
        else
            usage();
    }
    if (threads < 1 || threads > 64)
        usage();

    struct iomux_loop_options opts = {.backend = backend};
    struct iomux_loop *loop;
    struct iomux_async *async;
    struct target t = {0};
    int rc = iomux_loop_new(&loop, &opts);
    if (rc == 0)
        rc = iomux_async_new(loop, count_cb, &t, &async);
    if (rc < 0) {
        fprintf(stderr, "%s: making the loop and its handle: %s\n", progname, strerror(-rc));
        return 1;
    }
    printf("backend %s\n", iomux_loop_backend(loop));
    printf("%-34s %10.1f ns/send\n", "coalesced, 1 thread", coalesced(async, 1, scale * 2000000));
    char label[64];
    snprintf(label, sizeof label, "coalesced, %u threads at once", threads);
    printf("%-34s %10.1f ns/send\n", label, coalesced(async, threads, scale * 2000000));
    iomux_loop_run_once(loop, 0); /* drain what the two above left */

    double send_ns, cycle_ns;
    not_coalesced(loop, async, scale * 20000, &send_ns, &cycle_ns);
    printf("%-34s %10.1f ns/send\n", "not coalesced (send writes)", send_ns);
    printf("%-34s %10.1f ns/cycle\n", "  send + run_once(0) drain + call", cycle_ns);

    double per_cb;
    double ns = loop_running(loop, async, &t, scale * 200000, &per_cb);
    printf("%-34s %10.1f ns/send  (%.1f sends per callback)\n", "1 sender, loop running", ns,
           per_cb);
    printf("%-34s %10.1f us\n", "round trip send -> callback",
           round_trip(loop, async, &t, scale * 2000));
    iomux_async_free(async);
    iomux_loop_free(loop);
    return 0;
}
