/* SPDX-License-Identifier: MIT */
/*
 * lean_epoll.c - the "nothing but the system calls" echo server the
 * benchmarks measure everyone against: one level-triggered epoll set, one
 * shared read buffer, one recv() and one send() per message.
 *
 * It stays correct without getting fat: a short send keeps the unsent
 * tail in a per-connection heap buffer and swaps read interest for write
 * interest, so a client that does not read is pushed back (we stop
 * reading from it) instead of making us buffer without bound. What it
 * leaves out on purpose: idle timeouts, limits, statistics, descriptor
 * exhaustion handling, graceful shutdown (SIGTERM just ends the process).
 *
 * usage: lean_epoll [PORT]   binds 127.0.0.1:PORT (default 0) and prints
 * the bound HOST:PORT on stdout.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_common.h"

/* The unsent tail of a short send; NULL for the usual, empty case, so an
   idle connection costs one pointer and two integers here. */
struct pending {
    char *bytes;
    unsigned len, off;
};

static struct pending *pend; /* indexed by fd */
static size_t npend;
static int epfd;
static char rbuf[65536];

static int grow(int fd)
{
    if ((size_t)fd < npend)
        return 0;
    size_t n = npend ? npend : 1024;
    while (n <= (size_t)fd)
        n *= 2;
    struct pending *p = realloc(pend, n * sizeof(*p));
    if (!p)
        return -1;
    memset(p + npend, 0, (n - npend) * sizeof(*p));
    pend = p;
    npend = n;
    return 0;
}

static void drop(int fd)
{
    /* close() removes the fd from the epoll set: nothing else shares it. */
    close(fd);
    free(pend[fd].bytes);
    pend[fd] = (struct pending){0};
}

static void set_interest(int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        drop(fd);
}

static void on_readable(int fd)
{
    ssize_t n = recv(fd, rbuf, sizeof(rbuf), 0);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            drop(fd);
        return;
    }
    ssize_t w = send(fd, rbuf, (size_t)n, MSG_NOSIGNAL);
    if (w == n)
        return;
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            drop(fd);
            return;
        }
        w = 0;
    }
    /* Short send: keep the rest and wait for room instead of reading. */
    struct pending *p = &pend[fd];
    p->len = (unsigned)(n - w);
    p->off = 0;
    p->bytes = malloc(p->len);
    if (!p->bytes) {
        drop(fd);
        return;
    }
    memcpy(p->bytes, rbuf + w, p->len);
    set_interest(fd, EPOLLOUT);
}

static void on_writable(int fd)
{
    struct pending *p = &pend[fd];
    ssize_t w = send(fd, p->bytes + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR)
            drop(fd);
        return;
    }
    p->off += (unsigned)w;
    if (p->off < p->len)
        return;
    free(p->bytes);
    *p = (struct pending){0};
    set_interest(fd, EPOLLIN);
}

static void on_listener(int lfd)
{
    /* A bounded batch keeps a connect storm from starving the others. */
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (grow(fd) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    int lfd = peer_listen(argc > 1 ? argv[1] : "0");
    if (lfd < 0)
        return 1;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("lean_epoll: epoll");
        return 1;
    }
    static struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("lean_epoll: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            uint32_t e = events[i].events;
            if (fd == lfd)
                on_listener(lfd);
            else if (pend[fd].bytes)
                on_writable(fd); /* also learns of HUP/ERR through send() */
            else if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(fd);
        }
    }
}
