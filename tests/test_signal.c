/* SPDX-License-Identifier: MIT */
/*
 * test_signal.c - signals delivered through the loop (iomux_signal_watch) on
 * the backend named by argv[1]: callbacks run from the loop, not from the
 * handler; a burst of 1,000 synchronous raises gives 1,000 callbacks;
 * kill(getpid()) works; unwatch and iomux_loop_free restore the previous
 * disposition; bad signal numbers and double watches are refused.
 */
#include "test_util.h"

static const char *backend;

struct sig_rec {
    int calls;
    int wrong; /* calls with an unexpected signo */
    int signo; /* the signo this watcher is for */
    bool unwatch_self;
};

static void sig_cb(struct iomux_loop *loop, int signo, void *data)
{
    struct sig_rec *r = data;
    r->calls++;
    r->wrong += signo != r->signo;
    if (r->unwatch_self)
        iomux_signal_unwatch(loop, signo);
}

/* Runs iterations until *count reaches target, or until three iterations in
   a row ran no callback (after at most 200 iterations). */
static void run_until_quiet(struct iomux_loop *loop, const int *count, int target)
{
    int quiet = 0;
    for (int i = 0; i < 200 && quiet < 3 && *count < target; i++) {
        int rc = iomux_loop_run_once(loop, 100);
        if (!CHECK_COUNT(rc))
            return;
        quiet = rc == 0 ? quiet + 1 : 0;
    }
}

static void (*disposition(int signo))(int)
{
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0)
        return SIG_ERR;
    return sa.sa_handler;
}

static void t_raise(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct sig_rec r = {.signo = SIGUSR1};
    CHECK_OK(iomux_signal_watch(loop, SIGUSR1, sig_cb, &r));
    CHECK_EQ_INT(raise(SIGUSR1), 0);
    CHECK_EQ_INT(r.calls, 0); /* not from the handler: only from the loop */
    run_until_quiet(loop, &r.calls, 1);
    CHECK_EQ_INT(r.calls, 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    CHECK_EQ_INT(r.calls, 1);

    /* kill() to ourselves is delivered before it returns, too. */
    CHECK_EQ_INT(kill(getpid(), SIGUSR1), 0);
    run_until_quiet(loop, &r.calls, 2);
    CHECK_EQ_INT(r.calls, 2);
    CHECK_EQ_INT(r.wrong, 0);
    CHECK_OK(iomux_signal_unwatch(loop, SIGUSR1));
    iomux_loop_free(loop);
}

/* raise() is synchronous: each of the 1,000 is a delivery, and the loop
   must not coalesce them. */
static void t_burst(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct sig_rec r = {.signo = SIGUSR2}, other = {.signo = SIGUSR1};
    CHECK_OK(iomux_signal_watch(loop, SIGUSR2, sig_cb, &r));
    CHECK_OK(iomux_signal_watch(loop, SIGUSR1, sig_cb, &other));
    for (int i = 0; i < 1000; i++)
        raise(SIGUSR2);
    raise(SIGUSR1);
    run_until_quiet(loop, &r.calls, 1000);
    for (int i = 0; i < 3; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 10));
    CHECK_EQ_INT(r.calls, 1000);
    CHECK_EQ_INT(other.calls, 1);
    CHECK_EQ_INT(r.wrong + other.wrong, 0);
    CHECK_OK(iomux_signal_unwatch(loop, SIGUSR2));
    CHECK_OK(iomux_signal_unwatch(loop, SIGUSR1));
    iomux_loop_free(loop);
}

static void other_handler(int signo) {}

/* The disposition in place before the watch comes back after unwatch and
   after iomux_loop_free, whether it was SIG_DFL, SIG_IGN or a handler. */
static void t_restore(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct sig_rec r = {.signo = SIGUSR1};

    CHECK(disposition(SIGUSR1) == SIG_DFL);
    CHECK_OK(iomux_signal_watch(loop, SIGUSR1, sig_cb, &r));
    CHECK(disposition(SIGUSR1) != SIG_DFL);
    CHECK_OK(iomux_signal_unwatch(loop, SIGUSR1));
    CHECK(disposition(SIGUSR1) == SIG_DFL);
    CHECK_ERRNO(iomux_signal_unwatch(loop, SIGUSR1), -ENOENT);

    struct sigaction mine = {.sa_handler = other_handler}, old;
    sigemptyset(&mine.sa_mask);
    CHECK_EQ_INT(sigaction(SIGUSR2, &mine, &old), 0);
    CHECK_OK(iomux_signal_watch(loop, SIGUSR2, sig_cb, &r));
    CHECK(disposition(SIGUSR2) != other_handler);
    CHECK_OK(iomux_signal_unwatch(loop, SIGUSR2));
    CHECK(disposition(SIGUSR2) == other_handler);

    CHECK(signal(SIGUSR2, SIG_IGN) != SIG_ERR);
    CHECK_OK(iomux_signal_watch(loop, SIGUSR2, sig_cb, &r));
    iomux_loop_free(loop); /* frees with the watch still in place */
    CHECK(disposition(SIGUSR2) == SIG_IGN);
    CHECK_EQ_INT(sigaction(SIGUSR2, &old, NULL), 0);
}

/* A signal watcher keeps iomux_loop_run going; unwatching the last one from
   its callback ends it. */
struct raiser {
    int signo;
};

static void raise_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct raiser *r = data;
    raise(r->signo);
}

static void t_run(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    struct sig_rec r = {.signo = SIGUSR1, .unwatch_self = true};
    struct raiser rz = {.signo = SIGUSR1};
    uint64_t id;
    CHECK_OK(iomux_signal_watch(loop, SIGUSR1, sig_cb, &r));
    CHECK_OK(iomux_timer_add(loop, 5, 0, raise_cb, &rz, &id));
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_INT(r.calls, 1);
    CHECK(disposition(SIGUSR1) == SIG_DFL);
    iomux_loop_free(loop);
}

static void t_errors(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    struct iomux_loop *second = test_loop_new(backend, 0);
    if (!loop || !second)
        return;
    struct sig_rec r = {.signo = SIGUSR1};
    CHECK_ERRNO(iomux_signal_watch(loop, SIGKILL, sig_cb, &r), -EINVAL);
    CHECK_ERRNO(iomux_signal_watch(loop, SIGSTOP, sig_cb, &r), -EINVAL);
    CHECK_ERRNO(iomux_signal_watch(loop, 0, sig_cb, &r), -EINVAL);
    CHECK_ERRNO(iomux_signal_watch(loop, -1, sig_cb, &r), -EINVAL);
    CHECK_ERRNO(iomux_signal_watch(loop, 100000, sig_cb, &r), -EINVAL);
    CHECK_ERRNO(iomux_signal_watch(loop, SIGUSR1, NULL, &r), -EINVAL);
    CHECK_OK(iomux_signal_watch(loop, SIGUSR1, sig_cb, &r));
    CHECK_ERRNO(iomux_signal_watch(loop, SIGUSR1, sig_cb, &r), -EEXIST);
    CHECK_ERRNO(iomux_signal_watch(second, SIGUSR1, sig_cb, &r), -EBUSY);
    CHECK_OK(iomux_signal_unwatch(loop, SIGUSR1));
    CHECK_OK(iomux_signal_watch(second, SIGUSR1, sig_cb, &r));
    CHECK_EQ_INT(raise(SIGUSR1), 0);
    run_until_quiet(second, &r.calls, 1);
    CHECK_EQ_INT(r.calls, 1);
    CHECK_OK(iomux_signal_unwatch(second, SIGUSR1));
    iomux_loop_free(second);
    iomux_loop_free(loop);
}

int main(int argc, char **argv)
{
    alarm(30);
    backend = test_backend(argc, argv);
    check_run("raise and kill", t_raise);
    check_run("burst of 1,000", t_burst);
    check_run("previous disposition restored", t_restore);
    check_run("signal watcher and iomux_loop_run", t_run);
    check_run("errors", t_errors);
    return check_exit();
}
