/* SPDX-License-Identifier: MIT */
/*
 * options.h - echod's command line: what it accepts and the parsed result.
 */
#ifndef ECHOD_OPTIONS_H
#define ECHOD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ECHOD_MAX_LISTEN        16
#define ECHOD_DEFAULT_LISTEN    "localhost:10000"
#define ECHOD_DEFAULT_GRACE_MS  2000u
#define ECHOD_URING_BUFFERS     256u /* 16 KiB each */
#define ECHOD_BUSY_POLL_MAX_US  10000u
#define ECHOD_BATCH_WAIT_US     200u /* default */
#define ECHOD_BATCH_WAIT_MAX_US 1000u

struct echod_options {
    const char *listen[ECHOD_MAX_LISTEN]; /* borrowed from argv */
    size_t nlisten;
    const char *backend;      /* "auto", "epoll", "poll", "select", "uring" */
    const char *engine;       /* "loop" (readiness, the default) or "uring" */
    uint64_t uring_buffers;   /* --engine uring: provided receive buffers */
    uint64_t busy_poll_us;    /* --engine uring: spin before sleeping; 0 = never */
    uint64_t batch_wait_us;   /* --engine uring: wait this long for a fuller batch */
    bool batch_wait_given;    /* --batch-wait was on the command line */
    const char *spin_receive; /* --engine uring: "auto" (default), "on" or "off" */
    bool spin_receive_given;
    uint64_t max_conns;       /* 0 = no limit */
    uint64_t idle_timeout_ms; /* 0 = never */
    uint64_t tick_ms;         /* 0 = no tick */
    uint64_t grace_ms;        /* drain time on SIGINT/SIGTERM */
    size_t high_water;        /* bytes; 0 = the stream default */
    size_t low_water;
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
};

enum {
    ECHOD_RUN = 0,   /* options are good: run the server */
    ECHOD_DONE = 1,  /* --help or --version was printed: exit 0 */
    ECHOD_USAGE = 2, /* a usage error was printed: exit 2 */
};

/* Parses argv into *out (defaults first); prints help, version or a
   one-line error. Returns ECHOD_RUN, ECHOD_DONE or ECHOD_USAGE. */
int echod_options_parse(int argc, char **argv, struct echod_options *out);

#endif /* ECHOD_OPTIONS_H */
