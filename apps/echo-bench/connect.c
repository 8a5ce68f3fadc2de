/* SPDX-License-Identifier: MIT */
/* connect.c - opening a worker's TCP connections; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <iomux/loop.h>
#include <iomux/net.h>

static void connect_done(struct bench_conn *c)
{
    atomic_fetch_add_explicit(&c->w->shared->connects_done, 1, memory_order_relaxed);
}

void connect_failed(struct bench_conn *c, int err)
{
    struct worker *w = c->w;
    w->connect_failures++;
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
    (void)loop;
    (void)fd;
    struct bench_conn *c = data;
    if (c->state == CONN_CONNECTING) {
        int err = iomux_socket_error(c->fd);
        if (err == 0 && (events & (IOMUX_ERROR | IOMUX_HUP)))
            err = -ECONNREFUSED;
        if (err < 0) {
            connect_failed(c, -err);
            return;
        }
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
    if (events & (IOMUX_READ | IOMUX_HUP | IOMUX_ERROR | IOMUX_INVALID))
        conn_read(c);
    if (c->state == CONN_OPEN && (events & IOMUX_WRITE))
        conn_flush(c);
}

void start_connect(struct bench_conn *c)
{
    const struct bench_shared *s = c->w->shared;
    int rc = iomux_tcp_connect(&s->addr, &c->fd);
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
