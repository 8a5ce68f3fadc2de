/* SPDX-License-Identifier: MIT */
/*
 * test_tls_stream.c - TLS on iomux streams (apps/common/tls_stream.c) on
 * the backend named by argv[1]: a client and a server in one loop over a
 * socket pair, each through tls_handshake_start() and then a stream with
 * tls_stream_transport. Echoes of 1 B to 16 MiB byte for byte on TLS 1.2
 * and 1.3, ended by close_notify both ways; mutual TLS with a good, a
 * missing and a wrong client certificate; a truncation (the FIN without
 * close_notify); a handshake past its deadline. Certificates are made at
 * run time. Exits 77 in a build without TLS.
 */
#include "test_util.h"

#ifndef IOMUX_HAVE_TLS
int main(void)
{
    fprintf(stderr, "SKIPPED: this build has no TLS (OpenSSL 3 not found)\n");
    return 77;
}
#else

#include <iomux/buf.h>
#include <iomux/stream.h>

#include "tls.h"
#include "tls_certs.h"

static const char *backend;

enum mode { ECHO, TRUNCATE, CLIENT_SILENT };

struct end {
    struct rig *r;
    int server;
    struct tls_conn *conn; /* ours until the stream owns it, then borrowed */
    int conn_given;        /* the stream owns conn */
    struct tls_handshake hs;
    int hs_status, hs_done;
    char desc[300], why[200];
    struct iomux_stream *s;
    int closes, close_error;
    size_t sent, got; /* client: pattern bytes sent, echo bytes checked */
    int bad;
};

struct rig {
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool;
    enum mode mode;
    size_t total;
    struct end c, s;
};

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 131u + (i >> 11));
}

/* The client keeps up to 64 KiB queued until it has sent `total`. */
static void client_pump(struct end *e)
{
    unsigned char buf[16384];
    while (e->sent < e->r->total && iomux_stream_queued(e->s) < 65536) {
        size_t n = e->r->total - e->sent < sizeof buf ? e->r->total - e->sent : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(e->sent + i);
        if (!CHECK_OK(iomux_stream_write(e->s, buf, n)))
            return;
        e->sent += n;
    }
}

static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct end *e = data;
    if (e->server) {
        (void)iomux_stream_write(s, bytes, len);
        return;
    }
    for (size_t i = 0; i < len && !e->bad; i++)
        if ((unsigned char)bytes[i] != pattern(e->got + i)) {
            e->bad = 1;
            CHECK_EQ_U64(e->got + i, (size_t)-1); /* where it differs */
        }
    e->got += len;
    if (e->got == e->r->total)
        iomux_stream_end(s); /* close_notify, then the FIN */
}

static void on_drain(struct iomux_stream *s, void *data)
{
    struct end *e = data;
    if (!e->server)
        client_pump(e);
}

static void on_close(struct iomux_stream *s, int error, void *data)
{
    struct end *e = data;
    e->closes++;
    e->close_error = error;
    if (error == -EPROTO)
        snprintf(e->why, sizeof e->why, "%s", tls_conn_error(e->conn));
    e->s = NULL;
}

static void on_handshake(struct tls_conn *conn, int status, void *data)
{
    struct end *e = data;
    e->hs_done = 1;
    e->hs_status = status;
    if (status != 0) {
        snprintf(e->why, sizeof e->why, "%s", tls_conn_error(conn));
        return;
    }
    tls_conn_describe(conn, e->desc, sizeof e->desc);
    int fd = tls_conn_fd(conn);
    if (!e->server && e->r->mode == TRUNCATE) {
        CHECK_OK(shutdown(fd, SHUT_WR)); /* the FIN without close_notify */
        return;
    }
    struct iomux_stream_options so = {
        .on_data = on_data, .on_drain = on_drain, .on_close = on_close, .data = e};
    if (!CHECK_OK(iomux_stream_new(e->r->loop, e->r->pool, fd, &so, &e->s)))
        return;
    tls_conn_read_ahead(conn);
    if (!CHECK_OK(iomux_stream_set_transport(e->s, &tls_stream_transport, conn)))
        return;
    e->conn_given = 1;
    if (!e->server)
        client_pump(e);
}

/* Nothing more will happen on this side. */
static bool side_done(const struct end *e)
{
    return (e->hs_done && e->hs_status != 0) || e->closes > 0 ||
           (!e->server && e->r->mode == CLIENT_SILENT);
}

/* Runs one connection; the results are in r->c and r->s. */
static void run(struct rig *r, struct tls_ctx *cctx, struct tls_ctx *sctx, uint64_t hs_ms)
{
    int sv[2];
    r->loop = test_loop_new(backend, 0);
    if (!r->loop || !CHECK_OK(iomux_buf_pool_new(&r->pool, NULL)) || !make_socketpair(sv))
        return;
    r->c = (struct end){.r = r, .conn = tls_conn_new(cctx, sv[0])};
    r->s = (struct end){.r = r, .server = 1, .conn = tls_conn_new(sctx, sv[1])};
    if (CHECK(r->c.conn && r->s.conn) &&
        CHECK_OK(tls_handshake_start(&r->s.hs, r->loop, r->s.conn, hs_ms, on_handshake, &r->s)) &&
        (r->mode == CLIENT_SILENT ||
         CHECK_OK(tls_handshake_start(&r->c.hs, r->loop, r->c.conn, hs_ms, on_handshake, &r->c)))) {
        uint64_t t0 = mono_ns();
        while (!(side_done(&r->s) && (side_done(&r->c) || r->mode != ECHO)) &&
               mono_ns() - t0 < (uint64_t)60000 * MS_NS)
            CHECK_COUNT(iomux_loop_run_once(r->loop, 100));
        if (r->mode == ECHO && r->c.got != r->total && r->c.hs_status == 0 && r->s.hs_status == 0)
            fprintf(
                stderr,
                "  stopped after %.1f s: client hs %d/%d closes %d, server hs %d/%d closes %d\n",
                (double)(mono_ns() - t0) / 1e9, r->c.hs_done, r->c.hs_status, r->c.closes,
                r->s.hs_done, r->s.hs_status, r->s.closes);
    }
    if (r->mode == CLIENT_SILENT)
        r->c.hs_done = 1;
    else if (!r->c.hs_done)
        tls_handshake_cancel(&r->c.hs);
    if (!r->s.hs_done)
        tls_handshake_cancel(&r->s.hs);
    struct end *ends[2] = {&r->c, &r->s};
    for (int i = 0; i < 2; i++) {
        if (ends[i]->s)
            iomux_stream_close(ends[i]->s); /* frees the conn, closes the fd */
        else if (!ends[i]->conn_given)
            close(sv[i]);
        if (!ends[i]->conn_given)
            tls_conn_free(ends[i]->conn);
    }
    iomux_loop_free(r->loop);
    iomux_buf_pool_free(r->pool);
}

static struct tls_ctx *server_ctx(int version, const char *client_ca)
{
    char cert[256], key[256], ca[256], err[400] = "";
    path(cert, sizeof cert, "server.pem");
    path(key, sizeof key, "server.key");
    if (client_ca != NULL)
        path(ca, sizeof ca, client_ca);
    struct tls_server_config sc = {.cert_file = cert,
                                   .key_file = key,
                                   .client_ca_file = client_ca ? ca : NULL,
                                   .alpn = "echo",
                                   .version = version};
    struct tls_ctx *t = NULL;
    if (!CHECK_EQ_INT(tls_ctx_server(&t, &sc, err, sizeof err), 0))
        fprintf(stderr, "  %s\n", err);
    return t;
}

static struct tls_ctx *client_ctx(int version, const char *cert_name)
{
    char ca[256], cert[256], key[256], err[400] = "";
    path(ca, sizeof ca, "server.pem");
    if (cert_name != NULL) {
        snprintf(err, sizeof err, "%s.pem", cert_name);
        path(cert, sizeof cert, err);
        snprintf(err, sizeof err, "%s.key", cert_name);
        path(key, sizeof key, err);
    }
    struct tls_client_config cc = {.ca_file = ca,
                                   .cert_file = cert_name ? cert : NULL,
                                   .key_file = cert_name ? key : NULL,
                                   .alpn = "echo",
                                   .version = version};
    struct tls_ctx *t = NULL;
    if (!CHECK_EQ_INT(tls_ctx_client(&t, &cc, err, sizeof err), 0))
        fprintf(stderr, "  %s\n", err);
    return t;
}

static void test_echo(int version, size_t total)
{
    struct tls_ctx *cctx = client_ctx(version, NULL), *sctx = server_ctx(version, NULL);
    struct rig r = {.mode = ECHO, .total = total};
    if (cctx && sctx) {
        run(&r, cctx, sctx, 10000);
        fprintf(stderr, "TLS 1.%d, %zu bytes: %s\n", version % 10, total, r.c.desc);
        CHECK_EQ_INT(r.c.hs_status, 0);
        CHECK_EQ_INT(r.s.hs_status, 0);
        CHECK(strstr(r.c.desc, version == 13 ? "TLSv1.3, " : "TLSv1.2, ") == r.c.desc);
        CHECK_EQ_U64(r.c.got, total);
        CHECK(!r.c.bad);
        CHECK_EQ_INT(r.c.closes, 1);
        CHECK_EQ_INT(r.c.close_error, 0);
        CHECK_EQ_INT(r.s.closes, 1);
        CHECK_EQ_INT(r.s.close_error, 0);
        if (r.c.why[0] || r.s.why[0])
            fprintf(stderr, "  client: %s; server: %s\n", r.c.why, r.s.why);
    }
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
}

/* Mutual TLS: the client's certificate `cert` (NULL: none) against a
   server that trusts client.pem's CA. */
static void test_mtls(const char *cert, int accepted)
{
    struct tls_ctx *cctx = client_ctx(TLS_VERSION_ANY, cert);
    struct tls_ctx *sctx = server_ctx(TLS_VERSION_ANY, "client.pem");
    struct rig r = {.mode = ECHO, .total = 1000};
    if (cctx && sctx) {
        run(&r, cctx, sctx, 10000);
        fprintf(stderr, "mTLS with %s: server %d %s%s\n", cert ? cert : "no certificate",
                r.s.hs_status, r.s.desc, r.s.why);
        if (accepted) {
            CHECK_EQ_INT(r.s.hs_status, 0);
            CHECK(strstr(r.s.desc, ", client /CN=client") != NULL);
            CHECK_EQ_U64(r.c.got, 1000);
        } else {
            CHECK_EQ_INT(r.s.hs_status, -EPROTO);
            CHECK(strstr(r.s.why, "certificate") != NULL);
            CHECK_EQ_U64(r.c.got, 0);
        }
    }
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
}

/* The client's FIN without close_notify: the server's stream reports a
   truncation, distinct from a clean end and from an error. */
static void test_truncation(void)
{
    struct tls_ctx *cctx = client_ctx(TLS_VERSION_ANY, NULL), *sctx = server_ctx(0, NULL);
    struct rig r = {.mode = TRUNCATE, .total = 0};
    if (cctx && sctx) {
        run(&r, cctx, sctx, 10000);
        CHECK_EQ_INT(r.s.closes, 1);
        CHECK_EQ_INT(r.s.close_error, IOMUX_STREAM_TRUNCATED);
    }
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
}

/* A client that never speaks: the server's handshake ends at its
   deadline. */
static void test_deadline(void)
{
    struct tls_ctx *cctx = client_ctx(TLS_VERSION_ANY, NULL), *sctx = server_ctx(0, NULL);
    struct rig r = {.mode = CLIENT_SILENT};
    if (cctx && sctx) {
        uint64_t t0 = mono_ns();
        run(&r, cctx, sctx, 200);
        CHECK_EQ_INT(r.s.hs_status, -ETIMEDOUT);
        CHECK_U64(mono_ns() - t0, >=, 200 * MS_NS);
    }
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
}

int main(int argc, char **argv)
{
    backend = test_backend(argc, argv);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (!CHECK_EQ_INT(make_cert("server", 1), 0) || !CHECK_EQ_INT(make_cert("client", 2), 0) ||
        !CHECK_EQ_INT(make_cert("other", 3), 0))
        return check_exit();
    static const size_t sizes[] = {1, 1000, 65536 + 3, (size_t)16 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        test_echo(TLS_VERSION_13, sizes[i]);
        test_echo(TLS_VERSION_12, sizes[i]);
    }
    test_mtls("client", 1);
    test_mtls(NULL, 0);
    test_mtls("other", 0);
    test_truncation();
    test_deadline();
    static const char *const names[] = {"server", "client", "other"};
    remove_certs(names, 3);
    tls_library_cleanup();
    return check_exit();
}
#endif
