/* SPDX-License-Identifier: MIT */
/* wake.c - a timerfd as the open loop's alarm clock; see wake.h. */
#include "wake.h"

#include <errno.h>
#include <unistd.h>

#include <iomux/loop.h>

#ifdef __linux__
#include <sys/timerfd.h>

/* Reading clears the timer's readiness; the next iteration of the worker's
   loop then releases what is due. */
static void on_wake(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct wake *wk = data;
    uint64_t ticks;
    if (read(fd, &ticks, sizeof ticks) > 0)
        wk->armed_ns = 0;
}

int wake_open(struct wake *wk, struct iomux_loop *loop)
{
    wk->loop = loop;
    wk->armed_ns = 0;
    wk->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (wk->fd < 0)
        return -errno;
    int rc = iomux_fd_watch(loop, wk->fd, IOMUX_READ, on_wake, wk);
    if (rc < 0) {
        close(wk->fd);
        wk->fd = -1;
    }
    return rc;
}

int wake_arm(struct wake *wk, uint64_t at_ns)
{
    if (wk->fd < 0)
        return -1;
    if (wk->armed_ns == at_ns)
        return 0;
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(at_ns / 1000000000u),
                     .tv_nsec = (long)(at_ns % 1000000000u)},
    };
    if (timerfd_settime(wk->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        return -1;
    wk->armed_ns = at_ns;
    return 0;
}

void wake_close(struct wake *wk)
{
    if (wk->fd >= 0) {
        iomux_fd_unwatch(wk->loop, wk->fd);
        close(wk->fd);
    }
    wk->fd = -1;
}
#else
int wake_open(struct wake *wk, struct iomux_loop *loop)
{
    wk->loop = loop;
    wk->fd = -1;
    return -ENOSYS;
}

int wake_arm(struct wake *wk, uint64_t at_ns)
{
    return -1;
}

void wake_close(struct wake *wk) {}
#endif
