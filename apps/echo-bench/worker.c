/* SPDX-License-Identifier: MIT */
/*
 * worker.c - one echo-bench thread: its connections on its own loop.
 *
 * Each traffic connection sends an endless stream taken from the shared
 * pattern and checks every echoed byte against it (pattern.h). The stream
 * is cut into messages of --size bytes only for timing: a message is
 * "complete" when its last byte is back, whatever the TCP segmentation.
 *
 *   closed loop: --depth messages are released at the start; each
 *       completion records its latency (now - when it was released) and
 *       releases the next one.
 *   open loop (--rate): message k of a connection is due at
 *       start + phase + k * interval, whatever happened before. Latency is
 *       measured from that due time, so when the server stalls, the
 *       messages that queue up behind the stall are charged for it
 *       (no coordinated omission). A timerfd (wake.h) wakes the loop at
 *       each due time; how late that was is the schedule lag, reported.
 *   --never-read: sends until the server stops taking bytes, never reads.
 *
 * Sending never copies: send() is given a pointer into the pattern table.
 * Nothing is allocated after the connections are set up.
 */
#include "worker.h"
#include "conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iomux/loop.h>

void conn_close(struct bench_conn *c)
{
    if (c->state == CONN_OPEN && !c->idle)
        c->w->in_flight -= c->released - c->completed;
    if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE || c->state == CONN_OPEN) {
        iomux_fd_unwatch(c->w->loop, c->fd);
        conn_tls_close(c);
        close(c->fd);
    }
    c->fd = -1;
    c->state = CONN_CLOSED;
    if (c->busy)
        churn_free(c);
}

void conn_set_mask(struct bench_conn *c, unsigned mask)
{
    if (mask == c->mask)
        return;
    int rc = iomux_fd_modify(c->w->loop, c->fd, mask);
    if (rc < 0) {
        worker_error(c->w, "conn %u: changing its watch: %s", c->id, strerror(-rc));
        conn_close(c);
        return;
    }
    c->mask = mask;
}

unsigned conn_wanted_mask(const struct bench_conn *c)
{
    const struct bench_options *o = c->w->shared->opt;
    unsigned mask = 0;
    if (!o->never_read && !c->read_paused)
        mask |= c->read_wants_write ? IOMUX_WRITE : IOMUX_READ;
    if (c->queued > c->sent)
        mask |= c->write_wants_read ? IOMUX_READ : IOMUX_WRITE;
    return mask;
}

void conn_flush(struct bench_conn *c)
{
    struct worker *w = c->w;
    while (c->sent < c->queued) {
        size_t avail;
        const unsigned char *p = pattern_at(w->shared->pattern, c->base + c->sent, &avail);
        uint64_t left = c->queued - c->sent;
        size_t n = left < avail ? (size_t)left : avail;
        ssize_t got = conn_send(c, p, n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            int err = errno;
            if (w->churn != NULL)
                churn_failed(w, err);
            worker_error(w, "conn %u: send: %s", c->id, conn_error(c, err));
            conn_close(c);
            return;
        }
        c->sent += (uint64_t)got;
    }
    conn_set_mask(c, conn_wanted_mask(c));
}

/* Releases one closed-loop message, stamped with its release time. */
void release_closed(struct bench_conn *c, uint64_t now)
{
    const struct bench_options *o = c->w->shared->opt;
    c->send_ns[c->released % o->depth] = now;
    c->released++;
    c->queued += o->size;
    c->w->in_flight++;
}

static void on_read_resume(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct bench_conn *c = data;
    if (c->state != CONN_OPEN)
        return;
    c->read_paused = 0;
    conn_set_mask(c, conn_wanted_mask(c));
}

/* When message k of a connection was sent: its release time in the closed
   loop, its scheduled time in the open loop. */
static uint64_t msg_due(const struct bench_conn *c, uint64_t k)
{
    const struct bench_shared *s = c->w->shared;
    if (s->opt->rate != 0)
        return sched_due(s, c->id, c->phase_ns, k);
    return c->send_ns[k % s->opt->depth];
}

/* Every wait, answered or not, is held against --timeout. */
static void note_wait(struct worker *w, uint64_t wait_ns)
{
    if (wait_ns > w->max_wait_ns)
        w->max_wait_ns = wait_ns;
    if (wait_ns > w->shared->opt->timeout_us * 1000u)
        w->timed_out++;
}

/* Counts the messages that `c->received` completes and acts on each. */
static void conn_complete(struct bench_conn *c, uint64_t now, int in_window)
{
    struct worker *w = c->w;
    const struct bench_shared *s = w->shared;
    const struct bench_options *o = s->opt;
    while (c->received >= (c->completed + 1) * o->size) {
        uint64_t due = msg_due(c, c->completed);
        uint64_t wait = now > due ? now - due : 0;
        c->completed++;
        w->in_flight--;
        note_wait(w, wait);
        /* The interval lines and --hdr-log hold what the summary does,
           plus the warm-up: nothing after the end. */
        if (w->ival != NULL && now < s->t_end_ns)
            hdr_record(w->ival->cur, wait);
        if (in_window) {
            hdr_record(&w->hist, wait);
            w->messages++;
        }
        if (o->rate == 0 && now < s->t_end_ns && (o->churn == 0 || c->released < o->per_conn))
            release_closed(c, now);
    }
    if (o->churn != 0 && c->completed == o->per_conn)
        churn_finished(c);
}

/* TCP retransmissions of a connection over its life, read before it is
   closed; Unix sockets have none to tell. */
static void count_retransmits(struct worker *w, const struct bench_conn *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (w->shared->addr.ss.ss_family == AF_UNIX ||
        getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return;
    w->retransmits += ti.tcpi_total_retrans;
    w->retrans_known++;
}

/* Messages still unanswered when the run ends waited at least until then:
   their latency is charged up to the end, so that a server that stopped
   answering shows in the maximum and the high percentiles. */
static void count_outstanding(struct worker *w)
{
    const struct bench_shared *s = w->shared;
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct bench_conn *c = &w->conns[i];
        if (c->state != CONN_OPEN)
            continue;
        if (s->opt->rate != 0) {
            uint64_t due = sched_due_count(s, c->id, c->phase_ns, c->released);
            w->scheduled += due;
            w->unsent += due - c->sent / s->opt->size;
        }
        for (uint64_t k = c->completed; k < c->released; k++) {
            uint64_t due = msg_due(c, k);
            uint64_t wait = s->t_end_ns > due ? s->t_end_ns - due : 0;
            note_wait(w, wait);
            hdr_record(&w->hist, wait);
            if (w->ival != NULL)
                hdr_record(w->ival->cur, wait);
            w->outstanding++;
        }
    }
}

/* recv() failed (n < 0, errno in err) or met the end of the stream
   (n == 0): counts it as the connection's kind requires and closes it. */
static void conn_read_ended(struct bench_conn *c, ssize_t n, int err)
{
    struct worker *w = c->w;
    if (c->idle) {
        w->idle_closed++;
    } else {
        if (w->churn != NULL)
            churn_failed(w, n < 0 ? err : 0);
        if (n < 0)
            worker_error(w, "conn %u: recv: %s", c->id, conn_error(c, err));
        else
            worker_error(w,
                         "conn %u: the server closed the connection (%llu of %llu bytes "
                         "echoed)",
                         c->id, (unsigned long long)c->received, (unsigned long long)c->sent);
    }
    conn_close(c);
}

/* Checks `len` received bytes against what was sent; 0, or -1 (counted as
   an error, the connection closed) if any is wrong or was never sent. */
static int conn_verify(struct bench_conn *c, size_t len)
{
    struct worker *w = c->w;
    const struct pattern *pat = w->shared->pattern;
    if (c->received + len > c->sent) {
        worker_error(w, "conn %u: %llu byte(s) came back that were never sent", c->id,
                     (unsigned long long)(c->received + len - c->sent));
        conn_close(c);
        return -1;
    }
    size_t ok = pattern_check(pat, c->base + c->received, w->read_buf, len);
    if (ok == len)
        return 0;
    unsigned char want;
    pattern_fill(pat, c->base + c->received + ok, &want, 1);
    worker_error(w, "conn %u: byte %llu of the stream is wrong: sent 0x%02x, received 0x%02x",
                 c->id, (unsigned long long)(c->received + ok), want, w->read_buf[ok]);
    conn_close(c);
    return -1;
}

/* --read-delay: a slow reader stops reading for a while after each read. */
static void conn_pause_reading(struct bench_conn *c)
{
    struct worker *w = c->w;
    uint64_t tid;
    int rc = iomux_timer_add(w->loop, w->shared->opt->read_delay_ms, 0, on_read_resume, c, &tid);
    if (rc < 0) {
        worker_error(w, "conn %u: adding a timer: %s", c->id, strerror(-rc));
        conn_close(c);
        return;
    }
    c->read_paused = 1;
    conn_set_mask(c, conn_wanted_mask(c));
}

void conn_read(struct bench_conn *c)
{
    struct worker *w = c->w;
    const struct bench_shared *s = w->shared;
    for (;;) {
        ssize_t n = conn_recv(c, w->read_buf, sizeof w->read_buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_read_ended(c, n, errno);
            return;
        }
        size_t len = (size_t)n;
        if (conn_verify(c, len) < 0)
            return;
        c->received += len;
        uint64_t now = bench_now_ns();
        int in_window = now >= s->t_measure_ns && now < s->t_end_ns;
        if (in_window)
            w->bytes += len;
        conn_complete(c, now, in_window);
        if (c->sent < c->queued)
            conn_flush(c);
        if (c->state != CONN_OPEN)
            return;
        if (s->opt->read_delay_ms != 0) {
            conn_pause_reading(c);
            return;
        }
        if (len < sizeof w->read_buf)
            return;
    }
}

int worker_init(struct worker *w, struct bench_shared *shared, unsigned index, unsigned n_conns,
                unsigned n_idle, unsigned first_id, unsigned id_stride)
{
    const struct bench_options *o = shared->opt;
    memset(w, 0, offsetof(struct worker, read_buf));
    atomic_init(&w->progress_messages, 0);
    atomic_init(&w->progress_errors, 0);
    w->shared = shared;
    w->index = index;
    w->n_conns = n_conns;
    w->n_idle = n_idle;
    w->first_id = first_id;
    w->id_stride = id_stride;
    w->never_read_min = UINT64_MAX;
    hdr_init(&w->hist);
    w->wake.fd = -1;
    if (shared->report_ns != 0 && (w->ival = malloc(sizeof *w->ival)) == NULL)
        return -ENOMEM;
    if (o->rate != 0 && (w->lag = malloc(sizeof *w->lag)) == NULL) {
        worker_fini(w);
        return -ENOMEM;
    }
    if (w->lag != NULL)
        hdr_init(w->lag);
    if (w->ival != NULL)
        ival_init(w->ival);
    if (o->churn != 0 && churn_init(w) != 0) {
        worker_fini(w);
        return -ENOMEM;
    }
    unsigned total = n_conns + n_idle;
    w->conns = calloc(total ? total : 1, sizeof *w->conns);
    uint64_t *slots = calloc((size_t)(n_conns ? n_conns : 1) * o->depth, sizeof *slots);
    if (w->conns == NULL || slots == NULL) {
        free(w->conns);
        free(slots);
        w->conns = NULL;
        worker_fini(w);
        return -ENOMEM;
    }
    uint64_t interval = shared->interval_ns;
    for (unsigned i = 0; i < total; i++) {
        struct bench_conn *c = &w->conns[i];
        c->w = w;
        c->fd = -1;
        c->state = CONN_NEW;
        c->idle = i >= n_conns;
        c->id = first_id + i * id_stride;
        c->base = pattern_start(c->id);
        if (!c->idle) {
            c->send_ns = slots + (size_t)i * o->depth;
            /* Spread the connections' schedules evenly over one interval,
               so the rate is smooth rather than a burst per interval. */
            c->phase_ns = shared->total_conns ? interval * c->id / shared->total_conns : 0;
        }
    }
    return 0;
}

void worker_fini(struct worker *w)
{
    if (w->conns != NULL && w->n_conns > 0)
        free(w->conns[0].send_ns);
    free(w->conns);
    w->conns = NULL;
    free(w->ival);
    w->ival = NULL;
    free(w->lag);
    w->lag = NULL;
    churn_fini(w);
    worker_tls_fini(w);
}

/* Starts the traffic once main() set the timeline: connections still not
   connected by now count as failed connects. With --churn, the schedule
   of connects starts instead. */
static void start_traffic(struct worker *w, uint64_t now)
{
    const struct bench_options *o = w->shared->opt;
    if (o->rate != 0 || o->churn != 0)
        (void)wake_open(&w->wake, w->loop); /* else: poll, as wake.h says */
    for (unsigned i = 0; o->churn == 0 && i < w->n_conns + w->n_idle; i++) {
        struct bench_conn *c = &w->conns[i];
        if (c->state == CONN_NEW || c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) {
            connect_failed(c, ETIMEDOUT);
            continue;
        }
        if (c->state != CONN_OPEN || c->idle)
            continue;
        if (o->never_read) {
            c->queued = UINT64_MAX;
        } else if (o->rate == 0) {
            for (unsigned k = 0; k < o->depth; k++)
                release_closed(c, now);
        }
        conn_flush(c);
    }
    if (o->churn != 0)
        churn_start(w);
    if (w->ival != NULL)
        ival_start(w->ival, w->shared);
    w->started = 1;
}

/* Open loop: releases every message that is due; returns the next due time
   (UINT64_MAX when none is before the end). */
static uint64_t release_due(struct worker *w, uint64_t now)
{
    const struct bench_shared *s = w->shared;
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct bench_conn *c = &w->conns[i];
        if (c->state != CONN_OPEN)
            continue;
        uint64_t due = msg_due(c, c->released);
        int more = 0;
        while (due <= now && due < s->t_end_ns) {
            if (due >= s->t_measure_ns)
                hdr_record(w->lag, now - due);
            c->released++;
            c->queued += s->opt->size;
            w->in_flight++;
            due = msg_due(c, c->released);
            more = 1;
        }
        if (more)
            conn_flush(c);
        if (due < next && due < s->t_end_ns)
            next = due;
    }
    return next;
}

/* Milliseconds the loop may sleep before `deadline`: rounded down, so the
   loop wakes early and then polls (timeout 0) for the last fraction; the
   open loop's due times have a timer of their own (wake.h) instead. */
static int wait_ms(uint64_t now, uint64_t deadline, int cap)
{
    if (deadline <= now)
        return 0;
    uint64_t ms = (deadline - now) / 1000000u;
    return ms < (uint64_t)cap ? (int)ms : cap;
}

/* Before `go`: starts the connects, paced by --connect-rate (each worker
   opens its share); returns the loop's timeout. --churn connects later. */
static int connect_phase(struct worker *w, uint64_t now)
{
    const struct bench_options *o = w->shared->opt;
    unsigned total = w->n_conns + w->n_idle;
    double per_s = o->connect_rate ? (double)o->connect_rate / o->threads : 0;
    int timeout = 10;
    while (o->churn == 0 && w->n_started < total) {
        if (per_s > 0) {
            uint64_t at = w->connect_t0_ns + (uint64_t)((double)w->n_started * 1e9 / per_s);
            if (at > now)
                return wait_ms(now, at, timeout);
        }
        start_connect(&w->conns[w->n_started++]);
    }
    return timeout;
}

/* One turn of the traffic: releases what is due (open loop), starts the
   connects due (--churn), ends intervals; returns the loop's timeout. */
static int traffic_turn(struct worker *w, uint64_t now)
{
    const struct bench_shared *s = w->shared;
    uint64_t deadline = s->t_end_ns;
    uint64_t next = UINT64_MAX;
    if (s->opt->rate != 0)
        next = release_due(w, now);
    if (s->opt->churn != 0)
        next = churn_tick(w, now);
    /* Without the timer, wait_ms() rounds down and the last millisecond
       before `next` is polled. */
    if (next < deadline && wake_arm(&w->wake, next) < 0)
        deadline = next;
    if (w->ival != NULL) {
        uint64_t boundary = ival_tick(w->ival, now, w->in_flight);
        deadline = boundary < deadline ? boundary : deadline;
    }
    return wait_ms(now, deadline, 100);
}

/* After the run: what is outstanding, --never-read's figures, the
   retransmissions; closes everything. */
static void finish(struct worker *w)
{
    const struct bench_options *o = w->shared->opt;
    if (w->started && !o->never_read)
        count_outstanding(w);
    for (unsigned i = 0; i < w->n_conns + w->n_idle; i++) {
        struct bench_conn *c = &w->conns[i];
        if (o->never_read && !c->idle && c->state == CONN_OPEN) {
            if (c->sent < w->never_read_min)
                w->never_read_min = c->sent;
            if (c->sent > w->never_read_max)
                w->never_read_max = c->sent;
            w->never_read_sum += c->sent;
        }
        if (!c->idle && c->state == CONN_OPEN && o->churn == 0)
            count_retransmits(w, c);
        conn_close(c);
    }
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bench_shared *s = w->shared;
    if (worker_open_loop(w) < 0)
        return NULL;
    w->connect_t0_ns = bench_now_ns();
    for (;;) {
        uint64_t now = bench_now_ns();
        if (atomic_load_explicit(&s->abort_run, memory_order_relaxed))
            break;
        int timeout = w->started ? 0 : connect_phase(w, now);
        if (!w->started && atomic_load_explicit(&s->go, memory_order_acquire))
            start_traffic(w, now);
        if (w->started) {
            worker_cpu_tick(w, now);
            if (now >= s->t_end_ns)
                break;
            timeout = traffic_turn(w, now);
        }
        int rc = iomux_loop_run_once(w->loop, timeout);
        if (rc < 0) {
            worker_error(w, "event loop: %s", strerror(-rc));
            w->fatal = 1;
            atomic_store(&s->abort_run, 1);
            break;
        }
        atomic_store_explicit(&w->progress_messages, w->messages, memory_order_relaxed);
    }
    worker_cpu_close(w);
    finish(w);
    wake_close(&w->wake);
    iomux_loop_free(w->loop);
    w->loop = NULL;
    return NULL;
}
