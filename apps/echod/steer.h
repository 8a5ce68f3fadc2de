/* SPDX-License-Identifier: MIT */
/*
 * steer.h - echod --workers N --steer cpu: worker K runs pinned to the K-th CPU of echod's
 * affinity mask, and every TCP listener's SO_REUSEPORT group runs a classic BPF program
 * (SO_ATTACH_REUSEPORT_CBPF) that picks, for each new connection, the socket of the worker
 * pinned to the CPU that processed its SYN: the connection's packets, its wake-ups and its
 * echoes then stay on one CPU. A SYN processed on a CPU no worker is pinned to is spread by
 * the kernel's hash, as without the program. Datagram sockets keep their steering by source
 * address (server.c), which --udp-rate needs.
 */
#ifndef ECHOD_STEER_H
#define ECHOD_STEER_H

struct echod;
struct echod_server;

/* Before the workers start, on the main thread: with --steer cpu, the CPU each worker will be
   pinned to (s->cpus; NULL without). 0, -EINVAL after a usage error (more workers than CPUs),
   or -errno (said). */
int echod_steer_plan(struct echod_server *s);

/* On worker `worker`'s own thread, before it binds: pins it to its CPU (nothing without
   --steer cpu). 0 or -errno (said). */
int echod_steer_pin(struct echod_server *s, unsigned worker);

/* With `fd` the listening TCP socket of worker `d` (bound or handed over by an upgrade): the
   last worker attaches the program to the group, which holds every worker's socket by then,
   in the workers' order. 0 or -errno (said). */
int echod_steer_listener(const struct echod *d, int fd, const char *shown);

/* The start-up line saying which worker runs on which CPU (nothing without --steer cpu). */
void echod_steer_say(const struct echod_server *s);

#endif /* ECHOD_STEER_H */
