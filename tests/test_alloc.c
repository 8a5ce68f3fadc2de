/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c - allocation failure on the backend named by argv[1]. A
 * counting allocator (installed with iomux_set_allocator before any loop
 * exists, so this is a program of its own) fails the Nth allocation; every
 * failure must give -ENOMEM, leave no block and no descriptor behind, and
 * leave the loop working.
 */
#include "fail_alloc.h"
#include "test_util.h"

static const char *backend;

struct rec {
    int calls;
};

static void note_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct rec *r = data;
    char buf[16];
    r->calls++;
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* The loop still delivers readiness on `fd` (a pipe whose write end is
   `wfd`, watched with `r`). */
static bool still_works(struct iomux_loop *loop, int wfd, struct rec *r)
{
    int before = r->calls;
    fail_at = 0;
    return CHECK_EQ_INT(write(wfd, "x", 1), 1) &&
           CHECK(run_until(loop, &r->calls, before + 1, 5, 1000));
}

/* iomux_loop_new fails at every allocation it makes, then succeeds. */
static void t_loop_new(void)
{
    int fds_before = count_open_fds();
    unsigned long calls_before = n_calls;
    struct iomux_loop *loop = NULL;
    unsigned long k;
    int rc = -1;
    for (k = 1; k <= 100; k++) {
        fail_after(k);
        struct iomux_loop_options opts = {.backend = backend};
        rc = iomux_loop_new(&loop, &opts);
        if (rc == -ENOSYS || rc == -EPERM)
            check_skip("backend %s not available", backend);
        if (rc == 0)
            break;
        if (!CHECK_ERRNO(rc, -ENOMEM))
            fprintf(stderr, "  failing allocation %lu\n", k);
        CHECK_EQ_INT(outstanding, 0);
        CHECK_EQ_INT(count_open_fds(), fds_before);
    }
    fail_at = 0;
    if (!CHECK_OK(rc))
        return;
    fprintf(stderr, "  iomux_loop_new(%s) makes %lu allocation(s); each failure gave -ENOMEM\n",
            backend ? backend : "default", k - 1);
    CHECK_INT(n_calls, >, calls_before); /* the allocator is really used */
    CHECK_INT(k, >, 1);
    int p[2];
    struct rec r = {0};
    if (make_pipe(p)) {
        CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, note_cb, &r));
        still_works(loop, p[1], &r);
        CHECK_OK(iomux_fd_unwatch(loop, p[0]));
        close(p[0]);
        close(p[1]);
    }
    iomux_loop_free(loop);
    CHECK_EQ_INT(outstanding, 0);
    CHECK_EQ_INT(count_open_fds(), fds_before);
}

/* Watching fd 900 grows the table: each allocation of that growth fails in
   turn with -ENOMEM, leaving the fd unwatched and the loop working. */
static void t_fd_watch_growth(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[2], q[2];
    if (!loop || !make_pipe(p) || !make_pipe(q))
        return;
    struct rec r = {0}, rh = {0};
    CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, note_cb, &r));
    int hi = move_fd(q[0], 900);
    if (hi < 0)
        return;
    unsigned long k;
    int rc = -1;
    for (k = 1; k <= 100; k++) {
        fail_after(k);
        unsigned long calls = n_calls;
        rc = iomux_fd_watch(loop, hi, IOMUX_READ, note_cb, &rh);
        if (rc == 0) {
            CHECK(n_calls - calls < k); /* it succeeded without reaching the failure */
            break;
        }
        CHECK_ERRNO(rc, -ENOMEM);
        /* Arrays that did grow may stay grown (they are the loop's, freed
           with it); the fd must not be half-watched. */
        CHECK_ERRNO(iomux_fd_mask(loop, hi), -ENOENT);
        still_works(loop, p[1], &r);
    }
    fail_at = 0;
    fprintf(stderr, "  watching fd %d made %lu allocation(s); each failure gave -ENOMEM\n", hi,
            k - 1);
    CHECK_OK(rc);
    CHECK_INT(k, >, 1);
    still_works(loop, q[1], &rh);
    still_works(loop, p[1], &r);
    CHECK_OK(iomux_fd_unwatch(loop, hi));
    CHECK_OK(iomux_fd_unwatch(loop, p[0]));
    iomux_loop_free(loop);
    CHECK_EQ_INT(outstanding, 0);
    close(hi);
    close(q[1]);
    close(p[0]);
    close(p[1]);
}

/* iomux_timer_add under failure: whenever an add needs memory and does not
   get it, it says -ENOMEM and changes nothing; the timers added fire once. */
struct tcount {
    int fired;
};

static void timer_cb(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct tcount *t = data;
    t->fired++;
}

static void t_timer_add(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    enum { N = 1000 };
    static struct tcount t[N];
    memset(t, 0, sizeof t);
    int enomem = 0, added = 0;
    for (int i = 0; i < N; i++) {
        /* Fail the 1st, then the 2nd, ... allocation of this add, until it
           needs no more than it is given. */
        int rc = -1;
        for (unsigned long k = 1; k <= 10; k++) {
            unsigned long calls = n_calls;
            uint64_t id = 0;
            fail_after(k);
            rc = iomux_timer_add(loop, (uint64_t)(i % 5), 0, timer_cb, &t[i], &id);
            fail_at = 0;
            if (rc == 0) {
                CHECK_U64(n_calls - calls, <, k); /* the failure was not reached */
                CHECK_U64(id, !=, 0);
                break;
            }
            enomem++;
            CHECK_ERRNO(rc, -ENOMEM);
        }
        added += rc == 0;
    }
    fprintf(stderr, "  %d failed allocation(s) over %d adds; each gave -ENOMEM\n", enomem, N);
    CHECK_INT(enomem, >=, 1);
    int fired = 0;
    for (int iter = 0; iter < 100 && fired < added; iter++) {
        CHECK_COUNT(iomux_loop_run_once(loop, 10));
        fired = 0;
        for (int i = 0; i < N; i++)
            fired += t[i].fired;
    }
    int not_once = 0;
    for (int i = 0; i < N; i++)
        not_once += t[i].fired != 1;
    CHECK_EQ_INT(added, N);
    CHECK_EQ_INT(not_once, 0);
    iomux_loop_free(loop);
    CHECK_EQ_INT(outstanding, 0);
}

/* iomux_signal_watch under failure. The self-pipe is pushed above the
   table's first size (by occupying the low fds), so registering it must
   grow the table; each failure leaves the disposition and the fds as they
   were. */
struct srec {
    int calls;
};

static void sig_cb(struct iomux_loop *loop, int signo, void *data)
{
    struct srec *s = data;
    s->calls++;
}

/* Occupies the low fds, so the next one opened is above the table's first
   size and watching it must grow the table. Returns how many it opened. */
static int fill_low_fds(int fillers[200])
{
    int nfill = 0;
    while (nfill < 200) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        fillers[nfill++] = fd;
        if (fd >= 130)
            break;
    }
    return nfill;
}

static void t_signal_watch(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    int fillers[200];
    int nfill = fill_low_fds(fillers);
    int fds_before = count_open_fds();
    struct srec s = {0};
    unsigned long k;
    int rc = -1;
    for (k = 1; k <= 100; k++) {
        fail_after(k);
        rc = iomux_signal_watch(loop, SIGUSR1, sig_cb, &s);
        fail_at = 0;
        if (rc == 0)
            break;
        CHECK_ERRNO(rc, -ENOMEM);
        CHECK_EQ_INT(count_open_fds(), fds_before);
        struct sigaction sa;
        CHECK_EQ_INT(sigaction(SIGUSR1, NULL, &sa), 0);
        CHECK(sa.sa_handler == SIG_DFL);
    }
    fprintf(stderr, "  iomux_signal_watch with its pipe at fd >= %d made %lu allocation(s)\n",
            fds_before - 1, k - 1);
    CHECK_OK(rc);
    if (rc == 0) {
        CHECK_EQ_INT(raise(SIGUSR1), 0);
        CHECK(run_until(loop, &s.calls, 1, 5, 1000));
        CHECK_OK(iomux_signal_unwatch(loop, SIGUSR1));
    }
    iomux_loop_free(loop);
    CHECK_EQ_INT(outstanding, 0);
    while (nfill > 0)
        close(fillers[--nfill]);
}

/* iomux_async_new under failure, its wake fd pushed high as the signal
   pipe is above: each failure leaves no block, no fd and no handle. */
static void async_cb(struct iomux_loop *loop, struct iomux_async *async, void *data)
{
    struct rec *r = data;
    r->calls++;
}

static void t_async_new(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    int fillers[200];
    int nfill = fill_low_fds(fillers);
    int fds_before = count_open_fds();
    struct rec r = {0};
    struct iomux_async *a = NULL;
    unsigned long k;
    int rc = -1;
    for (k = 1; k <= 100; k++) {
        fail_after(k);
        rc = iomux_async_new(loop, async_cb, &r, &a);
        fail_at = 0;
        if (rc == 0)
            break;
        CHECK_ERRNO(rc, -ENOMEM);
        CHECK_EQ_INT(count_open_fds(), fds_before);
        CHECK_OK(iomux_loop_run(loop)); /* no handle keeps it going */
    }
    fprintf(stderr, "  iomux_async_new with its wake fd at fd >= %d made %lu allocation(s)\n",
            fds_before - 1, k - 1);
    if (CHECK_OK(rc)) {
        CHECK_OK(iomux_async_send(a));
        CHECK(run_until(loop, &r.calls, 1, 5, 1000));
        iomux_async_free(a);
    }
    iomux_loop_free(loop);
    CHECK_EQ_INT(outstanding, 0);
    while (nfill > 0)
        close(fillers[--nfill]);
}

int main(int argc, char **argv)
{
    alarm(30);
    backend = test_backend(argc, argv);
    if (!CHECK_OK(iomux_set_allocator(count_malloc, count_realloc, count_free)))
        return check_exit();
    check_run("iomux_loop_new", t_loop_new);
    check_run("iomux_fd_watch growing the table", t_fd_watch_growth);
    check_run("iomux_timer_add", t_timer_add);
    check_run("iomux_signal_watch", t_signal_watch);
    check_run("iomux_async_new", t_async_new);
    CHECK_EQ_INT(outstanding, 0);
    return check_exit();
}
