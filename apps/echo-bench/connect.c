/* SPDX-License-Identifier: MIT */
/* connect.c - opening a worker's TCP connections; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iomux/loop.h>
#include <iomux/net.h>

#include "proxy_client.h"

static void connect_done(struct bench_conn *c)
{
    atomic_fetch_add_explicit(&c->w->shared->connects_done, 1, memory_order_relaxed);
}

void connect_failed(struct bench_conn *c, int err)
{
    struct worker *w = c->w;
    w->connect_failures++;
    if (err == EADDRNOTAVAIL)
        w->ports_out++;
    if (w->churn != NULL)
        churn_failed(w, err);
    if (w->first_error[0] == '\0' && err == ETIMEDOUT)
        snprintf(w->first_error, sizeof w->first_error,
                 "conn %u: connect: not connected within --connect-timeout %.3g s", c->id,
                 (double)w->shared->opt->connect_timeout_us / 1e6);
    else if (w->first_error[0] == '\0')
        snprintf(w->first_error, sizeof w->first_error, "conn %u: connect: %s", c->id,
                 strerror(err));
    conn_close(c);
    connect_done(c);
}

static void on_conn_event(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct bench_conn *c = data;
    if (c->state == CONN_CONNECTING) {
        int err = iomux_socket_error(c->fd);
        if (err == 0 && (events & (IOMUX_ERROR | IOMUX_HUP)))
            err = -ECONNREFUSED;
        /* --proxy-protocol: the header before any message (built here,
           once per connection, churn's too). */
        if (err == 0 && c->w->shared->opt->proxy_version)
            err = proxy_client_send(c->fd, c->w->shared->opt->proxy_version,
                                    &c->w->shared->opt->proxy_source);
        if (err < 0) {
            connect_failed(c, -err);
            return;
        }
    }
    if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) {
        if (conn_handshake(c) <= 0)
            return;
        c->state = CONN_OPEN;
        atomic_fetch_add_explicit(&c->w->shared->connects_ok, 1, memory_order_relaxed);
        connect_done(c);
        /* Reading from the start catches a server that closes at once. */
        conn_set_mask(c, c->w->shared->opt->never_read && !c->idle ? 0 : IOMUX_READ);
        if (c->w->churn != NULL && c->state == CONN_OPEN)
            churn_opened(c, bench_now_ns());
        return;
    }
    if (c->state != CONN_OPEN)
        return;
    /* With --tls a read may wait for WRITE and a write for READ. */
    unsigned rd = c->read_wants_write ? IOMUX_WRITE : IOMUX_READ;
    unsigned wr = c->write_wants_read ? IOMUX_READ : IOMUX_WRITE;
    if (events & (rd | IOMUX_HUP | IOMUX_ERROR | IOMUX_INVALID))
        conn_read(c);
    if (c->state == CONN_OPEN && (events & wr))
        conn_flush(c);
}

/* --source: the socket is bound to the connection's source address (round
   robin over the range) before the connect. IP_BIND_ADDRESS_NO_PORT leaves
   the port to connect(), which picks it for the whole 4-tuple, so each
   address has the ephemeral port range to itself per server address.
   0, -EINPROGRESS (*fd_out set either way) or -errno. */
static int source_connect(const struct bench_shared *s, unsigned id, int *fd_out)
{
    const struct bench_options *o = s->opt;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* As iomux_tcp_connect(); --nodelay off is applied after. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef IP_BIND_ADDRESS_NO_PORT
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(o->source_first + id % o->source_count);
    int rc = 0;
    if (bind(fd, (const struct sockaddr *)&src, sizeof src) < 0)
        rc = -errno;
    else if (connect(fd, (const struct sockaddr *)&s->addr.ss, s->addr.len) < 0)
        rc = errno == EINTR ? -EINPROGRESS : -errno;
    if (rc < 0 && rc != -EINPROGRESS) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return rc;
}

void start_connect(struct bench_conn *c)
{
    const struct bench_shared *s = c->w->shared;
    int rc = s->opt->source_count ? source_connect(s, c->id, &c->fd)
                                  : iomux_tcp_connect(&s->addr, &c->fd);
    const char *what = NULL;
    if ((rc == 0 || rc == -EINPROGRESS) && s->tune) {
        int trc = sock_tuning_apply(c->fd, &s->tuning, &what);
        if (trc < 0) {
            close(c->fd);
            rc = trc;
        }
    }
    if (rc < 0 && rc != -EINPROGRESS) {
        struct worker *w = c->w;
        if (what != NULL && w->first_error[0] == '\0')
            snprintf(w->first_error, sizeof w->first_error, "conn %u: %s: %s", c->id, what,
                     strerror(-rc));
        c->fd = -1;
        connect_failed(c, -rc);
        return;
    }
    /* Writability says the connect finished, either way. */
    rc = iomux_fd_watch(c->w->loop, c->fd, IOMUX_WRITE, on_conn_event, c);
    if (rc < 0) {
        struct worker *w = c->w;
        /* -ERANGE is the select backend's FD_SETSIZE (or the loop's
           max_fds): say that rather than "Numerical result out of range". */
        if (rc == -ERANGE && w->first_error[0] == '\0')
            snprintf(w->first_error, sizeof w->first_error,
                     "conn %u: fd %d is too high for the %s backend (FD_SETSIZE %d)", c->id, c->fd,
                     iomux_loop_backend(w->loop), FD_SETSIZE);
        close(c->fd);
        c->fd = -1;
        connect_failed(c, -rc);
        return;
    }
    c->mask = IOMUX_WRITE;
    c->state = CONN_CONNECTING;
}
