/* SPDX-License-Identifier: MIT */
/*
 * upgrade.h - SIGUSR2: hand every listening socket to a new echod binary
 * (the nginx binary-upgrade model) without dropping a connection.
 *
 * The old echod forks and executes the binary it was started from (the
 * path resolved at start-up; /proc/self/exe would name the deleted inode
 * after a package upgrade) with the same arguments. Its sockets are passed
 * the way socket activation passes them: descriptors 3.. with LISTEN_FDS,
 * LISTEN_PID (the child's) and LISTEN_FDNAMES, each name the socket's role:
 *
 *   listen   each --listen, in command-line order
 *   udp      each --udp, in command-line order
 *   agent    --agent, if given
 *   metrics  --metrics, if given
 *   passed   a socket systemd passed to the old echod (kept plain)
 *
 * in that order, address-major: with --workers N each TCP or UDP address
 * has N sockets (each worker's own SO_REUSEPORT one), consecutive, worker
 * 0 first; a Unix socket's path has one (the first worker's). The new echod
 * matches them to its own options by that order (its worker k takes the
 * k-th socket of each address), and checks each against the address given
 * (family, and the whole address unless the port is 0), so it keeps every
 * per-listener setting (proxy=). It takes every socket or fails to start:
 * the same options and --workers are needed, since a socket left untaken
 * would be closed with the connections in its accept queue. ECHOD_UPGRADE_FD names
 * the write end of a pipe: the new echod writes one byte there once it
 * serves. Only then does the old one stop accepting and drain.
 */
#ifndef ECHOD_UPGRADE_H
#define ECHOD_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"

#include "daemon.h"

struct echod;
struct echod_server;

/* LISTEN_FDNAMES roles (see above). */
#define ECHOD_ROLE_LISTEN  "listen"
#define ECHOD_ROLE_UDP     "udp"
#define ECHOD_ROLE_AGENT   "agent"
#define ECHOD_ROLE_METRICS "metrics"
#define ECHOD_ROLE_PASSED  "passed"

/* The variable naming the new echod's end of the readiness pipe. */
#define ECHOD_UPGRADE_ENV "ECHOD_UPGRADE_FD"

/* How long the new echod has to say it serves before it is killed and the
   upgrade given up. */
#define ECHOD_UPGRADE_READY_MS 10000u

/*
 * At start-up, before anything else: remembers argv (borrowed, for the
 * life of the process) and the absolute path of the binary, and, in the
 * new echod of an upgrade, takes ECHOD_UPGRADE_FD out of the environment.
 * 0, or -errno after saying why.
 */
int echod_upgrade_init(int argc, char **argv);

/* Before binding: the options and worker count the handed-over sockets are
   matched against. */
void echod_upgrade_layout(const struct echod_options *opt, unsigned nworkers);

/* Before echod_activation(): whether this is the new echod of an upgrade
   handed sockets by role (not systemd's passed on), which --workers serves
   as bound ones. */
bool echod_upgrade_keeps_workers(void);

/*
 * After echod_activation(): in the new echod of an upgrade, moves the
 * sockets named by a role out of passed[] (updating *n) for
 * echod_upgrade_take(); what is left (named "passed") is served as socket
 * activation serves it.
 */
void echod_upgrade_adopt(struct echod_passed *passed, size_t *n);

/*
 * The next handed-over socket, for the option `role` given as `text`:
 * 1 and its fd in *fd, 0 when this is no upgrade (bind as usual), or
 * -errno after saying why (the old echod passed something else: its
 * command line was not the same).
 */
int echod_upgrade_take(const char *role, const char *text, int *fd);

/* The same for option number `index` of its role, on worker `worker`. */
int echod_upgrade_take_for(const char *role, const char *text, size_t index, unsigned worker,
                           int *fd);

/* The new echod serves: tells the old one (nothing when not upgrading),
   and says so unless --quiet. */
void echod_upgrade_ready(const struct echod_options *opt);

/* SIGUSR2: starts an upgrade, or says in one line why not. */
void echod_upgrade_start(struct echod *d);

/* The same with workers, on the main thread; `stopping`: a SIGINT, SIGTERM
   or SIGQUIT was seen. On success every worker is told to hand over
   (echod_server_hand_over()). */
void echod_upgrade_start_workers(struct echod_server *s, bool stopping);

/* The upgrade's new echod serves (echod.c): stop accepting, close this
   process's copies of the sockets, let open connections run to their end,
   cut them when the grace period is over. */
void echod_hand_over(struct echod *d);

/* Between upgrade.c and upgrade_take.c: echod_upgrade_init()'s part for
   the new echod (ECHOD_UPGRADE_FD); whether systemd passed this echod its
   sockets (handed over plain then). */
int echod_upgrade_init_new(void);
bool echod_upgrade_activated(void);

#endif /* ECHOD_UPGRADE_H */
