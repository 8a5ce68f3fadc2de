/* SPDX-License-Identifier: MIT */
/* tls_opts.c - the TLS client options both tools share; see tls_opts.h. */
#include "tls_opts.h"

#include <stdio.h>
#include <string.h>

#ifdef IOMUX_HAVE_TLS
#include "tls.h"
#endif

const char *const tls_cli_versions[] = {"any", "1.2", "1.3", NULL};

int tls_cli_check(const struct tls_cli *o, const struct cli_spec *specs, const bool *given,
                  const char *tool, char *err, size_t errsize)
{
    static const char *const needs_tls[] = {"tls-ca",  "tls-insecure", "tls-sni", "tls-cert",
                                            "tls-key", "tls-version",  "alpn"};
    for (size_t i = 0; !o->on && i < sizeof needs_tls / sizeof *needs_tls; i++) {
        if (cli_given(specs, given, needs_tls[i])) {
            snprintf(err, errsize, "--%s needs --tls", needs_tls[i]);
            return -1;
        }
    }
    if (!o->on)
        return 0;
#ifndef IOMUX_HAVE_TLS
    snprintf(err, errsize, "--tls: this %s was built without TLS (no OpenSSL 3)", tool);
    return -1;
#else
    if (o->insecure && o->ca != NULL) {
        snprintf(err, errsize, "--tls-insecure: no verification, so --tls-ca has no use");
        return -1;
    }
    if (o->key != NULL && o->cert == NULL) {
        snprintf(err, errsize, "--tls-key needs --tls-cert");
        return -1;
    }
    return o->alpn != NULL ? tls_alpn_check(o->alpn, err, errsize) : 0;
#endif
}

const char *tls_cli_host(const struct tls_cli *o, const char *connect, char *buf, size_t size)
{
    if (o->sni != NULL)
        return o->sni;
    if (strncmp(connect, "unix:", 5) == 0)
        return NULL;
    const char *colon = strrchr(connect, ':');
    size_t len = colon != NULL ? (size_t)(colon - connect) : strlen(connect);
    if (len >= 2 && connect[0] == '[' && connect[len - 1] == ']') {
        connect++;
        len -= 2;
    }
    snprintf(buf, size, "%.*s", (int)len, connect);
    return buf;
}

#ifdef IOMUX_HAVE_TLS
int tls_cli_ctx(const struct tls_cli *o, const char *connect, struct tls_ctx **out, char *err,
                size_t errsize)
{
    /* In the order of tls_cli_versions. */
    static const int version_of[] = {TLS_VERSION_ANY, TLS_VERSION_12, TLS_VERSION_13};
    char host[256];
    struct tls_client_config cfg = {
        .ca_file = o->ca,
        .insecure = o->insecure,
        .host = tls_cli_host(o, connect, host, sizeof host),
        .cert_file = o->cert,
        .key_file = o->key,
        .alpn = o->alpn,
        .version = version_of[o->version],
    };
    return tls_ctx_client(out, &cfg, err, errsize);
}
#endif
