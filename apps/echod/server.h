/* SPDX-License-Identifier: MIT */
/*
 * server.h - echod with --workers N (N > 1): what the whole process shares.
 *
 * Each worker is a struct echod of its own, run by its own thread: its loop, its engine, its
 * SO_REUSEPORT listening and datagram sockets, its connections, timers and counters. The
 * server (server.c) owns the options, the workers and their threads, the limits that hold for
 * the whole process (an atomic count of open connections for --max-conns, the
 * --max-conns-per-ip table behind a mutex taken only at accept and close), the signals (the
 * main thread gets them and tells the workers through their async handles), and the totals
 * SIGUSR1 and --metrics show, from snapshots each worker publishes when asked. With one worker
 * (the default) there is no server: d->server is NULL and echod runs as it always did.
 */
#ifndef ECHOD_SERVER_H
#define ECHOD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <iomux/net.h>

#include "faults.h"
#include "options.h"
#include "udp.h"

struct echod;
struct echod_server;

/* One worker's counters (or their sum), as SIGUSR1 and --metrics show them. */
struct echod_counters {
    uint64_t open, total, bytes_in, bytes_out, idle_closed, resets, errors;
    uint64_t refused_max, refused_perip, refused_fds, refused_watch, shed_memory;
    uint64_t buffered, max_buffered, chunks_in_use, chunks_cached;
    uint64_t proxy[6], npending;   /* struct echod_proxy_stats, in its order */
    uint64_t tls[5], ntls_pending; /* struct echod_tls_stats, in its order */
    /* --splice (struct splice_stats): bytes, copies for want of a pipe, pipes open, lent, bound */
    uint64_t spliced, no_pipe, pipes, pipes_lent, pipes_max;
    uint64_t faults[FAULT_KINDS]; /* fired, by kind (faults.h) */
    struct echod_udp_stats udp;
    bool has_udp;
    char engine[512]; /* the engine's part of the line ("; ..."); not summed */
};

/* --workers: how many workers `opt` asks for (auto: the CPUs echod may run on). */
unsigned echod_workers_wanted(const struct echod_options *opt);

/* Runs echod with `nworkers` (> 1) workers until SIGINT/SIGTERM and the drain, as echod_new()
   and echod_run() do for one. 0, or -errno (said; -EINVAL: a usage error). */
int echod_server_main(const struct echod_options *opt, unsigned nworkers);

/* --max-conns (for the whole process with workers): takes a slot for a connection about to be
   admitted, false when there is none left. echod_slot_give() returns it. */
bool echod_slot_take(struct echod *d);
void echod_slot_give(struct echod *d);

/* --max-conns-per-ip, the table shared by every worker. */
int echod_perip_take(struct echod *d, const struct iomux_addr *peer);
void echod_perip_give(struct echod *d, const struct iomux_addr *peer);

/* A connection starts (+1) or stops (-1) waiting for its PROXY header: with workers, it counts
   toward --max-conns for the whole process. */
void echod_pending_count(struct echod *d, int delta);

/* Whether the worker may end once drained: the first, which serves --agent and --metrics,
   only as the last one. */
bool echod_may_end(const struct echod *d);

/* Connections open (and waiting for a PROXY header) that count toward --max-conns: the
   worker's own, or the whole process's with workers. */
uint64_t echod_conns_counted(const struct echod *d);

/* `d`'s counters, on its own thread. */
void echod_counters_of(struct echod *d, struct echod_counters *out);

/* The SIGUSR1 line up to the PROXY and engine parts (no newline): "echod: stats: LABEL; ...". */
void echod_print_counters(FILE *f, const char *label, const struct echod_counters *c);

/* --metrics with workers: a copy of `d` whose counters are the whole process's (on d's
   thread). `d` itself without workers. Either way *sum gets the counters it shows. */
const struct echod *echod_totals_view(struct echod *d, struct echod_counters *sum);

/* Puts the counters of `c` in the statistics fields of `v` (a struct echod made to be shown:
   the totals view, the SIGUSR1 totals line). */
void echod_counters_view(struct echod *v, const struct echod_counters *c);

/* The --splice part of `c` (zero without --splice). */
struct splice_stats;
void echod_counters_splice(const struct echod_counters *c, struct splice_stats *out);

/* A socket bound to `addr` with SO_REUSEPORT (listening if SOCK_STREAM, with pktinfo if
   SOCK_DGRAM), so that every worker binds the same address. 0 or -errno. */
int echod_reuseport_socket(const struct iomux_addr *addr, int type, bool first, int *fd_out);

/* With the last worker's datagram socket `fd` bound: datagrams are steered to the workers by
   source address, so that --udp-rate holds per source. */
void echod_udp_steer(const struct echod *d, int fd);

/* The address worker 0 bound for --listen (`udp` false) or --udp number `index`, for the other
   workers to bind the same port when the option said port 0. */
void echod_worker_addr(const struct echod *d, bool udp, size_t index, struct iomux_addr *addr);

/* SIGHUP with workers, on a worker's thread once it has read its TLS files again: the lines
   the first worker would say are kept, and the server says them once every worker has read. */
#define ECHOD_RELOAD_SAID_MAX 4096
void echod_worker_reloaded(struct echod *d, const char *said);

/* --trace with workers: each line says which worker wrote it (stderr is replaced by a stream
   that prefixes "[worker N] " to the lines of worker threads that do not start "echod:"). */
int echod_tag_stderr(void);
void echod_tag_thread(unsigned worker);

#endif /* ECHOD_SERVER_H */
