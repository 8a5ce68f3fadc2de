/* SPDX-License-Identifier: MIT */
/*
 * sideport.c - one answer per connection on a port beside the echo
 * listeners (sideport.h). A connection's life: accepted (or closed at once
 * over max_conns) -> request head read into its fixed buffer until the
 * answer callback has what it needs (nothing, for the agent) -> answer
 * written, waiting for writability only if the socket could not take it
 * all -> closed. The deadline timer closes it at any step.
 *
 * Once the answer is sent, the write side is shut and the connection
 * lingers, reading and dropping whatever comes (an agent-send string that
 * arrived late, a request body), until the client closes or the deadline:
 * closing with unread bytes would make the kernel send a reset, which can
 * reach the client before it has read the answer.
 *
 * What it leaves out: keep-alive and pipelining (every answer says
 * Connection: close, or is one line).
 */
#include "sideport.h"

#include "options.h"
#include "upgrade.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per readiness event, so a flood of side connections cannot
   starve the echo clients of the loop. */
#define SIDE_ACCEPT_BATCH 16
/* Out of descriptors: how long the listener rests (the kernel keeps it
   readable, so retrying at once would spin). */
#define SIDE_PAUSE_MS 100

struct side_conn {
    struct sideport *s;
    struct side_conn *prev, *next;
    int fd;
    uint64_t timer;
    size_t in_len;           /* request bytes in buf */
    size_t out_off, out_len; /* answer: sent so far, total (at buf + head_max) */
    bool lingering;          /* answer sent, write side shut: waiting for the end */
    char *buf; /* right after the struct: head_max bytes of request, then answer_max of answer */
};

struct sideport {
    struct iomux_loop *loop;
    struct sideport_config cfg;
    int fd;
    uint64_t pause_timer;
    unsigned nconns;
    struct side_conn conns; /* list head; only prev/next are used */
    struct sideport_stats stats;
};

int sideport_bind(const char *opt, const char *text, int *fd, struct iomux_addr *bound)
{
    struct iomux_addr addr;
    int rc = strncmp(text, "unix:", 5) == 0 ? -EINVAL : iomux_addr_parse(text, &addr);
    if (rc == -EINVAL) {
        echod_usage_error("%s '%s': expected HOST:PORT or [IPV6]:PORT (port 0..65535)", opt, text);
        return rc;
    }
    if (rc < 0) {
        fprintf(stderr, "echod: %s '%s': %s\n", opt, text,
                rc == -ENOENT ? "host not found" : strerror(-rc));
        return rc;
    }
    /* An upgrade's new echod is handed the old one's socket. */
    rc = echod_upgrade_take(opt + 2, text, fd);
    if (rc == 0)
        rc = iomux_tcp_listen(&addr, 0, fd);
    else if (rc == 1)
        rc = 0;
    if (rc == 0 && (rc = iomux_socket_local(*fd, bound)) < 0)
        close(*fd);
    if (rc < 0) {
        fprintf(stderr, "echod: %s %s: %s\n", opt, text, strerror(-rc));
        return rc;
    }
    return (int)iomux_addr_port(&addr);
}

static void conn_close(struct side_conn *c)
{
    struct sideport *s = c->s;
    iomux_fd_unwatch(s->loop, c->fd);
    close(c->fd);
    if (c->timer)
        iomux_timer_cancel(s->loop, c->timer);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

static void on_deadline(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct side_conn *c = data;
    c->timer = 0;
    if (!c->lingering)
        c->s->stats.timed_out++;
    conn_close(c);
}

/* Sends what is left of the answer; closes once it is all sent or the
   peer is gone, otherwise waits for writability. */
static void conn_flush(struct side_conn *c)
{
    struct sideport *s = c->s;
    const char *out = c->buf + s->cfg.head_max;
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            iomux_fd_modify(s->loop, c->fd, IOMUX_WRITE);
            return;
        } else {
            conn_close(c); /* the peer is gone: nobody to answer */
            return;
        }
    }
    s->stats.answered++;
    c->lingering = true;
    if (shutdown(c->fd, SHUT_WR) < 0 || iomux_fd_modify(s->loop, c->fd, IOMUX_READ) < 0)
        conn_close(c);
}

/* After the answer: drops what the client still sends, until its end. */
static void conn_linger(struct side_conn *c)
{
    char scratch[512];
    ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0)
        conn_close(c);
}

/* Asks the callback for the answer to what has come so far, and sends it;
   or, when it needs more, waits (or closes, when no more can come). */
static void conn_try_answer(struct side_conn *c, bool full)
{
    struct sideport *s = c->s;
    size_t n = s->cfg.answer(s->cfg.ctx, c->buf, c->in_len, full, c->buf + s->cfg.head_max,
                             s->cfg.answer_max);
    if (n == SIDEPORT_MORE) {
        if (full)
            conn_close(c); /* nothing more will come, and nothing to say */
        return;
    }
    c->out_len = n < s->cfg.answer_max ? n : s->cfg.answer_max;
    c->out_off = 0;
    conn_flush(c);
}

static void conn_read(struct side_conn *c)
{
    struct sideport *s = c->s;
    size_t room = s->cfg.head_max - c->in_len;
    ssize_t n = recv(c->fd, c->buf + c->in_len, room, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        /* The client ended (or reset) before its request was complete:
           nobody reads an answer to half a request. */
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    conn_try_answer(c, c->in_len == s->cfg.head_max);
}

static void on_conn(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct side_conn *c = data;
    if (c->lingering)
        conn_linger(c);
    else if (c->out_len)
        conn_flush(c);
    else
        conn_read(c);
}

static void conn_start(struct sideport *s, int fd)
{
    struct side_conn *c = malloc(sizeof(*c) + s->cfg.head_max + s->cfg.answer_max);
    if (!c) {
        close(fd);
        return;
    }
    memset(c, 0, sizeof(*c));
    c->buf = (char *)(c + 1);
    c->s = s;
    c->fd = fd;
    c->prev = s->conns.prev;
    c->next = &s->conns;
    s->conns.prev->next = c;
    s->conns.prev = c;
    s->nconns++;
    if (iomux_timer_add(s->loop, s->cfg.deadline_ms, 0, on_deadline, c, &c->timer) < 0 ||
        iomux_fd_watch(s->loop, fd, s->cfg.head_max ? IOMUX_READ : 0, on_conn, c) < 0) {
        conn_close(c);
        return;
    }
    if (s->cfg.head_max == 0)
        conn_try_answer(c, true);
}

static void on_listen(struct iomux_loop *loop, int fd, unsigned events, void *data);

static void on_pause_over(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct sideport *s = data;
    s->pause_timer = 0;
    iomux_fd_watch(loop, s->fd, IOMUX_READ, on_listen, s);
}

static void on_listen(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct sideport *s = data;
    for (int i = 0; i < SIDE_ACCEPT_BATCH; i++) {
        int cfd;
        int rc = iomux_tcp_accept(fd, NULL, &cfd);
        if (rc == -EAGAIN)
            return;
        if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
            if (iomux_timer_add(loop, SIDE_PAUSE_MS, 0, on_pause_over, s, &s->pause_timer) == 0)
                iomux_fd_unwatch(loop, fd);
            return;
        }
        if (rc < 0)
            continue; /* that one client's trouble (ECONNABORTED, ...) */
        if (s->nconns >= s->cfg.max_conns) {
            s->stats.overflow++;
            close(cfd);
            continue;
        }
        conn_start(s, cfd);
    }
}

int sideport_new(struct iomux_loop *loop, int fd, const struct sideport_config *cfg,
                 struct sideport **out)
{
    struct sideport *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        if (cfg->ctx_free)
            cfg->ctx_free(cfg->ctx);
        return -ENOMEM;
    }
    s->loop = loop;
    s->cfg = *cfg;
    s->fd = fd;
    s->conns.prev = s->conns.next = &s->conns;
    int rc = iomux_fd_watch(loop, fd, IOMUX_READ, on_listen, s);
    if (rc < 0) {
        sideport_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sideport_free(struct sideport *s)
{
    if (!s)
        return;
    while (s->conns.next != &s->conns)
        conn_close(s->conns.next);
    if (s->pause_timer)
        iomux_timer_cancel(s->loop, s->pause_timer);
    iomux_fd_unwatch(s->loop, s->fd);
    close(s->fd);
    if (s->cfg.ctx_free)
        s->cfg.ctx_free(s->cfg.ctx);
    free(s);
}

void sideport_stats(const struct sideport *s, struct sideport_stats *out)
{
    if (s)
        *out = s->stats;
    else
        memset(out, 0, sizeof(*out));
}

int sideport_fd(const struct sideport *s)
{
    return s->fd;
}
