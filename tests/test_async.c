/* SPDX-License-Identifier: MIT */
/*
 * test_async.c - waking a loop from other threads and signal handlers
 * (iomux_async_new/send/free) on the backend named by argv[1]: a loop
 * blocked with no timeout is woken by another thread; sends before the
 * loop runs are kept; bursts coalesce to one callback, and never to none
 * after the last send; a ping-pong of 2,000 rounds loses no wake-up; a
 * signal handler can send; handles freed with a send pending, from their
 * own callback or another's, and by iomux_loop_free, leak nothing; the
 * wake fd is made by the first handle only; an open handle keeps
 * iomux_loop_run() going. Built twice: as async.<backend> on the library
 * (an eventfd on Linux), and as async_pipe.<backend> with its own copy of
 * src/async.c built with IOMUX_WAKE_PIPE, the self-pipe other systems use.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "loop_internal.h" /* white-box: the wake fd exists only when used */

static const char *backend;

/* Every wait here has a bound; a lost wake-up shows as this many ms of
   nothing, which the checks report. */
#define WAIT_MS 5000

struct rec {
    atomic_int calls; /* read by helper threads */
    int stop_at;      /* iomux_loop_stop() at this many calls; 0 = never */
    int free_at;      /* free `self` at this many calls; 0 = never */
    int resend_until; /* send `self` again while calls < this */
    struct iomux_async *self;
    struct iomux_async *victim; /* freed by the first call, if set */
};

static void rec_cb(struct iomux_loop *loop, struct iomux_async *async, void *data)
{
    struct rec *r = data;
    int n = atomic_fetch_add(&r->calls, 1) + 1;
    CHECK(async == r->self);
    if (r->victim) {
        iomux_async_free(r->victim);
        r->victim = NULL;
    }
    if (n < r->resend_until)
        CHECK_OK(iomux_async_send(async));
    if (n == r->stop_at)
        iomux_loop_stop(loop);
    if (n == r->free_at) {
        iomux_async_free(async);
        r->self = NULL;
    }
}

static int calls_of(struct rec *r)
{
    return atomic_load(&r->calls);
}

static struct iomux_async *rec_handle(struct iomux_loop *loop, struct rec *r)
{
    struct iomux_async *a = NULL;
    if (CHECK_OK(iomux_async_new(loop, rec_cb, r, &a)))
        r->self = a;
    return a;
}

/* Waits (bounded) until thread `tid` sleeps in the kernel, so a send lands
   while the loop is blocked, not before. Without /proc it waits 20 ms. */
static void wait_until_asleep(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    for (int i = 0; i < 50000; i++) {
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        char buf[256];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *end = strrchr(buf, ')'); /* the name may hold spaces */
        if (end && end[1] == ' ' && end[2] == 'S')
            return;
        struct timespec ts = {.tv_nsec = 100000};
        nanosleep(&ts, NULL);
    }
    sleep_ms(20);
}

static pid_t my_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void t_lazy_wake_fd(void)
{
    int fds_before = count_open_fds();
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    int fds_loop = count_open_fds();
    CHECK_EQ_INT(loop->wake.fd[0], -1);
    struct rec r1 = {0}, r2 = {0};
    struct iomux_async *a1 = rec_handle(loop, &r1);
    int fds_one = count_open_fds();
    struct iomux_async *a2 = rec_handle(loop, &r2);
    CHECK_INT(loop->wake.fd[0], >=, 0);
#if defined(__linux__) && !defined(IOMUX_WAKE_PIPE)
    CHECK_EQ_INT(fds_one - fds_loop, 1); /* an eventfd */
#else
    CHECK_EQ_INT(fds_one - fds_loop, 2); /* a pipe's two ends */
#endif
    CHECK_EQ_INT(count_open_fds(), fds_one); /* the second handle shares it */
    iomux_async_free(a1);
    iomux_async_free(a2);
    iomux_async_free(NULL);
    CHECK_EQ_INT(count_open_fds(), fds_one); /* kept until the loop goes */
    iomux_loop_free(loop);
    CHECK_EQ_INT(count_open_fds(), fds_before);

    loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct iomux_async *a = NULL;
    CHECK_ERRNO(iomux_async_new(loop, NULL, NULL, &a), -EINVAL);
    CHECK_EQ_INT(loop->wake.fd[0], -1);
    iomux_loop_free(loop);
}

/* Sends before the loop runs are kept, and a burst is one callback. */
static void t_send_before_run(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct rec r = {0}, idle = {0};
    if (!rec_handle(loop, &r) || !rec_handle(loop, &idle))
        return;
    CHECK_OK(iomux_async_send(r.self));
    CHECK_EQ_INT(iomux_loop_run_once(loop, WAIT_MS), 1);
    CHECK_EQ_INT(calls_of(&r), 1);

    for (int i = 0; i < 1000; i++)
        CHECK_OK(iomux_async_send(r.self));
    CHECK_EQ_INT(calls_of(&r), 1); /* never from send itself */
    CHECK_EQ_INT(iomux_loop_run_once(loop, WAIT_MS), 1);
    CHECK_EQ_INT(calls_of(&r), 2);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0); /* nothing left over */
    CHECK_EQ_INT(calls_of(&idle), 0);

    /* Two handles sent: both run, in one iteration. */
    CHECK_OK(iomux_async_send(idle.self));
    CHECK_OK(iomux_async_send(r.self));
    CHECK_EQ_INT(iomux_loop_run_once(loop, WAIT_MS), 2);
    CHECK_EQ_INT(calls_of(&idle), 1);
    CHECK_EQ_INT(calls_of(&r), 3);

    /* A send from the callback itself runs it again, on the next turn. */
    r.resend_until = 8;
    CHECK_OK(iomux_async_send(r.self));
    for (int i = 4; i <= 8; i++) {
        CHECK_EQ_INT(iomux_loop_run_once(loop, WAIT_MS), 1);
        CHECK_EQ_INT(calls_of(&r), i);
    }
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    iomux_loop_free(loop); /* frees both handles */
}

struct waker {
    struct iomux_async *async;
    pid_t loop_tid;
    int rounds;
    bool wait_asleep;      /* send only once the loop sleeps */
    atomic_int *ack;       /* round the loop has answered, or NULL */
    pthread_t loop_thread; /* signal target, for t_signal_handler */
    int signo;             /* 0: send; else pthread_kill(loop_thread) */
    int errors;
};

static void *waker_main(void *arg)
{
    struct waker *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        if (w->wait_asleep)
            wait_until_asleep(w->loop_tid);
        if (w->signo)
            w->errors += pthread_kill(w->loop_thread, w->signo) != 0;
        else
            w->errors += iomux_async_send(w->async) != 0;
        /* Ping-pong: the next send waits for this one's callback. */
        for (int t = 0; w->ack && atomic_load(w->ack) <= i; t++) {
            if (t > WAIT_MS * 10) {
                w->errors++;
                return NULL;
            }
            struct timespec ts = {.tv_nsec = 100000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static bool start_waker(pthread_t *th, struct waker *w)
{
    return CHECK_EQ_INT(pthread_create(th, NULL, waker_main, w), 0);
}

/* A loop blocked with no timeout (-1) is woken by another thread, through
   run_once and through run. */
static void t_wake_blocked(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct rec r = {.stop_at = 3};
    if (!rec_handle(loop, &r))
        return;
    alarm(30); /* the wait below has no timeout of its own */
    for (int i = 1; i <= 2; i++) {
        struct waker w = {.async = r.self, .loop_tid = my_tid(), .rounds = 1, .wait_asleep = true};
        pthread_t th;
        if (!start_waker(&th, &w))
            return;
        uint64_t t0 = mono_ns();
        CHECK_EQ_INT(iomux_loop_run_once(loop, -1), 1);
        uint64_t ms = (mono_ns() - t0) / MS_NS;
        pthread_join(th, NULL);
        CHECK_EQ_INT(w.errors, 0);
        CHECK_EQ_INT(calls_of(&r), i);
        fprintf(stderr, "  run_once(-1) woken after %" PRIu64 " ms\n", ms);
    }
    /* iomux_loop_run: the handle alone keeps it going until stopped. */
    struct waker w = {.async = r.self, .loop_tid = my_tid(), .rounds = 1, .wait_asleep = true};
    pthread_t th;
    if (start_waker(&th, &w)) {
        CHECK_OK(iomux_loop_run(loop));
        pthread_join(th, NULL);
        CHECK_EQ_INT(calls_of(&r), 3);
    }
    alarm(60);
    iomux_loop_free(loop);
}

/* Ping-pong: each send waits for the previous callback, so sends land in
   every phase of the loop (asleep, draining, scanning, just after). A lost
   wake-up leaves run_once waiting WAIT_MS and fails the check. */
static void t_ping_pong(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct rec r = {0};
    if (!rec_handle(loop, &r))
        return;
    enum { ROUNDS = 2000 };
    struct waker w = {.async = r.self, .rounds = ROUNDS, .ack = &r.calls};
    pthread_t th;
    if (!start_waker(&th, &w))
        return;
    uint64_t t0 = mono_ns();
    int timeouts = 0;
    while (calls_of(&r) < ROUNDS && timeouts == 0) {
        int rc = iomux_loop_run_once(loop, WAIT_MS);
        timeouts += rc == 0;
        CHECK_COUNT(rc);
    }
    uint64_t ns = mono_ns() - t0;
    pthread_join(th, NULL);
    CHECK_EQ_INT(timeouts, 0);
    CHECK_EQ_INT(w.errors, 0);
    CHECK_EQ_INT(calls_of(&r), ROUNDS);
    fprintf(stderr, "  %d round trips, %.1f us each\n", ROUNDS, (double)ns / ROUNDS / 1000.0);
    iomux_loop_free(loop);
}

/* Threads send in bursts while the loop runs: fewer callbacks than sends,
   at least one, and the last callback starts after the last send. */
struct burst {
    struct iomux_async *async;
    atomic_int *sent;
    int sends;
    int errors;
};

static void *burst_main(void *arg)
{
    struct burst *b = arg;
    for (int i = 0; i < b->sends; i++) {
        atomic_fetch_add(b->sent, 1);
        b->errors += iomux_async_send(b->async) != 0;
    }
    return NULL;
}

struct seen {
    atomic_int *sent;
    int calls;
    int last_seen; /* `sent` when the newest callback began */
};

static void seen_cb(struct iomux_loop *loop, struct iomux_async *async, void *data)
{
    struct seen *s = data;
    s->calls++;
    s->last_seen = atomic_load(s->sent);
}

static void t_coalesce_threads(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    enum { THREADS = 3, SENDS = 50000 };
    atomic_int sent = 0;
    struct seen s = {.sent = &sent};
    struct iomux_async *a = NULL;
    if (!CHECK_OK(iomux_async_new(loop, seen_cb, &s, &a)))
        return;
    struct burst b[THREADS];
    pthread_t th[THREADS];
    int started = 0;
    for (int i = 0; i < THREADS; i++) {
        b[i] = (struct burst){.async = a, .sent = &sent, .sends = SENDS};
        started += pthread_create(&th[i], NULL, burst_main, &b[i]) == 0;
    }
    CHECK_EQ_INT(started, THREADS);
    int timeouts = 0;
    while (s.last_seen < started * SENDS && timeouts == 0)
        timeouts += iomux_loop_run_once(loop, WAIT_MS) == 0;
    int errors = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        errors += b[i].errors;
    }
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(timeouts, 0);
    CHECK_EQ_INT(s.last_seen, THREADS * SENDS);
    CHECK_INT(s.calls, >=, 1);
    CHECK_INT(s.calls, <, THREADS * SENDS);
    /* A sender counts before it sends, so the last callback may have seen
       the full count with that sender's wake still to come: at most one
       more callback, and then none (nothing is left pending). */
    CHECK_INT(iomux_loop_run_once(loop, 0), <=, 1);
    fprintf(stderr, "  %d sends from %d threads -> %d callbacks\n", THREADS * SENDS, THREADS,
            s.calls);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    iomux_loop_free(loop);
}

/* A signal handler sends: raised before the loop runs, and delivered to
   the loop's thread while it is blocked (the wait sees EINTR first). */
static struct iomux_async *sig_async;
static atomic_int sig_errno_kept;

static void on_usr2(int signo)
{
    int saved_errno = errno;
    errno = 4242; /* iomux_async_send must leave it so */
    if (iomux_async_send(sig_async) == 0 && errno == 4242)
        atomic_fetch_add(&sig_errno_kept, 1);
    errno = saved_errno;
}

static void t_signal_handler(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct rec r = {0};
    if (!(sig_async = rec_handle(loop, &r)))
        return;
    struct sigaction sa = {.sa_handler = on_usr2}, old;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ_INT(sigaction(SIGUSR2, &sa, &old), 0);
    atomic_store(&sig_errno_kept, 0);

    CHECK_EQ_INT(raise(SIGUSR2), 0);
    CHECK_EQ_INT(calls_of(&r), 0);
    for (int i = 0; i < 5 && calls_of(&r) < 1; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, WAIT_MS));
    CHECK_EQ_INT(calls_of(&r), 1);

    struct waker w = {.loop_tid = my_tid(),
                      .rounds = 1,
                      .wait_asleep = true,
                      .loop_thread = pthread_self(),
                      .signo = SIGUSR2};
    pthread_t th;
    if (start_waker(&th, &w)) {
        alarm(30);
        int iterations = 0;
        while (calls_of(&r) < 2 && iterations++ < 5)
            CHECK_COUNT(iomux_loop_run_once(loop, -1));
        alarm(60);
        pthread_join(th, NULL);
        CHECK_EQ_INT(w.errors, 0);
    }
    CHECK_EQ_INT(calls_of(&r), 2);
    CHECK_EQ_INT(atomic_load(&sig_errno_kept), 2);
    CHECK_EQ_INT(sigaction(SIGUSR2, &old, NULL), 0);
    iomux_loop_free(loop);
    sig_async = NULL;
}

/* Freeing: with a send pending; from another handle's callback in the same
   scan; from its own callback; and by iomux_loop_free with sends pending. */
static void t_free(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct rec gone = {0};
    if (!rec_handle(loop, &gone))
        return;
    CHECK_OK(iomux_async_send(gone.self));
    iomux_async_free(gone.self);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0); /* drained, nothing run */
    CHECK_EQ_INT(calls_of(&gone), 0);

    /* a frees b and itself; c, after both in the array, still runs. */
    struct rec ra = {.free_at = 1}, rb = {0}, rc = {0};
    if (!rec_handle(loop, &ra) || !rec_handle(loop, &rb) || !rec_handle(loop, &rc))
        return;
    ra.victim = rb.self;
    CHECK_OK(iomux_async_send(rc.self));
    CHECK_OK(iomux_async_send(rb.self));
    CHECK_OK(iomux_async_send(ra.self));
    CHECK_EQ_INT(iomux_loop_run_once(loop, WAIT_MS), 2);
    CHECK_EQ_INT(calls_of(&ra), 1);
    CHECK_EQ_INT(calls_of(&rb), 0);
    CHECK_EQ_INT(calls_of(&rc), 1);
    CHECK(ra.self == NULL);
    CHECK_EQ_INT(loop->wake.count, 1); /* the holes were closed */
    CHECK_EQ_INT(loop->wake.live, 1);
    CHECK_OK(iomux_async_send(rc.self));
    CHECK_EQ_INT(iomux_loop_run_once(loop, WAIT_MS), 1);
    CHECK_EQ_INT(calls_of(&rc), 2);

    /* The last handle goes from its own callback: run() then returns. */
    rc.free_at = 3;
    CHECK_OK(iomux_async_send(rc.self));
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_INT(calls_of(&rc), 3);
    CHECK_OK(iomux_loop_run(loop)); /* nothing keeps it going now */

    struct rec left = {0};
    if (rec_handle(loop, &left))
        CHECK_OK(iomux_async_send(left.self));
    iomux_loop_free(loop); /* frees `left` with its send pending */
    CHECK_EQ_INT(calls_of(&left), 0);
}

int main(int argc, char **argv)
{
    alarm(60); /* a hang is a failure, never a stuck ctest */
    backend = test_backend(argc, argv);
    if (!test_announce_backend(backend))
        return check_exit();

    check_run("the wake fd is made by the first handle", t_lazy_wake_fd);
    check_run("sends before the loop runs", t_send_before_run);
    check_run("another thread wakes a blocked loop", t_wake_blocked);
    check_run("ping-pong loses no wake-up", t_ping_pong);
    check_run("bursts from threads coalesce", t_coalesce_threads);
    check_run("a signal handler sends", t_signal_handler);
    check_run("freeing handles", t_free);
    return check_exit();
}
