/* SPDX-License-Identifier: MIT */
/*
 * tls.h - a small non-blocking TLS layer (OpenSSL 3) for the tools, over
 * a connected socket fd that the caller watches on its iomux loop.
 *
 * Two objects: a `tls_ctx` (one per tool or per listener: an SSL_CTX with
 * its certificates, verification, ALPN list and protocol range, built once
 * from a config) and a `tls_conn` (one per connection: an SSL on the fd).
 * Every operation on a tls_conn returns at once with one of enum
 * tls_status; the caller never blocks and drives its watch mask from it:
 *
 *   TLS_OK          done (bytes moved: see *n)
 *   TLS_WANT_READ   call again with the same arguments when the fd is
 *                   readable (SSL_ERROR_WANT_READ)
 *   TLS_WANT_WRITE  ... when the fd is writable (SSL_ERROR_WANT_WRITE); a
 *                   read can want a write (a TLS 1.3 KeyUpdate reply) and
 *                   a write can want a read (a handshake message)
 *   TLS_CLOSED      the peer sent close_notify: no more bytes from it
 *   TLS_EOF         the TCP connection ended without close_notify (a
 *                   truncation the caller may or may not forgive)
 *   TLS_ERROR       failed; tls_conn_error() says why in one line
 *                   (OpenSSL's reason string, or the certificate check's)
 *
 * A write that returned WANT_* is retried with at least as many bytes;
 * the buffer may move (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) and a write
 * may take part of them (SSL_MODE_ENABLE_PARTIAL_WRITE), so a caller's
 * ring buffer works as for send(). Reads go through OpenSSL's record
 * buffer without read-ahead: a 16 KiB read buffer (the largest record)
 * consumes whole records, so nothing decrypted waits inside OpenSSL while
 * the socket looks idle to a level-triggered loop; reading until
 * TLS_WANT_READ is still the simplest rule. Idle connections give their
 * 34 KiB of record buffers back (SSL_MODE_RELEASE_BUFFERS).
 *
 * Half-close: tls_conn_shutdown() sends our close_notify (TLS_OK once it
 * is on the wire, WANT_WRITE until then); reading goes on until
 * TLS_CLOSED or the TCP EOF, as an echo client needs.
 *
 * echod, readiness engine (later): a TLS listener holds a server tls_ctx
 * (tls_ctx_server(), read before dropping privileges; SIGHUP builds a new
 * one and swaps it for new connections, the old one freed when its last
 * conn goes: SSL_CTX is reference counted by OpenSSL). On accept it makes
 * a tls_conn on the fd and keeps the stream in a HANDSHAKE state with a
 * deadline timer; the stream layer needs three hooks in place of
 * recv/send/shutdown (read_some, write_some, close_write) returning this
 * status, and its mask is IOMUX_READ|IOMUX_WRITE as the last WANT_* says,
 * plus its own backpressure. Echoing is tls_read into the stream buffer,
 * tls_write from it; EOF is TLS_CLOSED; the drain is tls_conn_shutdown
 * then shutdown(SHUT_WR).
 *
 * io_uring engine: OpenSSL can run on memory BIOs (BIO_new_bio_pair or two
 * BIO_s_mem) instead of the fd: the ring's recv completions are written
 * into the read BIO, SSL_read/SSL_write run on them, and what SSL wrote is
 * taken from the write BIO and sent with a ring send. WANT_READ then means
 * "post another recv", WANT_WRITE cannot happen (the BIO grows), and
 * backpressure is the bytes pending in the write BIO. Not implemented:
 * tls_conn takes an fd only; a `tls_conn_new_bio()` would be the addition.
 */
#ifndef IOMUX_APPS_TLS_H
#define IOMUX_APPS_TLS_H

#include <stdbool.h>
#include <stddef.h>

enum tls_status {
    TLS_OK = 0,
    TLS_WANT_READ = 1,
    TLS_WANT_WRITE = 2,
    TLS_CLOSED = 3,
    TLS_EOF = 4,
    TLS_ERROR = -1,
};

/* Protocol versions for tls_*_config.version; 0 is TLS 1.2 or 1.3. */
enum tls_version { TLS_VERSION_ANY = 0, TLS_VERSION_12 = 12, TLS_VERSION_13 = 13 };

struct tls_client_config {
    const char *ca_file;   /* trusted CAs (PEM); NULL: the system's */
    bool insecure;         /* no verification at all */
    const char *host;      /* name to verify and send as SNI (an IP address is
                              verified, not sent); NULL: none */
    const char *cert_file; /* client certificate chain for mutual TLS, or NULL */
    const char *key_file;  /* its private key (NULL: in cert_file) */
    const char *alpn;      /* "a,b": protocols to offer, or NULL */
    int version;           /* enum tls_version */
};

struct tls_server_config {
    const char *cert_file;      /* certificate chain (PEM), leaf first */
    const char *key_file;       /* its private key (NULL: in cert_file) */
    const char *client_ca_file; /* mutual TLS: a client certificate signed by
                                   these is required; NULL: not asked for */
    const char *alpn;           /* "a,b": protocols accepted, in preference
                                   order; a client offering none is refused */
    int version;                /* enum tls_version */
};

struct tls_ctx;
struct tls_conn;

/* Build a context; 0, or -1 with one line in err such as
   "certificate chain server.pem: No such file or directory" or
   "private key k.pem does not match the certificate in c.pem". */
int tls_ctx_client(struct tls_ctx **out, const struct tls_client_config *cfg, char *err,
                   size_t errsize);
int tls_ctx_server(struct tls_ctx **out, const struct tls_server_config *cfg, char *err,
                   size_t errsize);
void tls_ctx_free(struct tls_ctx *ctx);

/* Checks an ALPN list ("a,b", each 1..255 bytes): 0, or -1 with err. */
int tls_alpn_check(const char *list, char *err, size_t errsize);

/* A connection on the connected fd (which stays the caller's to close),
   client or server as the context is. NULL when out of memory. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd);
void tls_conn_free(struct tls_conn *c);

int tls_conn_handshake(struct tls_conn *c);
int tls_conn_read(struct tls_conn *c, void *buf, size_t len, size_t *n);
int tls_conn_write(struct tls_conn *c, const void *buf, size_t len, size_t *n);
int tls_conn_shutdown(struct tls_conn *c);

/* The errno of the last TLS_ERROR when a system call failed (ECONNRESET,
   EPIPE...), else 0. */
int tls_conn_errno(const struct tls_conn *c);

/* The fd given to tls_conn_new(). */
int tls_conn_fd(const struct tls_conn *c);

/* Lets OpenSSL read as much as the socket has (one recv() for many small
   records) instead of a record at a time. Decrypted or buffered bytes then
   wait inside it with no readiness on the fd: only for callers that ask
   tls_conn_pending() after each read, as the stream transport does. */
void tls_conn_read_ahead(struct tls_conn *c);

/* Non-zero when OpenSSL holds bytes read from the fd and not yet returned
   (SSL_has_pending: possibly only part of a record). */
int tls_conn_pending(const struct tls_conn *c);

/* After the handshake: 1 if it resumed an earlier session, else 0. */
int tls_conn_resumed(const struct tls_conn *c);

/* Client session resumption. A session to offer again is known only once
   the server's ticket has been read (TLS 1.3 sends it after the
   handshake): tls_conn_session() after some application bytes were read
   gives it (a reference the caller frees), or NULL if there is none that
   can resume. tls_conn_offer_session(), before the handshake, offers one
   (the conn takes its own reference): 0, or -1 if it does not fit. */
struct tls_session;
struct tls_session *tls_conn_session(const struct tls_conn *c);
int tls_conn_offer_session(struct tls_conn *c, struct tls_session *s);
void tls_session_free(struct tls_session *s);

/* The reason of the last TLS_ERROR, one line; "" before any. */
const char *tls_conn_error(const struct tls_conn *c);

/* After the handshake: "TLSv1.3, TLS_AES_256_GCM_SHA384, ALPN echo",
   plus ", client CN=..." on a server that verified one. */
void tls_conn_describe(const struct tls_conn *c, char *buf, size_t size);

/* At exit, after every ctx and conn is freed: OpenSSL's global state goes,
   so leak checkers see only ours. No TLS call may follow. */
void tls_library_cleanup(void);

/*
 * On the iomux loop (tls_stream.c): a handshake with a deadline, then an
 * iomux stream whose bytes go through the connection.
 *
 *   tls_handshake_start(&h, loop, conn, 10000, done, data);
 *   ... done(conn, 0, data): unwatched again, the fd is the caller's:
 *   iomux_stream_new(loop, pool, fd, &opts, &stream);
 *   iomux_stream_set_transport(stream, &tls_stream_transport, conn);
 *
 * The stream then owns the conn (tls_conn_free() when it is freed, after
 * on_close, which may still read tls_conn_error()). Its errors: a peer's
 * TCP end without close_notify is IOMUX_STREAM_TRUNCATED, a TLS failure
 * -EPROTO with the reason in tls_conn_error(). Its end (iomux_stream_end,
 * or after the peer's close_notify) sends close_notify, then the FIN.
 * A conn whose handshake has not finished works too (OpenSSL finishes it
 * on the first read or write), but nobody then watches the deadline.
 */
#include <stdint.h>

#include <iomux/loop.h>
#include <iomux/stream.h>

extern const struct iomux_stream_transport tls_stream_transport;

/* The handshake's end: 0 done, -ETIMEDOUT past the deadline, -EPROTO
   failed (tls_conn_error() says why), IOMUX_STREAM_TRUNCATED the peer
   closed during it. The fd is unwatched and the conn still the caller's. */
typedef void tls_handshake_cb(struct tls_conn *conn, int status, void *data);

/* The caller's, for the handshake's duration (fields private). */
struct tls_handshake {
    struct iomux_loop *loop;
    struct tls_conn *conn;
    uint64_t timer;
    tls_handshake_cb *cb;
    void *data;
};

/* Watches the conn's fd and drives its handshake; calls cb once, from the
   loop (never from here). 0, or a negative errno from the loop (nothing
   is watched then). */
int tls_handshake_start(struct tls_handshake *h, struct iomux_loop *loop, struct tls_conn *conn,
                        uint64_t timeout_ms, tls_handshake_cb *cb, void *data);

/* Stops it without calling cb (the conn and fd stay the caller's). */
void tls_handshake_cancel(struct tls_handshake *h);

#endif /* IOMUX_APPS_TLS_H */
