/* SPDX-License-Identifier: MIT */
/*
 * engine_stream.c - the readiness engine (--engine loop): the loop of
 * --backend says when a socket is ready, iomux streams do the I/O
 * (buffering, backpressure, half-close).
 *
 * A client is a stream, and its struct conn lives inside the stream's own
 * allocation (iomux_stream_extra(); iomux_stream_of_extra() goes back):
 * with 10,000 idle clients, the stream, this and the loop's table entry
 * are all the memory one costs. The peer address follows only when the
 * policy keeps it (engine_config.keep_peer).
 *
 * Per message: the stream calls on_data with this engine as `data`; the
 * byte counts are one add each through the config's pointers, and --trace
 * has callbacks of its own (chosen once per connection), so an echo tests
 * no flag and makes no call into the policy.
 */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <iomux/stream.h>

#include "faults.h"
#include "splice_stream.h"

/* Connections accepted per readiness event: enough to empty a burst
   quickly, few enough that clients already connected are not starved. */
#define ACCEPT_BATCH 64
/* The seed reads with recv(1024); --trace does the same so that its
   "received" lines cut the data where the seed would. */
#define TRACE_READ_MAX 1024
/* The least a read takes near the memory budget (cap_reads()): a chunk,
   what a client that first queues takes anyway, and no less, so that
   clients that read their echoes still read whole messages. */
#define READ_CAP_MIN IOMUX_BUF_CHUNK_SIZE

/* The stream's extra space when the peer is kept: conn_peer() finds the
   address right after the struct conn. */
struct conn_with_peer {
    struct conn link;
    union conn_peer_addr peer;
};

struct engine_stream;

struct slistener {
    struct engine_stream *e;
    int fd;
    void *token; /* the policy's, for accept_error */
};

struct engine_stream {
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool;
    struct engine_hooks hooks;
    uint64_t *bytes_in, *bytes_out;
    size_t high_water, low_water;
    size_t buffered_limit; /* 0: none */
    size_t open;           /* connections, for the read cap of the budget */
    struct splice_pool *splice_pool;
    size_t splice_from; /* a read this long splices the connection; SIZE_MAX: never */
    bool trace, keep_peer;
    bool accepting;
    struct slistener listeners[ENGINE_MAX_LISTEN];
    size_t nlisteners;
    struct fault_env faults; /* for the connections of fault listeners */
};

/* A fault listener's connection: its fault state after the peer (which
   is kept, unused, so that conn_peer() stays where the policy looks). */
struct conn_with_faults {
    struct conn_with_peer cp;
    _Alignas(8) unsigned char faults[];
};

static inline struct engine_stream *stream_of(struct engine *e)
{
    return (struct engine_stream *)(void *)e;
}

static size_t stream_buffered(struct engine *eng)
{
    struct iomux_buf_pool_stats ps;
    iomux_buf_pool_stats(stream_of(eng)->pool, &ps);
    /* Queued, or kept for reuse: memory either way. Pipes lent to
       connections count at their capacity: kernel memory held for them. */
    return (ps.chunks_in_use + ps.chunks_cached) * ps.chunk_size +
           splice_pool_held(stream_of(eng)->splice_pool);
}

/* The memory budget, looked at only when an echo had to be queued (most
   go straight to the socket): past the engine's share, a client that does
   not keep up is held until it has taken its queue. */
static void check_budget(struct engine_stream *e, struct iomux_stream *s)
{
    if (e->buffered_limit && iomux_stream_queued(s) > 0 &&
        stream_buffered((struct engine *)(void *)e) >=
            engine_budget_mark(e->buffered_limit, e->open))
        (void)iomux_stream_hold(s);
}

/* Splices `s` from its next read (--splice): failing that, it copies on. */
static void start_splice(struct engine_stream *e, struct iomux_stream *s)
{
    const struct splice_counters n = {e->bytes_in, e->bytes_out};
    (void)splice_stream_start(s, e->splice_pool, &n);
}

/* A connection never spliced (--splice off, a transport of its own). */
static void on_data_copying(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct engine_stream *e = data;
    *e->bytes_in += len;
    /* A failed write needs nothing here: the stream reports the reason
       once, through on_close. */
    if (iomux_stream_write(s, bytes, len) == 0) {
        *e->bytes_out += len;
        check_budget(e, s);
    }
}

/* --splice auto or on: a read that filled the buffer splices the
   connection from then on. (A spliced connection that found no pipe
   copies through here too, and is refused at once: it has its transport.
   So is one whose write failed.) */
static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct engine_stream *e = data;
    on_data_copying(s, bytes, len, data);
    if (len >= e->splice_from && iomux_stream_queued(s) == 0)
        start_splice(e, s);
}

static void on_data_trace(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct engine_stream *e = data;
    struct conn *c = iomux_stream_extra(s);
    *e->bytes_in += len;
    e->hooks.echoed(e->hooks.policy, c, bytes, len);
    if (iomux_stream_write(s, bytes, len) == 0) {
        *e->bytes_out += len;
        if (iomux_stream_queued(s) == 0)
            e->hooks.queue_empty(e->hooks.policy, c);
        check_budget(e, s);
    }
}

/* Only with --trace: the queue emptied after waiting for the socket to
   become writable. */
static void on_drain(struct iomux_stream *s, void *data)
{
    struct engine_stream *e = data;
    e->hooks.queue_empty(e->hooks.policy, iomux_stream_extra(s));
}

static void on_close(struct iomux_stream *s, int error, void *data)
{
    struct engine_stream *e = data;
    e->open--;
    /* The memory of the struct conn goes with the stream, after this. */
    e->hooks.closed(e->hooks.policy, iomux_stream_extra(s), error);
}

static void on_accept(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct slistener *l = data;
    struct engine_stream *e = l->e;
    /* accepted() may pause accepting (set_accepting): `accepting` says so. */
    for (int i = 0; i < ACCEPT_BATCH && e->accepting; i++) {
        struct iomux_addr peer;
        int cfd;
        int rc = iomux_tcp_accept(l->fd, &peer, &cfd);
        if (rc == 0) {
            e->hooks.accepted(e->hooks.policy, l->token, cfd, &peer);
            continue;
        }
        if (rc == -EAGAIN)
            break;
        if (!e->hooks.accept_error(e->hooks.policy, l->token, rc))
            break;
    }
}

/* Only with --trace: the policy says it in one line. */
static void on_fault_fired(void *ctx, void *owner, enum fault_kind kind, uint64_t bytes)
{
    struct engine_stream *e = ctx;
    e->hooks.fault_fired(e->hooks.policy, owner, fault_names[kind], bytes);
}

static int stream_create(const struct engine_config *cfg, const struct engine_hooks *hooks,
                         struct engine **out)
{
    struct engine_stream *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->loop = cfg->loop;
    e->pool = cfg->pool;
    e->hooks = *hooks;
    e->bytes_in = cfg->bytes_in;
    e->bytes_out = cfg->bytes_out;
    e->high_water = cfg->high_water;
    e->low_water = cfg->low_water;
    e->buffered_limit = cfg->buffered_limit;
    e->trace = cfg->trace;
    e->keep_peer = cfg->keep_peer;
    e->splice_pool = cfg->trace ? NULL : cfg->splice_pool;
    e->splice_from = e->splice_pool ? cfg->splice_from : SIZE_MAX;
    e->accepting = true;
    e->faults = (struct fault_env){.loop = cfg->loop,
                                   .counts = cfg->fault_counts,
                                   .seed = cfg->fault_seed,
                                   .shared_serial = cfg->fault_serial,
                                   .ctx = e};
    if (cfg->trace)
        e->faults.fired = on_fault_fired;
    *out = (struct engine *)(void *)e;
    return 0;
}

static void stream_free(struct engine *eng)
{
    free(stream_of(eng));
}

static int stream_listen(struct engine *eng, int fd, const struct iomux_addr *bound, void *listener)
{
    struct engine_stream *e = stream_of(eng);
    if (e->nlisteners == ENGINE_MAX_LISTEN)
        return -ENOSPC;
    struct slistener *l = &e->listeners[e->nlisteners];
    *l = (struct slistener){.e = e, .fd = fd, .token = listener};
    int rc = iomux_fd_watch(e->loop, fd, e->accepting ? IOMUX_READ : 0, on_accept, l);
    if (rc < 0)
        return rc;
    e->nlisteners++;
    return 0;
}

static void stream_set_accepting(struct engine *eng, bool on)
{
    struct engine_stream *e = stream_of(eng);
    e->accepting = on;
    for (size_t i = 0; i < e->nlisteners; i++)
        iomux_fd_modify(e->loop, e->listeners[i].fd, on ? IOMUX_READ : 0);
}

static void stream_unlisten(struct engine *eng)
{
    struct engine_stream *e = stream_of(eng);
    e->accepting = false;
    for (size_t i = 0; i < e->nlisteners; i++)
        iomux_fd_unwatch(e->loop, e->listeners[i].fd);
    e->nlisteners = 0;
}

/* A stream for `fd`, with `extra` bytes of the engine's; not yet opened.
   `may_splice`: it echoes through the socket alone (no transport of its
   own), so --splice may take it. Takes `fd`: closed on failure, as every
   admit op does. */
static int new_stream(struct engine_stream *e, int fd, size_t extra, bool may_splice,
                      struct iomux_stream **out)
{
    struct iomux_stream_options so = {
        .on_data = e->trace                       ? on_data_trace
                   : may_splice && e->splice_pool ? on_data
                                                  : on_data_copying,
        .on_drain = e->trace ? on_drain : NULL,
        .on_close = on_close,
        .data = e,
        .extra_size = extra,
        .high_water = e->high_water,
        .low_water = e->low_water,
        .read_max = e->trace ? TRACE_READ_MAX : 0,
    };
    /* -ERANGE: an fd the backend cannot watch; the policy says so. */
    int rc = iomux_stream_new(e->loop, e->pool, fd, &so, out);
    if (rc < 0)
        close(fd);
    return rc;
}

/* A plain connection's extra space: its struct conn, and its peer if kept. */
static size_t conn_size(const struct engine_stream *e)
{
    return e->keep_peer ? sizeof(struct conn_with_peer) : sizeof(struct conn);
}

static void stream_opened(struct engine_stream *e, struct iomux_stream *s,
                          const struct iomux_addr *peer)
{
    e->open++;
    e->hooks.opened(e->hooks.policy, iomux_stream_extra(s), peer);
}

static int stream_admit(struct engine *eng, int fd, const struct iomux_addr *peer)
{
    struct engine_stream *e = stream_of(eng);
    struct iomux_stream *s;
    int rc = new_stream(e, fd, conn_size(e), true, &s);
    if (rc < 0)
        return rc;
    if (e->splice_from == 0)
        start_splice(e, s);
    stream_opened(e, s, peer);
    return 0;
}

/* The transport goes on before the loop runs, so no byte passes by it;
   if it cannot, the stream (and with it fd) is closed before any hook. */
static int stream_admit_transport(struct engine *eng, int fd, const struct iomux_addr *peer,
                                  const struct iomux_stream_transport *tx, void *ctx)
{
    struct engine_stream *e = stream_of(eng);
    struct iomux_stream *s;
    int rc = new_stream(e, fd, conn_size(e), false, &s);
    if (rc < 0)
        return rc;
    rc = iomux_stream_set_transport(s, tx, ctx);
    if (rc < 0) {
        iomux_stream_close(s);
        return rc;
    }
    stream_opened(e, s, peer);
    return 0;
}

/* As stream_admit_transport(), with the faults' transport. */
static int stream_admit_faults(struct engine *eng, int fd, const struct iomux_addr *peer,
                               const struct fault_spec *faults)
{
    struct engine_stream *e = stream_of(eng);
    struct iomux_stream *s;
    int rc = new_stream(e, fd, sizeof(struct conn_with_faults) + fault_conn_size(), false, &s);
    if (rc < 0)
        return rc;
    struct conn_with_faults *cf = iomux_stream_extra(s);
    rc = fault_conn_start(cf->faults, &e->faults, faults, s, fd, &cf->cp.link);
    if (rc < 0) {
        iomux_stream_close(s);
        return rc;
    }
    e->open++;
    e->hooks.opened(e->hooks.policy, &cf->cp.link, peer);
    return 0;
}

static void stream_end(struct engine *eng, struct conn *c)
{
    iomux_stream_end(iomux_stream_of_extra(c));
}

static void stream_cut(struct engine *eng, struct conn *c)
{
    stream_of(eng)->open--;
    iomux_stream_close(iomux_stream_of_extra(c));
}

static uint64_t stream_last_io(struct engine *eng, struct conn *c)
{
    return iomux_stream_last_io(iomux_stream_of_extra(c));
}

static size_t stream_queued(struct engine *eng, struct conn *c)
{
    return iomux_stream_queued(iomux_stream_of_extra(c));
}

static bool stream_hold(struct engine *eng, struct conn *c)
{
    return iomux_stream_hold(iomux_stream_of_extra(c)) == 1;
}

/* Nothing of its own to count: the policy's line says it all. */
static void stream_print_stats(struct engine *eng, FILE *f) {}

/*
 * Once per turn, with a budget: a read may add what it reads to a queue,
 * and in one turn every client may read once, so each read is capped to
 * the budget's room shared among the clients (between a 16 KiB chunk and
 * the whole 64 KiB read buffer). Far from the budget that is the whole buffer; near
 * it, a turn cannot carry echod past it by much (a client that had
 * nothing queued still takes one chunk when it first queues).
 */
static void cap_reads(struct engine_stream *e)
{
    size_t held = stream_buffered((struct engine *)(void *)e);
    size_t mark = engine_budget_mark(e->buffered_limit, e->open);
    size_t room = held < mark ? mark - held : 0;
    size_t cap = room / (e->open ? e->open : 1);
    cap = cap < READ_CAP_MIN ? READ_CAP_MIN : cap > IOMUX_BUF_READ_SIZE ? 0 : cap;
    iomux_buf_pool_set_read_cap(e->pool, cap);
}

static int stream_run_once(struct engine *eng, int timeout_ms)
{
    struct engine_stream *e = stream_of(eng);
    if (e->buffered_limit)
        cap_reads(e);
    return iomux_loop_run_once(e->loop, timeout_ms);
}

const struct engine_ops engine_stream_ops = {
    .name = "loop",
    .needs = "iomux",
    .create = stream_create,
    .free = stream_free,
    .listen = stream_listen,
    .set_accepting = stream_set_accepting,
    .unlisten = stream_unlisten,
    .admit = stream_admit,
    .admit_transport = stream_admit_transport,
    .end = stream_end,
    .cut = stream_cut,
    .last_io = stream_last_io,
    .buffered = stream_buffered,
    .queued = stream_queued,
    .hold = stream_hold,
    .print_stats = stream_print_stats,
    .run_once = stream_run_once,
    .can_splice = true,
    .admit_faults = stream_admit_faults,
};
