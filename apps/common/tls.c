/* SPDX-License-Identifier: MIT */
/*
 * tls.c - the non-blocking TLS layer of tls.h on OpenSSL 3: contexts
 * built from the tools' options, and connections whose every call maps
 * OpenSSL's SSL_ERROR_* onto "done / want read / want write / closed /
 * error(reason)".
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_ctx {
    SSL_CTX *ssl;
    int server;
    char *host;              /* client: name to verify / send as SNI */
    int host_is_ip;          /* verified as an address, not sent as SNI */
    int verify;              /* client: check the server's certificate */
    unsigned char alpn[256]; /* wire format: length-prefixed names */
    unsigned alpn_len;
};

struct tls_conn {
    SSL *ssl;
    int fd;
    int server;
    int sys_errno; /* the last TLS_ERROR's errno, if a system call failed */
    char error[200];
};

/* OpenSSL's reason for the last failure, one line; `fallback` if none. */
static void ssl_reason(char *buf, size_t size, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, size, "%s", r != NULL ? r : fallback);
    ERR_clear_error();
}

int tls_alpn_check(const char *list, char *err, size_t errsize)
{
    size_t total = 0;
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len > 255) {
            snprintf(err, errsize, "ALPN list '%s': each protocol is 1 to 255 bytes", list);
            return -1;
        }
        total += len + 1;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    if (total > 255) {
        snprintf(err, errsize, "ALPN list '%s': longer than 255 bytes in all", list);
        return -1;
    }
    return 0;
}

static int set_alpn(struct tls_ctx *t, const char *list, char *err, size_t errsize)
{
    if (list == NULL)
        return 0;
    if (tls_alpn_check(list, err, errsize) < 0)
        return -1;
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        t->alpn[t->alpn_len++] = (unsigned char)len;
        memcpy(t->alpn + t->alpn_len, p, len);
        t->alpn_len += (unsigned)len;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return 0;
}

/* A file that cannot be opened gets errno's words, not OpenSSL's. */
static int readable(const char *what, const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errsize, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* The common part: TLS 1.2 at least, or one version; modes; ALPN. */
static struct tls_ctx *ctx_new(int server, int version, const char *alpn, char *err, size_t errsize)
{
    struct tls_ctx *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errsize, "allocating the TLS context: %s", strerror(ENOMEM));
        return NULL;
    }
    t->server = server;
    t->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (t->ssl == NULL) {
        ssl_reason(err, errsize, "cannot create an SSL_CTX");
        free(t);
        return NULL;
    }
    int min = version == TLS_VERSION_13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    int max = version == TLS_VERSION_12   ? TLS1_2_VERSION
              : version == TLS_VERSION_13 ? TLS1_3_VERSION
                                          : 0;
    SSL_CTX_set_min_proto_version(t->ssl, min);
    SSL_CTX_set_max_proto_version(t->ssl, max);
    SSL_CTX_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (set_alpn(t, alpn, err, errsize) < 0) {
        tls_ctx_free(t);
        return NULL;
    }
    return t;
}

/* Certificate chain and key; checks they belong together. */
static int load_pair(SSL_CTX *ssl, const char *cert, const char *key, char *err, size_t errsize)
{
    if (key == NULL)
        key = cert;
    if (readable("certificate", cert, err, errsize) < 0 ||
        readable("private key", key, err, errsize) < 0)
        return -1;
    char why[160];
    if (SSL_CTX_use_certificate_chain_file(ssl, cert) != 1) {
        ssl_reason(why, sizeof why, "?");
        snprintf(err, errsize, "certificate %s: not a PEM certificate chain (%s)", cert, why);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        ssl_reason(why, sizeof why, "not a PEM private key");
        if (strcmp(why, "PEM lib") == 0 || strcmp(why, "no start line") == 0)
            snprintf(why, sizeof why, "not a PEM private key");
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errsize, "private key %s does not match the certificate in %s (%s)", key,
                     cert, why);
        else
            snprintf(err, errsize, "private key %s: %s", key, why);
        return -1;
    }
    if (SSL_CTX_check_private_key(ssl) != 1) {
        ssl_reason(why, sizeof why, "key values mismatch");
        snprintf(err, errsize, "private key %s does not match the certificate in %s (%s)", key,
                 cert, why);
        return -1;
    }
    return 0;
}

static int load_cas(SSL_CTX *ssl, const char *what, const char *file, char *err, size_t errsize)
{
    if (readable(what, file, err, errsize) < 0)
        return -1;
    if (SSL_CTX_load_verify_locations(ssl, file, NULL) != 1) {
        char why[160];
        ssl_reason(why, sizeof why, "no PEM certificate in it");
        snprintf(err, errsize, "%s %s: %s", what, file, why);
        return -1;
    }
    return 0;
}

static int client_verify(struct tls_ctx *t, const struct tls_client_config *cfg, char *err,
                         size_t errsize)
{
    if (cfg->host != NULL) {
        unsigned char addr[16];
        t->host = strdup(cfg->host);
        if (t->host == NULL) {
            snprintf(err, errsize, "allocating: %s", strerror(ENOMEM));
            return -1;
        }
        t->host_is_ip =
            inet_pton(AF_INET, cfg->host, addr) == 1 || inet_pton(AF_INET6, cfg->host, addr) == 1;
    }
    if (cfg->insecure) {
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    t->verify = 1;
    SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file != NULL)
        return load_cas(t->ssl, "CA file", cfg->ca_file, err, errsize);
    if (SSL_CTX_set_default_verify_paths(t->ssl) != 1) {
        ssl_reason(err, errsize, "cannot load the system's CA certificates");
        return -1;
    }
    return 0;
}

int tls_ctx_client(struct tls_ctx **out, const struct tls_client_config *cfg, char *err,
                   size_t errsize)
{
    *out = NULL;
    struct tls_ctx *t = ctx_new(0, cfg->version, cfg->alpn, err, errsize);
    if (t == NULL)
        return -1;
    if (client_verify(t, cfg, err, errsize) < 0 ||
        (cfg->cert_file != NULL &&
         load_pair(t->ssl, cfg->cert_file, cfg->key_file, err, errsize) < 0)) {
        tls_ctx_free(t);
        return -1;
    }
    if (t->alpn_len > 0 && SSL_CTX_set_alpn_protos(t->ssl, t->alpn, t->alpn_len) != 0) {
        ssl_reason(err, errsize, "cannot set the ALPN list");
        tls_ctx_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* The server's ALPN choice: its first protocol the client offers. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    struct tls_ctx *t = arg;
    unsigned char *chosen;
    if (SSL_select_next_proto(&chosen, outlen, t->alpn, t->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

int tls_ctx_server(struct tls_ctx **out, const struct tls_server_config *cfg, char *err,
                   size_t errsize)
{
    *out = NULL;
    struct tls_ctx *t = ctx_new(1, cfg->version, cfg->alpn, err, errsize);
    if (t == NULL)
        return -1;
    if (load_pair(t->ssl, cfg->cert_file, cfg->key_file, err, errsize) < 0)
        goto fail;
    if (cfg->client_ca_file != NULL) {
        if (load_cas(t->ssl, "client CA file", cfg->client_ca_file, err, errsize) < 0)
            goto fail;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca_file);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(t->ssl, names); /* the context owns them */
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (t->alpn_len > 0)
        SSL_CTX_set_alpn_select_cb(t->ssl, select_alpn, t);
    *out = t;
    return 0;
fail:
    tls_ctx_free(t);
    return -1;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx->host);
    free(ctx);
}

/* Client name: SNI for a host name, and the name (or address) that the
   certificate must carry when verifying. */
static int conn_set_host(SSL *ssl, const struct tls_ctx *t)
{
    if (t->host == NULL)
        return 1;
    if (!t->host_is_ip && SSL_set_tlsext_host_name(ssl, t->host) != 1)
        return 0;
    if (!t->verify)
        return 1;
    if (t->host_is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->host);
    return SSL_set1_host(ssl, t->host);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->server = ctx->server;
    c->fd = fd;
    c->ssl = SSL_new(ctx->ssl);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1 ||
        (!c->server && conn_set_host(c->ssl, ctx) != 1)) {
        ERR_clear_error();
        tls_conn_free(c);
        return NULL;
    }
    if (c->server)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    free(c);
}

/* Maps the result `rc` of an SSL_* call onto enum tls_status. */
static int status(struct tls_conn *c, int rc)
{
    int e = SSL_get_error(c->ssl, rc);
    switch (e) {
    case SSL_ERROR_NONE:
        return TLS_OK;
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (errno == 0) {
            ERR_clear_error();
            return TLS_EOF;
        }
        c->sys_errno = errno;
        snprintf(c->error, sizeof c->error, "%s", strerror(errno));
        ERR_clear_error();
        return TLS_ERROR;
    default: {
        c->sys_errno = 0;
        if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return TLS_EOF;
        }
        long v = SSL_get_verify_result(c->ssl);
        unsigned long last = ERR_peek_last_error();
        if (v != X509_V_OK && ERR_GET_REASON(last) == SSL_R_CERTIFICATE_VERIFY_FAILED)
            snprintf(c->error, sizeof c->error, "certificate verify failed: %s",
                     X509_verify_cert_error_string(v));
        else
            ssl_reason(c->error, sizeof c->error, "TLS protocol error");
    }
    }
    ERR_clear_error();
    return TLS_ERROR;
}

int tls_conn_handshake(struct tls_conn *c)
{
    ERR_clear_error();
    errno = 0;
    return status(c, SSL_do_handshake(c->ssl));
}

int tls_conn_read(struct tls_conn *c, void *buf, size_t len, size_t *n)
{
    ERR_clear_error();
    errno = 0;
    *n = 0;
    int rc = SSL_read_ex(c->ssl, buf, len, n);
    return rc == 1 ? TLS_OK : status(c, rc);
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len, size_t *n)
{
    ERR_clear_error();
    errno = 0;
    *n = 0;
    int rc = SSL_write_ex(c->ssl, buf, len, n);
    return rc == 1 ? TLS_OK : status(c, rc);
}

int tls_conn_shutdown(struct tls_conn *c)
{
    ERR_clear_error();
    errno = 0;
    /* 0: our close_notify is sent, the peer's not yet seen; 1: both. */
    int rc = SSL_shutdown(c->ssl);
    if (rc >= 0)
        return TLS_OK;
    return status(c, rc);
}

int tls_conn_errno(const struct tls_conn *c)
{
    return c->sys_errno;
}

int tls_conn_fd(const struct tls_conn *c)
{
    return c->fd;
}

void tls_conn_read_ahead(struct tls_conn *c)
{
    SSL_set_read_ahead(c->ssl, 1);
}

int tls_conn_pending(const struct tls_conn *c)
{
    return SSL_has_pending(c->ssl);
}

int tls_conn_resumed(const struct tls_conn *c)
{
    return SSL_session_reused(c->ssl);
}

/* struct tls_session is OpenSSL's SSL_SESSION, never dereferenced. */
struct tls_session *tls_conn_session(const struct tls_conn *c)
{
    SSL_SESSION *s = SSL_get1_session(c->ssl);
    if (s != NULL && !SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(s);
        s = NULL;
    }
    return (struct tls_session *)s;
}

int tls_conn_offer_session(struct tls_conn *c, struct tls_session *s)
{
    return SSL_set_session(c->ssl, (SSL_SESSION *)s) == 1 ? 0 : -1;
}

void tls_session_free(struct tls_session *s)
{
    SSL_SESSION_free((SSL_SESSION *)s);
}

const char *tls_conn_error(const struct tls_conn *c)
{
    return c->error;
}

void tls_conn_describe(const struct tls_conn *c, char *buf, size_t size)
{
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    int w = snprintf(buf, size, "%s, %s, ALPN %.*s", SSL_get_version(c->ssl),
                     SSL_get_cipher_name(c->ssl), alpn_len > 0 ? (int)alpn_len : 4,
                     alpn_len > 0 ? (const char *)alpn : "none");
    X509 *peer = c->server ? SSL_get0_peer_certificate(c->ssl) : NULL;
    if (peer != NULL && w > 0 && (size_t)w < size) {
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof subject);
        snprintf(buf + w, size - (size_t)w, ", client %s", subject);
    }
}

void tls_library_cleanup(void)
{
    OPENSSL_cleanup();
}
