/* SPDX-License-Identifier: MIT */
/*
 * workers.c - echod --workers N: the threads. Start-up goes in steps that the main thread
 * opens one at a time: each worker binds on its own thread, the first before the others (its
 * port-0 ports are theirs); the main thread drops privileges; every worker makes its engine and
 * reports; the start-up lines are printed; all serve. Then the main thread turns the signals it
 * gets into commands (server.c) and waits for every worker's loop to end.
 */
#include "workers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echod_internal.h"
#include "splice_pool.h"
#include "steer.h"
#include "upgrade.h"

/* How far the workers may go (struct echod_server's step). */
enum { STEP_BIND, STEP_SERVE, STEP_RUN, STEP_END, STEP_ABORT };
#define RC_PENDING 1

static const int server_signals[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};

struct worker_start {
    struct echod_server *s;
    unsigned index;
};

static void report(struct echod_server *s, unsigned i, int rc)
{
    pthread_mutex_lock(&s->lock);
    s->rc[i] = rc;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Waits until the main thread opens `step` (or aborts); the step it is at. */
static int wait_step(struct echod_server *s, int step)
{
    pthread_mutex_lock(&s->lock);
    while (s->step < step)
        pthread_cond_wait(&s->cond, &s->lock);
    int at = s->step;
    pthread_mutex_unlock(&s->lock);
    return at;
}

static void open_step(struct echod_server *s, int step)
{
    pthread_mutex_lock(&s->lock);
    s->step = step;
    for (unsigned i = 0; i < s->nworkers; i++)
        s->rc[i] = RC_PENDING;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Waits for the reports of workers [from, to); the first failure, or 0. */
static int await_reports(struct echod_server *s, unsigned from, unsigned to)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = from; i < to; i++) {
        while (s->rc[i] == RC_PENDING)
            pthread_cond_wait(&s->cond, &s->lock);
        if (rc == 0 && s->rc[i] < 0)
            rc = s->rc[i];
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker_start *ws = arg;
    struct echod_server *s = ws->s;
    unsigned i = ws->index;
    struct echod *d = NULL;
    echod_tag_thread(i + 1);
    int rc = echod_steer_pin(s, i); /* first: its loop and engine are made on its CPU */
    if (rc == 0)
        rc = echod_setup_bind(&s->worker_opt[i], s, i, &d);
    if (rc == 0) {
        d->perip = s->perip; /* one table for all, behind the lock */
        pthread_mutex_lock(&s->lock);
        s->workers[i] = d;
        pthread_mutex_unlock(&s->lock);
    }
    report(s, i, rc);
    if (rc < 0 || wait_step(s, STEP_SERVE) == STEP_ABORT)
        goto out;
    rc = echod_setup_serve(d);
    if (rc == 0 && (rc = echod_worker_ready(d)) < 0)
        fprintf(stderr, "echod: worker %u: %s\n", i + 1, strerror(-rc));
    report(s, i, rc);
    if (rc < 0 || wait_step(s, STEP_RUN) == STEP_ABORT)
        goto out;
    report(s, i, echod_run(d));
    echod_worker_finished(d);
    wait_step(s, STEP_END); /* nobody sends to it any more */
out:
    if (rc == 0 || s->workers[i])
        echod_free(d);
    return NULL;
}

/* The parts of the totals line that follow the stages' counters (PROXY, --splice, TLS, fault
   modes), as one worker's line has them, from the sum in a struct echod made to be shown. */
static void print_stages(const struct echod *first, const struct echod_counters *sum)
{
    struct echod *totals = calloc(1, sizeof(*totals));
    if (!totals)
        return;
    echod_counters_view(totals, sum);
    totals->fault_seed = first->fault_seed;
    if (first->proxy_listeners)
        echod_proxy_print_stats(totals, stderr);
    if (first->splice) {
        struct splice_stats st;
        echod_counters_splice(sum, &st);
        splice_stats_print(&st, stderr);
    }
    if (first->tls_listeners)
        echod_tls_print_stats(totals, stderr);
    if (first->fault_listeners)
        echod_faults_print_stats(totals, stderr);
    free(totals);
}

static void print_totals(struct echod_server *s)
{
    struct echod_counters sum, *each = calloc(s->nworkers, sizeof(*each));
    struct echod *first = s->workers[0];
    char label[48];
    echod_server_collect(s, NULL, &sum, each);
    /* Many stdio calls make the line: held, so that no worker's --trace or log line lands in the
       middle of it. After the collect, which waits for the workers (who may be writing). */
    flockfile(stderr);
    echod_print_counters(stderr, echod_serving_label(first, label, sizeof(label)), &sum);
    print_stages(first, &sum);
    fprintf(stderr, "; workers %u", s->nworkers);
    for (unsigned i = 0; each && i < s->nworkers; i++)
        fprintf(stderr, "; worker %u%s", i + 1, each[i].engine);
    fputc('\n', stderr);
    for (unsigned i = 0; each && i < s->nworkers; i++)
        fprintf(stderr,
                "echod: stats: worker %u: connections %" PRIu64 " open, %" PRIu64
                " total; bytes %" PRIu64 " in, %" PRIu64 " out\n",
                i + 1, each[i].open, each[i].total, each[i].bytes_in, each[i].bytes_out);
    if (sum.has_udp)
        echod_udp_print_stats_of(&sum.udp, stderr);
    funlockfile(stderr);
    free(each);
}

static void on_signal(struct iomux_loop *loop, int signo, void *data)
{
    struct echod_server *s = data;
    if (signo == SIGUSR1) {
        print_totals(s);
        return;
    }
    if (signo == SIGUSR2) {
        echod_upgrade_start_workers(s, s->quit || atomic_load(&s->stop_signo) != 0);
        return;
    }
    if (signo == SIGHUP) {
        /* Set up before the signals are watched, read-only since. */
        if (!s->workers[0]->tls_listeners) {
            if (!s->opt->quiet)
                fprintf(stderr, "echod: SIGHUP: nothing to reload\n");
            return;
        }
        for (unsigned i = 0; i < s->nworkers; i++)
            atomic_fetch_or(&s->workers[i]->commands, ECHOD_CMD_RELOAD);
        /* Said once every worker serves new handshakes with what it read (a worker runs RELOAD
           before STATS), so that a client who connects after the line meets the new files. */
        struct echod_counters sum;
        echod_server_collect(s, NULL, &sum, NULL);
        pthread_mutex_lock(&s->lock);
        fputs(s->reload_said, stderr);
        s->reload_said[0] = '\0';
        pthread_mutex_unlock(&s->lock);
        return;
    }
    if (signo != SIGQUIT)
        atomic_store(&s->stop_signo, signo);
    else
        s->quit = true;
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct echod *w = s->workers[i];
        if (signo == SIGQUIT)
            atomic_fetch_or(&w->commands, ECHOD_CMD_QUIT);
        else
            atomic_fetch_add(&w->stops, 1);
        iomux_async_send(w->wake);
    }
}

static void on_done(struct iomux_loop *loop, struct iomux_async *async, void *data)
{
    struct echod_server *s = data;
    if (atomic_load(&s->running) == 0)
        iomux_loop_stop(loop);
}

/* The main thread's loop: the signals, and the workers' word that they are done. */
static int main_loop(struct echod_server *s)
{
    int rc = iomux_loop_new(&s->loop, NULL);
    for (size_t i = 0; rc == 0 && i < sizeof(server_signals) / sizeof(server_signals[0]); i++)
        rc = iomux_signal_watch(s->loop, server_signals[i], on_signal, s);
    if (rc == 0)
        rc = iomux_async_new(s->loop, on_done, s, &s->done);
    if (rc < 0)
        fprintf(stderr, "echod: workers: %s\n", strerror(-rc));
    return rc;
}

/* Each worker gets the options with its share of --max-buffered. */
static int server_alloc(struct echod_server *s, const struct echod_options *opt, unsigned n)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->opt = opt;
    s->nworkers = n;
    s->worker_opt = calloc(n, sizeof(*s->worker_opt));
    s->workers = calloc(n, sizeof(*s->workers));
    s->threads = calloc(n, sizeof(*s->threads));
    s->rc = calloc(n, sizeof(*s->rc));
    s->view = calloc(1, sizeof(*s->view));
    if (!s->worker_opt || !s->workers || !s->threads || !s->rc || !s->view)
        return -ENOMEM;
    /* One seed, said at start-up, for every worker: with the process's count of fault
       connections (fault_serial) it replays a run whichever worker takes each one. */
    uint64_t seed = opt->fault_seed_given ? opt->fault_seed : fault_new_seed();
    for (unsigned i = 0; i < n; i++) {
        s->worker_opt[i] = *opt;
        s->worker_opt[i].fault_seed = seed;
        if (opt->max_buffered)
            s->worker_opt[i].max_buffered = opt->max_buffered / n ? opt->max_buffered / n : 1;
    }
    if (opt->max_conns_per_ip)
        return echod_perip_new(opt->max_conns_per_ip, &s->perip);
    return 0;
}

/* Binds worker after worker (threads started with the signals blocked: only the main thread
   takes them); *started how many threads run. 0 or the first failure. */
static int start_workers(struct echod_server *s, unsigned *started, struct worker_start *ws)
{
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof(server_signals) / sizeof(server_signals[0]); i++)
        sigaddset(&block, server_signals[i]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = 0;
    open_step(s, STEP_BIND);
    for (unsigned i = 0; i < s->nworkers && rc == 0; i++) {
        ws[i] = (struct worker_start){s, i};
        rc = -pthread_create(&s->threads[i], NULL, worker_main, &ws[i]);
        if (rc < 0) {
            fprintf(stderr, "echod: worker thread: %s\n", strerror(-rc));
            break;
        }
        ++*started;
        rc = await_reports(s, i, i + 1);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        rc = echod_setup_user(s->workers[0]);
    if (rc == 0) {
        open_step(s, STEP_SERVE);
        rc = await_reports(s, 0, s->nworkers);
    }
    return rc;
}

/* Serves until every worker is done; the first failure of a worker's loop, or 0. */
static int serve(struct echod_server *s)
{
    echod_setup_announce(s->workers[0]);
    echod_steer_say(s);
    echod_upgrade_ready(s->opt); /* every worker serves */
    atomic_store(&s->running, s->nworkers);
    open_step(s, STEP_RUN);
    int rc = iomux_loop_run(s->loop);
    if (rc < 0)
        fprintf(stderr, "echod: event loop: %s\n", strerror(-rc));
    int worst = await_reports(s, 0, s->nworkers);
    return rc < 0 ? rc : worst;
}

static void server_free(struct echod_server *s, unsigned started)
{
    for (unsigned i = 0; i < started; i++)
        pthread_join(s->threads[i], NULL);
    echod_tls_library_end();
    echod_unix_cleanup();
    echod_perip_free(s->perip);
    iomux_loop_free(s->loop);
    free(s->worker_opt);
    free(s->workers);
    free(s->threads);
    free(s->rc);
    free(s->view);
    free(s->cpus);
    free(s);
}

int echod_server_main(const struct echod_options *opt, unsigned nworkers)
{
    struct echod_server *s = calloc(1, sizeof(*s));
    struct worker_start *ws = calloc(nworkers, sizeof(*ws));
    unsigned started = 0;
    int rc = s && ws ? server_alloc(s, opt, nworkers) : -ENOMEM;
    if (rc < 0)
        fprintf(stderr, "echod: start-up: %s\n", strerror(-rc));
    if (rc == 0)
        rc = echod_steer_plan(s); /* says why it fails */
    if (rc == 0 && opt->trace)
        rc = echod_tag_stderr();
    if (rc == 0)
        rc = main_loop(s);
    if (rc == 0)
        rc = start_workers(s, &started, ws);
    if (rc == 0) {
        rc = serve(s);
        uint64_t total = 0;
        for (unsigned i = 0; i < nworkers; i++)
            total += s->workers[i]->snap.total; /* final: published as each ended */
        open_step(s, STEP_END);
        if (!opt->quiet)
            fprintf(stderr, "echod: exiting: %" PRIu64 " connections served\n", total);
    } else if (s && s->rc) {
        open_step(s, STEP_ABORT);
    }
    if (s)
        server_free(s, started);
    free(ws);
    return rc;
}
