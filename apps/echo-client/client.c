/* SPDX-License-Identifier: MIT */
/*
 * client.c - echo-client's engine on the loop.
 *
 * The seed's clients send a part, then call recv() once and take whatever
 * comes back as the echo; the slow one loops forever when the server closes
 * early (recv() returns b'' and amount_received stops growing). Here every
 * socket is watched for reading the whole time, bytes are compared with
 * what was sent as they arrive, and the next part goes out only when every
 * socket has the whole echo of the current one. A single "no progress"
 * timer bounds every wait, so the tool never hangs.
 *
 * Phases: all sockets connect (non-blocking, in parallel), then the
 * optional connect delay, then for each part: send on every socket, read
 * until every echo is complete, then the optional delay before the next.
 */
#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iomux/loop.h>

#include "client_impl.h"
#include "repr.h"

static void start_part(struct client *c);

unsigned char client_read_buf[16384];

void client_fail(struct client *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errsize, fmt, ap);
    va_end(ap);
    iomux_loop_stop(c->loop);
}

void client_progress(struct client *c)
{
    iomux_loop_update_time(c->loop);
    c->last_progress_ms = iomux_loop_now(c->loop);
}

static uint64_t us_to_ms_ceil(uint64_t us)
{
    return (us + 999) / 1000;
}

/* Python's repr of a socket address tuple. A Unix socket's has no name
   (Python prints ''), so it keeps the "(socket N)" it was given. */
static void format_sockname(int fd, char *buf, size_t size)
{
    struct iomux_addr local;
    char host[IOMUX_ADDR_STRLEN];
    if (iomux_socket_local(fd, &local) != 0 || iomux_addr_host(&local, host, sizeof host) != 0)
        return;
    unsigned port = iomux_addr_port(&local);
    if (local.ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&local.ss;
        snprintf(buf, size, "('%s', %u, %u, %u)", host, port, (unsigned)ntohl(sin6->sin6_flowinfo),
                 (unsigned)sin6->sin6_scope_id);
    } else {
        snprintf(buf, size, "('%s', %u)", host, port);
    }
}

static void close_conn(struct conn *k)
{
    if (k->fd < 0)
        return;
    iomux_fd_unwatch(k->client->loop, k->fd);
    conn_release(k);
    close(k->fd);
    k->fd = -1;
}

void client_finish(struct client *c)
{
    c->phase = PHASE_DONE;
    for (unsigned i = 0; i < c->opt->sockets; i++) {
        struct conn *k = &c->conns[i];
        if (!c->opt->quiet)
            fprintf(stderr, "closing socket %s\n", k->name);
        close_conn(k);
    }
    iomux_loop_stop(c->loop);
}

/* Sends what is left of the current part; watches for writability only
   while something is left, so an idle socket does not wake the loop. */
static void flush(struct conn *k)
{
    struct client *c = k->client;
    const char *data = c->parts->data[c->part];
    size_t len = c->parts->len[c->part];
    while (k->sent < len) {
        ssize_t n = conn_send(k, data + k->sent, len - k->sent);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            client_fail(c, "%s: sending part %zu: %s", k->name, c->part + 1,
                        conn_strerror(k, errno));
            return;
        }
        k->sent += (size_t)n;
        client_progress(c);
    }
    int rc = iomux_fd_modify(c->loop, k->fd, conn_mask(k, k->sent < len));
    if (rc < 0)
        client_fail(c, "%s: watching the socket: %s", k->name, strerror(-rc));
}

/* The watch mask for where the exchange stands (TLS may add a direction). */
static void rewatch(struct conn *k)
{
    struct client *c = k->client;
    int sending = c->phase == PHASE_EXCHANGE && k->sent < c->parts->len[c->part];
    int rc = iomux_fd_modify(c->loop, k->fd, conn_mask(k, sending));
    if (rc < 0)
        client_fail(c, "%s: watching the socket: %s", k->name, strerror(-rc));
}

static void on_delay_done(struct iomux_loop *loop, uint64_t id, void *data);

static void schedule_delay(struct client *c)
{
    uint64_t id;
    int rc = iomux_timer_add(c->loop, us_to_ms_ceil(c->opt->delay_us), 0, on_delay_done, c, &id);
    if (rc < 0)
        client_fail(c, "adding a timer: %s", strerror(-rc));
}

/* Checks `n` received bytes against the current part, from k->received on. */
static void check_echo(struct conn *k, const unsigned char *buf, size_t n)
{
    struct client *c = k->client;
    const unsigned char *want = (const unsigned char *)c->parts->data[c->part];
    size_t len = c->parts->len[c->part];
    if (c->phase != PHASE_EXCHANGE || k->received + n > k->sent) {
        /* More than was sent: the server invented or repeated bytes. */
        size_t extra = c->phase != PHASE_EXCHANGE ? n : k->received + n - k->sent;
        client_fail(c, "%s: received %zu byte(s) more than were sent (part %zu of %zu)", k->name,
                    extra, c->part + 1, c->parts->n);
        return;
    }
    size_t same = client_same_prefix(want + k->received, buf, n);
    /* Standard output gets the echo once: the first socket's. */
    if (k == &c->conns[0] && client_output(c, buf, same) < 0)
        return;
    if (same < n) {
        size_t at = k->received + same;
        client_fail(c, "%s: echo mismatch in part %zu at byte %zu: sent 0x%02x, received 0x%02x",
                    k->name, c->part + 1, at, want[at], buf[same]);
        return;
    }
    k->received += n;
    if (k->received == len && k->sent == len) {
        c->n_echoed++;
        if (c->n_echoed == c->opt->sockets) {
            if (c->part + 1 == c->parts->n) {
                client_finish(c);
            } else if (c->opt->delay_us > 0) {
                c->phase = PHASE_DELAY;
                schedule_delay(c);
            } else {
                c->part++;
                start_part(c);
            }
        }
    }
}

static void on_readable(struct conn *k)
{
    struct client *c = k->client;
    for (;;) {
        ssize_t n = conn_recv(k, client_read_buf, sizeof client_read_buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (k->read_wants_write) /* TLS: the read needs writability */
                    rewatch(k);
                return;
            }
            if (errno == ECONNRESET)
                client_fail(
                    c, "%s: connection reset by the server (part %zu, %zu of %zu bytes echoed)",
                    k->name, c->part + 1, k->received, c->parts->len[c->part]);
            else
                client_fail(c, "%s: receiving: %s", k->name, conn_strerror(k, errno));
            return;
        }
        if (n == 0) {
            client_fail(
                c, "%s: server closed the connection early (part %zu, %zu of %zu bytes echoed)",
                k->name, c->part + 1, k->received, c->parts->len[c->part]);
            return;
        }
        client_progress(c);
        if (!c->opt->quiet) {
            fprintf(stderr, "%s: received ", k->name);
            bytes_repr_write(stderr, client_read_buf, (size_t)n);
            fputc('\n', stderr);
        }
        size_t part = c->part;
        check_echo(k, client_read_buf, (size_t)n);
        /* When the exchange ended or moved to the next part inside
           check_echo(), stop here: level-triggered readiness reports any
           bytes left, and they are then checked against the right state. */
        if (c->failed || c->phase != PHASE_EXCHANGE || c->part != part)
            return;
        if (!conn_read_more(k, (size_t)n))
            return;
    }
}

/* Connected, and with --tls the handshake done: count it in. */
static void on_ready(struct conn *k)
{
    struct client *c = k->client;
    client_progress(c);
    int rc = iomux_fd_modify(c->loop, k->fd, IOMUX_READ);
    if (rc < 0) {
        client_fail(c, "%s: watching the socket: %s", k->name, strerror(-rc));
        return;
    }
    if (++c->n_connected < c->opt->sockets)
        return;
    if (c->opt->connect_delay_us > 0) {
        c->phase = PHASE_CONNECT_DELAY;
        uint64_t id;
        rc = iomux_timer_add(c->loop, us_to_ms_ceil(c->opt->connect_delay_us), 0, on_delay_done, c,
                             &id);
        if (rc < 0)
            client_fail(c, "adding a timer: %s", strerror(-rc));
        return;
    }
    start_part(c);
}

static void connect_error(struct conn *k, int err)
{
    char where[IOMUX_ADDR_STRLEN];
    if (iomux_addr_format(k->client->addr, where, sizeof where) != 0)
        snprintf(where, sizeof where, "%s", k->client->opt->connect);
    client_fail(k->client, "connecting to %s: %s", where, strerror(err));
}

static void on_event(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct conn *k = data;
    struct client *c = k->client;
    /* The loop stops after this round: what else is ready in it would only
       add output after the error. */
    if (c->failed)
        return;
    if (!k->connected) {
        int err = iomux_socket_error(k->fd);
        if (err < 0) {
            connect_error(k, -err);
            return;
        }
        if (events & (IOMUX_ERROR | IOMUX_HUP)) {
            connect_error(k, ECONNREFUSED);
            return;
        }
        k->connected = 1;
        format_sockname(k->fd, k->name, sizeof k->name);
        client_progress(c);
        /* The header goes first, before TLS too, as a balancer sends it. */
        int rc = c->opt->proxy_version
                     ? proxy_client_send(k->fd, c->opt->proxy_version, &c->opt->proxy_source)
                     : 0;
        if (rc < 0) {
            client_fail(c, "%s: sending the PROXY header: %s", k->name, strerror(-rc));
            return;
        }
    }
    if (!k->handshaken) {
        if (conn_handshake(k) == 1)
            on_ready(k);
        return;
    }
    if (c->parts == NULL) {
        stream_on_event(k, events);
        return;
    }
    /* Hang-up and error are read too: recv() tells which (0 or an errno),
       after any data still queued. */
    if ((events & (IOMUX_READ | IOMUX_HUP | IOMUX_ERROR | IOMUX_INVALID)) ||
        (k->read_wants_write && (events & IOMUX_WRITE)))
        on_readable(k);
    if (c->failed || c->phase != PHASE_EXCHANGE || k->fd < 0)
        return;
    if ((events & IOMUX_WRITE) || (k->write_wants_read && (events & IOMUX_READ)))
        flush(k);
}

static void start_part(struct client *c)
{
    if (c->parts == NULL) {
        stream_start(c);
        return;
    }
    c->phase = PHASE_EXCHANGE;
    c->n_echoed = 0;
    const char *data = c->parts->data[c->part];
    size_t len = c->parts->len[c->part];
    for (unsigned i = 0; i < c->opt->sockets && !c->failed; i++) {
        struct conn *k = &c->conns[i];
        k->sent = 0;
        k->received = 0;
        if (!c->opt->quiet) {
            fprintf(stderr, "%s: sending ", k->name);
            bytes_repr_write(stderr, data, len);
            fputc('\n', stderr);
        }
        flush(k);
    }
}

static void on_delay_done(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct client *c = data;
    if (c->failed)
        return;
    /* Waiting on our own timer is not the server's fault: the clock of the
       no-progress timeout starts again now. */
    client_progress(c);
    if (c->phase == PHASE_DELAY)
        c->part++;
    start_part(c);
}

static const char *phase_text(const struct client *c, char *buf, size_t size)
{
    if (c->phase == PHASE_CONNECTING) {
        snprintf(buf, size, "while connecting (%u of %u sockets connected)", c->n_connected,
                 c->opt->sockets);
        return buf;
    }
    if (c->parts == NULL) {
        stream_describe(c, buf, size);
        return buf;
    }
    /* The first socket still waiting says how far it got. */
    for (unsigned i = 0; i < c->opt->sockets; i++) {
        const struct conn *k = &c->conns[i];
        size_t len = c->parts->len[c->part];
        if (k->received < len) {
            snprintf(buf, size, "%s: waiting for the echo of part %zu, %zu of %zu bytes received",
                     k->name, c->part + 1, k->received, len);
            return buf;
        }
    }
    snprintf(buf, size, "waiting");
    return buf;
}

static void on_timeout_check(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct client *c = data;
    if (c->failed || c->phase == PHASE_DONE)
        return;
    uint64_t timeout_ms = us_to_ms_ceil(c->opt->timeout_us);
    uint64_t now = iomux_loop_now(loop);
    uint64_t idle = now - c->last_progress_ms;
    int waiting_on_us = c->phase == PHASE_CONNECT_DELAY || c->phase == PHASE_DELAY ||
                        (c->parts == NULL && stream_waits_for_input(c));
    if (!waiting_on_us && idle >= timeout_ms) {
        char what[256];
        client_fail(c, "timed out: no progress for %.1f s %s", (double)idle / 1000.0,
                    phase_text(c, what, sizeof what));
        return;
    }
    /* Check again when the timeout would expire if nothing happens; a
       delay of ours restarts the clock when it ends. */
    uint64_t next = waiting_on_us ? timeout_ms : timeout_ms - idle;
    uint64_t tid;
    int rc = iomux_timer_add(loop, next, 0, on_timeout_check, c, &tid);
    if (rc < 0)
        client_fail(c, "adding a timer: %s", strerror(-rc));
}

/* Says why socket k could not be watched; beyond select's FD_SETSIZE,
   in echod's words, with what to use instead. */
static void watch_error(struct client *c, const struct conn *k, int rc)
{
    unsigned n = (unsigned)(k - c->conns) + 1;
    if (rc == -ERANGE && strcmp(iomux_loop_backend(c->loop), "select") == 0)
        client_fail(c,
                    "watching socket %u: fd %d is beyond what select can watch (FD_SETSIZE %d): "
                    "use --backend poll or epoll",
                    n, k->fd, FD_SETSIZE);
    else if (rc == -ERANGE)
        client_fail(c, "watching socket %u: fd %d is beyond the loop's limit", n, k->fd);
    else
        client_fail(c, "watching socket %u: %s", n, strerror(-rc));
}

size_t client_same_prefix(const unsigned char *want, const unsigned char *got, size_t n)
{
    size_t i = 0;
    while (i < n && want[i] == got[i])
        i++;
    return i;
}

int client_output(struct client *c, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A non-blocking stdout we inherited: wait for room. */
            struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
            poll(&pfd, 1, -1);
            continue;
        }
        if (w < 0) {
            client_fail(c, "writing the echo to standard output: %s", strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Starts every connect at once; the loop tells when each is done. Socket
   options are set only when asked for: no system call otherwise. */
static void connect_all(struct client *c)
{
    c->tuning = c->opt->tuning;
    if (c->tuning.nodelay == SOCK_NODELAY_ON)
        c->tuning.nodelay = SOCK_NODELAY_KEEP; /* iomux_tcp_connect() set it */
    c->tune = c->tuning.nodelay != SOCK_NODELAY_KEEP || c->tuning.sndbuf || c->tuning.rcvbuf ||
              c->tuning.tos;
    for (unsigned i = 0; i < c->opt->sockets && !c->failed; i++) {
        struct conn *k = &c->conns[i];
        int rc = iomux_tcp_connect(c->addr, &k->fd);
        if (rc < 0 && rc != -EINPROGRESS) {
            k->fd = -1;
            connect_error(k, -rc);
            return;
        }
        snprintf(k->name, sizeof k->name, "(socket %u)", i + 1);
        const char *what = "";
        if (c->tune && (rc = sock_tuning_apply(k->fd, &c->tuning, &what)) < 0) {
            client_fail(c, "socket %u: setting %s: %s", i + 1, what, strerror(-rc));
            close(k->fd);
            k->fd = -1;
            return;
        }
        /* Writability tells that the connect finished, either way. */
        rc = iomux_fd_watch(c->loop, k->fd, IOMUX_WRITE, on_event, k);
        if (rc < 0) {
            watch_error(c, k, rc);
            close(k->fd);
            k->fd = -1;
        }
    }
}

int client_run(const struct client_options *o, const struct iomux_addr *addr,
               const struct client_parts *parts, int input_fd, char *err, size_t errsize)
{
    struct client c = {
        .opt = o,
        .parts = parts,
        .addr = addr,
        .stream = {.fd = -1},
        .err = err,
        .errsize = errsize,
    };
    struct iomux_loop_options lo = {.backend = client_backend_name(o)};
    int rc = iomux_loop_new(&c.loop, &lo);
    if (rc < 0) {
        snprintf(err, errsize, "creating the event loop (backend %s): %s",
                 lo.backend != NULL ? lo.backend : "auto", strerror(-rc));
        return 1;
    }
    c.conns = calloc(o->sockets, sizeof *c.conns);
    if (c.conns == NULL) {
        snprintf(err, errsize, "allocating %u sockets: %s", o->sockets, strerror(ENOMEM));
        iomux_loop_free(c.loop);
        return 1;
    }
    for (unsigned i = 0; i < o->sockets; i++) {
        c.conns[i].fd = -1;
        c.conns[i].client = &c;
    }
    client_progress(&c);
    if (parts == NULL)
        stream_init(&c, input_fd); /* a failure is in c.failed */
    if (!c.failed && conn_tls_init(&c) == 0)
        connect_all(&c);
    if (!c.failed && o->timeout_us > 0) {
        uint64_t tid;
        rc = iomux_timer_add(c.loop, us_to_ms_ceil(o->timeout_us), 0, on_timeout_check, &c, &tid);
        if (rc < 0)
            client_fail(&c, "adding a timer: %s", strerror(-rc));
    }
    if (!c.failed) {
        rc = iomux_loop_run(c.loop);
        if (rc < 0)
            client_fail(&c, "event loop: %s", strerror(-rc));
    }
    if (!c.failed && c.phase != PHASE_DONE)
        client_fail(&c, "internal error: the loop ran dry");

    for (unsigned i = 0; i < o->sockets; i++)
        close_conn(&c.conns[i]);
    stream_free(&c);
    conn_tls_free(&c);
    free(c.conns);
    iomux_loop_free(c.loop);
    return c.failed ? 1 : 0;
}
