/* SPDX-License-Identifier: MIT */
/*
 * test_loop.c - fd readiness through the loop, on the backend named by argv[1]:
 * read and write readiness on pipes and socket pairs, changes made from inside
 * callbacks, the stale-event rule (an fd unwatched or reused earlier in the
 * same batch is not called), the select FD_SETSIZE limit, an fd closed behind
 * the loop's back, EINTR during the wait, iomux_loop_run/stop and argument
 * errors.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/stat.h>

static const char *backend;

static const unsigned always_reported = IOMUX_ERROR | IOMUX_HUP | IOMUX_INVALID;

/* What a callback saw, and what it must never see. */
struct rec {
    struct rec *other; /* the watcher this one meddles with, if any */
    int fd;            /* fd this watcher is for (the test sets it) */
    unsigned mask;     /* interest mask the test last gave the loop */
    int calls;
    unsigned events;     /* events of the last call */
    unsigned all_events; /* union over all calls */
    unsigned unasked;    /* events outside mask | ERROR | HUP | INVALID */
    int wrong_fd;        /* calls with an fd other than rec.fd */
    int zero_events;     /* calls with events == 0 */
    char data[256];      /* bytes read by read_cb */
    size_t len;
    bool eof;
};

static void rec_note(struct rec *r, int fd, unsigned events)
{
    r->calls++;
    r->events = events;
    r->all_events |= events;
    r->unasked |= events & ~(r->mask | always_reported);
    r->wrong_fd += fd != r->fd;
    r->zero_events += events == 0;
}

/* Checks what a watcher must never have seen. */
static void rec_check(const struct rec *r)
{
    CHECK_EQ_INT(r->unasked, 0);
    CHECK_EQ_INT(r->wrong_fd, 0);
    CHECK_EQ_INT(r->zero_events, 0);
}

static void drain(struct rec *r, int fd)
{
    for (;;) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0)
            r->eof = true;
        if (n <= 0)
            return;
        size_t room = sizeof r->data - r->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(r->data + r->len, buf, take);
        r->len += take;
    }
}

static void note_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    rec_note(data, fd, events);
}

static void read_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct rec *r = data;
    rec_note(r, fd, events);
    if (events & IOMUX_READ)
        drain(r, fd);
}

static bool data_is(const struct rec *r, const char *want)
{
    size_t n = strlen(want);
    return CHECK_EQ_INT(r->len, n) && CHECK(memcmp(r->data, want, n) == 0);
}

/* Pipe: READ fires only with data, the data read back is what was written;
   the write end is reported writable. */
static void t_pipe_readiness(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[2];
    if (!loop || !make_pipe(p))
        return;
    struct rec r = {.fd = p[0], .mask = IOMUX_READ};
    struct rec w = {.fd = p[1], .mask = IOMUX_WRITE};

    CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, read_cb, &r));
    CHECK_EQ_INT(iomux_fd_mask(loop, p[0]), IOMUX_READ);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    uint64_t t0 = mono_ns();
    CHECK_EQ_INT(iomux_loop_run_once(loop, 30), 0);
    CHECK_U64(mono_ns() - t0, >=, 15 * MS_NS); /* it blocked, it did not spin */
    CHECK_EQ_INT(r.calls, 0);

    CHECK_EQ_INT(write(p[1], "hello", 5), 5);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.events & IOMUX_READ);
    data_is(&r, "hello");
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0); /* drained: quiet again */
    CHECK_EQ_INT(r.calls, 1);

    CHECK_OK(iomux_fd_watch(loop, p[1], IOMUX_WRITE, note_cb, &w));
    CHECK(run_until(loop, &w.calls, 1, 5, 1000));
    CHECK(w.events & IOMUX_WRITE);
    CHECK_EQ_INT(r.calls, 1);
    rec_check(&r);
    rec_check(&w);

    CHECK_OK(iomux_fd_unwatch(loop, p[0]));
    CHECK_OK(iomux_fd_unwatch(loop, p[1]));
    close(p[0]);
    close(p[1]);
    iomux_loop_free(loop);
}

/* Socket pair: with READ|WRITE asked and no data only WRITE is reported;
   data from the peer adds READ; dropping WRITE from the mask silences it. */
static void t_socket_readiness(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct rec r = {.fd = s[0], .mask = IOMUX_READ | IOMUX_WRITE};

    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ | IOMUX_WRITE, read_cb, &r));
    CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(r.events, IOMUX_WRITE);

    CHECK_EQ_INT(write(s[1], "ping", 4), 4);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 1000), 1);
    CHECK_EQ_INT(r.events, IOMUX_READ | IOMUX_WRITE);
    data_is(&r, "ping");

    r.mask = IOMUX_READ;
    CHECK_OK(iomux_fd_modify(loop, s[0], IOMUX_READ));
    CHECK_EQ_INT(iomux_fd_mask(loop, s[0]), IOMUX_READ);
    int before = r.calls;
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0);
    CHECK_EQ_INT(r.calls, before);

    CHECK_EQ_INT(write(s[0], "pong", 4), 4);
    char buf[8] = {0};
    CHECK_EQ_INT(read(s[1], buf, sizeof buf), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    rec_check(&r);

    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/* 1 MiB through a socket pair driven by the loop; the writer goes until
   EAGAIN, so WRITE readiness after a full buffer is exercised.
   iomux_loop_run returns once both sides have unwatched. */
#define XFER_SIZE (1u << 20)
static unsigned char xfer_rx[XFER_SIZE];

struct xfer {
    int rfd, wfd;
    size_t sent, received;
    int eagain, mismatches, wcalls, rcalls, write_errors;
};

static unsigned char xfer_byte(size_t i)
{
    return (unsigned char)((i * 7u + i / 251u) & 0xffu);
}

static void xfer_write_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct xfer *x = data;
    unsigned char chunk[8192];
    x->wcalls++;
    while (x->sent < XFER_SIZE) {
        size_t n = XFER_SIZE - x->sent < sizeof chunk ? XFER_SIZE - x->sent : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = xfer_byte(x->sent + i);
        ssize_t w = write(fd, chunk, n);
        if (w < 0) {
            if (errno == EAGAIN)
                x->eagain++;
            else
                x->write_errors++;
            return;
        }
        x->sent += (size_t)w;
    }
    iomux_fd_unwatch(loop, fd);
    shutdown(fd, SHUT_WR);
}

static void xfer_read_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct xfer *x = data;
    x->rcalls++;
    for (;;) {
        ssize_t n = read(fd, xfer_rx + x->received, XFER_SIZE - x->received + 1);
        if (n > 0) {
            for (size_t i = x->received; i < x->received + (size_t)n; i++)
                x->mismatches += xfer_rx[i] != xfer_byte(i);
            x->received += (size_t)n;
            continue;
        }
        if (n == 0 || errno != EAGAIN)
            iomux_fd_unwatch(loop, fd);
        return;
    }
}

static void t_transfer(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct xfer x = {.rfd = s[0], .wfd = s[1]};
    CHECK_OK(iomux_fd_watch(loop, s[1], IOMUX_WRITE, xfer_write_cb, &x));
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ, xfer_read_cb, &x));
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_U64(x.sent, XFER_SIZE);
    CHECK_EQ_U64(x.received, XFER_SIZE);
    CHECK_EQ_INT(x.mismatches, 0);
    CHECK_EQ_INT(x.write_errors, 0);
    CHECK_INT(x.eagain, >=, 1);
    CHECK_INT(x.wcalls, >=, 2);
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/* Data then EOF: the data is delivered (with READ) before the hang-up, and
   EOF is seen after it. */
static void eof_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct rec *r = data;
    rec_note(r, fd, events);
    drain(r, fd);
    if (r->eof || (events & IOMUX_ERROR))
        iomux_fd_unwatch(loop, fd);
}

static void t_data_then_hup(bool use_pipe)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !(use_pipe ? make_pipe(s) : make_socketpair(s)))
        return;
    int rfd = s[0], wfd = s[1];
    struct rec r = {.fd = rfd, .mask = IOMUX_READ};
    CHECK_EQ_INT(write(wfd, "bye", 3), 3);
    close(wfd);
    CHECK_OK(iomux_fd_watch(loop, rfd, IOMUX_READ, eof_cb, &r));
    CHECK(run_until(loop, &r.calls, 1, 5, 1000));
    CHECK(r.events & IOMUX_READ); /* readable data comes before (or with) the hang-up */
    CHECK_INT(r.len, >, 0);
    for (int i = 0; i < 5 && !r.eof; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 100));
    CHECK(r.eof);
    data_is(&r, "bye");
    CHECK_INT(r.calls, <=, 3);
    CHECK_INT(iomux_fd_mask(loop, rfd), <, 0);
    rec_check(&r);
    close(rfd);
    iomux_loop_free(loop);
}

/* One callback walks through: READ -> modify to WRITE -> unwatch itself. */
struct morph {
    struct rec r;
    int phase;
    int bad_rc;
};

static void morph_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct morph *m = data;
    rec_note(&m->r, fd, events);
    if (m->phase == 0) {
        if (!(events & IOMUX_READ))
            m->bad_rc--;
        drain(&m->r, fd);
        m->r.mask = IOMUX_WRITE;
        m->bad_rc += iomux_fd_modify(loop, fd, IOMUX_WRITE) != 0;
        m->phase = 1;
    } else if (m->phase == 1) {
        if (events != IOMUX_WRITE)
            m->bad_rc--;
        m->bad_rc += iomux_fd_unwatch(loop, fd) != 0;
        m->phase = 2;
    } else {
        m->phase = 3; /* called after unwatching itself */
    }
}

static void t_modify_in_callback(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct morph m = {.r = {.fd = s[0], .mask = IOMUX_READ}};
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ, morph_cb, &m));
    CHECK_EQ_INT(write(s[1], "x", 1), 1);
    CHECK(run_until(loop, &m.r.calls, 2, 5, 1000));
    CHECK_EQ_INT(m.phase, 2);
    CHECK_EQ_INT(m.bad_rc, 0);
    data_is(&m.r, "x");
    CHECK_ERRNO(iomux_fd_mask(loop, s[0]), -ENOENT);
    CHECK_EQ_INT(write(s[1], "y", 1), 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    CHECK_EQ_INT(m.r.calls, 2);
    rec_check(&m.r);

    /* Mask 0: watched but paused; no call even with data waiting. */
    struct rec p = {.fd = s[0], .mask = 0};
    CHECK_OK(iomux_fd_watch(loop, s[0], 0, note_cb, &p));
    CHECK_EQ_INT(iomux_fd_mask(loop, s[0]), 0);
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0);
    CHECK_EQ_INT(p.calls, 0);
    p.mask = IOMUX_READ;
    CHECK_OK(iomux_fd_modify(loop, s[0], IOMUX_READ));
    CHECK(run_until(loop, &p.calls, 1, 5, 1000));
    rec_check(&p);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/*
 * Stale-event rule. Two fds are made ready, then one iteration with timeout
 * 0 collects both. Each callback does its mischief to the other watcher, and
 * only the first to run may do it: dispatch order is the backend's, so the
 * check is that exactly one of the two ran in that iteration.
 */
enum mischief {
    UNWATCH_OTHER,    /* unwatch the other fd */
    PAUSE_OTHER,      /* modify the other fd's mask to 0 */
    SWITCH_OTHER,     /* modify the other fd's mask from READ to WRITE */
    REUSE_OTHER,      /* unwatch + close the other, reuse its number */
    UNWATCH_SELF_TOO, /* unwatch the other fd, then itself */
};

struct duel {
    enum mischief what;
    bool use_pipes;
    struct rec side[2];
    struct rec repl; /* watcher of the fd that reuses the victim's number */
    int repl_wr;     /* write end of the replacement */
    int bad_rc;
    int mischief_done;
};

/* The callbacks reach the duel through this (one test at a time). */
static struct duel *the_duel;

static void repl_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct rec *r = data;
    rec_note(r, fd, events);
    if (events & IOMUX_READ)
        drain(r, fd);
}

static void duel_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct rec *me = data;
    struct duel *d = the_duel;
    rec_note(me, fd, events);
    if (events & IOMUX_READ)
        drain(me, fd);
    if (d->mischief_done++)
        return;
    struct rec *victim = me->other;
    switch (d->what) {
    case UNWATCH_OTHER:
        d->bad_rc += iomux_fd_unwatch(loop, victim->fd) != 0;
        break;
    case PAUSE_OTHER:
        victim->mask = 0;
        d->bad_rc += iomux_fd_modify(loop, victim->fd, 0) != 0;
        break;
    case SWITCH_OTHER:
        victim->mask = IOMUX_WRITE;
        d->bad_rc += iomux_fd_modify(loop, victim->fd, IOMUX_WRITE) != 0;
        break;
    case UNWATCH_SELF_TOO:
        d->bad_rc += iomux_fd_unwatch(loop, victim->fd) != 0;
        d->bad_rc += iomux_fd_unwatch(loop, fd) != 0;
        break;
    case REUSE_OTHER: {
        int num = victim->fd, n[2];
        d->bad_rc += iomux_fd_unwatch(loop, num) != 0;
        close(num);
        int rc = d->use_pipes
                     ? pipe2(n, O_NONBLOCK | O_CLOEXEC)
                     : socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, n);
        if (rc != 0) {
            d->bad_rc += 100;
            return;
        }
        /* n[0] normally takes the lowest free number, which is `num`; make
           sure of it. */
        if (n[0] != num) {
            if (dup3(n[0], num, O_CLOEXEC) != num)
                d->bad_rc += 100;
            close(n[0]);
        }
        d->repl.fd = num;
        d->repl.mask = d->use_pipes ? IOMUX_READ : IOMUX_READ | IOMUX_WRITE;
        d->repl_wr = n[1];
        d->bad_rc += iomux_fd_watch(loop, num, d->repl.mask, repl_cb, &d->repl) != 0;
        victim->fd = -1; /* its number now belongs to the replacement */
        break;
    }
    }
}

static const char *mischief_name(enum mischief m)
{
    switch (m) {
    case UNWATCH_OTHER:
        return "unwatch the other";
    case PAUSE_OTHER:
        return "pause the other";
    case REUSE_OTHER:
        return "unwatch, close and reuse the other's fd number";
    case SWITCH_OTHER:
        return "switch the other from READ to WRITE";
    case UNWATCH_SELF_TOO:
        return "unwatch the other and itself";
    }
    return "?";
}

static void t_stale_events(enum mischief what, bool use_pipes)
{
    fprintf(stderr, "  stale-event rule: %s (%s)\n", mischief_name(what),
            use_pipes ? "pipes" : "socket pairs");
    struct iomux_loop *loop = test_loop_new(backend, 0);
    struct duel d = {.what = what, .use_pipes = use_pipes, .repl_wr = -1};
    int a[2], b[2];
    if (!loop)
        return;
    if (!(use_pipes ? make_pipe(a) && make_pipe(b) : make_socketpair(a) && make_socketpair(b)))
        return;
    the_duel = &d;
    d.side[0] = (struct rec){.other = &d.side[1], .fd = a[0], .mask = IOMUX_READ};
    d.side[1] = (struct rec){.other = &d.side[0], .fd = b[0], .mask = IOMUX_READ};
    CHECK_OK(iomux_fd_watch(loop, a[0], IOMUX_READ, duel_cb, &d.side[0]));
    CHECK_OK(iomux_fd_watch(loop, b[0], IOMUX_READ, duel_cb, &d.side[1]));
    CHECK_EQ_INT(write(a[1], "a", 1), 1);
    CHECK_EQ_INT(write(b[1], "b", 1), 1);

    int rc = iomux_loop_run_once(loop, 0);
    CHECK_EQ_INT(rc, 1);
    CHECK_EQ_INT(d.side[0].calls + d.side[1].calls, 1);
    CHECK_EQ_INT(d.repl.calls, 0); /* the replacement got no stale event */
    CHECK_EQ_INT(d.bad_rc, 0);
    int winner = d.side[0].calls ? 0 : 1, loser = 1 - winner;
    fprintf(stderr, "  dispatched first: fd %d; the other was not called\n", d.side[winner].fd);

    switch (what) {
    case UNWATCH_OTHER:
        CHECK_ERRNO(iomux_fd_mask(loop, d.side[loser].fd), -ENOENT);
        CHECK_EQ_INT(iomux_fd_mask(loop, d.side[winner].fd), IOMUX_READ);
        break;
    case PAUSE_OTHER:
        CHECK_EQ_INT(iomux_fd_mask(loop, d.side[loser].fd), 0);
        break;
    case SWITCH_OTHER:
        CHECK_EQ_INT(iomux_fd_mask(loop, d.side[loser].fd), IOMUX_WRITE);
        break;
    case UNWATCH_SELF_TOO:
        CHECK_ERRNO(iomux_fd_mask(loop, d.side[loser].fd), -ENOENT);
        CHECK_ERRNO(iomux_fd_mask(loop, d.side[winner].fd), -ENOENT);
        break;
    case REUSE_OTHER:
        CHECK_EQ_INT(iomux_fd_mask(loop, d.repl.fd), (int)d.repl.mask);
        break;
    }
    /* Later iterations: the loser stays silent even though its data is
       still unread (a socket switched to WRITE is writable: it gets WRITE
       and never READ, which rec_check verifies). */
    for (int i = 0; i < 3; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 0));
    if (what == SWITCH_OTHER && !use_pipes) {
        CHECK_INT(d.side[loser].calls, >=, 1);
        CHECK_EQ_INT(d.side[loser].events, IOMUX_WRITE);
    } else {
        CHECK_EQ_INT(d.side[loser].calls, 0);
    }

    if (what == REUSE_OTHER) {
        if (use_pipes) {
            /* The new pipe is empty: nothing until something is written. */
            CHECK_EQ_INT(d.repl.calls, 0);
            CHECK_EQ_INT(write(d.repl_wr, "n", 1), 1);
            CHECK(run_until(loop, &d.repl.calls, 1, 5, 1000));
            CHECK(d.repl.events & IOMUX_READ);
            data_is(&d.repl, "n");
        } else {
            /* The new socket is writable, not readable: WRITE only. */
            CHECK_INT(d.repl.calls, >=, 1);
            CHECK_EQ_INT(d.repl.events, IOMUX_WRITE);
            CHECK_EQ_INT(d.repl.len, 0);
        }
        rec_check(&d.repl);
        iomux_fd_unwatch(loop, d.repl.fd);
        close(d.repl.fd);
        close(d.repl_wr);
    }
    rec_check(&d.side[0]);
    rec_check(&d.side[1]);
    for (int i = 0; i < 2; i++) {
        if (d.side[i].fd < 0)
            continue;
        (void)iomux_fd_unwatch(loop, d.side[i].fd); /* may be unwatched already */
        close(d.side[i].fd);
    }
    close(a[1]);
    close(b[1]);
    iomux_loop_free(loop);
    the_duel = NULL;
}

/* A callback that watches fd 900 grows the table (and fired[]) in the
   middle of a batch: the rest of the batch is still dispatched, once each. */
struct grower {
    struct rec r[3];
    int hi;       /* fd 900 */
    int watch_rc; /* of watching it, from the first callback */
    bool grown;
    struct rec rhi;
};

static struct grower *the_grower;

static void grow_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct grower *g = the_grower;
    read_cb(loop, fd, events, data);
    if (!g->grown) {
        g->grown = true;
        g->watch_rc = iomux_fd_watch(loop, g->hi, IOMUX_READ, read_cb, &g->rhi);
    }
}

static void t_grow_in_callback(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[3][2], h[2];
    if (!loop || !make_pipe(p[0]) || !make_pipe(p[1]) || !make_pipe(p[2]) || !make_pipe(h))
        return;
    struct grower g = {.watch_rc = 1};
    the_grower = &g;
    g.hi = move_fd(h[0], 900);
    if (g.hi < 0)
        return;
    g.rhi = (struct rec){.fd = g.hi, .mask = IOMUX_READ};
    for (int i = 0; i < 3; i++) {
        g.r[i] = (struct rec){.fd = p[i][0], .mask = IOMUX_READ};
        CHECK_OK(iomux_fd_watch(loop, p[i][0], IOMUX_READ, grow_cb, &g.r[i]));
        CHECK_EQ_INT(write(p[i][1], "g", 1), 1);
    }
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 3);
    CHECK_OK(g.watch_rc);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(g.r[i].calls, 1);
        data_is(&g.r[i], "g");
        rec_check(&g.r[i]);
    }
    CHECK_EQ_INT(g.rhi.calls, 0);
    CHECK_EQ_INT(write(h[1], "h", 1), 1);
    CHECK(run_until(loop, &g.rhi.calls, 1, 5, 1000));
    data_is(&g.rhi, "h");
    rec_check(&g.rhi);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(iomux_fd_unwatch(loop, p[i][0]));
        close(p[i][0]);
        close(p[i][1]);
    }
    CHECK_OK(iomux_fd_unwatch(loop, g.hi));
    close(g.hi);
    close(h[1]);
    iomux_loop_free(loop);
    the_grower = NULL;
}

/* A regular file: epoll refuses it with -EPERM (and leaves nothing half
   watched); poll and select report it readable at once. */
static void t_regular_file(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    if (!loop)
        return;
    char path[] = "/tmp/iomux-test-XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK_INT(fd, >=, 0))
        return;
    unlink(path);
    CHECK_EQ_INT(write(fd, "file", 4), 4);
    CHECK_EQ_INT(lseek(fd, 0, SEEK_SET), 0);
    struct rec r = {.fd = fd, .mask = IOMUX_READ};
    int rc = iomux_fd_watch(loop, fd, IOMUX_READ, read_cb, &r);
    if (strcmp(iomux_loop_backend(loop), "epoll") == 0) {
        fprintf(stderr, "  epoll: a regular file is refused with -EPERM\n");
        CHECK_ERRNO(rc, -EPERM);
        CHECK_ERRNO(iomux_fd_mask(loop, fd), -ENOENT);
        CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    } else {
        fprintf(stderr, "  %s: a regular file is always readable\n", iomux_loop_backend(loop));
        CHECK_OK(rc);
        CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 1);
        CHECK(r.events & IOMUX_READ);
        data_is(&r, "file");
        CHECK_OK(iomux_fd_unwatch(loop, fd));
    }
    rec_check(&r);
    close(fd);
    iomux_loop_free(loop);
}

/* IOMUX_PRI is TCP urgent data on every backend (select: exceptfds). */
struct urgent {
    struct rec r;
    char oob;
    int oob_reads;
};

static void urgent_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct urgent *u = data;
    rec_note(&u->r, fd, events);
    if (events & IOMUX_PRI)
        u->oob_reads += recv(fd, &u->oob, 1, MSG_OOB) == 1;
    if (events & IOMUX_READ)
        drain(&u->r, fd);
}

static bool tcp_pair(int fds[2])
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!CHECK_INT(l, >=, 0))
        return false;
    bool ok = CHECK_EQ_INT(bind(l, (struct sockaddr *)&sa, sizeof sa), 0) &&
              CHECK_EQ_INT(listen(l, 1), 0) &&
              CHECK_EQ_INT(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    fds[1] = ok ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    ok = ok && CHECK_INT(fds[1], >=, 0) &&
         CHECK_EQ_INT(connect(fds[1], (struct sockaddr *)&sa, sizeof sa), 0);
    fds[0] = ok ? accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC) : -1;
    ok = ok && CHECK_INT(fds[0], >=, 0);
    close(l);
    return ok;
}

static void t_urgent_data(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int t[2];
    if (!loop || !tcp_pair(t))
        return;
    struct urgent u = {.r = {.fd = t[0], .mask = IOMUX_READ | IOMUX_PRI}};
    CHECK_OK(iomux_fd_watch(loop, t[0], IOMUX_READ | IOMUX_PRI, urgent_cb, &u));
    CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 0);
    CHECK_EQ_INT(send(t[1], "ab", 2, 0), 2);
    CHECK_EQ_INT(send(t[1], "!", 1, MSG_OOB), 1);
    for (int i = 0; i < 10 && (u.oob_reads == 0 || u.r.len < 2); i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 100));
    fprintf(stderr, "  %s: urgent byte reported as 0x%x\n", iomux_loop_backend(loop),
            u.r.all_events);
    CHECK(u.r.all_events & IOMUX_PRI);
    CHECK_EQ_INT(u.oob_reads, 1);
    CHECK_EQ_INT(u.oob, '!');
    data_is(&u.r, "ab");
    int calls = u.r.calls;
    CHECK_EQ_INT(iomux_loop_run_once(loop, 20), 0); /* consumed: quiet */
    CHECK_EQ_INT(u.r.calls, calls);
    rec_check(&u.r);
    CHECK_OK(iomux_fd_unwatch(loop, t[0]));
    close(t[0]);
    close(t[1]);
    iomux_loop_free(loop);
}

/*
 * fds at and above FD_SETSIZE: select must refuse them with -ERANGE or
 * -EINVAL (never FD_SET them) and keep working for the others; poll and
 * epoll must deliver readiness on fd 1500.
 */
static void t_high_fds(void)
{
    if (!raise_nofile(1600)) {
        check_skip("cannot raise RLIMIT_NOFILE to 1600 (hard limit too low): fd 1500 not tested");
        return;
    }
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2], t[2], u[2], p[2];
    if (!loop || !make_socketpair(s) || !make_socketpair(t) || !make_socketpair(u) || !make_pipe(p))
        return;
    bool is_select = strcmp(iomux_loop_backend(loop), "select") == 0;
    int hi = move_fd(s[0], 1500);
    int top = move_fd(t[0], FD_SETSIZE);
    int edge = move_fd(u[0], FD_SETSIZE - 1);
    if (hi < 0 || top < 0 || edge < 0)
        return;
    struct rec rhi = {.fd = hi, .mask = IOMUX_READ}, rtop = {.fd = top, .mask = IOMUX_READ};
    struct rec redge = {.fd = edge, .mask = IOMUX_READ}, rp = {.fd = p[0], .mask = IOMUX_READ};

    CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, read_cb, &rp));
    CHECK_OK(iomux_fd_watch(loop, edge, IOMUX_READ, read_cb, &redge));
    int rc_hi = iomux_fd_watch(loop, hi, IOMUX_READ, read_cb, &rhi);
    int rc_top = iomux_fd_watch(loop, top, IOMUX_READ, read_cb, &rtop);
    CHECK_EQ_INT(write(s[1], "h", 1), 1);
    CHECK_EQ_INT(write(t[1], "t", 1), 1);
    CHECK_EQ_INT(write(u[1], "e", 1), 1);
    CHECK_EQ_INT(write(p[1], "p", 1), 1);
    if (is_select) {
        fprintf(stderr,
                "  select: watching fd %d and fd 1500 refused (%d, %d); fd %d and a pipe"
                " still work\n",
                FD_SETSIZE, rc_top, rc_hi, FD_SETSIZE - 1);
        CHECK(rc_hi == -ERANGE || rc_hi == -EINVAL);
        CHECK(rc_top == -ERANGE || rc_top == -EINVAL);
        CHECK_ERRNO(iomux_fd_mask(loop, hi), -ENOENT);
        CHECK_ERRNO(iomux_fd_mask(loop, top), -ENOENT);
        /* loop.h lists -ERANGE for fd >= FD_SETSIZE on select for the watch
           itself, whatever the mask: a paused watch (mask 0) must not slip
           through and fail only at the later iomux_fd_modify. */
        int rc_paused = iomux_fd_watch(loop, hi, 0, read_cb, &rhi);
        if (!CHECK(rc_paused == -ERANGE || rc_paused == -EINVAL)) {
            fprintf(stderr, "  select: iomux_fd_watch(fd 1500, mask 0) = %d\n", rc_paused);
            if (rc_paused == 0)
                iomux_fd_unwatch(loop, hi);
        }
        CHECK(run_until(loop, &rp.calls, 1, 5, 1000));
        CHECK(run_until(loop, &redge.calls, 1, 5, 1000));
        CHECK_EQ_INT(rhi.calls + rtop.calls, 0);
    } else {
        fprintf(stderr, "  %s: fd %d and fd 1500 are watched and delivered\n",
                iomux_loop_backend(loop), FD_SETSIZE);
        CHECK_OK(rc_hi);
        CHECK_OK(rc_top);
        CHECK(run_until(loop, &rhi.calls, 1, 5, 1000));
        CHECK(run_until(loop, &rtop.calls, 1, 5, 1000));
        CHECK(run_until(loop, &rp.calls, 1, 5, 1000));
        CHECK(run_until(loop, &redge.calls, 1, 5, 1000));
        data_is(&rhi, "h");
        data_is(&rtop, "t");
        CHECK_OK(iomux_fd_unwatch(loop, hi));
        CHECK_OK(iomux_fd_unwatch(loop, top));
    }
    data_is(&rp, "p");
    data_is(&redge, "e");
    rec_check(&rp);
    rec_check(&redge);
    rec_check(&rhi);
    rec_check(&rtop);
    CHECK_OK(iomux_fd_unwatch(loop, p[0]));
    CHECK_OK(iomux_fd_unwatch(loop, edge));
    int fds[] = {hi, s[1], top, t[1], edge, u[1], p[0], p[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
    iomux_loop_free(loop);
}

/*
 * A watched fd closed behind the loop's back. The loop must not spin: poll
 * reports IOMUX_INVALID once and stops watching (mask 0); epoll just loses
 * the fd (no events); on any backend the callback runs at most twice, every
 * quiet iteration really waits, and another fd keeps working.
 */
static void t_closed_behind_back(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[2], q[2];
    if (!loop || !make_pipe(p) || !make_pipe(q))
        return;
    const char *name = iomux_loop_backend(loop);
    int victim = p[0];
    struct rec rv = {.fd = victim, .mask = IOMUX_READ}, rq = {.fd = q[0], .mask = IOMUX_READ};
    CHECK_OK(iomux_fd_watch(loop, victim, IOMUX_READ, note_cb, &rv));
    CHECK_OK(iomux_fd_watch(loop, q[0], IOMUX_READ, read_cb, &rq));
    close(victim);

    int errors = 0, quick_empty = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t t0 = mono_ns();
        int rc = iomux_loop_run_once(loop, 50);
        uint64_t dt = mono_ns() - t0;
        if (rc < 0) {
            errors++;
            fprintf(stderr, "  run_once: %d (%s)\n", rc, strerror(-rc));
        } else if (rc == 0 && dt < 25 * MS_NS) {
            quick_empty++;
        }
    }
    fprintf(stderr,
            "  %s: callback ran %d time(s), events 0x%x, %d error(s), %d early empty"
            " return(s)\n",
            name, rv.calls, rv.all_events, errors, quick_empty);
    CHECK_INT(rv.calls, <=, 2);
    CHECK_EQ_INT(errors, 0);
    CHECK_INT(quick_empty, <=, 1);
    if (strcmp(name, "poll") == 0) {
        CHECK_EQ_INT(rv.calls, 1);
        CHECK(rv.all_events & IOMUX_INVALID);
        CHECK(rv.all_events & IOMUX_ERROR);
    } else if (strcmp(name, "epoll") == 0) {
        CHECK_EQ_INT(rv.calls, 0);
    }
    if (rv.all_events & IOMUX_INVALID)
        CHECK_EQ_INT(iomux_fd_mask(loop, victim), 0);
    CHECK_EQ_INT(rq.calls, 0);

    /* The other fd still works. */
    CHECK_EQ_INT(write(q[1], "q", 1), 1);
    CHECK(run_until(loop, &rq.calls, 1, 5, 1000));
    data_is(&rq, "q");

    /* Unwatching the dead number clears it (0, or -ENOENT/-EBADF), and a new
       fd with that number can be watched and is delivered. */
    int rc = iomux_fd_unwatch(loop, victim);
    CHECK(rc == 0 || rc == -ENOENT || rc == -EBADF);
    CHECK_ERRNO(iomux_fd_mask(loop, victim), -ENOENT);
    int n[2];
    if (make_pipe(n)) {
        int nfd = move_fd(n[0], victim);
        struct rec rn = {.fd = victim, .mask = IOMUX_READ};
        CHECK_OK(iomux_fd_watch(loop, nfd, IOMUX_READ, read_cb, &rn));
        CHECK_EQ_INT(write(n[1], "n", 1), 1);
        CHECK(run_until(loop, &rn.calls, 1, 5, 1000));
        data_is(&rn, "n");
        rec_check(&rn);
        CHECK_OK(iomux_fd_unwatch(loop, nfd));
        close(nfd);
        close(n[1]);
    }
    rec_check(&rq);
    CHECK_OK(iomux_fd_unwatch(loop, q[0]));
    close(p[1]);
    close(q[0]);
    close(q[1]);
    iomux_loop_free(loop);
}

/*
 * EINTR: a helper thread interrupts the waiting main thread with SIGALRM
 * (plain sigaction, no SA_RESTART) three times, then makes a pipe readable.
 * run_once must not fail, and the readability must be delivered.
 */
static atomic_int alrm_count; /* lock-free: safe in the handler, read by both threads */

static void on_alrm(int signo)
{
    atomic_fetch_add(&alrm_count, 1);
}

struct eintr_ctx {
    pthread_t main;
    int wfd;
    int kill_errors;
    ssize_t wrote;
};

static void *eintr_thread(void *arg)
{
    struct eintr_ctx *c = arg;
    for (int i = 0; i < 3; i++) {
        sleep_ms(20);
        c->kill_errors += pthread_kill(c->main, SIGALRM) != 0;
        /* Standard signals do not queue: let this one be handled before
           the next is sent (bounded: 5 s). */
        for (int ms = 0; ms < 5000 && atomic_load(&alrm_count) <= i; ms++)
            sleep_ms(1);
    }
    sleep_ms(20);
    c->wrote = write(c->wfd, "late", 4);
    return NULL;
}

static void t_eintr(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int p[2];
    if (!loop || !make_pipe(p))
        return;
    struct sigaction sa = {.sa_handler = on_alrm}, old;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the wait really gets EINTR */
    CHECK_EQ_INT(sigaction(SIGALRM, &sa, &old), 0);
    atomic_store(&alrm_count, 0);

    struct rec r = {.fd = p[0], .mask = IOMUX_READ};
    CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, read_cb, &r));
    struct eintr_ctx c = {.main = pthread_self(), .wfd = p[1]};
    pthread_t th;
    if (!CHECK_EQ_INT(pthread_create(&th, NULL, eintr_thread, &c), 0))
        return;
    int iterations = 0, errors = 0;
    while (r.calls == 0 && iterations < 50) {
        int rc = iomux_loop_run_once(loop, 5000);
        iterations++;
        if (rc < 0) {
            errors++;
            fprintf(stderr, "  run_once after a signal: %d (%s)\n", rc, strerror(-rc));
        }
    }
    pthread_join(th, NULL);
    fprintf(stderr, "  %d signal(s) handled, %d iteration(s) until the pipe was delivered\n",
            atomic_load(&alrm_count), iterations);
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(c.kill_errors, 0);
    CHECK_EQ_INT(c.wrote, 4);
    CHECK_EQ_INT(atomic_load(&alrm_count), 3);
    CHECK_EQ_INT(r.calls, 1);
    data_is(&r, "late");
    rec_check(&r);
    CHECK_EQ_INT(sigaction(SIGALRM, &old, NULL), 0);
    CHECK_OK(iomux_fd_unwatch(loop, p[0]));
    close(p[0]);
    close(p[1]);
    iomux_loop_free(loop);
}

/* iomux_loop_run: returns at once when empty, when the last watcher goes,
   and after the iteration in which iomux_loop_stop was called. */
struct stopper {
    int calls;
    int stop_at;
};

static void stop_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct stopper *s = data;
    if (++s->calls % s->stop_at == 0)
        iomux_loop_stop(loop);
}

static void unwatch_self_cb(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    rec_note(data, fd, events);
    iomux_fd_unwatch(loop, fd);
}

static void t_run_and_stop(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;

    uint64_t t0 = mono_ns();
    CHECK_OK(iomux_loop_run(loop)); /* nothing to wait for */
    CHECK_U64(mono_ns() - t0, <, 1000 * MS_NS);

    /* A paused fd (mask 0) does not keep run() going either. */
    struct rec paused = {.fd = s[0], .mask = 0};
    CHECK_OK(iomux_fd_watch(loop, s[0], 0, note_cb, &paused));
    t0 = mono_ns();
    CHECK_OK(iomux_loop_run(loop));
    CHECK_U64(mono_ns() - t0, <, 1000 * MS_NS);
    CHECK_EQ_INT(paused.calls, 0);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));

    struct rec r = {.fd = s[0], .mask = IOMUX_WRITE};
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_WRITE, unwatch_self_cb, &r));
    CHECK_OK(iomux_loop_run(loop)); /* returns when the last fd unwatches */
    CHECK_EQ_INT(r.calls, 1);

    /* s[0] is always writable: only iomux_loop_stop ends run(). A second
       run() is not stopped by the first stop. */
    struct stopper st = {.stop_at = 3};
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_WRITE, stop_cb, &st));
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_INT(st.calls, 3);
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_INT(st.calls, 6);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    CHECK_OK(iomux_loop_run(loop));
    CHECK_EQ_INT(st.calls, 6);
    close(s[0]);
    close(s[1]);
    iomux_loop_free(loop);
}

/* Argument errors of the fd functions. */
static void t_fd_errors(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    int s[2];
    if (!loop || !make_socketpair(s))
        return;
    struct rec r = {.fd = s[0], .mask = IOMUX_READ};
    CHECK_ERRNO(iomux_fd_watch(loop, -1, IOMUX_READ, note_cb, &r), -EINVAL);
    CHECK_ERRNO(iomux_fd_watch(loop, s[0], IOMUX_READ, NULL, &r), -EINVAL);
    CHECK_ERRNO(iomux_fd_watch(loop, s[0], 1u << 10, note_cb, &r), -EINVAL);
    CHECK_ERRNO(iomux_fd_mask(loop, s[0]), -ENOENT);
    CHECK_ERRNO(iomux_fd_modify(loop, s[0], IOMUX_READ), -ENOENT);
    CHECK_ERRNO(iomux_fd_unwatch(loop, s[0]), -ENOENT);
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ, note_cb, &r));
    CHECK_ERRNO(iomux_fd_watch(loop, s[0], IOMUX_READ, note_cb, &r), -EEXIST);
    CHECK_ERRNO(iomux_fd_modify(loop, s[0], 1u << 10), -EINVAL);
    CHECK_EQ_INT(iomux_fd_mask(loop, s[0]), IOMUX_READ);
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    CHECK_ERRNO(iomux_fd_unwatch(loop, s[0]), -ENOENT);
    iomux_loop_free(loop);

    /* max_fds = 64: fd 100 is out of range on every backend. */
    loop = test_loop_new(backend, 64);
    if (!loop)
        return;
    int fd100 = move_fd(dup(s[0]), 100);
    if (fd100 >= 0) {
        CHECK_ERRNO(iomux_fd_watch(loop, fd100, IOMUX_READ, note_cb, &r), -ERANGE);
        close(fd100);
    }
    CHECK_OK(iomux_fd_watch(loop, s[0], IOMUX_READ, note_cb, &r));
    CHECK_OK(iomux_fd_unwatch(loop, s[0]));
    iomux_loop_free(loop);
    close(s[0]);
    close(s[1]);
}

static void t_data_then_hup_all(void)
{
    t_data_then_hup(false);
    t_data_then_hup(true);
}

static void t_stale_events_all(void)
{
    enum mischief all[] = {UNWATCH_OTHER, PAUSE_OTHER, SWITCH_OTHER, UNWATCH_SELF_TOO, REUSE_OTHER};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        t_stale_events(all[i], true);
        t_stale_events(all[i], false);
    }
}

int main(int argc, char **argv)
{
    alarm(30); /* a hang is a failure, never a stuck ctest */
    backend = test_backend(argc, argv);
    struct iomux_loop *probe = test_loop_new(backend, 0);
    if (!probe)
        return check_exit();
    fprintf(stderr, "backend: %s\n", iomux_loop_backend(probe));
    if (backend)
        CHECK_STR(iomux_loop_backend(probe), backend);
    iomux_loop_free(probe);

    check_run("pipe readiness", t_pipe_readiness);
    check_run("socket readiness", t_socket_readiness);
    check_run("1 MiB transfer", t_transfer);
    check_run("data then hang-up", t_data_then_hup_all);
    check_run("modify and unwatch in callbacks", t_modify_in_callback);
    check_run("stale-event rule", t_stale_events_all);
    check_run("table growth inside a callback", t_grow_in_callback);
    check_run("regular file", t_regular_file);
    check_run("urgent data (IOMUX_PRI)", t_urgent_data);
    check_run("fd closed behind the loop's back", t_closed_behind_back);
    check_run("EINTR during the wait", t_eintr);
    check_run("run and stop", t_run_and_stop);
    check_run("fd argument errors", t_fd_errors);
    /* Last: it is the one part that may have to be skipped. */
    check_run("high fds", t_high_fds);
    return check_exit();
}
