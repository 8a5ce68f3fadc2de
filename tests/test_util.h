/* SPDX-License-Identifier: MIT */
/*
 * test_util.h - small helpers shared by the loop tests: a loop on the backend
 * named on the command line, non-blocking pipes and socket pairs, moving an fd
 * to a chosen number, a monotonic clock and a bounded "run until" loop.
 */
#ifndef IOMUX_TESTS_TEST_UTIL_H
#define IOMUX_TESTS_TEST_UTIL_H

#include "check.h"

#include <iomux/loop.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS_NS 1000000u /* nanoseconds in a millisecond */

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * The backend a test program runs on: argv[1], or NULL (the default) when
 * the program is run without arguments.
 */
static inline const char *test_backend(int argc, char **argv)
{
    return argc > 1 ? argv[1] : NULL;
}

/* Creates a loop on `backend` with `max_fds`. Exits 77 if this system lacks
   the backend; on any other error counts a failure and returns NULL. */
static inline struct iomux_loop *test_loop_new(const char *backend, unsigned max_fds)
{
    struct iomux_loop_options opts = {.backend = backend, .max_fds = max_fds};
    struct iomux_loop *loop = NULL;
    int rc = iomux_loop_new(&loop, &opts);
    if (rc == -ENOSYS || rc == -EPERM)
        check_skip("backend %s is not available here: %s", backend ? backend : "(default)",
                   strerror(-rc));
    if (!CHECK_OK(rc))
        return NULL;
    if (!CHECK(loop != NULL))
        return NULL;
    return loop;
}

/* Prints the backend a test program runs on, after checking that a loop
   can be made on it (exits 77 if not). False after counting a failure. */
static inline bool test_announce_backend(const char *backend)
{
    struct iomux_loop *probe = test_loop_new(backend, 0);
    if (!probe)
        return false;
    fprintf(stderr, "backend: %s\n", iomux_loop_backend(probe));
    iomux_loop_free(probe);
    return true;
}

static inline bool make_pipe(int p[2])
{
    return CHECK_EQ_INT(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static inline bool make_socketpair(int s[2])
{
    return CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
}

static inline bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* Moves `fd` to the number `target` (which must be free); returns target,
   or -1 after counting a failure. */
static inline int move_fd(int fd, int target)
{
    if (fd == target)
        return fd;
    if (!CHECK(!fd_is_open(target)))
        return -1;
    if (!CHECK_EQ_INT(dup3(fd, target, O_CLOEXEC), target))
        return -1;
    close(fd);
    return target;
}

/* Number of open descriptors below 1024, to check that nothing leaks. */
static inline int count_open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fd_is_open(fd);
    return n;
}

/* Makes sure fds up to `want - 1` can be opened; false if impossible. */
static inline bool raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
            return false;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return false;
    }
    return true;
}

/*
 * Runs iterations of at most `timeout_ms` until *count reaches `target`,
 * for at most `max_iter` iterations. Every iteration must succeed. Returns
 * whether the target was reached; the caller checks it.
 */
static inline bool run_until(struct iomux_loop *loop, const int *count, int target, int max_iter,
                             int timeout_ms)
{
    for (int i = 0; i < max_iter && *count < target; i++) {
        if (!CHECK_COUNT(iomux_loop_run_once(loop, timeout_ms)))
            return false;
    }
    return *count >= target;
}

#endif /* IOMUX_TESTS_TEST_UTIL_H */
