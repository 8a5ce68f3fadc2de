/* SPDX-License-Identifier: MIT */
/*
 * stream.c - echo-client --file: a file or standard input sent as one
 * stream on one socket, the way people use nc, with every echoed byte
 * checked and written to standard output.
 *
 * Memory is bounded by the ring of client_impl.h whatever the input's
 * size: the input is read only into room whose echo has been checked, so
 * a server that echoes slowly slows the reading. A regular file is read
 * when there is room; a pipe or terminal is watched by the loop and read
 * once per readiness, so a slow writer never blocks the loop (and the
 * no-progress timeout still runs). When the input ends and all of it is
 * sent, the socket is half-closed (shutdown SHUT_WR), as nc -N does, and
 * the run ends when the last byte's echo is checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_impl.h"

/* 256 KiB in flight keeps loopback busy; the bound is what matters. */
#define STREAM_RING ((size_t)256 * 1024)

static const char *input_name(const struct client *c)
{
    return strcmp(c->opt->file, "-") == 0 ? "standard input" : c->opt->file;
}

static size_t room(const struct stream *s)
{
    return STREAM_RING - (size_t)(s->read - s->checked);
}

int stream_init(struct client *c, int fd)
{
    c->stream.fd = fd;
    c->stream.ring = malloc(STREAM_RING);
    if (c->stream.ring == NULL) {
        client_fail(c, "allocating %zu bytes: %s", STREAM_RING, strerror(ENOMEM));
        return -ENOMEM;
    }
    return 0;
}

void stream_free(struct client *c)
{
    if (c->stream.watched)
        iomux_fd_unwatch(c->loop, c->stream.fd);
    c->stream.watched = 0;
    free(c->stream.ring);
    c->stream.ring = NULL;
}

/* Reads once into the ring: 1 when it read bytes or the end, 0 when there
   is nothing to do now, -1 after client_fail(). */
static int fill(struct client *c)
{
    struct stream *s = &c->stream;
    size_t at = (size_t)(s->read % STREAM_RING);
    size_t len = room(s) < STREAM_RING - at ? room(s) : STREAM_RING - at;
    if (s->eof || len == 0 || (s->watched && !s->ready))
        return 0;
    ssize_t n = read(s->fd, s->ring + at, len);
    s->ready = 0;
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        s->ready = errno == EINTR && s->watched;
        return errno == EINTR;
    }
    if (n < 0) {
        client_fail(c, "reading %s: %s", input_name(c), strerror(errno));
        return -1;
    }
    if (n == 0)
        s->eof = 1;
    s->read += (uint64_t)n;
    client_progress(c);
    return 1;
}

/* The echo stopped before the stream's end, for the reason `how`. */
static void short_echo(struct client *c, struct conn *k, const char *how)
{
    const struct stream *s = &c->stream;
    client_fail(c, "%s: %s: short echo, it ends at byte %llu of the stream (%llu sent%s)", k->name,
                how, (unsigned long long)s->checked, (unsigned long long)s->sent,
                s->eof ? ", the whole input" : "");
}

/* Sends what was read and not yet sent; -1 after client_fail(). */
static int send_some(struct client *c, struct conn *k)
{
    struct stream *s = &c->stream;
    while (s->sent < s->read) {
        size_t at = (size_t)(s->sent % STREAM_RING);
        size_t left = (size_t)(s->read - s->sent);
        size_t len = left < STREAM_RING - at ? left : STREAM_RING - at;
        ssize_t n = conn_send(k, s->ring + at, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0) {
            short_echo(c, k,
                       errno == ECONNRESET || errno == EPIPE
                           ? "the connection was reset by the server"
                           : conn_strerror(k, errno));
            return -1;
        }
        s->sent += (uint64_t)n;
        client_progress(c);
    }
    return 0;
}

/* The loop watches what can move: the socket for reading always (the
   echo must never wait), for writing while bytes wait to be sent; the
   input while it has more and the ring has room. */
static void set_interest(struct client *c, struct conn *k)
{
    struct stream *s = &c->stream;
    int sending = s->sent < s->read || (s->eof && !s->shut); /* TLS: close_notify waits */
    int rc = iomux_fd_modify(c->loop, k->fd, conn_mask(k, sending));
    if (rc == 0 && s->watched && s->eof) {
        iomux_fd_unwatch(c->loop, s->fd);
        s->watched = 0;
    } else if (rc == 0 && s->watched) {
        rc = iomux_fd_modify(c->loop, s->fd, room(s) > 0 && !s->ready ? IOMUX_READ : 0u);
    }
    if (rc < 0)
        client_fail(c, "watching: %s", strerror(-rc));
}

static void done(struct client *c, struct conn *k)
{
    if (!c->opt->quiet)
        fprintf(stderr, "%s: %llu bytes sent, echoed identically\n", k->name,
                (unsigned long long)c->stream.checked);
    client_finish(c);
}

/* Moves the stream on as far as it can without waiting. */
static void pump(struct client *c)
{
    struct stream *s = &c->stream;
    struct conn *k = &c->conns[0];
    for (;;) {
        if (send_some(c, k) < 0)
            return;
        if (s->sent < s->read)
            break; /* the socket is full: wait until it is writable */
        int r = fill(c);
        if (r < 0)
            return;
        if (r == 0)
            break;
    }
    if (s->eof && s->sent == s->read && !s->shut) {
        if (conn_close_write(k) == 0) {
            s->shut = 1;
        } else if (errno != EAGAIN) {
            client_fail(c, "%s: half-closing after the last byte: %s", k->name,
                        conn_strerror(k, errno));
            return;
        }
    }
    /* TLS: the server's close_notify (or EOF) ends it, after our own. */
    if (s->shut && s->checked == s->read && (k->tls == NULL || k->peer_closed)) {
        done(c, k);
        return;
    }
    set_interest(c, k);
}

static void on_input(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct client *c = data;
    c->stream.ready = 1;
    if (!c->failed && c->phase == PHASE_EXCHANGE)
        pump(c);
}

void stream_start(struct client *c)
{
    struct stream *s = &c->stream;
    struct stat st;
    c->phase = PHASE_EXCHANGE;
    if (!c->opt->quiet)
        fprintf(stderr, "%s: sending %s as one stream\n", c->conns[0].name, input_name(c));
    /* epoll refuses what is always ready (EPERM); that is read at will. */
    if (fstat(s->fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        int rc = iomux_fd_watch(c->loop, s->fd, IOMUX_READ, on_input, c);
        if (rc < 0 && rc != -EPERM) {
            client_fail(c, "watching %s: %s", input_name(c), strerror(-rc));
            return;
        }
        s->watched = rc == 0;
    }
    pump(c);
}

/* Checks n echoed bytes against the ring from s->checked on. */
static int check(struct client *c, struct conn *k, const unsigned char *buf, size_t n)
{
    struct stream *s = &c->stream;
    if (n > s->sent - s->checked) {
        client_fail(c, "%s: received %llu byte(s) more than were sent (%llu sent)", k->name,
                    (unsigned long long)(s->checked + n - s->sent), (unsigned long long)s->sent);
        return -1;
    }
    size_t done_n = 0;
    while (done_n < n) {
        size_t at = (size_t)(s->checked % STREAM_RING);
        size_t len = n - done_n < STREAM_RING - at ? n - done_n : STREAM_RING - at;
        size_t same = client_same_prefix(s->ring + at, buf + done_n, len);
        if (client_output(c, buf + done_n, same) < 0)
            return -1;
        s->checked += same;
        if (same < len) {
            client_fail(
                c, "%s: echo differs at byte %llu of the stream: sent 0x%02x, received 0x%02x",
                k->name, (unsigned long long)s->checked, s->ring[at + same], buf[done_n + same]);
            return -1;
        }
        done_n += len;
    }
    return 0;
}

static void read_echo(struct client *c, struct conn *k)
{
    for (;;) {
        ssize_t n = conn_recv(k, client_read_buf, sizeof client_read_buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (k->read_wants_write)
                set_interest(c, k);
            return;
        }
        if (n == 0 && k->tls != NULL && c->stream.shut && c->stream.checked == c->stream.read) {
            pump(c); /* the end after the whole echo: done */
            return;
        }
        if (n <= 0) {
            short_echo(c, k,
                       n == 0                ? "the server closed the connection"
                       : errno == ECONNRESET ? "the connection was reset by the server"
                                             : conn_strerror(k, errno));
            return;
        }
        client_progress(c);
        if (check(c, k, client_read_buf, (size_t)n) < 0)
            return;
        pump(c); /* room was freed: read and send more, or finish */
        if (c->failed || c->phase != PHASE_EXCHANGE || !conn_read_more(k, (size_t)n))
            return;
    }
}

void stream_on_event(struct conn *k, unsigned events)
{
    struct client *c = k->client;
    if ((events & (IOMUX_READ | IOMUX_HUP | IOMUX_ERROR | IOMUX_INVALID)) ||
        (k->read_wants_write && (events & IOMUX_WRITE)))
        read_echo(c, k);
    if (!c->failed && c->phase == PHASE_EXCHANGE &&
        ((events & IOMUX_WRITE) || (k->write_wants_read && (events & IOMUX_READ))))
        pump(c);
}

void stream_describe(const struct client *c, char *buf, size_t size)
{
    const struct stream *s = &c->stream;
    snprintf(buf, size, "%s: waiting for the echo at byte %llu of the stream (%llu sent%s)",
             c->conns[0].name, (unsigned long long)s->checked, (unsigned long long)s->sent,
             s->eof ? ", the whole input" : "");
}

int stream_waits_for_input(const struct client *c)
{
    const struct stream *s = &c->stream;
    return c->phase == PHASE_EXCHANGE && !s->eof && s->checked == s->read;
}
