/* SPDX-License-Identifier: MIT */
/*
 * backend_poll.c - POSIX poll(2).
 *
 * A dense pollfd array plus an fd -> slot index, so modify() is O(1) and
 * wait() passes exactly the watched fds to the kernel. Removal moves the
 * last slot into the hole. POLLHUP and POLLERR are reported as they come,
 * together with POLLIN when data is still readable, so a reader drains
 * what arrived before the hang-up. POLLNVAL (a watched fd closed behind
 * the loop's back) becomes IOMUX_INVALID: the core then stops watching
 * it, which is what keeps the loop from spinning on it.
 */
#include <errno.h>
#include <poll.h>

#include "loop_internal.h"

struct poll_state {
    struct pollfd *pfds; /* `count` live entries */
    int *slot_of;        /* fd -> index in pfds, or -1 */
    unsigned count;
    unsigned capacity;
};

static int poll_init(struct iomux_loop *loop)
{
    struct poll_state *st = iomux__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    loop->backend_state = st;
    return 0;
}

static void poll_fini(struct iomux_loop *loop)
{
    struct poll_state *st = loop->backend_state;
    if (!st)
        return;
    iomux__free(st->pfds);
    iomux__free(st->slot_of);
    iomux__free(st);
    loop->backend_state = NULL;
}

static int poll_resize(struct iomux_loop *loop, unsigned capacity)
{
    struct poll_state *st = loop->backend_state;
    struct pollfd *pfds = iomux__reallocarray(st->pfds, capacity, sizeof *pfds);
    if (!pfds)
        return -ENOMEM;
    st->pfds = pfds;
    int *slot_of = iomux__reallocarray(st->slot_of, capacity, sizeof *slot_of);
    if (!slot_of)
        return -ENOMEM;
    st->slot_of = slot_of;
    for (unsigned i = st->capacity; i < capacity; i++)
        slot_of[i] = -1;
    st->capacity = capacity;
    return 0;
}

static short to_poll(unsigned mask)
{
    return (short)((mask & IOMUX_READ ? POLLIN : 0) | (mask & IOMUX_WRITE ? POLLOUT : 0) |
                   (mask & IOMUX_PRI ? POLLPRI : 0));
}

static int poll_modify(struct iomux_loop *loop, int fd, unsigned old_mask, unsigned new_mask)
{
    struct poll_state *st = loop->backend_state;
    int slot = st->slot_of[fd];
    if (!new_mask) {
        if (slot < 0)
            return 0;
        st->count--;
        if ((unsigned)slot != st->count) {
            st->pfds[slot] = st->pfds[st->count];
            st->slot_of[st->pfds[slot].fd] = slot;
        }
        st->slot_of[fd] = -1;
        return 0;
    }
    if (slot < 0) {
        slot = (int)st->count++;
        st->slot_of[fd] = slot;
        st->pfds[slot].fd = fd;
    }
    st->pfds[slot].events = to_poll(new_mask);
    st->pfds[slot].revents = 0;
    return 0;
}

static int poll_wait(struct iomux_loop *loop, int timeout_ms)
{
    struct poll_state *st = loop->backend_state;
    int ready = poll(st->pfds, (nfds_t)st->count, timeout_ms);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    int n = 0;
    for (unsigned i = 0; i < st->count && n < ready; i++) {
        short re = st->pfds[i].revents;
        if (!re)
            continue;
        loop->fired[n].fd = st->pfds[i].fd;
        loop->fired[n].events = (re & POLLIN ? (unsigned)IOMUX_READ : 0u) |
                                (re & POLLOUT ? (unsigned)IOMUX_WRITE : 0u) |
                                (re & POLLPRI ? (unsigned)IOMUX_PRI : 0u) |
                                (re & POLLERR ? (unsigned)IOMUX_ERROR : 0u) |
                                (re & POLLHUP ? (unsigned)IOMUX_HUP : 0u) |
                                (re & POLLNVAL ? (unsigned)IOMUX_INVALID : 0u);
        n++;
    }
    return n;
}

const struct iomux__backend iomux__backend_poll = {
    .name = "poll",
    .init = poll_init,
    .fini = poll_fini,
    .resize = poll_resize,
    .modify = poll_modify,
    .wait = poll_wait,
};
