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

#include "iomux/export.h"

IOMUX_BEGIN_DECLS

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
 * Starts a non-blocking connect to `addr` with TCP_NODELAY set, or to a
 * Unix-domain stream socket when `addr` came from iomux_addr_unix(). Returns
 * 0 when connected at once, -EINPROGRESS when the caller must wait for
 * IOMUX_WRITE and then check iomux_socket_error(); *fd_out is set in both
 * cases and owned by the caller. Other negative errnos: no fd was made
 * (for a Unix socket, -EAGAIN means its listen backlog is full).
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

/*
 * UDP. iomux_udp_bind() creates a non-blocking, close-on-exec datagram
 * socket bound to `addr` (IPv6 sockets IPv6-only, as for TCP) and turns on
 * iomux_udp_enable_pktinfo(), so that each received datagram tells which
 * local address it was sent to. Stores the fd (owned by the caller) in
 * *fd_out. Errors: -EADDRINUSE, -EACCES (privileged port), ...
 */
int iomux_udp_bind(const struct iomux_addr *addr, int *fd_out);

/* Asks the kernel to report the destination address of every datagram
   (IP_PKTINFO or IPV6_RECVPKTINFO, by the socket's family): for sockets
   made elsewhere, such as socket-activated ones. 0 or a negative errno. */
int iomux_udp_enable_pktinfo(int fd);

/* Room for the control data of one received or sent datagram; buffers of
   this size must be aligned like struct cmsghdr. */
#define IOMUX_UDP_CONTROL_SIZE 64

/* Where a datagram was sent to: its destination address and the interface
   it came in on (from IP_PKTINFO / IPV6_PKTINFO). */
struct iomux_udp_dst {
    int family;             /* AF_INET or AF_INET6; 0 = not known */
    unsigned ifindex;       /* interface it arrived on */
    unsigned char addr[16]; /* IPv4 (4 bytes) or IPv6 destination address */
    unsigned char local[4]; /* IPv4 only: the local address the kernel would
                               answer from (ipi_spec_dst) */
};

/*
 * Finds the destination of a datagram in the control data recvmsg() (or
 * recvmmsg()) filled in `msg`. Returns 0, or -ENOENT when the control data
 * holds no packet information (pktinfo not enabled, or not IP).
 */
int iomux_udp_dst_get(const struct msghdr *msg, struct iomux_udp_dst *out);

/*
 * 1 if the destination is not one host: IPv4 limited broadcast or a
 * subnet broadcast (the kernel then answers from another address),
 * multicast, or an unspecified address. An echo must not answer those
 * (one datagram would draw replies from every host, the "fraggle" attack).
 */
int iomux_udp_dst_is_group(const struct iomux_udp_dst *dst);

/*
 * Writes into `ctl` (IOMUX_UDP_CONTROL_SIZE bytes, cmsghdr-aligned) the
 * control data that makes sendmsg() send from `dst`'s address, so that a
 * reply leaves from the address the request came to (which matters for
 * 0.0.0.0 and :: sockets on hosts with several addresses). Returns the
 * length to put in msg_controllen, or 0 when `dst` is not known.
 */
size_t iomux_udp_dst_control(const struct iomux_udp_dst *dst, void *ctl, size_t size);

/*
 * Unix-domain sockets. iomux_addr_unix() parses "unix:PATH" (PATH
 * non-empty and short enough for sun_path) into *out: -EINVAL when the
 * text does not start with "unix:" or the path is empty, -ENAMETOOLONG.
 * iomux_addr_format() writes such an address back as "unix:PATH".
 */
int iomux_addr_unix(const char *text, struct iomux_addr *out);

/*
 * Creates a non-blocking, close-on-exec Unix-domain socket of `type`
 * (SOCK_STREAM: listening with the system's maximum backlog; SOCK_DGRAM:
 * bound) at the address `addr` made by iomux_addr_unix(). A socket file
 * already at that path is probed first, without connecting to its owner
 * (a datagram socket's connect(): a live server never sees the probe): if
 * nobody is bound to it (connect() is refused: its owner died without
 * removing it) it is removed and replaced; if somebody is, the result is
 * -EADDRINUSE and nothing is touched. A path holding anything but a socket gives -EEXIST. Stores
 * the fd (owned by the caller) in *fd_out; removing the file when done is the caller's business.
 */
int iomux_unix_listen(const struct iomux_addr *addr, int type, int *fd_out);

IOMUX_END_DECLS

#endif /* IOMUX_NET_H */
