/* SPDX-License-Identifier: MIT */
/*
 * tls_opts.h - the TLS client options echo-client and echo-bench share:
 * --tls, --tls-ca, --tls-insecure, --tls-sni, --tls-cert, --tls-key,
 * --tls-version and --alpn. Declared once here and parsed, checked and
 * turned into a tls_client_config (tls.h) the same way in both tools.
 * Parses in every build; a build without OpenSSL refuses --tls.
 */
#ifndef IOMUX_APPS_TLS_OPTS_H
#define IOMUX_APPS_TLS_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "opts.h"

/* Where the options land: a tool embeds one of these in its options. */
struct tls_cli {
    bool on; /* --tls */
    bool insecure;
    const char *ca, *sni, *cert, *key, *alpn; /* borrowed from argv */
    int version;                              /* index into "any", "1.2", "1.3" */
};

/* The NULL-terminated version names --tls-version takes. */
extern const char *const tls_cli_versions[];

/*
 * The table entries of the options, for a tool's cli_spec table: BASE is
 * offsetof(the tool's options, its struct tls_cli). Spelled out once here
 * so that the two tools cannot drift apart in name, help or kind.
 */
#define TLS_CLI_SPECS(BASE)                                                                        \
    {.name = "tls",                                                                                \
     .kind = CLI_FLAG,                                                                             \
     .field = (BASE) + offsetof(struct tls_cli, on),                                               \
     .help = "TLS 1.2 or 1.3 on every connection (OpenSSL),\nverifying the server's certificate"}, \
        {.name = "tls-ca",                                                                         \
         .arg = "FILE",                                                                            \
         .kind = CLI_STRING,                                                                       \
         .field = (BASE) + offsetof(struct tls_cli, ca),                                           \
         .help = "trusted CA certificates (PEM); unset: the\nsystem's"},                           \
        {.name = "tls-insecure",                                                                   \
         .kind = CLI_FLAG,                                                                         \
         .field = (BASE) + offsetof(struct tls_cli, insecure),                                     \
         .help = "do not verify the server's certificate"},                                        \
        {.name = "tls-sni",                                                                        \
         .arg = "NAME",                                                                            \
         .kind = CLI_STRING,                                                                       \
         .field = (BASE) + offsetof(struct tls_cli, sni),                                          \
         .help = "server name to send and verify; unset: the\n--connect host"},                    \
        {.name = "tls-cert",                                                                       \
         .arg = "FILE",                                                                            \
         .kind = CLI_STRING,                                                                       \
         .field = (BASE) + offsetof(struct tls_cli, cert),                                         \
         .help = "client certificate chain (PEM), mutual TLS"},                                    \
        {.name = "tls-key",                                                                        \
         .arg = "FILE",                                                                            \
         .kind = CLI_STRING,                                                                       \
         .field = (BASE) + offsetof(struct tls_cli, key),                                          \
         .help = "its private key (PEM); unset: in --tls-cert"},                                   \
        {.name = "tls-version",                                                                    \
         .arg = "VER",                                                                             \
         .kind = CLI_CHOICE,                                                                       \
         .field = (BASE) + offsetof(struct tls_cli, version),                                      \
         .choices = tls_cli_versions,                                                              \
         .help = "pin the protocol: 1.2 or 1.3; any: either",                                      \
         .def = "any"},                                                                            \
    {                                                                                              \
        .name = "alpn", .arg = "LIST", .kind = CLI_STRING,                                         \
        .field = (BASE) + offsetof(struct tls_cli, alpn),                                          \
        .help = "ALPN protocols to offer, comma-separated"                                         \
    }

/* After parsing: the settings need --tls and a build with TLS, and must
   agree. `tool` names the program in "built without TLS". 0, or -1 with a
   one-line reason in err. */
int tls_cli_check(const struct tls_cli *o, const struct cli_spec *specs, const bool *given,
                  const char *tool, char *err, size_t errsize);

/* The name the server's certificate must carry: --tls-sni, else the host
   of HOST:PORT / [V6]:PORT (copied into buf), NULL for unix:PATH. */
const char *tls_cli_host(const struct tls_cli *o, const char *connect, char *buf, size_t size);

#ifdef IOMUX_HAVE_TLS
struct tls_ctx;
/* The client context the options ask for (tls_ctx_client(), tls.h), the
   server's name from tls_cli_host(): 0, or -1 with a one-line reason in
   err. A build without TLS has none (tls_cli_check() refuses --tls). */
int tls_cli_ctx(const struct tls_cli *o, const char *connect, struct tls_ctx **out, char *err,
                size_t errsize);
#endif

#endif /* IOMUX_APPS_TLS_OPTS_H */
