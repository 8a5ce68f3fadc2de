/* SPDX-License-Identifier: MIT */
/*
 * ev_echo.c - an echo server on libev, as its documentation recommends:
 * one ev_io watcher per connection embedded in the connection's struct,
 * the default loop (epoll on Linux), and the I/O itself done by us.
 *
 * libev only reports readiness, so this is the lean epoll server's logic
 * behind libev's watchers: read into a shared buffer, send at once, keep a
 * short send's tail and switch the watcher from EV_READ to EV_WRITE until
 * it is flushed (which is also the backpressure: no reading meanwhile).
 *
 * usage: ev_echo [PORT]   (127.0.0.1, 0 = any; prints HOST:PORT)
 */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_common.h"

struct conn {
    ev_io io;
    char *pending; /* unsent tail of a short send, or NULL */
    size_t len, off;
};

static char rbuf[65536];

static void conn_free(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c->pending);
    free(c);
}

static void set_events(struct ev_loop *loop, struct conn *c, int events)
{
    /* libev requires a watcher to be stopped while it is changed. */
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, events);
    ev_io_start(loop, &c->io);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = (struct conn *)w;
    int fd = w->fd;
    if (c->pending) {
        ssize_t n = send(fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                conn_free(loop, c);
            return;
        }
        c->off += (size_t)n;
        if (c->off == c->len) {
            free(c->pending);
            c->pending = NULL;
            set_events(loop, c, EV_READ);
        }
        return;
    }
    ssize_t n = recv(fd, rbuf, sizeof(rbuf), 0);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            conn_free(loop, c);
        return;
    }
    ssize_t sent = send(fd, rbuf, (size_t)n, MSG_NOSIGNAL);
    if (sent == n)
        return;
    if (sent < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            conn_free(loop, c);
            return;
        }
        sent = 0;
    }
    c->len = (size_t)(n - sent);
    c->off = 0;
    c->pending = malloc(c->len);
    if (!c->pending) {
        conn_free(loop, c);
        return;
    }
    memcpy(c->pending, rbuf + sent, c->len);
    set_events(loop, c, EV_WRITE);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        ev_io_init(&c->io, on_io, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    int fd = peer_listen(argc > 1 ? argv[1] : "0");
    if (fd < 0)
        return 1;
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    ev_io listener;
    ev_io_init(&listener, on_accept, fd, EV_READ);
    ev_io_start(loop, &listener);
    ev_run(loop, 0);
    return 0;
}
