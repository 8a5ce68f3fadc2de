/* SPDX-License-Identifier: MIT */
/*
 * echo-client - the seed's select_echo_multiclient.py and
 * select_echo_slow_client.py as one tool: sends each part over every
 * socket, reads its whole echo back and checks every byte. main() parses
 * the options, reads parts from stdin when asked, and runs client.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include <iomux/loop.h>
#include <iomux/net.h>

#include "client.h"
#include "client_args.h"
#ifdef IOMUX_HAVE_TLS
#include "tls.h"
#endif

static const char progname[] = "echo-client";

/* Reads one part per line from stdin; blank lines are skipped, since an
   empty part has no echo to wait for. Returns 0 or -errno. */
static int read_stdin_parts(char ***parts_out, size_t **lens_out, size_t *n_out)
{
    char **parts = NULL;
    size_t *lens = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **np = realloc(parts, cap * sizeof *np);
            if (np == NULL)
                goto nomem;
            parts = np;
            size_t *nl = realloc(lens, cap * sizeof *nl);
            if (nl == NULL)
                goto nomem;
            lens = nl;
        }
        parts[n] = malloc(len + 1);
        if (parts[n] == NULL)
            goto nomem;
        memcpy(parts[n], line, len);
        parts[n][len] = '\0';
        lens[n++] = len;
    }
    int err = ferror(stdin) ? -errno : 0;
    free(line);
    *parts_out = parts;
    *lens_out = lens;
    *n_out = n;
    return err;
nomem:
    free(line);
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
    free(lens);
    return -ENOMEM;
}

/* Raises the soft RLIMIT_NOFILE when --sockets needs more than it allows
   (as far as the hard limit goes; past that, connect() says EMFILE). */
static void fit_nofile(unsigned sockets)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)sockets + 16;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* "HOST:PORT" or "[V6]:PORT" split for the seed's "connecting to HOST port
   PORT" line; parsing proper is iomux_addr_parse()'s job. */
static void split_host_port(const char *text, char *host, size_t size, const char **port)
{
    const char *colon = strrchr(text, ':');
    size_t len = (size_t)(colon - text);
    const char *h = text;
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    snprintf(host, size, "%.*s", (int)len, h);
    *port = colon + 1;
}

/* A bad command line: the reason, then where to look; exit status 2. */
static int usage_error(const char *reason)
{
    fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", progname, reason, progname);
    return 2;
}

/* Resolves --connect; 0, or the exit status after saying why. */
static int resolve(const struct client_options *o, struct iomux_addr *addr)
{
    char why[512];
    int is_unix = strncmp(o->connect, "unix:", 5) == 0;
    int rc = is_unix ? iomux_addr_unix(o->connect, addr) : iomux_addr_parse(o->connect, addr);
    if (rc == -EINVAL) {
        snprintf(why, sizeof why, "--connect: '%s' is not HOST:PORT", o->connect);
        return usage_error(why);
    }
    if (rc == -ENAMETOOLONG) {
        snprintf(why, sizeof why, "--connect: '%s': path too long (at most %zu bytes)", o->connect,
                 sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
        return usage_error(why);
    }
    if (rc < 0) {
        fprintf(stderr, "%s: resolving '%s': %s\n", progname, o->connect,
                rc == -ENOENT ? "no such host" : strerror(-rc));
        return 1;
    }
    return 0;
}

/* The parts and their lengths; `owned` holds them when they came from stdin. */
struct loaded_parts {
    struct client_parts view;
    char **owned;
    size_t *lens;
};

static void unload_parts(struct loaded_parts *p)
{
    if (p->owned != NULL)
        for (size_t i = 0; i < p->view.n; i++)
            free(p->owned[i]);
    free(p->owned);
    free(p->lens);
}

/* 0, or the exit status after saying why. */
static int load_parts(const struct client_options *o, struct loaded_parts *p)
{
    *p = (struct loaded_parts){.view = {.data = o->parts, .n = o->n_parts}};
    if (o->parts_from_stdin) {
        int rc = read_stdin_parts(&p->owned, &p->lens, &p->view.n);
        if (rc < 0 || p->view.n == 0) {
            fprintf(stderr, "%s: reading parts from stdin: %s\n", progname,
                    rc < 0 ? strerror(-rc) : "no non-empty line");
            unload_parts(p);
            return 1;
        }
        p->view.data = (const char *const *)p->owned;
    } else {
        p->lens = calloc(p->view.n, sizeof *p->lens);
        if (p->lens == NULL) {
            fprintf(stderr, "%s: allocating: %s\n", progname, strerror(ENOMEM));
            return 1;
        }
        for (size_t i = 0; i < p->view.n; i++)
            p->lens[i] = strlen(o->parts[i]);
    }
    p->view.len = p->lens;
    return 0;
}

/* --file: standard input, or the file opened; 0, or the exit status. */
static int open_input(const struct client_options *o, int *fd)
{
    *fd = strcmp(o->file, "-") == 0 ? STDIN_FILENO : open(o->file, O_RDONLY | O_CLOEXEC);
    if (*fd >= 0)
        return 0;
    fprintf(stderr, "%s: opening %s: %s\n", progname, o->file, strerror(errno));
    return 1;
}

static int run(const struct client_options *o)
{
    struct iomux_addr addr;
    struct loaded_parts parts = {0};
    int input = -1;
    int rc = resolve(o, &addr);
    if (rc == 0)
        rc = o->file != NULL ? open_input(o, &input) : load_parts(o, &parts);
    if (rc != 0)
        return rc;
    if (!o->quiet && strncmp(o->connect, "unix:", 5) == 0) {
        fprintf(stderr, "connecting to %s\n", o->connect);
    } else if (!o->quiet) {
        char host[256];
        const char *port;
        split_host_port(o->connect, host, sizeof host, &port);
        fprintf(stderr, "connecting to %s port %s\n", host, port);
    }
    fit_nofile(o->sockets);
    char err[512];
    rc = client_run(o, &addr, o->file != NULL ? NULL : &parts.view, input, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", progname, err);
    if (input > STDIN_FILENO)
        close(input);
    unload_parts(&parts);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[512];
    struct client_options o;
    const char **parts_store = calloc((size_t)argc + 1, sizeof *parts_store);
    if (parts_store == NULL) {
        fprintf(stderr, "%s: allocating: %s\n", progname, strerror(ENOMEM));
        return 1;
    }
    int rc = client_args_parse(argc, argv, &o, parts_store, err, sizeof err);
    if (rc == CLIENT_ARGS_HELP)
        client_usage(stdout);
    else if (rc == CLIENT_ARGS_VERSION)
        printf("%s (iomux) %s\n", progname, iomux_version());
    int status = rc == CLIENT_ARGS_OK ? run(&o) : rc == CLIENT_ARGS_ERROR ? usage_error(err) : 0;
    free(parts_store);
#ifdef IOMUX_HAVE_TLS
    if (rc == CLIENT_ARGS_OK && o.tls.on)
        tls_library_cleanup(); /* leak checkers then see only ours */
#endif
    return status;
}
