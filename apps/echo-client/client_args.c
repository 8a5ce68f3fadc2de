/* SPDX-License-Identifier: MIT */
/* client_args.c - echo-client's option parsing; see client_args.h. */
#include "client_args.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

const char client_usage[] =
    "usage: echo-client [--connect HOST:PORT] [--sockets N] [--delay SECONDS]\n"
    "                   [--connect-delay SECONDS] [--timeout SECONDS]\n"
    "                   [--backend NAME] [--quiet] [--help] [--version] [PART...]\n"
    "Sends each PART over every socket and reads its whole echo back before the\n"
    "next part; exits 0 when every byte came back identical, 1 otherwise.\n"
    "  --connect HOST:PORT      server (default localhost:10000)\n"
    "  --sockets N              connections, 1..10000 (default 2)\n"
    "  --delay SECONDS          pause between parts (default 0)\n"
    "  --connect-delay SECONDS  pause after connecting (default 0)\n"
    "  --timeout SECONDS        give up after this long without progress\n"
    "                           (default 10; 0 = never)\n"
    "  --backend NAME           loop backend: auto, epoll, poll, select, uring (if built)\n"
    "  --quiet                  print only errors\n"
    "  -h, --help               print this help and exit\n"
    "  --version                print the version and exit\n"
    "  PART                     default: the seed's three parts; '-' alone\n"
    "                           reads parts from stdin, one per line\n";

/* The seed's select_echo_multiclient.py messages. */
static const char *const default_parts[] = {
    "This is the message. ",
    "It will be sent ",
    "in parts.",
};

enum {
    OPT_CONNECT = 1,
    OPT_SOCKETS,
    OPT_DELAY,
    OPT_CONNECT_DELAY,
    OPT_TIMEOUT,
    OPT_BACKEND,
    OPT_QUIET,
    OPT_HELP,
    OPT_VERSION,
};

static const struct cli_option options[] = {
    {"connect", 1, OPT_CONNECT}, {"sockets", 1, OPT_SOCKETS},
    {"delay", 1, OPT_DELAY},     {"connect-delay", 1, OPT_CONNECT_DELAY},
    {"timeout", 1, OPT_TIMEOUT}, {"backend", 1, OPT_BACKEND},
    {"quiet", 0, OPT_QUIET},     {"help", 0, OPT_HELP},
    {"version", 0, OPT_VERSION}, {NULL, 0, 0},
};

/* A day is far beyond any sensible pause, and keeps the microsecond
   arithmetic far from overflow. */
#define MAX_SECONDS 86400.0

int client_args_parse(int argc, char **argv, struct client_options *o, const char **parts_store,
                      char *err, size_t errsize)
{
    *o = (struct client_options){
        .connect = "localhost:10000",
        .sockets = 2,
        .timeout_us = 10000000,
    };
    size_t n_parts = 0;
    struct cli_iter it = {.argc = argc, .argv = argv, .index = 1};
    const char *v;
    uint64_t n;
    for (;;) {
        int id = cli_next(&it, options, &v, err, errsize);
        int rc = 0;
        switch (id) {
        case CLI_END:
            goto done;
        case CLI_ERROR:
            return CLIENT_ARGS_ERROR;
        case CLI_OPERAND:
            if (v[0] == '\0') {
                snprintf(err, errsize, "PART: empty parts cannot be echoed");
                return CLIENT_ARGS_ERROR;
            }
            parts_store[n_parts++] = v;
            break;
        case OPT_CONNECT:
            if (v[0] == '\0' || strrchr(v, ':') == NULL) {
                snprintf(err, errsize, "--connect: '%s' is not HOST:PORT", v);
                return CLIENT_ARGS_ERROR;
            }
            o->connect = v;
            break;
        case OPT_SOCKETS:
            rc = cli_parse_u64("--sockets", v, 1, 10000, &n, err, errsize);
            o->sockets = (unsigned)n;
            break;
        case OPT_DELAY:
            rc = cli_parse_seconds("--delay", v, MAX_SECONDS, &o->delay_us, err, errsize);
            break;
        case OPT_CONNECT_DELAY:
            rc = cli_parse_seconds("--connect-delay", v, MAX_SECONDS, &o->connect_delay_us, err,
                                   errsize);
            break;
        case OPT_TIMEOUT:
            rc = cli_parse_seconds("--timeout", v, MAX_SECONDS, &o->timeout_us, err, errsize);
            break;
        case OPT_BACKEND:
            rc = cli_check_backend(v, err, errsize);
            o->backend = v;
            break;
        case OPT_QUIET:
            o->quiet = 1;
            break;
        case OPT_HELP:
            return CLIENT_ARGS_HELP;
        case OPT_VERSION:
            return CLIENT_ARGS_VERSION;
        default:
            snprintf(err, errsize, "internal error: option %d", id);
            return CLIENT_ARGS_ERROR;
        }
        if (rc != 0)
            return CLIENT_ARGS_ERROR;
    }
done:
    if (n_parts == 1 && strcmp(parts_store[0], "-") == 0) {
        o->parts_from_stdin = 1;
        o->parts = NULL;
        o->n_parts = 0;
    } else if (n_parts == 0) {
        o->parts = default_parts;
        o->n_parts = sizeof default_parts / sizeof default_parts[0];
    } else {
        for (size_t i = 0; i < n_parts; i++) {
            if (strcmp(parts_store[i], "-") == 0) {
                snprintf(err, errsize, "PART: '-' (read from stdin) must be the only part");
                return CLIENT_ARGS_ERROR;
            }
        }
        o->parts = (const char *const *)parts_store;
        o->n_parts = n_parts;
    }
    return CLIENT_ARGS_OK;
}
