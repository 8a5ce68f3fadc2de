/* SPDX-License-Identifier: MIT */
/*
 * client_args.c - echo-client's options, declared once in `specs`: the
 * table drives both the parser and --help (opts.h). What a table cannot
 * say (an available backend, --file against parts and --sockets, '-' as
 * the only part) is checked after parsing.
 */
#include "client_args.h"

#include <string.h>

#include "cli.h"
#include "tls_opts.h"

/* The seed's select_echo_multiclient.py messages. */
static const char *const default_parts[] = {
    "This is the message. ",
    "It will be sent ",
    "in parts.",
};

static const char *const backend_names[] = {"auto", "epoll", "poll", "select", "uring", NULL};

/* A day is far beyond any sensible pause, and keeps the microsecond
   arithmetic far from overflow. */
#define MAX_SECONDS 86400

/* HOST:PORT, [IPV6]:PORT or unix:PATH; resolving is main()'s job. */
static int parse_connect(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    int is_unix = strncmp(v, "unix:", 5) == 0;
    if (is_unix ? v[5] == '\0' : v[0] == '\0' || strrchr(v, ':') == NULL) {
        snprintf(err, errsize, "%s: '%s' is not HOST:PORT or unix:PATH", opt, v);
        return -1;
    }
    ((struct client_options *)opts)->connect = v;
    return 0;
}

static int parse_proxy_version(void *opts, const char *opt, const char *v, char *err,
                               size_t errsize)
{
    return proxy_cli_version(&((struct client_options *)opts)->proxy_version, opt, v, err, errsize);
}

static int parse_proxy_source(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    return proxy_cli_source(&((struct client_options *)opts)->proxy_source, opt, v, err, errsize);
}

#define F(field) offsetof(struct client_options, field)
static const struct cli_spec specs[] = {
    {.name = "connect",
     .arg = "HOST:PORT",
     .kind = CLI_CALL,
     .call = parse_connect,
     .help = "server: HOST:PORT, [IPV6]:PORT or\nunix:PATH",
     .def = "localhost:10000"},
    {.name = "sockets",
     .arg = "N",
     .kind = CLI_UNSIGNED,
     .field = F(sockets),
     .min = 1,
     .max = 10000,
     .help = "connections, 1..10000; --file uses 1",
     .def = "2"},
    {.name = "delay",
     .arg = "SECONDS",
     .kind = CLI_SECONDS_US,
     .field = F(delay_us),
     .max = MAX_SECONDS,
     .help = "pause between parts",
     .def = "0"},
    {.name = "connect-delay",
     .arg = "SECONDS",
     .kind = CLI_SECONDS_US,
     .field = F(connect_delay_us),
     .max = MAX_SECONDS,
     .help = "pause after connecting",
     .def = "0"},
    {.name = "timeout",
     .arg = "SECONDS",
     .kind = CLI_SECONDS_US,
     .field = F(timeout_us),
     .max = MAX_SECONDS,
     .help = "give up after this long without progress;\n0: never",
     .def = "10"},
    {.name = "file",
     .arg = "FILE",
     .kind = CLI_STRING,
     .field = F(file),
     .help = "send FILE ('-': standard input) as one stream\non one socket instead of parts, "
             "half-close,\nand check the whole echo"},
    {.name = "backend",
     .arg = "NAME",
     .kind = CLI_CHOICE,
     .field = F(backend),
     .choices = backend_names,
     .help = "loop backend: auto, epoll, poll, select,\nuring (if built)",
     .def = "auto"},
    SOCK_SPEC_NODELAY(F(tuning), "every connection", "on"),
    SOCK_SPEC_SNDBUF(F(tuning), "every connection"),
    SOCK_SPEC_RCVBUF(F(tuning), "every connection"),
    SOCK_SPEC_TOS(F(tuning), "every connection"),
    TLS_CLI_SPECS(F(tls)),
    {.name = "proxy-protocol",
     .arg = "v1|v2",
     .kind = CLI_CALL,
     .call = parse_proxy_version,
     .help = PROXY_CLI_VERSION_HELP " (before\nTLS)"},
    {.name = "proxy-source",
     .arg = "ADDR:PORT",
     .kind = CLI_CALL,
     .call = parse_proxy_source,
     .help = PROXY_CLI_SOURCE_HELP},
    {.name = "quiet",
     .kind = CLI_FLAG,
     .field = F(quiet),
     .help = "no trace on stderr, only errors"},
    {.name = "help", .short_name = 'h', .kind = CLI_HELP, .help = "print this help and exit"},
    {.name = "version", .kind = CLI_VERSION, .help = "print the version and exit"},
    {.name = NULL},
};
#undef F

void client_usage(FILE *out)
{
    fputs("usage: echo-client [OPTION]... [PART...]\n"
          "       echo-client [OPTION]... --file FILE\n"
          "Sends each PART over every socket and reads its whole echo back before the\n"
          "next part, or with --file one stream on one socket, as nc does; exits 0 when\n"
          "every byte came back identical, 1 otherwise (one line says why), 2 on a bad\n"
          "command line.\n",
          out);
    cli_usage(out, specs);
    fputs("  PART                     default: the seed's three parts; '-' alone\n"
          "                           reads parts from stdin, one per line\n"
          "Output: standard output gets exactly the bytes echoed (on the first socket;\n"
          "with --file, the stream), so the tool composes in a pipeline; the trace in\n"
          "the seed's words (connecting, sending, received, closing) and errors go to\n"
          "standard error.\n",
          out);
}

const char *client_backend_name(const struct client_options *o)
{
    return o->backend == CLIENT_BACKEND_AUTO ? NULL : backend_names[o->backend];
}

/* --file sends one stream on one socket: parts, --delay and more sockets
   have no meaning there. */
static int check_file(struct client_options *o, const bool *given, size_t n_operands, char *err,
                      size_t errsize)
{
    const char *clash = n_operands > 0                                         ? "PART"
                        : cli_given(specs, given, "delay")                     ? "--delay"
                        : o->sockets > 1 && cli_given(specs, given, "sockets") ? "--sockets"
                                                                               : NULL;
    if (clash != NULL) {
        snprintf(err, errsize, "--file sends one stream on one socket: %s does not apply", clash);
        return CLIENT_ARGS_ERROR;
    }
    o->sockets = 1;
    return CLIENT_ARGS_OK;
}

static int set_parts(struct client_options *o, const char **store, size_t n, char *err,
                     size_t errsize)
{
    for (size_t i = 0; i < n; i++) {
        if (store[i][0] == '\0') {
            snprintf(err, errsize, "PART: empty parts cannot be echoed");
            return CLIENT_ARGS_ERROR;
        }
        if (strcmp(store[i], "-") == 0 && n > 1) {
            snprintf(err, errsize, "PART: '-' (read from stdin) must be the only part");
            return CLIENT_ARGS_ERROR;
        }
    }
    o->parts_from_stdin = n == 1 && strcmp(store[0], "-") == 0;
    o->parts = o->parts_from_stdin ? NULL : n > 0 ? store : default_parts;
    o->n_parts = o->parts_from_stdin ? 0 : n > 0 ? n : sizeof default_parts / sizeof *default_parts;
    return CLIENT_ARGS_OK;
}

int client_args_parse(int argc, char **argv, struct client_options *o, const char **parts_store,
                      char *err, size_t errsize)
{
    *o = (struct client_options){
        .connect = "localhost:10000",
        .sockets = 2,
        .timeout_us = 10000000,
        .tuning = {.nodelay = SOCK_NODELAY_ON},
    };
    bool given[sizeof specs / sizeof specs[0]] = {false};
    struct cli_operands operands = {.items = parts_store};
    int rc = cli_parse(specs, argc, argv, o, given, &operands, err, errsize);
    if (rc != CLI_PARSE_OK)
        return rc;
    /* "uring" is in the table whether or not this build has it. */
    if (o->backend != CLIENT_BACKEND_AUTO &&
        cli_check_backend(client_backend_name(o), err, errsize) < 0)
        return CLIENT_ARGS_ERROR;
    if (tls_cli_check(&o->tls, specs, given, "echo-client", err, errsize) < 0)
        return CLIENT_ARGS_ERROR;
    if (o->proxy_version == 0 && cli_given(specs, given, "proxy-source")) {
        snprintf(err, errsize, "--proxy-source needs --proxy-protocol");
        return CLIENT_ARGS_ERROR;
    }
    if (o->file != NULL)
        return check_file(o, given, operands.count, err, errsize);
    return set_parts(o, parts_store, operands.count, err, errsize);
}
