/* SPDX-License-Identifier: MIT */
/*
 * iomux/net.h - socket helpers shared by the apps: strict address parsing
 * and formatting, and non-blocking, close-on-exec TCP listen/accept/connect.
 * Independent of the loop; every function returns 0 or a negative errno.
 */
#ifndef IOMUX_NET_H
#define IOMUX_NET_H

#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A socket address of any family, with its length. */
struct iomux_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Longest text iomux_addr_format() writes, NUL included
   ("[ffff:...:ffff%scope]:65535"). */
#define IOMUX_ADDR_STRLEN 80

/*
 * Parses "HOST:PORT" or "[IPV6]:PORT" into *out. HOST is a numeric IPv4 or
 * IPv6 address or a name resolved with getaddrinfo() (the first result;
 * "localhost" gives 127.0.0.1 as Python's socket module does). PORT is a
 * decimal number 0..65535 and nothing else. Returns 0, or -EINVAL for text
 * that is not of that form (nothing is guessed), or -ENOENT when the name
 * does not resolve (-EAGAIN: the resolver failed for now, -ENOMEM).
 * Refused as -EINVAL: a bare IPv6 address without brackets, an empty host,
 * IPv4 short forms such as "127.1", a port with a sign, space or letter.
 */
int iomux_addr_parse(const char *text, struct iomux_addr *out);

/* Writes "1.2.3.4:5" or "[::1]:5" into buf; returns 0 or -ENOSPC/-EAFNOSUPPORT. */
int iomux_addr_format(const struct iomux_addr *addr, char *buf, size_t size);

/* Host part and port of an address, for Python-style ('host', port) text. */
int iomux_addr_host(const struct iomux_addr *addr, char *buf, size_t size);
unsigned iomux_addr_port(const struct iomux_addr *addr);

/*
 * Creates a non-blocking, close-on-exec TCP socket bound to `addr` with
 * SO_REUSEADDR and listening with `backlog` (0 = the system maximum).
 * Stores the new fd (owned by the caller) in *fd_out. Errors: -EADDRINUSE,
 * -EACCES (privileged port), -EADDRNOTAVAIL, ...
 */
int iomux_tcp_listen(const struct iomux_addr *addr, int backlog, int *fd_out);

/*
 * Accepts one connection: the new fd is non-blocking, close-on-exec and
 * has TCP_NODELAY. *peer (may be NULL) gets the peer's address. Returns 0,
 * -EAGAIN when none is pending, -EMFILE/-ENFILE when out of descriptors,
 * or another negative errno (ECONNABORTED etc.: just try again).
 */
int iomux_tcp_accept(int listen_fd, struct iomux_addr *peer, int *fd_out);

/*
 * Starts a non-blocking connect to `addr` with TCP_NODELAY set. Returns 0
 * when connected at once, -EINPROGRESS when the caller must wait for
 * IOMUX_WRITE and then check iomux_socket_error(); *fd_out is set in both
 * cases and owned by the caller. Other negative errnos: no fd was made.
 */
int iomux_tcp_connect(const struct iomux_addr *addr, int *fd_out);

/*
 * Surviving descriptor exhaustion (the libuv trick). When accept() fails
 * with -EMFILE/-ENFILE the waiting clients stay in the backlog and the
 * listener stays readable, so a loop that simply retries spins. Keep a
 * spare descriptor from iomux_reserve_fd(); when out of descriptors, call
 * iomux_tcp_shed(): it releases the spare, accepts up to `max` waiting
 * clients with the room it makes and closes each at once (the client sees
 * its connection end instead of hanging), then takes the spare back.
 * Returns the number of clients shed (0: none could be accepted, so the
 * caller should stop watching the listener for a while), or -EBADF when
 * *reserve_fd < 0. *reserve_fd is -1 afterwards if the spare could not be
 * taken back.
 */
int iomux_reserve_fd(void); /* a close-on-exec fd (>= 0), or a negative errno */
int iomux_tcp_shed(int listen_fd, int *reserve_fd, int max);

/* The pending error of a socket (SO_ERROR) as a negative errno, or 0. */
int iomux_socket_error(int fd);

/* The local address a socket is bound to (for port 0 listeners). */
int iomux_socket_local(int fd, struct iomux_addr *out);

#ifdef __cplusplus
}
#endif

#endif /* IOMUX_NET_H */
