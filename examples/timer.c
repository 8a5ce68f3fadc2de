/* SPDX-License-Identifier: MIT */
/*
 * timer.c - the smallest iomux program: a repeating timer and a signal,
 * both delivered by the loop. Prints "tick N" every 100 ms, five times
 * (or until Ctrl-C), then returns from iomux_loop_run() because nothing is
 * left to wait for.
 *
 *   ./timer [COUNT]
 */
#include <iomux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ticker {
    uint64_t timer; /* the id iomux_timer_add() gave us */
    int left;
};

static void on_tick(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct ticker *t = data;
    printf("tick %d (loop time %llu ms)\n", t->left, (unsigned long long)iomux_loop_now(loop));
    if (--t->left == 0) {
        /* Cancelling from its own callback is allowed: it will not re-arm. */
        iomux_timer_cancel(loop, id);
        /* The signal watcher would keep the loop running: drop it too. */
        iomux_signal_unwatch(loop, SIGINT);
    }
}

static void on_sigint(struct iomux_loop *loop, int signo, void *data)
{
    printf("interrupted\n");
    iomux_loop_stop(loop); /* run() returns after this iteration */
}

int main(int argc, char **argv)
{
    struct ticker t = {.left = argc > 1 ? atoi(argv[1]) : 5};
    if (t.left <= 0)
        t.left = 1;

    struct iomux_loop *loop;
    int rc = iomux_loop_new(&loop, NULL); /* NULL options: best backend */
    if (rc < 0) {
        fprintf(stderr, "timer: iomux_loop_new: %s\n", strerror(-rc));
        return 1;
    }
    printf("backend %s, iomux %s\n", iomux_loop_backend(loop), iomux_version());

    if ((rc = iomux_timer_add(loop, 100, 100, on_tick, &t, &t.timer)) < 0 ||
        (rc = iomux_signal_watch(loop, SIGINT, on_sigint, NULL)) < 0 ||
        (rc = iomux_loop_run(loop)) < 0)
        fprintf(stderr, "timer: %s\n", strerror(-rc));

    iomux_loop_free(loop); /* also cancels what is left and restores SIGINT */
    return rc < 0 ? 1 : 0;
}
