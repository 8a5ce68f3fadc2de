/* SPDX-License-Identifier: MIT */
/*
 * backend_epoll.c - Linux epoll(7), level-triggered.
 *
 * The kernel keeps the interest set, so modify() is one epoll_ctl() and
 * wait() costs O(ready), not O(watched). Two pitfalls that libev's
 * documentation describes are absorbed here: a registration can outlive
 * the fd number it was made for (closed and reopened: MOD says ENOENT, so
 * we ADD; ADD says EEXIST, so we MOD), and deleting an fd that was already
 * closed fails harmlessly. Users must still unwatch before close: epoll
 * registers the open file, not the number, and a dup()ed file that stays
 * open keeps reporting events the loop can no longer remove.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop_internal.h"

/* epoll_wait() hands out at most this many events per call and keeps the
   rest on its ready list, rotating it, so no fd starves; the arrays stay
   small however many fds are watched (libuv uses the same bound). */
#define IOMUX__EPOLL_BATCH 1024u

struct epoll_state {
    int epfd;
    struct epoll_event *events;
};

static int epoll_init(struct iomux_loop *loop)
{
    struct epoll_state *st = iomux__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->epfd = -1;
    loop->backend_state = st;
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    return st->epfd < 0 ? -errno : 0;
}

static void epoll_fini(struct iomux_loop *loop)
{
    struct epoll_state *st = loop->backend_state;
    if (!st)
        return;
    if (st->epfd >= 0)
        close(st->epfd);
    iomux__free(st->events);
    iomux__free(st);
    loop->backend_state = NULL;
}

static int epoll_resize(struct iomux_loop *loop, unsigned capacity)
{
    struct epoll_state *st = loop->backend_state;
    unsigned n = capacity < IOMUX__EPOLL_BATCH ? capacity : IOMUX__EPOLL_BATCH;
    struct epoll_event *events = iomux__reallocarray(st->events, n, sizeof *events);
    if (!events)
        return -ENOMEM;
    st->events = events;
    return 0;
}

static uint32_t to_epoll(unsigned mask)
{
    return (mask & IOMUX_READ ? EPOLLIN : 0u) | (mask & IOMUX_WRITE ? EPOLLOUT : 0u) |
           (mask & IOMUX_PRI ? EPOLLPRI : 0u);
}

static int epoll_modify(struct iomux_loop *loop, int fd, unsigned old_mask, unsigned new_mask)
{
    struct epoll_state *st = loop->backend_state;
    struct epoll_event ev = {.events = to_epoll(new_mask), .data.fd = fd};
    if (!new_mask) {
        /* ENOENT/EBADF: the fd was closed first; the kernel already forgot
           it, and there is nothing left to undo. */
        (void)epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    int op = old_mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(st->epfd, op, fd, &ev) == 0)
        return 0;
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD;
    else if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
    else
        return -errno;
    return epoll_ctl(st->epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

static int epoll_wait_fill(struct iomux_loop *loop, int timeout_ms)
{
    struct epoll_state *st = loop->backend_state;
    int max = (int)(loop->capacity < IOMUX__EPOLL_BATCH ? loop->capacity : IOMUX__EPOLL_BATCH);
    int n = epoll_wait(st->epfd, st->events, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = st->events[i].events;
        loop->fired[i].fd = st->events[i].data.fd;
        loop->fired[i].events = (e & EPOLLIN ? (unsigned)IOMUX_READ : 0u) |
                                (e & EPOLLOUT ? (unsigned)IOMUX_WRITE : 0u) |
                                (e & EPOLLPRI ? (unsigned)IOMUX_PRI : 0u) |
                                (e & EPOLLERR ? (unsigned)IOMUX_ERROR : 0u) |
                                (e & EPOLLHUP ? (unsigned)IOMUX_HUP : 0u);
    }
    return n;
}

/* Level-triggered in the kernel: the epoll fd is readable while any
   watched fd is ready, so another loop can wait on it for us. */
static int epoll_backend_fd(const struct iomux_loop *loop)
{
    const struct epoll_state *st = loop->backend_state;
    return st->epfd;
}

const struct iomux__backend iomux__backend_epoll = {
    .name = "epoll",
    .max_fired = IOMUX__EPOLL_BATCH,
    .init = epoll_init,
    .fini = epoll_fini,
    .resize = epoll_resize,
    .modify = epoll_modify,
    .wait = epoll_wait_fill,
    .backend_fd = epoll_backend_fd,
};
