/* SPDX-License-Identifier: MIT */
/*
 * options.h - echod's command line: what it accepts and the parsed result.
 */
#ifndef ECHOD_OPTIONS_H
#define ECHOD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "faults.h"
#include "sockopt.h"

#define ECHOD_MAX_LISTEN        16
#define ECHOD_MAX_WORKERS       256
#define ECHOD_DEFAULT_LISTEN    "localhost:10000"
#define ECHOD_DEFAULT_GRACE_MS  2000u
#define ECHOD_URING_BUFFERS     256u /* 16 KiB each */
#define ECHOD_BUSY_POLL_MAX_US  10000u
#define ECHOD_BATCH_WAIT_US     200u /* default */
#define ECHOD_BATCH_WAIT_MAX_US 1000u
#define ECHOD_LISTEN_ADDR_MAX   300 /* a --listen address, without its settings */
#define ECHOD_MAX_PROXY_FROM    32
#define ECHOD_PROXY_TIMEOUT_MS  5000u /* --proxy-timeout's default, as HAProxy's */
#define ECHOD_SHED_AFTER_MS     5000u
#define ECHOD_TLS_TIMEOUT_MS    10000u /* --tls-timeout's default */
#define ECHOD_TLS_PATH_MAX      256    /* a tls-cert=, tls-key= or tls-ca= file name */
/* --max-buffered by default: an eighth of physical memory, at most this. */
#define ECHOD_MAX_BUFFERED_CAP ((uint64_t)1 << 30)

/* --engine: what does the TCP I/O. The order is the choices' order in
   --help and echod_engine_names[]; a new engine is one more of each. */
enum echod_engine {
    ECHOD_ENGINE_AUTO,  /* uring where it works, else loop (echod_engine_start()) */
    ECHOD_ENGINE_LOOP,  /* the event loop of --backend (readiness) */
    ECHOD_ENGINE_URING, /* io_uring completions */
};
extern const char *const echod_engine_names[];

/* --spin-receive (--engine uring). */
enum echod_spin {
    ECHOD_SPIN_AUTO, /* while saturated with few clients */
    ECHOD_SPIN_ON,   /* always */
    ECHOD_SPIN_OFF,  /* never */
};
extern const char *const echod_spin_names[];

/* --splice (splice_pool.h, docs/splice.md). */
enum echod_splice {
    ECHOD_SPLICE_AUTO, /* a connection from its first read of 64 KiB */
    ECHOD_SPLICE_ON,   /* every connection (--engine loop) */
    ECHOD_SPLICE_OFF,
};
extern const char *const echod_splice_names[];

/* --steer (steer.h): which worker a new TCP connection goes to. */
enum echod_steer {
    ECHOD_STEER_NONE, /* the kernel's SO_REUSEPORT hash */
    ECHOD_STEER_CPU,  /* the worker pinned to the CPU that received it */
};
extern const char *const echod_steer_names[];

/* proxy= of a --listen: the PROXY protocol header its connections must
   start with (docs/proxy-protocol.md). */
enum echod_proxy_mode {
    ECHOD_PROXY_OFF, /* none: a plain listener */
    ECHOD_PROXY_V1,
    ECHOD_PROXY_V2,
    ECHOD_PROXY_ANY, /* either version */
};

/* One --listen ADDR[,KEY=VALUE]...: the address and its settings. Every
   per-listener setting is a field here and a row of options.c's key
   table, in this one form on the command line. */
struct listener_opts {
    char addr[ECHOD_LISTEN_ADDR_MAX]; /* HOST:PORT, [IPV6]:PORT or unix:PATH */
    int proxy;                        /* enum echod_proxy_mode */
    struct fault_spec faults;         /* delay=, rate=, ... (faults.h); none by default */
    /* TLS (tls_accept.c): a listener with tls-cert= is a TLS listener. */
    char tls_cert[ECHOD_TLS_PATH_MAX]; /* certificate chain (PEM); "" = plain */
    char tls_key[ECHOD_TLS_PATH_MAX];  /* its private key; "": in tls_cert */
    char tls_ca[ECHOD_TLS_PATH_MAX];   /* mutual TLS: client CAs; "": none asked */
    char alpn[256];                    /* accepted protocols, comma-separated as tls.h's */
    int tls_version;                   /* enum tls_version: 0 = 1.2 or 1.3 */
};

struct echod_options {
    struct listener_opts listen[ECHOD_MAX_LISTEN];
    size_t nlisten;
    const char *backend;      /* "auto", "epoll", "poll", "select", "uring" */
    int engine;               /* enum echod_engine (an int: the parser stores choices so) */
    const char *engine_given; /* the option (no dashes) that decided --engine auto, or NULL */
    uint64_t uring_buffers;   /* --engine uring: provided receive buffers */
    uint64_t busy_poll_us;    /* --engine uring: spin before sleeping; 0 = never */
    uint64_t batch_wait_us;   /* --engine uring: wait this long for a fuller batch */
    int spin_receive;         /* --engine uring: enum echod_spin */
    int splice;               /* enum echod_splice */
    uint64_t max_conns;       /* 0 = no limit */
    uint64_t idle_timeout_ms; /* 0 = never */
    uint64_t tick_ms;         /* 0 = no tick */
    uint64_t grace_ms;        /* drain time on SIGINT/SIGTERM */
    uint64_t drain_delay_ms;  /* serving on after SIGINT/SIGTERM, the agent saying drain */
    uint64_t high_water;      /* bytes; the stream default if not given */
    uint64_t low_water;
    uint64_t max_buffered;  /* bytes for all clients together (budget.h); 0 = no limit */
    uint64_t shed_after_ms; /* at the budget that long: shed the largest holders */
    bool trace;
    bool quiet;
    /* Datagram echo and daemon integration (udp.c, daemon.c). */
    const char *udp[ECHOD_MAX_LISTEN]; /* --udp ADDR:PORT or unix:PATH */
    size_t nudp;
    uint64_t udp_rate;         /* per source, datagrams/s; 0 = no limit */
    uint64_t udp_burst;        /* 0 = max(rate, default burst) */
    bool udp_any_port;         /* --udp-any-port: no source-port filter */
    uint64_t max_conns_per_ip; /* 0 = no limit */
    bool inetd;                /* serve the connection on stdin, then exit */
    const char *user;          /* --user NAME, or NULL */
    /* PROXY protocol listeners (proxy_accept.c): who may send a header
       (none given: loopback only), and how long it may take. */
    struct echod_cidr proxy_from[ECHOD_MAX_PROXY_FROM];
    size_t nproxy_from;
    uint64_t proxy_timeout_ms;
    uint64_t tls_timeout_ms; /* --tls-timeout: a TLS handshake's deadline */
    const char *agent;       /* --agent HOST:PORT, or NULL */
    const char *metrics;     /* --metrics HOST:PORT, or NULL */
    /* --keepalive, --sndbuf, --rcvbuf: set on each listening socket, which
       accepted sockets inherit them from. */
    struct sock_tuning tuning;
    /* Fault modes (faults.h): the run's seed, and --udp-drop. */
    uint64_t fault_seed;
    bool fault_seed_given;
    uint32_t udp_drop_ppm; /* of datagrams; 0: none */
    /* --workers: threads that serve (server.c); 0 = auto (the CPUs of the
       affinity mask), resolved by echod_server_workers(). */
    unsigned workers;
    int steer; /* enum echod_steer */
};

enum {
    ECHOD_RUN = 0,   /* options are good: run the server */
    ECHOD_DONE = 1,  /* --help or --version was printed: exit 0 */
    ECHOD_USAGE = 2, /* a usage error was printed: exit 2 */
};

/* Parses argv into *out (defaults first); prints help, version or a
   usage error. Returns ECHOD_RUN, ECHOD_DONE or ECHOD_USAGE. */
int echod_options_parse(int argc, char **argv, struct echod_options *out);

/* Prints a usage error the way every tool does: "echod: REASON" and
   "Try 'echod --help' for more information." on stderr. */
void echod_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* ECHOD_OPTIONS_H */
