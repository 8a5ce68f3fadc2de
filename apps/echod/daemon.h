/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - what echod needs to live under a service manager: sockets
 * passed by systemd (LISTEN_FDS), inetd mode, dropping root after
 * binding, Unix-domain socket files, and a per-address connection count.
 * Each function that can fail prints `echod: what: why` itself and returns
 * a negative errno (-EINVAL: a usage error, printed with the --help hint)
 * or 0.
 */
#ifndef ECHOD_DAEMON_H
#define ECHOD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <iomux/net.h>

/* First descriptor systemd passes (SD_LISTEN_FDS_START). */
#define ECHOD_LISTEN_FDS_START 3
/* Most passed sockets echod takes. */
#define ECHOD_MAX_PASSED 32

/* One socket passed by the service manager. */
struct echod_passed {
    int fd;
    int type;      /* SOCK_STREAM or SOCK_DGRAM (SO_TYPE) */
    int family;    /* AF_INET, AF_INET6, AF_UNIX */
    char name[64]; /* from LISTEN_FDNAMES, or "" */
};

/*
 * Socket activation (the sd_listen_fds() protocol, without libsystemd):
 * when LISTEN_PID is this process and LISTEN_FDS is N, descriptors 3..3+N-1
 * are ours. Each is checked (a socket, listening if it is a stream) and
 * made non-blocking and close-on-exec; the variables are removed from the
 * environment so that children do not take them for theirs. Stores up to
 * ECHOD_MAX_PASSED sockets in out[] and their number in *n (0: not
 * activated). Returns 0 or -errno.
 */
int echod_activation(struct echod_passed *out, size_t *n);

/*
 * --inetd: the connection is on stdin (and stdout, the same socket, as
 * inetd passes it). Checks that fd 0 is a connected stream socket, makes
 * it non-blocking, and points stdout (and stderr, when it is the same
 * socket) at /dev/null so that nothing echod prints can get into the
 * echo. Stores the connection's fd (0) in *fd and its peer in *peer.
 * Returns 0 or -errno.
 */
int echod_inetd_setup(int *fd, struct iomux_addr *peer);

/* --user NAME: who to become, looked up before anything is bound. */
struct echod_user {
    const char *name; /* borrowed from argv */
    uid_t uid;
    gid_t gid;
};

/* Finds NAME in the user database: 0, or -errno (-ENOENT: no such user)
   after saying so. */
int echod_user_lookup(const char *name, struct echod_user *u);

/*
 * Switches to u's uid, gid and supplementary groups (group first: once the
 * uid changed there is no right left to change it). Then checks that root
 * cannot be had back. Already u, and not root (the new echod of an
 * upgrade, started by one that dropped root), there is nothing to do.
 * Returns 0, or -errno after printing why: echod must not keep running as
 * root when it was asked not to.
 */
int echod_user_switch(const struct echod_user *u);

/*
 * Binds a Unix-domain socket for "unix:PATH" (`opt` names the option in
 * messages): a stale socket file is replaced, a live one is an error.
 * The path is remembered (with a descriptor of its directory) and removed
 * by echod_unix_cleanup(). Stores the fd in *fd. Returns 0 or -errno.
 */
int echod_unix_bind(const char *opt, const char *text, int type, int *fd);

/* Removes the socket files echod made, if they are still the ones it
   made (a newer echod may have replaced a file it thought stale); says so
   in one line for each it could not remove (after --user, a directory
   that user may not write to). */
void echod_unix_cleanup(void);

/* An upgrade: the socket file at `path`, bound by the old echod, is this
   process's to remove at exit (echod_unix_cleanup()) from now on. */
void echod_unix_adopted(const char *path);

/* An upgrade: the socket files are the new echod's; this process leaves
   them at exit. */
void echod_unix_forget(void);

/* 1 if `text` names a Unix-domain socket ("unix:..."). */
int echod_is_unix(const char *text);

/* A one-line explanation to add to a bind error, or "": EACCES on a port
   below 1024 means the port is privileged. */
const char *echod_bind_hint(int err, unsigned port);

/*
 * --max-conns-per-ip: open TCP connections per client address. Memory
 * grows only with the number of distinct addresses that have a connection
 * open (an entry is removed when its count falls to 0), so it is bounded
 * by the connections themselves.
 */
struct echod_perip;

int echod_perip_new(uint64_t limit, struct echod_perip **out); /* 0 or -ENOMEM */
void echod_perip_free(struct echod_perip *p);

/* Counts a new connection from `peer`: 0, -EDQUOT when the address is at
   its limit, or -ENOMEM. Non-IP peers (Unix sockets) are not counted. */
int echod_perip_acquire(struct echod_perip *p, const struct iomux_addr *peer);

/* Forgets a connection counted by echod_perip_acquire(). */
void echod_perip_release(struct echod_perip *p, const struct iomux_addr *peer);

#endif /* ECHOD_DAEMON_H */
