/* SPDX-License-Identifier: MIT */
/*
 * server.c - echod --workers N: N threads, each a struct echod of its own (server.h), and what
 * they share. Start-up binds the workers one after the other (the first decides the port of a
 * port-0 address), drops privileges once, then lets every worker make its engine on its own
 * thread (an io_uring ring belongs to the thread that made it) and serve. The main thread
 * keeps a small loop of its own for the signals and for the workers' "I am done".
 */
#include "echod_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/filter.h>

#include <iomux/buf.h>
#include <iomux/loop.h>

#include "splice_pool.h"
#include "upgrade.h"
#include "workers.h"

unsigned echod_workers_wanted(const struct echod_options *opt)
{
    if (opt->workers)
        return opt->workers;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > ECHOD_MAX_WORKERS ? ECHOD_MAX_WORKERS : (unsigned)n;
}

/* Whether `addr` is free for a socket without SO_REUSEPORT: otherwise a second echod with
   workers would silently share the port of a first one, instead of failing as without. */
static int probe_free(const struct iomux_addr *addr, int type)
{
    int fd = socket(addr->ss.ss_family, type | SOCK_CLOEXEC, 0), one = 1, rc = 0;
    if (fd < 0)
        return -errno;
    if ((type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
        (addr->ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int echod_reuseport_socket(const struct iomux_addr *addr, int type, bool first, int *fd_out)
{
    if (first && iomux_addr_port(addr) != 0) {
        int rc = probe_free(addr, type);
        if (rc < 0)
            return rc;
    }
    int fd = socket(addr->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, rc = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        (addr->ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ||
        (type == SOCK_STREAM && listen(fd, INT_MAX) < 0))
        rc = -errno;
    if (rc == 0 && type == SOCK_DGRAM)
        rc = iomux_udp_enable_pktinfo(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

void echod_udp_steer(const struct echod *d, int fd)
{
    unsigned n = d->server->nworkers;
    struct iomux_addr local;
    if (d->worker != n - 1 || iomux_socket_local(fd, &local) < 0)
        return;
    /* The socket of worker k is the k-th of the group; the source address's last 32 bits pick
       it, so one source always meets the same worker and its --udp-rate bucket. */
    int last_word = local.ss.ss_family == AF_INET6 ? 20 : 12;
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + last_word)),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    if (local.ss.ss_family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
        fprintf(stderr, "echod: udp: steering by source: %s (--udp-rate holds per worker)\n",
                strerror(errno));
}

void echod_worker_addr(const struct echod *d, bool udp, size_t index, struct iomux_addr *addr)
{
    if (d->worker == 0 || iomux_addr_port(addr) != 0)
        return;
    const struct echod *first = d->server->workers[0];
    const struct iomux_addr *bound = udp ? &first->udp_bound[index] : &first->listeners[index].addr;
    *addr = *bound;
}

bool echod_slot_take(struct echod *d)
{
    uint64_t max = d->opt->max_conns;
    if (!d->server)
        return !max || d->open + echod_staged(d) < max;
    uint64_t before = atomic_fetch_add_explicit(&d->server->open, 1, memory_order_relaxed);
    if (!max || before + atomic_load_explicit(&d->server->pending, memory_order_relaxed) < max)
        return true;
    atomic_fetch_sub_explicit(&d->server->open, 1, memory_order_relaxed);
    return false;
}

void echod_slot_give(struct echod *d)
{
    if (d->server)
        atomic_fetch_sub_explicit(&d->server->open, 1, memory_order_relaxed);
}

int echod_perip_take(struct echod *d, const struct iomux_addr *peer)
{
    if (!d->server || !d->perip)
        return echod_perip_acquire(d->perip, peer);
    pthread_mutex_lock(&d->server->lock);
    int rc = echod_perip_acquire(d->perip, peer);
    pthread_mutex_unlock(&d->server->lock);
    return rc;
}

void echod_perip_give(struct echod *d, const struct iomux_addr *peer)
{
    if (!d->server || !d->perip) {
        echod_perip_release(d->perip, peer);
        return;
    }
    pthread_mutex_lock(&d->server->lock);
    echod_perip_release(d->perip, peer);
    pthread_mutex_unlock(&d->server->lock);
}

uint64_t echod_conns_counted(const struct echod *d)
{
    if (!d->server)
        return d->open + echod_staged(d);
    return atomic_load_explicit(&d->server->open, memory_order_relaxed) +
           atomic_load_explicit(&d->server->pending, memory_order_relaxed);
}

void echod_pending_count(struct echod *d, int delta)
{
    if (d->server && delta > 0)
        atomic_fetch_add_explicit(&d->server->pending, 1, memory_order_relaxed);
    else if (d->server)
        atomic_fetch_sub_explicit(&d->server->pending, 1, memory_order_relaxed);
}

bool echod_may_end(const struct echod *d)
{
    return !d->server || d->worker != 0 ||
           atomic_load(&d->server->ended) == d->server->nworkers - 1;
}

void echod_counters_of(struct echod *d, struct echod_counters *c)
{
    struct iomux_buf_pool_stats ps;
    struct splice_stats sp;
    iomux_buf_pool_stats(d->pool, &ps);
    splice_pool_stats(d->splice, &sp);
    memset(c, 0, sizeof(*c));
    *c = (struct echod_counters){
        .open = d->open,
        .total = d->total,
        .bytes_in = d->bytes_in,
        .bytes_out = d->bytes_out,
        .idle_closed = d->idle_closed,
        .resets = d->resets,
        .errors = d->errors,
        .refused_max = d->refused_max,
        .refused_perip = d->refused_perip,
        .refused_fds = d->refused_fds,
        .refused_watch = d->refused_watch,
        .shed_memory = d->shed_memory,
        .buffered = d->engine ? echod_budget_buffered(d) : 0,
        .max_buffered = d->max_buffered,
        .chunks_in_use = ps.chunks_in_use,
        .chunks_cached = ps.chunks_cached,
        .proxy = {d->proxy.accepted, d->proxy.local, d->proxy.rejected_invalid,
                  d->proxy.rejected_timeout, d->proxy.rejected_source, d->proxy.rejected_closed},
        .npending = d->npending,
        .tls = {d->tls.ok, d->tls.failed, d->tls.timed_out, d->tls.truncated, d->tls.record_errors},
        .ntls_pending = d->ntls_pending,
        .spliced = sp.spliced,
        .no_pipe = sp.no_pipe,
        .pipes = sp.pipes,
        .pipes_lent = sp.lent,
        .pipes_max = sp.max,
        .has_udp = d->udp != NULL,
    };
    memcpy(c->faults, d->faults_fired, sizeof(c->faults));
    if (d->udp)
        echod_udp_stats(d->udp, &c->udp);
    /* With workers, the engine's part of the SIGUSR1 line, rendered on the worker's thread. */
    FILE *f = d->engine && d->server ? fmemopen(c->engine, sizeof(c->engine), "w") : NULL;
    if (f) {
        d->engine_ops->print_stats(d->engine, f);
        fclose(f);
    }
}

void echod_print_counters(FILE *f, const char *label, const struct echod_counters *c)
{
    fprintf(f,
            "echod: stats: %s; connections %" PRIu64 " open, %" PRIu64 " total; bytes %" PRIu64
            " in, %" PRIu64 " out; refused %" PRIu64 " (max-conns %" PRIu64 ", per-ip %" PRIu64
            ", out of fds %" PRIu64 ", unwatchable %" PRIu64 "); idle closed %" PRIu64
            "; resets %" PRIu64 "; errors %" PRIu64 "; buffers %" PRIu64 " chunks in use, %" PRIu64
            " cached; buffered %" PRIu64 " bytes, budget %" PRIu64 ", shed for memory %" PRIu64,
            label, c->open, c->total, c->bytes_in, c->bytes_out,
            c->refused_max + c->refused_perip + c->refused_fds + c->refused_watch, c->refused_max,
            c->refused_perip, c->refused_fds, c->refused_watch, c->idle_closed, c->resets,
            c->errors, c->chunks_in_use, c->chunks_cached, c->buffered, c->max_buffered,
            c->shed_memory);
}

/* Adds `c` to *sum. */
static void counters_add(struct echod_counters *sum, const struct echod_counters *c)
{
    /* Every field but has_udp is a uint64_t, the udp stats included. */
    uint64_t *to = (uint64_t *)(void *)sum;
    const uint64_t *from = (const uint64_t *)(const void *)c;
    size_t words = offsetof(struct echod_counters, has_udp) / sizeof(uint64_t);
    for (size_t i = 0; i < words; i++)
        to[i] += from[i];
    sum->has_udp |= c->has_udp;
}

_Static_assert(offsetof(struct echod_counters, has_udp) % sizeof(uint64_t) == 0 &&
                   sizeof(struct echod_udp_stats) % sizeof(uint64_t) == 0,
               "counters_add() sums words");

void echod_worker_reloaded(struct echod *d, const char *said)
{
    if (d->worker != 0)
        return; /* every worker read the same files: one says how it went */
    struct echod_server *s = d->server;
    pthread_mutex_lock(&s->lock);
    snprintf(s->reload_said, sizeof(s->reload_said), "%s", said);
    pthread_mutex_unlock(&s->lock);
}

/* A worker publishes its counters (on its own thread), answering request `gen`. */
static void publish(struct echod *d, uint64_t gen)
{
    struct echod_counters c;
    echod_counters_of(d, &c);
    struct echod_server *s = d->server;
    pthread_mutex_lock(&s->lock);
    d->snap = c;
    d->snap_gen = gen ? gen : s->asked;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void echod_server_collect(struct echod_server *s, struct echod *self, struct echod_counters *sum,
                          struct echod_counters *each)
{
    pthread_mutex_lock(&s->lock);
    uint64_t gen = ++s->asked;
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct echod *w = s->workers[i];
        if (w == self) {
            publish(w, gen);
        } else {
            atomic_fetch_or(&w->commands, ECHOD_CMD_STATS);
            iomux_async_send(w->wake);
        }
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 2; /* a worker stuck that long is reported as it last was */
    memset(sum, 0, sizeof(*sum));
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->nworkers; i++) {
        while (s->workers[i]->snap_gen < gen &&
               pthread_cond_timedwait(&s->cond, &s->lock, &deadline) == 0) {
        }
        counters_add(sum, &s->workers[i]->snap);
        if (each)
            each[i] = s->workers[i]->snap;
    }
    pthread_mutex_unlock(&s->lock);
}

void echod_counters_splice(const struct echod_counters *c, struct splice_stats *out)
{
    *out = (struct splice_stats){.spliced = c->spliced,
                                 .no_pipe = c->no_pipe,
                                 .pipes = (size_t)c->pipes,
                                 .lent = (size_t)c->pipes_lent,
                                 .max = (size_t)c->pipes_max};
}

void echod_counters_view(struct echod *v, const struct echod_counters *c)
{
    v->open = c->open;
    v->total = c->total;
    v->bytes_in = c->bytes_in;
    v->bytes_out = c->bytes_out;
    v->idle_closed = c->idle_closed;
    v->resets = c->resets;
    v->errors = c->errors;
    v->refused_max = c->refused_max;
    v->refused_perip = c->refused_perip;
    v->refused_fds = c->refused_fds;
    v->refused_watch = c->refused_watch;
    v->shed_memory = c->shed_memory;
    v->buffered_bytes = (size_t)c->buffered;
    v->max_buffered = (size_t)c->max_buffered;
    v->npending = c->npending;
    v->proxy = (struct echod_proxy_stats){c->proxy[0], c->proxy[1], c->proxy[2],
                                          c->proxy[3], c->proxy[4], c->proxy[5]};
    v->ntls_pending = c->ntls_pending;
    v->tls = (struct echod_tls_stats){c->tls[0], c->tls[1], c->tls[2], c->tls[3], c->tls[4]};
    memcpy(v->faults_fired, c->faults, sizeof(v->faults_fired));
}

const struct echod *echod_totals_view(struct echod *d, struct echod_counters *sum)
{
    struct echod_server *s = d->server;
    if (!s) {
        echod_counters_of(d, sum);
        return d;
    }
    echod_server_collect(s, d, sum, NULL);
    /* Only what metrics.c reads: the rest of d (its atomics among it) is not copied. */
    struct echod *v = s->view;
    v->opt = d->opt;
    v->server = s;
    v->loop = d->loop;
    v->pool = d->pool;
    v->engine_ops = d->engine_ops;
    v->draining = d->draining;
    v->fault_seed = d->fault_seed;
    v->fault_listeners = d->fault_listeners;
    echod_counters_view(v, sum);
    return v;
}

/* The server's commands, on the worker's thread. */
static void on_command(struct iomux_loop *loop, struct iomux_async *async, void *data)
{
    struct echod *d = data;
    unsigned cmd = atomic_exchange(&d->commands, 0);
    /* Before STATS: the server asks for both to learn when a reload is done. */
    if (cmd & ECHOD_CMD_RELOAD)
        echod_on_signal(loop, SIGHUP, d);
    if (cmd & ECHOD_CMD_STATS)
        publish(d, 0);
    if (cmd & ECHOD_CMD_ENDED)
        echod_recheck_done(d);
    if (cmd & ECHOD_CMD_HAND_OVER)
        echod_hand_over(d);
    if (cmd & ECHOD_CMD_QUIT) {
        echod_on_signal(loop, SIGQUIT, d);
        return;
    }
    for (unsigned n = atomic_exchange(&d->stops, 0); n > 0 && !d->done; n--)
        echod_on_signal(loop, d->server->stop_signo, d);
}

int echod_worker_ready(struct echod *d)
{
    return iomux_async_new(d->loop, on_command, d, &d->wake);
}

/* After its loop: counters final (nobody waits for it again), then the server is told. */
void echod_worker_finished(struct echod *d)
{
    publish(d, UINT64_MAX);
    struct echod_server *s = d->server;
    /* Before the count goes down: once it is 0 the first worker may free its handle. */
    if (d->worker != 0) {
        atomic_fetch_add(&s->ended, 1);
        atomic_fetch_or(&s->workers[0]->commands, ECHOD_CMD_ENDED);
        iomux_async_send(s->workers[0]->wake);
    }
    atomic_fetch_sub(&s->running, 1);
    iomux_async_send(s->done);
}

void echod_server_hand_over(struct echod_server *s)
{
    /* The socket files are the new echod's now; forgotten here, once, not by every worker. */
    echod_unix_forget();
    for (unsigned i = 0; i < s->nworkers; i++) {
        atomic_fetch_or(&s->workers[i]->commands, ECHOD_CMD_HAND_OVER);
        iomux_async_send(s->workers[i]->wake);
    }
}
