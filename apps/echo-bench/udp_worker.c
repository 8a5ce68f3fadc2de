/* SPDX-License-Identifier: MIT */
/*
 * udp_worker.c - echo-bench --udp: datagram flows on one thread's loop
 * (see udp_worker.h for what is measured).
 *
 * A datagram is a 16-byte header, {flow id, slot, sequence number} in
 * network byte order, followed by size - 16 bytes of the shared pattern at
 * an offset fixed by the flow and the sequence number, so a reply can be
 * checked byte for byte without keeping a copy of what was sent. Sending
 * uses two iovecs (header, pattern) and never copies.
 *
 * Each flow has --depth slots. Releasing a datagram takes a free slot and
 * stamps it with the send time; the reply frees it, records the latency
 * and releases the next datagram. A timer sweeps the slots and counts
 * those older than UDP_LOSS_MS as lost, releasing a replacement. A reply
 * for a slot that was already written off is "late", not an error: UDP may
 * delay. A reply that matches nothing ever sent, or whose bytes differ,
 * is an error. When the send buffer is full (EAGAIN) the datagrams owed
 * wait in `owed` and go out when the socket is writable.
 *
 * With --rate (the open loop) datagrams are released on the schedule
 * instead (sched_due(), as the TCP connections), a timerfd waking the
 * loop at each due time; a slot is stamped with the due time too and the
 * latency counts from it, so a server that stalls is charged for every
 * datagram that waited behind the stall. The slots per flow then cover
 * twice the loss timeout at the flow's highest rate (udp_slots()).
 *
 * After the measured time the flows stop releasing and wait, at most
 * UDP_LOSS_MS, for what is still in flight, so the loss count is exact.
 */
#include "udp_worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <iomux/loop.h>

/* How often in-flight datagrams are checked for loss. */
#define SWEEP_MS 100u
/* Distance in the pattern between consecutive datagrams of a flow: a prime,
   so neighbours never start at the same place. */
#define SEQ_STRIDE 4099u

struct udp_slot {
    uint64_t seq;
    uint64_t sent_ns; /* when it left, for the loss timer */
    uint64_t due_ns;  /* latency counts from here: sent_ns, or the schedule's */
    bool busy;
};

struct udp_flow {
    struct worker *w;
    int fd;      /* -1 once closed */
    unsigned id; /* global flow number */
    uint64_t base;
    uint64_t next_seq;
    uint64_t released; /* open loop: datagrams due so far (sent or owed) */
    uint64_t phase_ns; /* open loop: where its schedule starts */
    unsigned owed;     /* datagrams to send as soon as possible */
    unsigned nslots;   /* --depth, or the open loop's udp_slots() */
    unsigned inflight; /* busy slots */
    bool writing;      /* IOMUX_WRITE is watched */
    struct udp_slot *slots;
    unsigned *free_slots; /* stack of free slot numbers */
    unsigned nfree;
};

static void flow_error(struct udp_flow *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Counts an error, keeps the first one's text, and closes the flow: after
   a wrong byte nothing it receives can be trusted. */
static void flow_error(struct udp_flow *f, const char *fmt, ...)
{
    struct worker *w = f->w;
    va_list ap;
    va_start(ap, fmt);
    worker_verror(w, fmt, ap);
    va_end(ap);
    if (f->fd >= 0) {
        iomux_fd_unwatch(w->loop, f->fd);
        close(f->fd);
        f->fd = -1;
    }
}

static uint64_t payload_offset(const struct udp_flow *f, uint64_t seq)
{
    return f->base + seq * SEQ_STRIDE;
}

static void set_writing(struct udp_flow *f, bool on)
{
    if (f->writing == on || f->fd < 0)
        return;
    if (iomux_fd_modify(f->w->loop, f->fd, IOMUX_READ | (on ? IOMUX_WRITE : 0)) == 0)
        f->writing = on;
}

/* Sends the owed datagrams while slots are free and the socket takes them. */
static void flow_pump(struct udp_flow *f)
{
    struct worker *w = f->w;
    const struct bench_options *o = w->shared->opt;
    size_t body = (size_t)o->size - UDP_HEADER_SIZE;
    while (f->fd >= 0 && f->owed > 0 && f->nfree > 0) {
        unsigned slot = f->free_slots[f->nfree - 1];
        uint64_t seq = f->next_seq;
        uint32_t hdr[4] = {htonl(f->id), htonl(slot), htonl((uint32_t)(seq >> 32)),
                           htonl((uint32_t)seq)};
        size_t avail;
        const unsigned char *p = pattern_at(w->shared->pattern, payload_offset(f, seq), &avail);
        struct iovec iov[2] = {{.iov_base = hdr, .iov_len = sizeof hdr},
                               {.iov_base = (void *)p, .iov_len = body}};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t n = sendmsg(f->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                break;
            flow_error(f, "flow %u: send: %s%s", f->id, strerror(errno),
                       errno == ECONNREFUSED ? " (nothing listens on that UDP port)" : "");
            return;
        }
        f->nfree--;
        f->owed--;
        f->next_seq++;
        f->inflight++;
        uint64_t now = bench_now_ns();
        uint64_t due = o->rate ? sched_due(w->shared, f->id, f->phase_ns, seq) : now;
        f->slots[slot] = (struct udp_slot){.seq = seq, .sent_ns = now, .due_ns = due, .busy = true};
    }
    set_writing(f, f->fd >= 0 && f->owed > 0 && f->nfree > 0);
}

static void slot_free(struct udp_flow *f, unsigned slot)
{
    f->slots[slot].busy = false;
    f->free_slots[f->nfree++] = slot;
    f->inflight--;
}

/* Checks one reply; completes its slot. */
static void flow_reply(struct udp_flow *f, const unsigned char *buf, size_t len, uint64_t now)
{
    struct worker *w = f->w;
    const struct bench_shared *s = w->shared;
    const struct bench_options *o = s->opt;
    if (len != o->size) {
        flow_error(f, "flow %u: a %zu-byte datagram came back for %llu-byte ones", f->id, len,
                   (unsigned long long)o->size);
        return;
    }
    uint32_t hdr[4];
    memcpy(hdr, buf, sizeof hdr);
    unsigned id = ntohl(hdr[0]), slot = ntohl(hdr[1]);
    uint64_t seq = (uint64_t)ntohl(hdr[2]) << 32 | ntohl(hdr[3]);
    if (id != f->id || slot >= f->nslots || seq >= f->next_seq) {
        flow_error(f, "flow %u: a datagram came back that was never sent (flow %u, seq %llu)",
                   f->id, id, (unsigned long long)seq);
        return;
    }
    size_t ok = pattern_check(s->pattern, payload_offset(f, seq), buf + UDP_HEADER_SIZE,
                              len - UDP_HEADER_SIZE);
    if (ok < len - UDP_HEADER_SIZE) {
        flow_error(f, "flow %u: datagram %llu: byte %zu is wrong", f->id, (unsigned long long)seq,
                   UDP_HEADER_SIZE + ok);
        return;
    }
    struct udp_slot *sl = &f->slots[slot];
    if (!sl->busy || sl->seq != seq) {
        w->late++; /* already counted lost, or a duplicate */
        return;
    }
    uint64_t latency = now > sl->due_ns ? now - sl->due_ns : 0;
    if (w->ival != NULL && now < s->t_end_ns)
        hdr_record(w->ival->cur, latency);
    if (now >= s->t_measure_ns && now < s->t_end_ns) {
        hdr_record(&w->hist, latency);
        w->messages++;
        w->bytes += len;
    }
    slot_free(f, slot);
    if (now < s->t_end_ns && o->rate == 0) /* closed loop: the next one */
        f->owed++;
}

static void on_flow_event(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct udp_flow *f = data;
    struct worker *w = f->w;
    if (events & (IOMUX_READ | IOMUX_ERROR | IOMUX_HUP)) {
        for (int i = 0; i < 64 && f->fd >= 0; i++) {
            ssize_t n = recv(f->fd, w->read_buf, sizeof w->read_buf, MSG_DONTWAIT | MSG_TRUNC);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                flow_error(f, "flow %u: receive: %s%s", f->id, strerror(errno),
                           errno == ECONNREFUSED ? " (nothing listens on that UDP port)" : "");
                return;
            }
            flow_reply(f, w->read_buf, (size_t)n, bench_now_ns());
        }
    }
    flow_pump(f);
}

/* Counts the datagrams in flight longer than UDP_LOSS_MS as lost; with
   `all`, every one still in flight (the run is over). */
static void sweep(struct worker *w, bool all)
{
    const struct bench_shared *s = w->shared;
    uint64_t now = bench_now_ns();
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct udp_flow *f = &w->flows[i];
        if (f->fd < 0)
            continue; /* failed: its error was counted */
        for (unsigned k = 0; k < f->nslots && f->inflight; k++) {
            struct udp_slot *sl = &f->slots[k];
            if (!sl->busy || (!all && now - sl->sent_ns < UDP_LOSS_MS * 1000000ull))
                continue;
            w->lost++;
            slot_free(f, k);
            if (now < s->t_end_ns && s->opt->rate == 0)
                f->owed++;
        }
        flow_pump(f);
    }
}

static void on_sweep(struct iomux_loop *loop, uint64_t id, void *data)
{
    sweep(data, false);
}

static int flow_open(struct udp_flow *f)
{
    const struct iomux_addr *a = &f->w->shared->addr;
    f->fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->fd < 0)
        return -errno;
    int rc = 0;
    if (f->w->shared->tune)
        rc = sock_tuning_apply(f->fd, &f->w->shared->tuning, NULL);
    if (rc == 0 && connect(f->fd, (const struct sockaddr *)&a->ss, a->len) < 0)
        rc = -errno;
    if (rc == 0)
        rc = iomux_fd_watch(f->w->loop, f->fd, IOMUX_READ, on_flow_event, f);
    if (rc < 0) {
        close(f->fd);
        f->fd = -1;
    }
    return rc;
}

/* Open loop: slots for the datagrams one flow sends in twice the loss
   timeout at its highest rate, so that a server answering within it never
   makes a due datagram wait for a slot (one that does wait is sent late
   and its latency, counted from the schedule, says so). */
#define OPEN_SLOTS_MAX 65536u

static unsigned udp_slots(const struct bench_shared *s)
{
    const struct bench_options *o = s->opt;
    if (o->rate == 0)
        return o->depth;
    uint64_t top = o->rate_to > o->rate ? o->rate_to : o->rate;
    uint64_t n = top * 2u * UDP_LOSS_MS / 1000u / s->total_conns + 8u;
    return n < OPEN_SLOTS_MAX ? (unsigned)n : OPEN_SLOTS_MAX;
}

int udp_worker_init(struct worker *w)
{
    unsigned depth = udp_slots(w->shared);
    w->flows = calloc(w->n_conns ? w->n_conns : 1, sizeof *w->flows);
    struct udp_slot *slots = calloc((size_t)(w->n_conns ? w->n_conns : 1) * depth, sizeof *slots);
    unsigned *stacks = calloc((size_t)(w->n_conns ? w->n_conns : 1) * depth, sizeof *stacks);
    if (!w->flows || !slots || !stacks) {
        free(w->flows);
        free(slots);
        free(stacks);
        w->flows = NULL;
        return -ENOMEM;
    }
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct udp_flow *f = &w->flows[i];
        f->w = w;
        f->fd = -1;
        f->id = w->first_id + i * w->id_stride;
        f->base = pattern_start(f->id);
        f->slots = slots + (size_t)i * depth;
        f->free_slots = stacks + (size_t)i * depth;
        for (unsigned k = 0; k < depth; k++)
            f->free_slots[k] = depth - 1 - k;
        f->nfree = depth;
        f->nslots = depth;
        /* Spread over one interval, as the TCP connections are. */
        f->phase_ns =
            w->shared->total_conns ? w->shared->interval_ns * f->id / w->shared->total_conns : 0;
    }
    return 0;
}

void udp_worker_fini(struct worker *w)
{
    if (w->flows) {
        free(w->flows[0].slots);
        free(w->flows[0].free_slots);
    }
    free(w->flows);
    w->flows = NULL;
}

static int run_once(struct worker *w, int timeout)
{
    int rc = iomux_loop_run_once(w->loop, timeout);
    if (rc < 0) {
        snprintf(w->first_error, sizeof w->first_error, "event loop: %s", strerror(-rc));
        w->errors++;
        w->fatal = 1;
        atomic_store(&w->shared->abort_run, 1);
    }
    atomic_store_explicit(&w->progress_messages, w->messages, memory_order_relaxed);
    return rc;
}

static unsigned total_inflight(const struct worker *w)
{
    unsigned n = 0;
    for (unsigned i = 0; i < w->n_conns; i++)
        n += w->flows[i].fd >= 0 ? w->flows[i].inflight : 0;
    return n;
}

/* UDP has no handshake: a flow is ready once its socket is connected. */
static void open_flows(struct worker *w)
{
    struct bench_shared *s = w->shared;
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct udp_flow *f = &w->flows[i];
        int rc = flow_open(f);
        if (rc == 0)
            atomic_fetch_add_explicit(&s->connects_ok, 1, memory_order_relaxed);
        if (rc < 0) {
            w->connect_failures++;
            if (w->first_error[0] == '\0')
                snprintf(w->first_error, sizeof w->first_error, "flow %u: %s", f->id,
                         strerror(-rc));
        }
        atomic_fetch_add_explicit(&s->connects_done, 1, memory_order_relaxed);
    }
}

/* The traffic starts: the loss sweep, then --depth datagrams per flow in
   the closed loop, or the schedule's alarm clock in the open loop (without
   a timerfd the loop polls, as wake.h says). Returns the sweep's timer. */
static uint64_t start_flows(struct worker *w)
{
    struct bench_shared *s = w->shared;
    uint64_t sweep_id = 0;
    int rc = iomux_timer_add(w->loop, SWEEP_MS, SWEEP_MS, on_sweep, w, &sweep_id);
    if (rc < 0) {
        snprintf(w->first_error, sizeof w->first_error, "adding a timer: %s", strerror(-rc));
        w->fatal = 1;
        w->errors++;
        atomic_store(&s->abort_run, 1);
    }
    if (s->opt->rate != 0)
        (void)wake_open(&w->wake, w->loop);
    for (unsigned i = 0; i < w->n_conns && s->opt->rate == 0; i++) {
        w->flows[i].owed = s->opt->depth;
        flow_pump(&w->flows[i]);
    }
    if (w->ival != NULL)
        ival_start(w->ival, s);
    w->started = 1;
    return sweep_id;
}

/* Open loop: releases every datagram that is due, whether or not the
   earlier ones were answered; returns the next due time (UINT64_MAX when
   none is before the end). */
static uint64_t release_due(struct worker *w, uint64_t now)
{
    const struct bench_shared *s = w->shared;
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct udp_flow *f = &w->flows[i];
        if (f->fd < 0)
            continue;
        uint64_t due = sched_due(s, f->id, f->phase_ns, f->released);
        unsigned before = f->owed;
        while (due <= now && due < s->t_end_ns) {
            if (due >= s->t_measure_ns)
                hdr_record(w->lag, now - due);
            f->released++;
            f->owed++;
            due = sched_due(s, f->id, f->phase_ns, f->released);
        }
        if (f->owed != before)
            flow_pump(f);
        if (due < next && due < s->t_end_ns)
            next = due;
    }
    return next;
}

/* The loop until the end of the measured time. */
static void run_flows(struct worker *w)
{
    struct bench_shared *s = w->shared;
    while (!atomic_load_explicit(&s->abort_run, memory_order_relaxed)) {
        uint64_t now = bench_now_ns();
        worker_cpu_tick(w, now);
        if (now >= s->t_end_ns)
            break;
        uint64_t until = s->t_end_ns;
        uint64_t next = s->opt->rate != 0 ? release_due(w, now) : UINT64_MAX;
        if (next < until && wake_arm(&w->wake, next) < 0)
            until = next;
        if (w->ival != NULL) {
            uint64_t boundary = ival_tick(w->ival, now, total_inflight(w));
            until = boundary < until ? boundary : until;
        }
        uint64_t ms = until > now ? (until - now) / 1000000u : 0;
        if (run_once(w, ms > 100 ? 100 : (int)ms) < 0)
            break;
    }
    worker_cpu_close(w);
}

/* Open loop: the datagrams due before the end, and those of them that
   never left (the socket did not take them, or no slot was free). */
static void count_unsent(struct worker *w)
{
    const struct bench_shared *s = w->shared;
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct udp_flow *f = &w->flows[i];
        if (f->fd < 0)
            continue;
        uint64_t due = sched_due_count(s, f->id, f->phase_ns, f->released);
        w->scheduled += due;
        w->unsent += due > f->next_seq ? due - f->next_seq : 0;
    }
}

/* Waits for the answers still on their way, for as long as a datagram is
   given before it counts as lost, then closes every flow. */
static void drain_flows(struct worker *w, uint64_t sweep_id)
{
    struct bench_shared *s = w->shared;
    uint64_t drain_end = bench_now_ns() + UDP_LOSS_MS * 1000000ull;
    while (!atomic_load_explicit(&s->abort_run, memory_order_relaxed) && total_inflight(w) &&
           bench_now_ns() < drain_end)
        if (run_once(w, 10) < 0)
            break;
    sweep(w, true);
    if (sweep_id)
        iomux_timer_cancel(w->loop, sweep_id);
    for (unsigned i = 0; i < w->n_conns; i++) {
        struct udp_flow *f = &w->flows[i];
        if (f->fd >= 0) {
            iomux_fd_unwatch(w->loop, f->fd);
            close(f->fd);
            f->fd = -1;
        }
    }
}

void *udp_worker_main(void *arg)
{
    struct worker *w = arg;
    struct bench_shared *s = w->shared;
    if (worker_open_loop(w) < 0)
        return NULL;
    open_flows(w);
    while (!atomic_load_explicit(&s->go, memory_order_acquire) &&
           !atomic_load_explicit(&s->abort_run, memory_order_relaxed))
        if (run_once(w, 2) < 0)
            break;
    uint64_t sweep_id = 0;
    if (!atomic_load(&s->abort_run)) {
        sweep_id = start_flows(w);
        run_flows(w);
        if (s->opt->rate != 0)
            count_unsent(w);
    }
    drain_flows(w, sweep_id);
    wake_close(&w->wake);
    iomux_loop_free(w->loop);
    w->loop = NULL;
    return NULL;
}
