/* SPDX-License-Identifier: MIT */
/*
 * echod_internal.h - the server's state and the policy's functions, shared
 * by echod.c and echod_engine.c (which hands them to an engine as the
 * hooks of engine.h). No engine includes this file.
 *
 * A connection's struct conn is inside its engine's own state: the
 * stream's extra space (--engine loop), the io_uring engine's connection
 * (--engine uring).
 */
#ifndef ECHOD_ECHOD_INTERNAL_H
#define ECHOD_ECHOD_INTERNAL_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <iomux/buf.h>
#include <iomux/loop.h>
#include <iomux/net.h>

#include "budget.h"
#include "daemon.h"
#include "echod.h"
#include "engine.h"
#include "faults.h"
#include "ratelog.h"
#include "server.h"

/* Things that can go wrong again and again, each rate-limited apart. */
enum log_kind {
    LOG_FDS,      /* out of descriptors */
    LOG_MAXCONNS, /* --max-conns reached */
    LOG_WATCH,    /* fd the backend cannot watch */
    LOG_ACCEPT,   /* other accept() or set-up failure */
    LOG_PERIP,    /* --max-conns-per-ip reached */
    LOG_IO,       /* engine-level I/O failure */
    LOG_PROXY,    /* a PROXY header refused (proxy_accept.c) */
    LOG_MEMORY,   /* connections shed for the memory budget */
    LOG_TLS,      /* a TLS handshake failed or timed out (tls_accept.c) */
    LOG_KINDS,
};

struct echod;
struct sideport;
struct echod_tls_identity;
struct iomux_stream_transport;

struct listener {
    struct echod *d;
    int fd;
    struct iomux_addr addr;          /* as bound */
    int proxy;                       /* enum echod_proxy_mode: its proxy= */
    const struct fault_spec *faults; /* its fault modes (faults.h), NULL if none */
    /* tls-cert= (tls_accept.c): the certificate and settings new
       handshakes use, NULL for a plain listener; `opts` its --listen. */
    struct echod_tls_identity *tls;
    const struct listener_opts *opts;
};

/* TLS listeners (tls_accept.c), for SIGUSR1 and --metrics. */
struct echod_tls_stats {
    uint64_t ok;            /* handshakes done */
    uint64_t failed;        /* refused by OpenSSL, or closed during the handshake */
    uint64_t timed_out;     /* not done within --tls-timeout */
    uint64_t truncated;     /* after the handshake: closed without close_notify */
    uint64_t record_errors; /* after the handshake: a TLS error (bad record, renegotiation) */
};

/* The longest v2 PROXY header taken (16 + announced length): addresses
   and a generous share of TLVs; a longer one is refused as v2_too_long. */
#define ECHOD_PROXY_V2_MAX 4096

/* PROXY headers on proxy= listeners, for SIGUSR1 and --metrics. */
struct echod_proxy_stats {
    uint64_t accepted;         /* a header with the client's address */
    uint64_t local;            /* v2 LOCAL or v1 UNKNOWN: the real addresses kept */
    uint64_t rejected_invalid; /* not a valid header of an accepted version */
    uint64_t rejected_timeout; /* not complete within --proxy-timeout */
    uint64_t rejected_source;  /* from an address not in --proxy-from */
    uint64_t rejected_closed;  /* closed (or reset) before the header was complete */
};

/* Connections waiting for their header (proxy_accept.c's, opaque here). */
struct proxy_link {
    struct proxy_link *prev, *next;
};

/* At the tail of the circular list `head` (the PROXY and TLS stages'). */
static inline void proxy_link_append(struct proxy_link *head, struct proxy_link *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void proxy_link_remove(struct proxy_link *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
}

struct echod {
    const struct echod_options *opt;
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool;
    const struct engine_ops *engine_ops; /* --engine: what does the stream I/O */
    struct engine *engine;               /* set once serving starts */
    struct listener listeners[ECHOD_MAX_LISTEN];
    size_t nlisteners;
    struct conn conns; /* every open connection (engine.h); conns.next is the oldest */
    int reserve_fd;    /* spare descriptor for EMFILE, -1 if none */
    int inetd_fd;      /* --inetd: the connection to admit once serving */
    struct iomux_addr inetd_peer;
    uint64_t pause_timer, idle_timer, grace_timer, drain_timer;
    bool accepting_paused;
    bool draining; /* SIGINT/SIGTERM seen: --agent says drain */
    bool stopping; /* ... and accepting has stopped (after --drain-delay) */
    bool done;
    /* statistics */
    uint64_t open, total, bytes_in, bytes_out, idle_closed;
    uint64_t resets; /* connections the peer reset (ECONNRESET, EPIPE) */
    uint64_t errors; /* connections ended by any other error (ENOMEM, ...) */
    uint64_t refused_max, refused_fds, refused_watch;
    struct ratelog logs[LOG_KINDS];
    /* The memory budget (budget.c): bytes held for clients in user space
       (as of the last look), --max-buffered (0: none), connections shed. */
    size_t buffered_bytes, max_buffered;
    uint64_t shed_memory;
    struct echod_budget budget;
    /* Datagram echo and daemon integration (udp.c, daemon.c). */
    struct echod_udp *udp;     /* NULL when no datagram socket is served */
    struct echod_perip *perip; /* NULL without --max-conns-per-ip */
    uint64_t refused_perip;
    /* PROXY protocol (proxy_accept.c). */
    bool proxy_listeners;      /* some listener has proxy= */
    struct proxy_link pending; /* connections waiting for their header */
    uint64_t npending;         /* how many: they count toward --max-conns */
    struct echod_proxy_stats proxy;
    /* TLS listeners (tls_accept.c). */
    bool tls_listeners;
    struct proxy_link tls_pending; /* connections in their handshake */
    uint64_t ntls_pending;         /* how many: they count toward --max-conns */
    struct echod_tls_stats tls;
    struct echod_user user; /* --user: looked up before binding */
    /* --agent, --metrics (sideport.h): NULL when not asked for. */
    struct sideport *agent, *metrics;
    /* Start-up lines for stderr, printed once serving (say_later()). */
    char startup[4096];
    size_t startup_len;
    /* Bound port-0 addresses, printed on stdout once serving. */
    char announced[2 * ECHOD_MAX_LISTEN + 2][IOMUX_ADDR_STRLEN]; /* + --agent, --metrics */
    size_t nannounced;
    /* --splice (splice_pool.h): the engine's pipes; NULL when off. */
    struct splice_pool *splice;
    /* Fault modes (faults.h): faults fired by kind, the run's seed. */
    uint64_t faults_fired[FAULT_KINDS];
    uint64_t fault_seed;
    bool fault_listeners; /* some listener has faults, or --udp-drop */
    /* The side engine (echod_side_start()): a readiness engine on the same loop
       for the connections of listeners the main engine cannot serve
       itself (its admit_faults is NULL); NULL when there is none. Its
       connections are listed in side_conns, apart from conns. */
    const struct engine_ops *side_ops;
    struct engine *side;
    struct conn side_conns;
    /* --workers (server.h): NULL and 0 with one worker. */
    struct echod_server *server;
    unsigned worker;                               /* 0 .. N-1 */
    struct iomux_async *wake;                      /* the server's commands (ECHOD_CMD_*) */
    _Atomic unsigned commands, stops;              /* ... and SIGINT/SIGTERM passed on */
    struct echod_counters snap;                    /* published under the server's lock */
    uint64_t snap_gen;                             /* the request it answers */
    struct iomux_addr udp_bound[ECHOD_MAX_LISTEN]; /* --udp as bound (port 0: the port) */
};

/* setup.c, in the order echod_new() calls them; the server calls them for each worker (the
   first two on the worker's thread, bound one after the other, then the user switch once). */
int echod_setup_bind(const struct echod_options *opt, struct echod_server *srv, unsigned worker,
                     struct echod **out);
int echod_setup_user(struct echod *d);
int echod_setup_serve(struct echod *d);
void echod_setup_announce(struct echod *d);

/* True when connections keep their peer's address. */
bool echod_keeps_peer(const struct echod *d);

/* --engine NAME: makes d->engine on d->loop, with the hooks below. 0, or -errno with the reason
 * said (-EINVAL: not built). When --engine auto chose, `why` (of `size` bytes) says what and
 * why, for the start-up lines; else it is "". */
int echod_engine_start(struct echod *d, char *why, size_t size);

/* Stands in the start-up lines for echod_serving_label() until the engine
   is chosen, after the listeners are bound (print_startup() fills it in). */
#define ECHOD_LABEL_LATER '\001'

/* Turns an accepted socket into a served connection (with the engine's
   I/O, if any), or refuses it (--max-conns, --max-conns-per-ip) and closes
   it, saying why. Takes `fd`. */
void echod_admit(struct echod *d, int fd, const struct iomux_addr *peer);

/* As echod_admit(), for a socket accepted on `l` (NULL: none, as
   --inetd's): a listener with faults is served with them, by the main
   engine or the side engine, and never spliced (its bytes pass through
   the faults; TLS connections come through echod_admit_transport()).
   Takes `fd`. */
void echod_admit_from(struct echod *d, const struct listener *l, int fd,
                      const struct iomux_addr *peer);

/* The io_uring engine accepts blocking sockets (its own I/O never
   blocks); one going to the side engine, or to a TLS handshake that reads
   the socket itself, is made non-blocking first. Nothing without a side
   engine. */
void echod_side_nonblocking(const struct echod *d, int fd);

/* Makes the side engine if a fault listener needs one (echod_engine.c): 0 or
   -errno, said. */
int echod_side_start(struct echod *d);

/* The fault part of the SIGUSR1 line, after "; " (echod_faults.c). */
void echod_faults_print_stats(const struct echod *d, FILE *f);

/* Closes `fd` and says why it was refused (`peer` named, rate-limited
   by kind unless --trace). */
void echod_refuse(struct echod *d, int fd, const struct iomux_addr *peer, enum log_kind kind,
                  const char *why);

/* An accepted socket on a proxy= listener: refused at once if its peer is
   not in --proxy-from or --max-conns is reached, else watched until its
   header is read, then echod_admit() with the header's client. Takes fd. */
void echod_proxy_start(struct echod *d, struct listener *l, int fd, const struct iomux_addr *peer);

/* Closes every connection still waiting for its header (shutdown). */
void echod_proxy_close_all(struct echod *d);

/* The PROXY part of the SIGUSR1 line, after "; ". */
void echod_proxy_print_stats(const struct echod *d, FILE *f);

/* Like echod_admit() for a connection whose bytes go through `tx` on
   `ctx` (TLS, after its handshake): the engine's admit_transport(). Takes
   `fd` in every case; `ctx` on success (0) only. -1 when refused or
   failed (said and counted). */
int echod_admit_transport(struct echod *d, int fd, const struct iomux_addr *peer,
                          const struct iomux_stream_transport *tx, void *ctx);

/* Connections waiting in a stage (a PROXY header, a TLS handshake): they
   count toward --max-conns. */
uint64_t echod_staged(const struct echod *d);

/* tls_accept.c: the certificates of every TLS listener read, before
   privileges are dropped (0, or -1 with one line said); read again on
   SIGHUP (false if there is no TLS listener; how it went, in lines, in
   `said`: every worker reads, one says it); the handshake stage of an
   accepted socket on listener `l` (takes fd); closing those in their
   handshake; the SIGUSR1 part; freeing it all at exit. */
int echod_tls_load(struct echod *d, struct listener *l);
bool echod_tls_reload(struct echod *d, char *said, size_t size);
void echod_tls_start(struct echod *d, struct listener *l, int fd, const struct iomux_addr *peer);
void echod_tls_close_all(struct echod *d);
void echod_tls_print_stats(const struct echod *d, FILE *f);
void echod_tls_free(struct echod *d);
/* With workers, after the last has ended: OpenSSL's own state (for leak checkers). */
void echod_tls_library_end(void);

/* A connection the engine set up: puts it on the list, counts it, traces
   it. `peer` goes into `stored` when the peer is kept (stored may be NULL
   otherwise). */
void echod_conn_opened(struct echod *d, struct conn *c, union conn_peer_addr *stored,
                       const struct iomux_addr *peer);

/* As echod_conn_opened(), listing it on `list` (the side engine's). */
void echod_conn_opened_on(struct echod *d, struct conn *list, struct conn *c,
                          union conn_peer_addr *stored, const struct iomux_addr *peer);

/* The connection ended (on its own, with `error` 0 or -errno): off the list,
   counted, traced, the per-address slot released. */
void echod_conn_closed(struct echod *d, struct conn *c, int error);

/* Closes `c` on the policy's initiative (`why` for --trace): unlisted,
   then cut by the engine. */
void echod_conn_cut(struct echod *d, struct conn *c, const char *why);

/* As echod_conn_cut(), for a connection of the side engine if `side`. */
void echod_conn_cut_on(struct echod *d, bool side, struct conn *c, const char *why);

/* --trace: the seed's "received"/"sending" lines for `len` bytes. */
void echod_trace_echo(struct echod *d, struct conn *c, const char *bytes, size_t len);
/* --trace: "<peer> fault WHAT after N bytes". */
void echod_trace_fault(struct echod *d, struct conn *c, const char *what, uint64_t bytes);
/* --trace: "<peer> queue empty". */
void echod_trace_queue_empty(struct echod *d, struct conn *c);

/* accept() on `l` failed with `err`: out of descriptors or memory sheds
   the waiting clients or pauses accepting; other errors are logged unless
   harmless. True if the next accept may work at once. */
bool echod_accept_error(struct echod *d, struct listener *l, int err);

/* With workers: the first worker, which serves --agent and --metrics, sees whether it may end
   now that another has (server.c). */
void echod_recheck_done(struct echod *d);

/* What echod.c gives the start (setup.c): what does the I/O, as start-up
   and statistics lines say it, written in the caller's buf; and the
   callbacks of the signals and the idle sweep. */
const char *echod_serving_label(const struct echod *d, char *buf, size_t size);
void echod_on_signal(struct iomux_loop *loop, int signo, void *data);
void echod_on_idle_sweep(struct iomux_loop *loop, uint64_t id, void *data);

#endif /* ECHOD_ECHOD_INTERNAL_H */
