/* SPDX-License-Identifier: MIT */
/*
 * test_tls.c - apps/common/tls.c over a socketpair: a client and a server
 * tls_conn in one process on one iomux loop, each driving its watch mask
 * from the statuses (small socket buffers make WANT_WRITE happen), through
 * the handshake, a 1 MiB echo checked byte for byte, and close_notify both
 * ways; then the errors: wrong CA, key/certificate mismatch, missing and
 * non-PEM files. Certificates are made in-process into a temporary
 * directory. Exits 77 in a build without TLS.
 */
#include "check.h"

#ifndef IOMUX_HAVE_TLS
int main(void)
{
    fprintf(stderr, "SKIPPED: this build has no TLS (OpenSSL 3 not found)\n");
    return 77;
}
#else

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iomux/loop.h>

#include "tls.h"
#include "tls_certs.h"

#define TOTAL ((size_t)1 << 20)

struct side {
    struct iomux_loop *loop;
    struct tls_conn *t;
    int fd, server;
    int handshaken, closed, shut, failed;
    int read_wants_write, write_blocked;
    unsigned char *out; /* client: the pattern; server: what it received, to echo */
    size_t out_len, out_off;
    size_t in_len; /* client: bytes of the echo received and checked */
    unsigned want_read, want_write;
    char desc[256], error[200];
    struct side *peer;
};

static unsigned char pattern_at(size_t i)
{
    return (unsigned char)(i * 31 + i / 251);
}

static int note(struct side *s, int st)
{
    s->want_read += st == TLS_WANT_READ;
    s->want_write += st == TLS_WANT_WRITE;
    if (st == TLS_ERROR && !s->failed) {
        s->failed = 1;
        snprintf(s->error, sizeof s->error, "%s", tls_conn_error(s->t));
        iomux_loop_stop(s->loop);
    }
    return st;
}

/* Reads everything there is: the client checks it, the server queues it. */
static void pull(struct side *s)
{
    unsigned char buf[16384];
    size_t n;
    int st;
    while ((st = note(s, tls_conn_read(s->t, buf, sizeof buf, &n))) == TLS_OK) {
        if (s->server) {
            memcpy(s->out + s->out_len, buf, n);
            s->out_len += n;
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (buf[i] != pattern_at(s->in_len + i) && !s->failed) {
                s->failed = 1;
                snprintf(s->error, sizeof s->error, "echo differs at byte %zu", s->in_len + i);
            }
        s->in_len += n;
    }
    s->read_wants_write = st == TLS_WANT_WRITE;
    if (st == TLS_CLOSED)
        s->closed = 1;
}

/* Writes what is queued, then our close_notify when it is time. */
static void push(struct side *s)
{
    int st = TLS_OK;
    while (s->out_off < s->out_len && st == TLS_OK) {
        size_t n, len = s->out_len - s->out_off;
        st = note(s, tls_conn_write(s->t, s->out + s->out_off, len > 65536 ? 65536 : len, &n));
        s->out_off += st == TLS_OK ? n : 0;
    }
    s->write_blocked = st == TLS_WANT_WRITE;
    int time_to_shut = s->server ? s->closed && s->out_off == s->out_len : s->out_off == TOTAL;
    if (st == TLS_OK && time_to_shut && !s->shut) {
        st = note(s, tls_conn_shutdown(s->t));
        s->shut = st == TLS_OK;
        s->write_blocked = st == TLS_WANT_WRITE;
    }
}

static void on_io(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct side *s = data;
    if (!s->handshaken) {
        int st = note(s, tls_conn_handshake(s->t));
        if (st != TLS_OK) {
            if (st != TLS_ERROR)
                iomux_fd_modify(loop, fd, st == TLS_WANT_READ ? IOMUX_READ : IOMUX_WRITE);
            return;
        }
        s->handshaken = 1;
        tls_conn_describe(s->t, s->desc, sizeof s->desc);
    }
    if (!s->closed)
        pull(s);
    push(s);
    if (s->failed) {
        iomux_loop_stop(loop);
        return;
    }
    if (!s->server && s->closed && s->peer->shut)
        iomux_loop_stop(loop);
    unsigned mask = (s->closed ? 0u : IOMUX_READ) |
                    (s->write_blocked || s->read_wants_write ? IOMUX_WRITE : 0u);
    iomux_fd_modify(loop, fd, mask);
}

static void on_deadline(struct iomux_loop *loop, uint64_t id, void *data)
{
    struct side *c = data;
    snprintf(c->error, sizeof c->error, "no end within 20 s");
    c->failed = 1;
    iomux_loop_stop(loop);
}

/* Runs one connection between the two contexts over a socketpair. */
static void run_pair(struct tls_ctx *cctx, struct tls_ctx *sctx, struct side *c, struct side *s)
{
    int sv[2];
    struct iomux_loop *loop;
    if (!CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)))
        return;
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    CHECK_EQ_INT(iomux_loop_new(&loop, NULL), 0);
    *c = (struct side){.loop = loop, .fd = sv[0], .out = malloc(TOTAL), .out_len = TOTAL};
    *s = (struct side){.loop = loop, .fd = sv[1], .server = 1, .out = malloc(TOTAL)};
    c->peer = s;
    s->peer = c;
    c->t = tls_conn_new(cctx, sv[0]);
    s->t = tls_conn_new(sctx, sv[1]);
    if (CHECK(c->out && s->out && c->t && s->t)) {
        for (size_t i = 0; i < TOTAL; i++)
            c->out[i] = pattern_at(i);
        uint64_t id;
        CHECK_EQ_INT(iomux_timer_add(loop, 20000, 0, on_deadline, c, &id), 0);
        CHECK_EQ_INT(iomux_fd_watch(loop, sv[0], IOMUX_WRITE, on_io, c), 0);
        CHECK_EQ_INT(iomux_fd_watch(loop, sv[1], IOMUX_READ, on_io, s), 0);
        CHECK_EQ_INT(iomux_loop_run(loop), 0);
    }
    tls_conn_free(c->t);
    tls_conn_free(s->t);
    free(c->out);
    free(s->out);
    iomux_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

static void test_echo(int version, const char *proto)
{
    char cert[256], key[256];
    path(cert, sizeof cert, "server.pem");
    path(key, sizeof key, "server.key");
    char err[400] = "";
    struct tls_ctx *cctx = NULL, *sctx = NULL;
    struct tls_server_config sc = {.cert_file = cert, .key_file = key, .alpn = "echo,other"};
    struct tls_client_config cc = {.ca_file = cert, .alpn = "x,echo", .version = version};
    CHECK_EQ_INT(tls_ctx_server(&sctx, &sc, err, sizeof err), 0);
    CHECK_EQ_INT(tls_ctx_client(&cctx, &cc, err, sizeof err), 0);
    if (cctx != NULL && sctx != NULL) {
        struct side c, s;
        run_pair(cctx, sctx, &c, &s);
        CHECK_STR(c.error, "");
        CHECK_STR(s.error, "");
        CHECK_EQ_U64(c.in_len, TOTAL);
        CHECK_EQ_U64(s.out_off, TOTAL);
        CHECK(c.closed && c.shut && s.closed && s.shut);
        CHECK(strstr(c.desc, proto) == c.desc);
        CHECK(strstr(c.desc, ", ALPN echo") != NULL);
        CHECK(strstr(s.desc, ", ALPN echo") != NULL);
        /* The statuses drove the loop: both directions were waited for. */
        CHECK_U64(c.want_read, >, 0);
        CHECK_U64(c.want_write + s.want_write, >, 0);
        fprintf(stderr, "%s: client %s; want read %u, want write %u (server %u, %u)\n", proto,
                c.desc, c.want_read, c.want_write, s.want_read, s.want_write);
    }
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
}

/* A client that trusts another CA fails its handshake with the reason. */
static void test_wrong_ca(void)
{
    char cert[256], key[256], other[256], err[400] = "";
    path(cert, sizeof cert, "server.pem");
    path(key, sizeof key, "server.key");
    path(other, sizeof other, "other.pem");
    struct tls_ctx *cctx = NULL, *sctx = NULL;
    struct tls_server_config sc = {.cert_file = cert, .key_file = key};
    struct tls_client_config cc = {.ca_file = other};
    CHECK_EQ_INT(tls_ctx_server(&sctx, &sc, err, sizeof err), 0);
    CHECK_EQ_INT(tls_ctx_client(&cctx, &cc, err, sizeof err), 0);
    if (cctx != NULL && sctx != NULL) {
        struct side c, s;
        run_pair(cctx, sctx, &c, &s);
        CHECK(strstr(c.error, "certificate verify failed: ") == c.error);
        CHECK(strchr(c.error, '\n') == NULL);
        CHECK_U64(c.in_len, ==, 0);
    }
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
}

static void expect_server_error(const char *cert, const char *key, const char *want)
{
    char c[256], k[256], err[400] = "";
    path(c, sizeof c, cert);
    path(k, sizeof k, key);
    struct tls_ctx *t = NULL;
    struct tls_server_config sc = {.cert_file = c, .key_file = k};
    CHECK_EQ_INT(tls_ctx_server(&t, &sc, err, sizeof err), -1);
    CHECK(t == NULL);
    if (!CHECK(strstr(err, want) != NULL))
        fprintf(stderr, "  error was: %s (wanted %s)\n", err, want);
    CHECK(strchr(err, '\n') == NULL);
}

static void test_bad_files(void)
{
    expect_server_error("server.pem", "other.key", "does not match the certificate in");
    expect_server_error("missing.pem", "server.key", "missing.pem: No such file or directory");
    expect_server_error("server.pem", "missing.key", "missing.key: No such file or directory");
    expect_server_error("server.key", "server.key", "not a PEM certificate chain");
    expect_server_error("server.pem", "server.pem", "not a PEM private key");
    char err[400] = "";
    CHECK_EQ_INT(tls_alpn_check("a,,b", err, sizeof err), -1);
    CHECK_EQ_INT(tls_alpn_check("echo,h2", err, sizeof err), 0);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (!CHECK_EQ_INT(make_cert("server", 1), 0) || !CHECK_EQ_INT(make_cert("other", 2), 0))
        return check_exit();
    test_echo(TLS_VERSION_13, "TLSv1.3, ");
    test_echo(TLS_VERSION_12, "TLSv1.2, ");
    test_wrong_ca();
    test_bad_files();
    static const char *const names[] = {"server", "other"};
    remove_certs(names, 2);
    tls_library_cleanup();
    return check_exit();
}
#endif
