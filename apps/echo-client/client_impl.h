/* SPDX-License-Identifier: MIT */
/*
 * client_impl.h - what client.c (connections, parts, timeout) and
 * stream.c (--file: one stream, verified as it comes back) share inside
 * echo-client's engine. Not for main.c.
 */
#ifndef ECHO_CLIENT_IMPL_H
#define ECHO_CLIENT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <iomux/loop.h>

#include "client.h"
#include "sockopt.h"

struct tls_ctx;
struct tls_conn;

struct conn {
    struct client *client;
    int fd; /* -1 once closed */
    int connected;
    struct tls_conn *tls; /* --tls: the session on fd, or NULL */
    int handshaken;       /* --tls: the handshake is done */
    int read_wants_write; /* TLS: the last read waits for writability */
    int write_wants_read; /* TLS: the last write waits for readability */
    int peer_closed;      /* EOF or close_notify seen */
    size_t sent;          /* bytes of the current part sent so far */
    size_t received;      /* bytes of its echo received and checked so far */
    /* "('127.0.0.1', 54321)", as Python prints getsockname() */
    char name[IOMUX_ADDR_STRLEN + 32];
};

enum phase {
    PHASE_CONNECTING,
    PHASE_CONNECT_DELAY,
    PHASE_EXCHANGE, /* a part (or the --file stream) is being sent and echoed */
    PHASE_DELAY,    /* between two parts */
    PHASE_DONE,
};

/* --file: the input is read into `ring` and sent from it, and the echo is
   checked against it; a byte's room is reused once its echo is checked, so
   at most STREAM_RING bytes are in flight and the input is read no faster
   than the server echoes (its backpressure is ours). Offsets count from
   the start of the stream: checked <= sent <= read <= checked + RING. */
struct stream {
    int fd;      /* the input (the caller's), -1 in parts mode */
    int watched; /* a pipe or terminal: read once per readiness */
    int ready;   /* watched and reported readable since the last read */
    int eof;     /* the input is all read */
    int shut;    /* shutdown(SHUT_WR) done: the server has it all */
    unsigned char *ring;
    uint64_t read, sent, checked;
};

struct client {
    struct iomux_loop *loop;
    const struct client_options *opt;
    const struct client_parts *parts; /* NULL with --file */
    const struct iomux_addr *addr;
    struct conn *conns;
    unsigned n_connected;
    unsigned n_echoed; /* sockets holding the whole echo of the current part */
    size_t part;
    enum phase phase;
    int failed;
    uint64_t last_progress_ms;
    struct stream stream;
    struct tls_ctx *tls;       /* --tls, or NULL */
    struct sock_tuning tuning; /* what to set on each socket, beyond iomux_tcp_connect's */
    int tune;                  /* whether there is anything in it */
    char *err;
    size_t errsize;
};

/* Every read lands here: one buffer for the whole run, no allocation per
   message. 1024 as in the seed's recv(1024) would do; more is fewer calls. */
extern unsigned char client_read_buf[16384];

/* Records the first failure and stops the loop; later ones are consequences. */
void client_fail(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Something moved: the no-progress timeout starts again. */
void client_progress(struct client *c);

/* Success: says "closing socket" for each, closes them, stops the loop. */
void client_finish(struct client *c);

/* Writes echoed bytes to standard output, whole (blocking, as nc does:
   a slow reader of our output slows the run). 0, or -1 after client_fail. */
int client_output(struct client *c, const void *buf, size_t n);

/* How many leading bytes of `got` equal those of `want`. */
size_t client_same_prefix(const unsigned char *want, const unsigned char *got, size_t n);

/* stream.c: --file. Sets up c->stream for reading `fd` (0, or -errno
   after filling c->err); starts it once connected; handles the socket's
   events; says how far it got; frees what it took. */
int stream_init(struct client *c, int fd);
void stream_start(struct client *c);
void stream_on_event(struct conn *k, unsigned events);
void stream_describe(const struct client *c, char *buf, size_t size);
int stream_waits_for_input(const struct client *c); /* the server has nothing to do */
void stream_free(struct client *c);

/* conn_io.c: a connection's bytes, plain or over TLS. The --tls context
   (0, or -1 after client_fail) and its end; the handshake, driven by the
   socket's events (1 done or no TLS, 0 waiting, -1 after client_fail);
   recv/send/shutdown(SHUT_WR) alike (-1 with errno; EAGAIN to wait,
   EPROTO for a TLS failure that conn_strerror() words); the watch mask
   for a socket that reads always and writes when want_send; whether a
   read of n bytes may have left more; and closing the session. */
int conn_tls_init(struct client *c);
void conn_tls_free(struct client *c);
int conn_handshake(struct conn *k);
ssize_t conn_recv(struct conn *k, void *buf, size_t len);
ssize_t conn_send(struct conn *k, const void *buf, size_t len);
int conn_close_write(struct conn *k);
unsigned conn_mask(const struct conn *k, int want_send);
int conn_read_more(const struct conn *k, size_t n);
const char *conn_strerror(const struct conn *k, int err);
void conn_release(struct conn *k);

#endif /* ECHO_CLIENT_IMPL_H */
