/* SPDX-License-Identifier: MIT */
/*
 * engine.h - the contract every echod engine implements, and the hooks an
 * engine may call back.
 *
 * An engine moves the bytes of TCP and Unix-domain stream connections: it
 * accepts (when it has its own way to), receives, echoes with
 * backpressure, ends gracefully and cuts. The policy (echod.c: limits,
 * idle timeout, drain, --trace, statistics) decides who is served and
 * when a connection goes, and never looks inside an engine. An engine
 * never reads the server's state: what it may know comes in a read-only
 * struct engine_config, and what it must tell goes through the hooks of
 * struct engine_hooks, each with the policy's context pointer, as the
 * loop core hands a backend its fd table (src/backend.h) and libevent's
 * base hands an eventop its state.
 *
 * Per-message cost: the hooks on the data path (echoed, queue_empty) are
 * called only with engine_config.trace set, so an echo costs no indirect
 * call into the policy. Byte counts go straight into the policy's
 * counters through two pointers of the config (one add each, as when the
 * engine wrote the server's fields) rather than through a hook per
 * message or per-engine totals the statistics line would have to sum.
 *
 * Lifetime: create() -> listen() per listener -> run_once() until the
 * policy is done -> cut() every connection still open -> free().
 */
#ifndef ECHOD_ENGINE_H
#define ECHOD_ENGINE_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <iomux/buf.h>
#include <iomux/loop.h>
#include <iomux/net.h>

/* Listening sockets one engine may serve. */
#define ENGINE_MAX_LISTEN 16

/* A client's address, kept only when the policy needs it (--trace,
   --max-conns-per-ip: engine_config.keep_peer). */
union conn_peer_addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

/*
 * A connection as both sides see it, inside each engine's own connection
 * state, which the engine allocates and frees. prev/next belong to the
 * policy (its list of open connections, set by the opened hook, cleared
 * by it when the connection ends). With engine_config.keep_peer, a union
 * conn_peer_addr follows the struct in the same allocation (conn_peer()),
 * so a server that needs no address pays nothing for it.
 *
 * The last I/O time is the engine's (the last_io operation), not a field
 * here: a stream keeps its own already, and 8 more bytes would take a
 * stream with its struct conn (40 + 16 bytes) past a 64-byte allocation,
 * a cache line, for every connection of the readiness engine.
 */
struct conn {
    struct conn *prev, *next;
};

/* The stored peer address: only with engine_config.keep_peer. */
static inline union conn_peer_addr *conn_peer(struct conn *c)
{
    return (union conn_peer_addr *)(void *)(c + 1);
}

/* --spin-receive, as engines see it. */
enum engine_spin {
    ENGINE_SPIN_OFF,
    ENGINE_SPIN_AUTO,
    ENGINE_SPIN_ON,
};

/* What an engine is told at creation; it copies what it keeps. */
struct engine_config {
    struct iomux_loop *loop;     /* timers, signals, UDP: the engine runs it */
    struct iomux_buf_pool *pool; /* chunks for bytes queued behind a send */
    size_t high_water;           /* queued bytes: stop receiving above */
    size_t low_water;            /* ... and start again at or below */
    unsigned uring_buffers;      /* --uring-buffers (a power of two) */
    unsigned busy_poll_us;       /* --busy-poll; 0 = off */
    unsigned batch_wait_us;      /* --batch-wait; 0 = off */
    enum engine_spin spin;       /* --spin-receive */
    bool trace;                  /* --trace: read as the seed does, call the trace hooks */
    bool keep_peer;              /* store each peer's address after its struct conn */
    /* The most this engine may hold in user space for its connections,
       its share of --max-buffered (budget.h); 0: no limit. Past its mark
       (engine_budget_mark()), a connection that queues more stops
       receiving (as hold() does). */
    size_t buffered_limit;
    /* Added to for every byte received and every byte queued or sent
       back: the policy's counters, owned by it. */
    uint64_t *bytes_in;
    uint64_t *bytes_out;
    /* --splice (splice_pool.h): the policy's pipes, NULL for none (off,
       --trace); with them a connection is spliced from admission
       (splice_from 0) or from its first read of splice_from bytes. An
       engine that cannot splice ignores both. */
    struct splice_pool *splice_pool;
    size_t splice_from;
    /* Fault listeners (faults.h), for an engine with admit_faults: the
       run's seed, and FAULT_KINDS counters of faults fired (the policy's). */
    uint64_t fault_seed;
    uint64_t *fault_counts;
    atomic_uint_fast64_t *fault_serial; /* with workers: the process's (struct fault_env) */
};

/* The policy, as an engine may call it. `policy` is passed back as is. */
struct engine_hooks {
    void *policy;
    /* An accepted socket (the engine's own accept) on `listener`
       (listen()'s token): the policy refuses it, serves it through the
       engine's admit(), or first reads a PROXY header itself and admits
       it later. Takes `fd`. A `peer` of length 0 is a client that went
       (reset) before its address could be read. */
    void (*accepted)(void *policy, void *listener, int fd, const struct iomux_addr *peer);
    /* Whether the next accepted socket's peer address is needed (kept, or
       a refusal will name it); without, accepted() gets the family only. */
    bool (*wants_peer)(void *policy);
    /* Accepting on `listener` (listen()'s token) failed with `err`; true
       if the next accept may work at once. The policy may pause accepting. */
    bool (*accept_error)(void *policy, void *listener, int err);
    /* A connection admit() set up: the policy lists, counts and stores
       `peer` (keep_peer). Called before any I/O on it. */
    void (*opened)(void *policy, struct conn *c, const struct iomux_addr *peer);
    /* It ended on its own (`error` 0 or -errno): the policy unlists it. The
       engine frees it afterwards, when its operations are over. */
    void (*closed)(void *policy, struct conn *c, int error);
    /* Only with trace: `len` bytes arrived and are being echoed. */
    void (*echoed)(void *policy, struct conn *c, const char *bytes, size_t len);
    /* Only with trace: everything queued on `c` has been sent. */
    void (*queue_empty)(void *policy, struct conn *c);
    /* A failure of the engine's own (not a connection's), such as a
       system call: the policy logs it, rate-limited. */
    void (*io_error)(void *policy, const char *what, int err);
    /* Only with trace: a fault (faults.h's name) fired on `c` after
       `bytes` echoed. */
    void (*fault_fired)(void *policy, struct conn *c, const char *what, uint64_t bytes);
};

/*
 * Where a memory budget of `limit` bytes counts as full with `conns`
 * connections open (the policy's view and each engine's agree on it): room
 * is kept for a chunk per connection, what a client that stops reading
 * takes when it first queues, however small the reads near the mark; at
 * least an eighth of the budget and at most half of it.
 */
static inline size_t engine_budget_mark(size_t limit, size_t conns)
{
    size_t reserve = conns * IOMUX_BUF_CHUNK_SIZE;
    if (reserve < limit / 8)
        reserve = limit / 8;
    if (reserve > limit / 2)
        reserve = limit / 2;
    return limit - reserve;
}

/* An engine's state: each engine has its own, behind this opaque tag. */
struct engine;
struct fault_spec;
struct iomux_stream_transport;

struct engine_ops {
    const char *name;  /* as --engine names it */
    const char *needs; /* what it is built with: "not compiled in (no ...)" */
    /* Makes the engine on cfg->loop. 0, or -ENOENT (not built here),
       -ENOSYS/-EPERM (refused by this kernel or a seccomp policy),
       -ENOMEM, another negative errno. */
    int (*create)(const struct engine_config *cfg, const struct engine_hooks *hooks,
                  struct engine **out);
    /* Releases everything; connections must have been cut first. */
    void (*free)(struct engine *e);
    /* Starts accepting on the listening socket `fd` (borrowed; `bound` is
       its address), handing `listener` back in accept_error. 0 or -errno.
       The policy closes `fd` only after unlisten(). */
    int (*listen)(struct engine *e, int fd, const struct iomux_addr *bound, void *listener);
    /* Pauses (false) or resumes (true) accepting on every listener. */
    void (*set_accepting)(struct engine *e, bool on);
    /* Stops accepting for good and lets go of every listener (a readiness
       engine unwatches them): the policy closes them next. May be called
       again, with nothing left to do. */
    void (*unlisten)(struct engine *e);
    /* Serves an accepted socket the policy admitted, through the opened
       hook. Every admit op takes `fd` in every case: on failure (-errno)
       it is closed before the op returns, no hook called: -ERANGE for an
       fd the engine cannot watch (the policy says why, in the backend's
       words), -ENOMEM. */
    int (*admit)(struct engine *e, int fd, const struct iomux_addr *peer);
    /* As admit(), for a connection whose bytes go through the stream
       transport `tx` on `ctx` (include/iomux/stream.h; TLS after its
       handshake, tls_accept.c). Takes `fd` in every case, as admit();
       `ctx` on success only (released with the connection).
       NULL in an engine that cannot (io_uring: no streams). */
    int (*admit_transport)(struct engine *e, int fd, const struct iomux_addr *peer,
                           const struct iomux_stream_transport *tx, void *ctx);
    /* The graceful end (SIGTERM): input is dropped, what is queued is sent,
       the write side is shut and the peer's end awaited (then closed()).
       Never calls a hook from inside, so the policy may walk its list. */
    void (*end)(struct engine *e, struct conn *c);
    /* Closes at once; the policy has unlisted it and said why. */
    void (*cut)(struct engine *e, struct conn *c);
    /* When `c` last sent or received, in loop milliseconds (the idle
       sweep; never on the per-message path). */
    uint64_t (*last_io)(struct engine *e, struct conn *c);
    /* --- the memory budget (budget.h): what an engine holds, and holding
       back the clients it holds it for. --- */
    /* Bytes held in user space for connections now: chunks of queued
       echoes, receive buffers held by sends. Read from counters kept where
       chunks and buffers are taken and given back, never per message. */
    size_t (*buffered)(struct engine *e);
    /* Bytes queued on `c`, waiting for its client to read them. */
    size_t (*queued)(struct engine *e, struct conn *c);
    /* Stops receiving on `c` until everything queued on it has been sent:
       a client that reads its echoes is read from again as soon as it has
       them all, one that does not read stays held. False if nothing is
       queued (nothing to wait for: nothing changed). */
    bool (*hold)(struct engine *e, struct conn *c);
    /* The engine's part of the SIGUSR1 line, each item after "; " (the
       policy ends the line). */
    void (*print_stats)(struct engine *e, FILE *f);
    /* One turn of the server: waits up to timeout_ms (-1: no limit) for
       I/O or the loop, handles it, runs the loop's callbacks. Returns as
       iomux_loop_run_once(). */
    int (*run_once)(struct engine *e, int timeout_ms);
    /* Whether admit() splices (--splice) with engine_config.splice_pool:
       the policy makes the pipes only for an engine that does. Connections
       of admit_transport() and admit_faults() are never spliced. */
    bool can_splice;
    /* As admit() (`fd` taken in every case), for a connection of a
       listener with faults (`faults`, borrowed: it outlives the
       connection). NULL in an engine that has no faults: the policy
       serves those listeners with a readiness engine beside it
       (echod_side_start()). */
    int (*admit_faults)(struct engine *e, int fd, const struct iomux_addr *peer,
                        const struct fault_spec *faults);
};

/* Defined in engine_<name>.c. Listed, for the policy to choose from by
   name, in engine.c alone. */
extern const struct engine_ops engine_stream_ops; /* "loop": readiness, iomux streams */
extern const struct engine_ops engine_uring_ops;  /* "uring": io_uring completions */

/* The engine called `name` (--engine); NULL if there is none by that name. */
const struct engine_ops *engine_find(const char *name);

#endif /* ECHOD_ENGINE_H */
