/* SPDX-License-Identifier: MIT */
/*
 * backend_select.c - POSIX select(2), the interface the seed uses.
 *
 * fd_set is a fixed bitmap of FD_SETSIZE bits (1024 on Linux): FD_SET on a
 * larger fd writes past it, so modify() refuses such fds with -ERANGE and
 * never touches the bitmap for them. The three sets map as in the seed's
 * select(inputs, outputs, inputs): IOMUX_READ -> readfds, IOMUX_WRITE ->
 * writefds, and IOMUX_PRI -> exceptfds. For sockets an "exceptional
 * condition" is TCP urgent (out-of-band) data, not an error: errors and
 * hang-ups make an fd readable (and writable), and the next read or write
 * returns them. So the seed's READ|exceptional is READ | IOMUX_PRI here.
 * wait() scans 0..maxfd: cost grows with the highest watched fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/select.h>

#include "loop_internal.h"

struct select_state {
    fd_set readfds, writefds, exceptfds;
    int maxfd; /* highest fd in any set, or -1 */
};

static int select_init(struct iomux_loop *loop)
{
    struct select_state *st = iomux__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    FD_ZERO(&st->readfds);
    FD_ZERO(&st->writefds);
    FD_ZERO(&st->exceptfds);
    st->maxfd = -1;
    loop->backend_state = st;
    return 0;
}

static void select_fini(struct iomux_loop *loop)
{
    iomux__free(loop->backend_state);
    loop->backend_state = NULL;
}

static int select_resize(struct iomux_loop *loop, unsigned capacity)
{
    return 0; /* the sets are fixed-size */
}

static bool in_any_set(const struct select_state *st, int fd)
{
    return FD_ISSET(fd, &st->readfds) || FD_ISSET(fd, &st->writefds) ||
           FD_ISSET(fd, &st->exceptfds);
}

static void set_bit(fd_set *set, int fd, bool on)
{
    if (on)
        FD_SET(fd, set);
    else
        FD_CLR(fd, set);
}

static int select_modify(struct iomux_loop *loop, int fd, unsigned old_mask, unsigned new_mask)
{
    struct select_state *st = loop->backend_state;
    if (fd >= FD_SETSIZE)
        return new_mask ? -ERANGE : 0;
    set_bit(&st->readfds, fd, new_mask & IOMUX_READ);
    set_bit(&st->writefds, fd, new_mask & IOMUX_WRITE);
    set_bit(&st->exceptfds, fd, new_mask & IOMUX_PRI);
    if (new_mask && fd > st->maxfd)
        st->maxfd = fd;
    while (st->maxfd >= 0 && !in_any_set(st, st->maxfd))
        st->maxfd--;
    return 0;
}

/* select() fails as a whole with EBADF when any fd in the sets was closed
   behind the loop's back; poll() would flag just that one with POLLNVAL.
   Find them the same way, so the core treats both backends alike. */
static int report_closed(struct iomux_loop *loop, struct select_state *st)
{
    int n = 0;
    for (int fd = 0; fd <= st->maxfd; fd++) {
        if (in_any_set(st, fd) && fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            loop->fired[n].fd = fd;
            loop->fired[n].events = IOMUX_INVALID;
            n++;
        }
    }
    return n > 0 ? n : -EBADF;
}

static int select_wait(struct iomux_loop *loop, int timeout_ms)
{
    struct select_state *st = loop->backend_state;
    fd_set rd = st->readfds, wr = st->writefds, ex = st->exceptfds;
    struct timeval tv, *tvp = NULL;
    if (timeout_ms >= 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        tvp = &tv;
    }
    int ready = select(st->maxfd + 1, &rd, &wr, &ex, tvp);
    if (ready < 0) {
        if (errno == EINTR)
            return 0;
        return errno == EBADF ? report_closed(loop, st) : -errno;
    }
    int n = 0;
    for (int fd = 0; fd <= st->maxfd && n < ready; fd++) {
        unsigned events = (FD_ISSET(fd, &rd) ? (unsigned)IOMUX_READ : 0u) |
                          (FD_ISSET(fd, &wr) ? (unsigned)IOMUX_WRITE : 0u) |
                          (FD_ISSET(fd, &ex) ? (unsigned)IOMUX_PRI : 0u);
        if (events) {
            loop->fired[n].fd = fd;
            loop->fired[n].events = events;
            n++;
        }
    }
    return n;
}

const struct iomux__backend iomux__backend_select = {
    .name = "select",
    .fd_limit = FD_SETSIZE,
    .init = select_init,
    .fini = select_fini,
    .resize = select_resize,
    .modify = select_modify,
    .wait = select_wait,
};
