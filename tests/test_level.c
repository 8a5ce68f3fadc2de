/* SPDX-License-Identifier: MIT */
/*
 * test_level.c - the level-triggered rule every backend owes the core, on the
 * backend named by argv[1]: an fd that is still ready is reported again by
 * the next wait, one that was drained is not (no stale wake-up from an
 * earlier change of state, and no event the wake-up's mask merely allowed),
 * interest changes and unwatch/re-watch cycles
 * leave no stale readiness, and a burst of wake-ups on thousands of fds
 * (which overflows io_uring's completion ring and ends multishot polls)
 * loses no fd. Written for the uring backend, whose kernel interface is not
 * level-triggered, and run on all of them. Two checks are uring's alone: a
 * loop made as root runs on a ring made after the privileges were dropped,
 * and io_uring refused by seccomp makes the backend unavailable
 * (-ENOSYS/-EPERM) while "auto" still works.
 */
#include "test_util.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *backend;

struct counter {
    int calls;
    unsigned events;
    int read_each; /* bytes to read per call; 0 = read nothing; -1 = drain */
    int peer;      /* fd to write into from the callback, or -1 */
};

static void count_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct counter *c = data;
    c->calls++;
    c->events = events;
    if (c->peer >= 0) {
        /* A new wake-up of the same fd while its callback runs. */
        (void)!write(c->peer, "w", 1);
        c->peer = -1;
    }
    char buf[4096];
    if (c->read_each > 0)
        (void)!read(fd, buf, (size_t)c->read_each);
    else if (c->read_each < 0)
        while (read(fd, buf, sizeof buf) > 0) {
        }
}

/* Data left unread is reported by every wait until it is gone; then the
   loop blocks again. */
static void t_unread_reported_again(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[2];
    if (!loop || !make_pipe(p))
        return;
    struct counter c = {.read_each = 1, .peer = -1};
    CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, count_cb, &c));
    CHECK_EQ_INT(write(p[1], "abcde", 5), 5);
    for (int i = 1; i <= 5; i++) {
        CHECK_EQ_INT(iomux_loop_run_once(loop, i == 1 ? 1000 : 0), 1);
        CHECK_EQ_INT(c.calls, i);
    }
    uint64_t t0 = mono_ns();
    CHECK_EQ_INT(iomux_loop_run_once(loop, 30), 0);
    CHECK_U64(mono_ns() - t0, >=, 25 * MS_NS);
    CHECK_EQ_INT(c.calls, 5);

    /* Ignored entirely: still reported, wait after wait. */
    c.read_each = 0;
    CHECK_EQ_INT(write(p[1], "x", 1), 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(c.calls, 8);
    CHECK_OK(iomux_fd_unwatch(loop, p[0]));
    close(p[0]);
    close(p[1]);
    iomux_loop_free(loop);
}

/* A writable socket stays reported; dropping WRITE silences it at once,
   asking again brings it back. */
static void t_writable_level(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct counter c = {.peer = -1};
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_WRITE, count_cb, &c));
    CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 1);
    CHECK_EQ_INT(c.events, IOMUX_WRITE);
    CHECK_OK(iomux_fd_modify(loop, s[0], IOMUX_READ));
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0);
    CHECK_OK(iomux_fd_modify(loop, s[0], IOMUX_READ | IOMUX_WRITE));
    CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(c.events, IOMUX_WRITE);
    CHECK_EQ_INT(c.calls, 6);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/* More data arrives while the callback runs and the callback drains it
   all: the wake-up it caused is old news, and the next wait is quiet. */
static void t_no_stale_wakeup(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct counter c = {.read_each = -1, .peer = s[1]};
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ, count_cb, &c));
    CHECK_EQ_INT(write(s[1], "a", 1), 1);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(c.calls, 1);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0);
    CHECK_EQ_INT(c.calls, 1);
    /* And a real wake-up after that is still seen. */
    CHECK_EQ_INT(write(s[1], "b", 1), 1);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(c.calls, 2);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/* Data that arrives while the loop is blocked is reported as what it is:
   READ, not the POLLIN|POLLPRI of the socket's wake-up (io_uring hands the
   wake-up's mask to a poll request; a backend must not pass it on). */
static void t_wakeup_mask_not_state(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct counter c = {.read_each = -1, .peer = -1};
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ | IOMUX_PRI, count_cb, &c));
    for (int round = 0; round < 3; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            sleep_ms(30);
            _exit(write(s[1], "late", 4) == 4 ? 0 : 1);
        }
        CHECK_EQ_INT(iomux_loop_run_once(loop, 5000), 1);
        CHECK_EQ_INT(c.events, IOMUX_READ);
        int status = 0;
        CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK_EQ_INT(c.calls, 3);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/* Interest toggled, paused, unwatched and re-watched many times with
   events pending in between: every wait reports exactly what is ready
   for the current interest. */
static void t_interest_churn(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct counter c = {.peer = -1};
    int wrong = 0;
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ | IOMUX_WRITE, count_cb, &c));
    for (int i = 0; i < 300; i++) {
        int before = c.calls;
        switch (i % 5) {
        case 0: /* writable only */
            CHECK_OK(iomux_fd_modify(loop, s[0], IOMUX_READ | IOMUX_WRITE));
            wrong += iomux_loop_run_once(loop, 1000) != 1 || c.events != IOMUX_WRITE;
            break;
        case 1: /* nothing to read */
            CHECK_OK(iomux_fd_modify(loop, s[0], IOMUX_READ));
            wrong += iomux_loop_run_once(loop, 0) != 0;
            break;
        case 2: /* paused with data pending */
            CHECK_EQ_INT(write(s[1], "d", 1), 1);
            CHECK_OK(iomux_fd_modify(loop, s[0], 0));
            wrong += iomux_loop_run_once(loop, 0) != 0;
            break;
        case 3: /* unwatched and watched again: the data is reported */
            CHECK_OK(iomux_fd_unwatch(loop, s[0]));
            CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ, count_cb, &c));
            wrong += iomux_loop_run_once(loop, 1000) != 1 || c.events != IOMUX_READ;
            break;
        case 4: /* drained by hand: quiet */
            c.read_each = -1;
            count_cb(loop, s[0], IOMUX_READ, &c);
            c.read_each = 0;
            before = c.calls;
            wrong += iomux_loop_run_once(loop, 0) != 0;
            break;
        }
        wrong += i % 5 != 1 && i % 5 != 2 && i % 5 != 4 && c.calls != before + 1;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/* Thousands of fds, each woken three times before the loop looks (on
   uring: more completions than the ring holds, so multishot polls end and
   must be re-armed). Every fd is reported once per wait while unread,
   none after draining, and every fd is woken again afterwards. */
#define BURST_FDS 2500
/* Waits one round may take: 2500 / epoll's batch of 1024, plus slack. */
#define BURST_WAITS 5
static int burst_fds[BURST_FDS][2];
static struct counter burst_counters[BURST_FDS];

static int burst_calls(void)
{
    int n = 0;
    for (int i = 0; i < BURST_FDS; i++)
        n += burst_counters[i].calls;
    return n;
}

static int burst_silent(void)
{
    int n = 0;
    for (int i = 0; i < BURST_FDS; i++)
        n += burst_counters[i].calls == 0;
    return n;
}

static void burst_reset(int read_each)
{
    for (int i = 0; i < BURST_FDS; i++)
        burst_counters[i] = (struct counter){.read_each = read_each, .peer = -1};
}

static void t_burst(void)
{
    if (!raise_nofile(2 * BURST_FDS + 64)) {
        fprintf(stderr, "  skipped: cannot open %d fds here\n", 2 * BURST_FDS + 64);
        return;
    }
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    if (strcmp(iomux_loop_backend(loop), "select") == 0) {
        fprintf(stderr, "  select: skipped (fds above FD_SETSIZE)\n");
        iomux_loop_free(loop);
        return;
    }
    int opened = 0;
    for (; opened < BURST_FDS; opened++) {
        if (!make_pipe(burst_fds[opened]))
            break;
    }
    if (!CHECK_EQ_INT(opened, BURST_FDS))
        goto out;
    burst_reset(0);
    for (int i = 0; i < BURST_FDS; i++)
        CHECK_OK(iomux_fd_watch(loop, burst_fds[i][0], IOMUX_READ, count_cb, &burst_counters[i]));
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < BURST_FDS; i++)
            CHECK_EQ_INT(write(burst_fds[i][1], "b", 1), 1);

    /* Unread: everyone is reported, and reported again while unread. A
       backend may spread one round over a few waits (epoll hands out at
       most a batch of events per wait, rotating), never lose an fd. */
    int ran = 0;
    for (int w = 0; w < BURST_WAITS && burst_silent() > 0; w++)
        ran += iomux_loop_run_once(loop, 1000);
    CHECK_EQ_INT(burst_silent(), 0);
    CHECK_EQ_INT(ran, burst_calls());
    burst_reset(0);
    for (int w = 0; w < BURST_WAITS && burst_silent() > 0; w++)
        CHECK_COUNT(iomux_loop_run_once(loop, 1000));
    CHECK_EQ_INT(burst_silent(), 0);

    /* Drained: each fd is reported until its callback has read it, then
       the loop is quiet. */
    burst_reset(-1);
    for (int w = 0; w < BURST_WAITS && burst_silent() > 0; w++)
        CHECK_COUNT(iomux_loop_run_once(loop, 1000));
    CHECK_EQ_INT(burst_silent(), 0);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0);

    /* Woken again: nobody was left unarmed. */
    burst_reset(-1);
    for (int i = 0; i < BURST_FDS; i++)
        CHECK_EQ_INT(write(burst_fds[i][1], "c", 1), 1);
    for (int w = 0; w < 3 && burst_silent() > 0; w++)
        CHECK_COUNT(iomux_loop_run_once(loop, 1000));
    CHECK_EQ_INT(burst_silent(), 0);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0);

out:
    for (int i = 0; i < opened; i++) {
        (void)iomux_fd_unwatch(loop, burst_fds[i][0]);
        close(burst_fds[i][0]);
        close(burst_fds[i][1]);
    }
    iomux_loop_free(loop);
}

/* Number of the first io_uring descriptor, or -1. */
static int ring_fd(void)
{
    for (int fd = 0; fd < 1024; fd++) {
        char path[64], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            if (strstr(target, "io_uring"))
                return fd;
        }
    }
    return -1;
}

/* uring only, as root: a loop made as root and run after the effective
   ids were dropped runs on a ring made without root (its descriptor is a
   new one), and the loop works on. In a child, so the parent keeps its
   ids. */
static void t_ring_after_drop(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    bool uring = strcmp(iomux_loop_backend(loop), "uring") == 0;
    iomux_loop_free(loop);
    if (!uring || geteuid() != 0 || ring_fd() >= 0) {
        fprintf(stderr, "  not a uring loop run by root: nothing to check\n");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        struct iomux_loop *l = test_loop_new(backend, 0);
        int p[2];
        if (!l || !make_pipe(p))
            _exit(1);
        int made = ring_fd();
        struct counter c = {.read_each = -1, .peer = -1};
        bool ok = made >= 0 && iomux_fd_watch(l, p[0], IOMUX_READ, count_cb, &c) == 0 &&
                  setegid(65534) == 0 && seteuid(65534) == 0 && iomux_loop_run_once(l, 0) == 0 &&
                  write(p[1], "x", 1) == 1 && iomux_loop_run_once(l, 1000) == 1 && c.calls == 1 &&
                  seteuid(0) == 0;
        /* The first ring was closed, its successor is another file. */
        int now = ring_fd();
        ok = ok && now >= 0 && now != made;
        iomux_loop_free(l);
        _exit(ok && ring_fd() < 0 ? 0 : 1);
    }
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* In a child that a seccomp filter forbids io_uring_setup() (failing
   with `err`): the uring loop is refused with that error and "auto"
   still gets a loop. Exits 0 when both hold. */
static int refused_child(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 2;
    struct iomux_loop *loop = NULL;
    struct iomux_loop_options uring = {.backend = "uring"};
    if (iomux_loop_new(&loop, &uring) != -err)
        return 1;
    if (iomux_loop_new(&loop, NULL) != 0)
        return 1;
    bool ok = strcmp(iomux_loop_backend(loop), "uring") != 0;
    iomux_loop_free(loop);
    return ok ? 0 : 1;
}

/* uring only: a kernel or policy that refuses io_uring (ENOSYS, EPERM)
   makes the backend unavailable, not broken. */
static void t_refused(void)
{
    if (!backend || strcmp(backend, "uring") != 0) {
        fprintf(stderr, "  not the uring backend: nothing to check\n");
        return;
    }
    const int errs[] = {ENOSYS, EPERM};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(refused_child(errs[i]));
        int status = 0;
        CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
            fprintf(stderr, "  no seccomp here: nothing to check\n");
            return;
        }
        if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fprintf(stderr, "  io_uring_setup refused with %s: not handled\n", strerror(errs[i]));
    }
}

int main(int argc, char **argv)
{
    alarm(60); /* a hang is a failure, never a stuck ctest */
    backend = test_backend(argc, argv);
    if (!test_announce_backend(backend))
        return check_exit();

    check_run("unread data is reported again", t_unread_reported_again);
    check_run("writability is level-triggered", t_writable_level);
    check_run("no stale wake-up after a drain", t_no_stale_wakeup);
    check_run("a wake-up's mask is not the fd's state", t_wakeup_mask_not_state);
    check_run("interest churn", t_interest_churn);
    check_run("burst on thousands of fds", t_burst);
    check_run("ring made again after a privilege drop", t_ring_after_drop);
    check_run("io_uring refused by the kernel or a policy", t_refused);
    return check_exit();
}
