/* SPDX-License-Identifier: MIT */
/*
 * signal.c - signals delivered through the loop with a self-pipe.
 *
 * The handler does the least it can: it counts the signal and writes one
 * byte to the pipe of the loop that watches it. The pipe's read end is an
 * ordinary watched fd, so every backend wakes up the same way, and user
 * callbacks run from the loop, never from the handler. Counts, not bytes,
 * say how many deliveries happened, so a full pipe loses nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "loop_internal.h"

/* The handler reads these; they must be lock-free to be async-signal-safe. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal counters must be lock-free");

static atomic_uint caught[NSIG];
static atomic_int wake_fd[NSIG]; /* write end + 1; 0 = nobody watches */
static struct iomux_loop *owner[NSIG];

static void on_signal(int signo)
{
    int saved_errno = errno;
    atomic_fetch_add(&caught[signo], 1u);
    int fd = atomic_load(&wake_fd[signo]) - 1;
    if (fd >= 0) {
        unsigned char byte = (unsigned char)signo;
        /* A full pipe is fine: the loop is awake already. */
        ssize_t ignored = write(fd, &byte, 1);
        (void)ignored;
    }
    errno = saved_errno;
}

void iomux__signals_init(struct iomux__signals *signals)
{
    memset(signals, 0, sizeof *signals);
    signals->pipe[0] = signals->pipe[1] = -1;
}

static void on_wakeup(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    unsigned char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    for (int signo = 1; signo < NSIG; signo++) {
        if (!loop->signals.cb[signo])
            continue;
        unsigned n = atomic_exchange(&caught[signo], 0u);
        /* The callback may unwatch its own signal: re-check each time. */
        for (unsigned i = 0; i < n && loop->signals.cb[signo]; i++) {
            loop->signals.cb[signo](loop, signo, loop->signals.data[signo]);
            loop->internal_ran++;
        }
    }
}

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

int iomux__pipe_open(int fds[2])
{
    /* pipe() + fcntl() rather than pipe2(): this file stays POSIX. */
    if (pipe(fds) < 0)
        return -errno;
    int rc = set_flags(fds[0]);
    if (rc == 0)
        rc = set_flags(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return rc;
}

static int open_pipe(struct iomux_loop *loop)
{
    struct iomux__signals *s = &loop->signals;
    int fds[2];
    int rc = iomux__pipe_open(fds);
    if (rc < 0)
        return rc;
    s->pipe[0] = fds[0];
    s->pipe[1] = fds[1];
    rc = iomux_fd_watch(loop, fds[0], IOMUX_READ, on_wakeup, NULL);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        s->pipe[0] = s->pipe[1] = -1;
    }
    return rc;
}

int iomux_signal_watch(struct iomux_loop *loop, int signo, iomux_signal_cb *cb, void *data)
{
    struct iomux__signals *s = &loop->signals;
    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP || !cb)
        return -EINVAL;
    if (s->cb[signo])
        return -EEXIST;
    if (owner[signo])
        return -EBUSY;
    if (s->pipe[0] < 0) {
        int rc = open_pipe(loop);
        if (rc < 0)
            return rc;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* SA_RESTART: the loop is woken by the pipe, so other blocking calls
       in the program need not see EINTR because of us. */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    atomic_store(&caught[signo], 0u);
    atomic_store(&wake_fd[signo], s->pipe[1] + 1);
    if (sigaction(signo, &sa, &s->previous[signo]) < 0) {
        int err = errno;
        atomic_store(&wake_fd[signo], 0);
        return -err;
    }
    owner[signo] = loop;
    s->cb[signo] = cb;
    s->data[signo] = data;
    s->count++;
    return 0;
}

int iomux_signal_unwatch(struct iomux_loop *loop, int signo)
{
    struct iomux__signals *s = &loop->signals;
    if (signo <= 0 || signo >= NSIG || !s->cb[signo])
        return -ENOENT;
    sigaction(signo, &s->previous[signo], NULL);
    atomic_store(&wake_fd[signo], 0);
    atomic_store(&caught[signo], 0u);
    owner[signo] = NULL;
    s->cb[signo] = NULL;
    s->data[signo] = NULL;
    s->count--;
    return 0;
}

void iomux__signals_fini(struct iomux_loop *loop)
{
    struct iomux__signals *s = &loop->signals;
    for (int signo = 1; signo < NSIG; signo++)
        if (s->cb[signo])
            iomux_signal_unwatch(loop, signo);
    if (s->pipe[0] >= 0) {
        iomux_fd_unwatch(loop, s->pipe[0]);
        close(s->pipe[0]);
        close(s->pipe[1]);
        s->pipe[0] = s->pipe[1] = -1;
    }
}
