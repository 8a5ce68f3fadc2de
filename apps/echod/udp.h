/* SPDX-License-Identifier: MIT */
/*
 * udp.h - echod's RFC 862 datagram echo (UDP and Unix datagram sockets),
 * with the safeguards that keep an echo from becoming a reflector: no
 * reply to source port 0 or to loop-prone service ports, none to
 * broadcast or multicast destinations, a per-source token bucket, and
 * truncated datagrams counted instead of echoed.
 */
#ifndef ECHOD_UDP_H
#define ECHOD_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <iomux/loop.h>

/* Largest number of datagram sockets one server serves. */
#define ECHOD_UDP_MAX_SOCKETS 16
/* Default receive buffer: more than the largest UDP payload (65,527 bytes
   over IPv6, 65,507 over IPv4), so a UDP datagram is never truncated. */
#define ECHOD_UDP_RECV_SIZE 65536u
/* Defaults of the per-source rate limit (datagrams per second, burst). */
#define ECHOD_UDP_RATE  100u
#define ECHOD_UDP_BURST 200u
/* Default number of sources the rate limiter tracks one by one. */
#define ECHOD_UDP_SOURCES 4096u

struct echod_udp_config {
    uint64_t rate;    /* datagrams per second per source; 0 = no limit */
    uint64_t burst;   /* bucket size; 0 = max(rate, 1) */
    size_t sources;   /* rate-limiter table entries; 0 = default */
    bool any_port;    /* answer the loop-prone source ports too */
    size_t recv_size; /* receive buffer per datagram; 0 = default (tests
                         make it small to provoke truncation) */
    bool trace;       /* tell every datagram on stderr */
    /* --udp-drop (faults.h): the share of datagrams dropped, drawn from
       drop_seed, each drop counted in *dropped (NULL: not counted). */
    uint32_t drop_ppm;
    uint64_t drop_seed;
    uint64_t *dropped;
};

struct echod_udp_stats {
    uint64_t received, echoed, bytes_in, bytes_out;
    uint64_t truncated;      /* longer than the buffer: never echoed */
    uint64_t dropped_port0;  /* source port 0: no reply is possible */
    uint64_t dropped_port;   /* loop-prone source port (or our own) */
    uint64_t dropped_group;  /* sent to a broadcast or multicast address */
    uint64_t dropped_rate;   /* over the per-source rate */
    uint64_t dropped_noaddr; /* Unix datagram from an unbound socket */
    uint64_t send_refused;   /* ECONNREFUSED, from the reply or an ICMP */
    uint64_t send_too_big;   /* EMSGSIZE */
    uint64_t send_nobufs;    /* ENOBUFS, EAGAIN: the send queue was full */
    uint64_t send_other;     /* any other send error */
};

struct echod_udp;

/*
 * Creates the datagram service on `loop` (borrowed; must outlive it);
 * `cfg` is copied. Buffers are allocated here, once. Returns 0 and the
 * service in *out, or -ENOMEM / -EINVAL.
 */
int echod_udp_new(struct iomux_loop *loop, const struct echod_udp_config *cfg,
                  struct echod_udp **out);

/*
 * Serves the bound datagram socket `fd` (UDP with pktinfo enabled, or
 * Unix). Takes ownership of fd on success only. Returns 0, -ENOSPC (too
 * many sockets) or the error of iomux_fd_watch().
 */
int echod_udp_add(struct echod_udp *u, int fd);

/* Number of sockets served. */
size_t echod_udp_count(const struct echod_udp *u);

/* The i-th datagram socket (i < echod_udp_count()), for an upgrade. */
int echod_udp_fd(const struct echod_udp *u, size_t i);

void echod_udp_stats(const struct echod_udp *u, struct echod_udp_stats *out);

/* Bytes of datagrams it holds between receiving and echoing them: its
   receive batch, allocated once (nothing is queued beyond it). */
size_t echod_udp_buffered(const struct echod_udp *u);

/* One statistics line, "echod: udp stats: ...", for SIGUSR1. */
void echod_udp_print_stats(const struct echod_udp *u, FILE *f);
/* The same line for `s` (with workers: the sum of theirs). */
void echod_udp_print_stats_of(const struct echod_udp_stats *s, FILE *f);

/* Stops watching, closes the sockets and frees the service. NULL is a
   no-op. */
void echod_udp_free(struct echod_udp *u);

/* 1 if `port` is one of the loop-prone service ports refused by default. */
int echod_udp_port_refused(unsigned port);

/* The refused ports as --help shows them ("7, 11, ...", on two lines, the
   second indented by two spaces). */
extern const char echod_udp_refused_ports_text[];

#endif /* ECHOD_UDP_H */
