/* SPDX-License-Identifier: MIT */
/*
 * async_worker.c - handing work back to a loop from other threads. Worker
 * threads count the primes in their share of a range, put each result in
 * a queue under a mutex and wake the loop with iomux_async_send(); the
 * loop's callback, on the main thread, takes what is queued and prints it.
 * Sends that arrive before the loop looks are coalesced into one callback,
 * which is why the callback empties the whole queue each time. When every
 * result is in, the callback stops the loop; the handle is freed only
 * after the workers are joined, since a worker may still be inside
 * iomux_async_send() when its last result has already been printed.
 *
 *   ./async_worker [THREADS]
 */
#include <iomux/loop.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 16
#define CHUNKS      8 /* results per worker */
#define CHUNK_SIZE  20000u

struct result {
    int worker;
    unsigned from, primes;
};

struct shared {
    pthread_mutex_t lock; /* guards queue and queued */
    struct result queue[MAX_THREADS * CHUNKS];
    int queued;
    struct iomux_async *wake; /* the loop's handle: senders only send */
    int received, expected;   /* the loop's thread alone */
};

struct worker {
    struct shared *shared;
    int id, threads;
};

static unsigned count_primes(unsigned from, unsigned to)
{
    unsigned n = 0;
    for (unsigned v = from < 2 ? 2 : from; v < to; v++) {
        unsigned d = 2;
        while (d * d <= v && v % d != 0)
            d++;
        n += d * d > v;
    }
    return n;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int c = 0; c < CHUNKS; c++) {
        unsigned from = (unsigned)(c * w->threads + w->id) * CHUNK_SIZE;
        struct result r = {w->id, from, count_primes(from, from + CHUNK_SIZE)};
        pthread_mutex_lock(&w->shared->lock);
        w->shared->queue[w->shared->queued++] = r;
        pthread_mutex_unlock(&w->shared->lock);
        iomux_async_send(w->shared->wake); /* "look at the queue" */
    }
    return NULL;
}

/* On the loop's thread: everything queued so far, however many sends. */
static void on_results(struct iomux_loop *loop, struct iomux_async *async, void *data)
{
    struct shared *s = data;
    struct result batch[MAX_THREADS * CHUNKS];
    pthread_mutex_lock(&s->lock);
    int n = s->queued;
    memcpy(batch, s->queue, (size_t)n * sizeof batch[0]);
    s->queued = 0;
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++)
        printf("worker %d: %u primes in [%u, %u)\n", batch[i].worker, batch[i].primes,
               batch[i].from, batch[i].from + CHUNK_SIZE);
    s->received += n;
    if (s->received == s->expected)
        iomux_loop_stop(loop); /* the open handle would keep run() going */
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "usage: async_worker [THREADS (1-%d)]\n", MAX_THREADS);
        return 2;
    }
    struct iomux_loop *loop;
    static struct shared s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    s.expected = threads * CHUNKS;
    int rc = iomux_loop_new(&loop, NULL);
    if (rc == 0)
        rc = iomux_async_new(loop, on_results, &s, &s.wake);
    if (rc < 0) {
        fprintf(stderr, "async_worker: starting the loop: %s\n", strerror(-rc));
        return 1;
    }
    pthread_t th[MAX_THREADS];
    struct worker w[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){&s, i, threads};
        if (pthread_create(&th[i], NULL, work, &w[i]) != 0) {
            fprintf(stderr, "async_worker: pthread_create failed\n");
            return 1;
        }
    }
    rc = iomux_loop_run(loop);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    iomux_async_free(s.wake); /* no sender is left */
    printf("%d results, %s\n", s.received, rc < 0 ? strerror(-rc) : "done");
    iomux_loop_free(loop);
    return rc < 0 || s.received != s.expected;
}
