/* SPDX-License-Identifier: MIT */
/*
 * client_args.h - echo-client's command line, parsed into a plain struct.
 * Separate from main.c so the tests can feed it bad values.
 */
#ifndef ECHO_CLIENT_ARGS_H
#define ECHO_CLIENT_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "opts.h"
#include "proxy_client.h"
#include "sockopt.h"
#include "tls_opts.h"

/* --backend; the index into client_backend_names. */
enum client_backend {
    CLIENT_BACKEND_AUTO,
    CLIENT_BACKEND_EPOLL,
    CLIENT_BACKEND_POLL,
    CLIENT_BACKEND_SELECT,
    CLIENT_BACKEND_URING,
};

struct client_options {
    const char *connect;       /* "HOST:PORT" or "unix:PATH" as given (borrowed from argv) */
    unsigned sockets;          /* connections, each sends every part */
    uint64_t delay_us;         /* pause between parts */
    uint64_t connect_delay_us; /* pause after connecting, before part 1 */
    uint64_t timeout_us;       /* give up after this long without progress */
    int backend;               /* enum client_backend */
    bool quiet;                /* no trace on stderr, only errors */
    const char *file;          /* --file: a path, or "-" for stdin; NULL: parts */
    struct sock_tuning tuning; /* --nodelay, --sndbuf, --rcvbuf, --tos */
    struct tls_cli tls;        /* --tls and its settings (tls_opts.h) */
    unsigned proxy_version;    /* --proxy-protocol: 1 or 2; 0 = none */
    struct proxy_source proxy_source;
    bool parts_from_stdin;    /* "-" was the only part */
    const char *const *parts; /* the parts to send; borrowed from argv, or
                                 the built-in defaults; NULL from stdin */
    size_t n_parts;
};

enum {
    CLIENT_ARGS_OK = CLI_PARSE_OK,
    CLIENT_ARGS_HELP = CLI_PARSE_HELP,       /* --help: print the usage, exit 0 */
    CLIENT_ARGS_VERSION = CLI_PARSE_VERSION, /* --version: print the version, exit 0 */
    CLIENT_ARGS_ERROR = CLI_PARSE_ERROR,     /* one-line reason in err; exit 2 */
};

/*
 * Parses argv into *o (defaults first: the seed's multi-socket client).
 * `parts_store` must have room for argc pointers; o->parts points into it
 * or at static defaults. Returns one of the CLIENT_ARGS_ values.
 */
int client_args_parse(int argc, char **argv, struct client_options *o, const char **parts_store,
                      char *err, size_t errsize);

/* The loop backend's name for iomux_loop_options, NULL for auto. */
const char *client_backend_name(const struct client_options *o);

/* Writes the --help text, generated from the option table. */
void client_usage(FILE *out);

#endif /* ECHO_CLIENT_ARGS_H */
