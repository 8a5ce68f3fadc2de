/* SPDX-License-Identifier: MIT */
/*
 * upgrade_take.c - the new echod of an upgrade (upgrade.h): takes the
 * sockets the old one handed over instead of binding, each by its place in
 * the hand-over's order, then says it serves.
 */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iomux/net.h>

#include "echod_internal.h"

#define ENV_READY_FD ECHOD_UPGRADE_ENV

static struct {
    bool activated; /* systemd passed the sockets: hand them over plain */
    /* The new echod of an upgrade: the sockets it was handed, the pipe to
       say it serves. */
    int tell_fd; /* -1: not an upgrade */
    struct echod_passed inherited[ECHOD_MAX_PASSED];
    size_t ninherited;
    const struct echod_options *opt; /* echod_upgrade_layout() */
    unsigned nworkers;
    bool layout_checked;
} up = {.tell_fd = -1};

int echod_upgrade_init_new(void)
{
    const char *text = getenv(ENV_READY_FD);
    if (!text)
        return 0;
    char *end;
    errno = 0;
    long fd = strtol(text, &end, 10);
    unsetenv(ENV_READY_FD);
    if (errno || *end || fd < 3 || fd > INT32_MAX || fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "echod: upgrade: %s '%s' is not an open descriptor\n", ENV_READY_FD, text);
        return -EBADF;
    }
    up.tell_fd = (int)fd;
    return 0;
}

bool echod_upgrade_activated(void)
{
    return up.activated;
}

void echod_upgrade_adopt(struct echod_passed *passed, size_t *n)
{
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        bool role = up.tell_fd >= 0 && strcmp(passed[i].name, ECHOD_ROLE_PASSED) != 0;
        if (role)
            up.inherited[up.ninherited++] = passed[i];
        else
            passed[kept++] = passed[i];
    }
    *n = kept;
    up.activated = kept > 0;
}

/* The handed-over socket is the one `text` asks for: the same family, and
   the same address unless the port is 0 (any port then). 0 or -EBADF. */
static int check_address(const struct echod_passed *p, const char *role, const char *text)
{
    struct iomux_addr want, have;
    char want_text[IOMUX_ADDR_STRLEN] = "?", have_text[IOMUX_ADDR_STRLEN] = "?";
    bool is_unix = echod_is_unix(text);
    int rc = is_unix ? iomux_addr_unix(text, &want) : iomux_addr_parse(text, &want);
    if (rc == 0)
        rc = iomux_socket_local(p->fd, &have);
    if (rc == 0) {
        iomux_addr_format(&want, want_text, sizeof(want_text));
        iomux_addr_format(&have, have_text, sizeof(have_text));
    }
    bool same = rc == 0 && want.ss.ss_family == have.ss.ss_family &&
                ((!is_unix && iomux_addr_port(&want) == 0) || strcmp(want_text, have_text) == 0);
    if (same)
        return 0;
    fprintf(stderr, "echod: upgrade: --%s %s: the old echod passed %s (fd %d) in its place\n", role,
            text, have_text, p->fd);
    return -EBADF;
}

/* How many sockets an option hands over: one per worker, but one for a
   Unix socket (only the first worker serves its path). */
static size_t width(const char *text)
{
    return echod_is_unix(text) ? 1 : up.nworkers;
}

/* Where the sockets of option `index` of `role` start (upgrade.h's
   order); the whole count with role NULL. */
static size_t group_start(const char *role, size_t index)
{
    const struct echod_options *opt = up.opt;
    size_t slot = 0;
    bool all = !role;
    /* Sockets passed plain (systemd's) stand in for --listen and --udp. */
    for (size_t i = 0; !up.activated && i < opt->nlisten; i++) {
        if (!all && strcmp(role, ECHOD_ROLE_LISTEN) == 0 && i == index)
            return slot;
        slot += width(opt->listen[i].addr);
    }
    for (size_t i = 0; !up.activated && i < opt->nudp; i++) {
        if (!all && strcmp(role, ECHOD_ROLE_UDP) == 0 && i == index)
            return slot;
        slot += width(opt->udp[i]);
    }
    if (!all && strcmp(role, ECHOD_ROLE_AGENT) == 0)
        return slot;
    slot += opt->agent ? 1 : 0;
    if (!all && strcmp(role, ECHOD_ROLE_METRICS) == 0)
        return slot;
    return slot + (opt->metrics ? 1 : 0);
}

/* As many sockets as this command line takes: otherwise another worker
   count (or other options) would leave sockets untaken, whose accept
   queues the old echod's exit would reset. 0 or -EBADF. */
static int check_count(void)
{
    size_t want = group_start(NULL, 0);
    up.layout_checked = true;
    if (want == up.ninherited)
        return 0;
    fprintf(stderr,
            "echod: upgrade: the old echod passed %zu sockets, this command line "
            "(--workers %u) takes %zu: start it with the same options and --workers\n",
            up.ninherited, up.nworkers, want);
    return -EBADF;
}

void echod_upgrade_layout(const struct echod_options *opt, unsigned nworkers)
{
    up.opt = opt;
    up.nworkers = nworkers;
}

bool echod_upgrade_keeps_workers(void)
{
    const char *names = getenv("LISTEN_FDNAMES");
    if (up.tell_fd < 0 || !names)
        return false;
    /* systemd's sockets, passed on plain, are served by one worker. */
    size_t len = strlen(ECHOD_ROLE_PASSED);
    for (const char *p = names; p; p = strchr(p, ':'), p = p ? p + 1 : NULL)
        if (strncmp(p, ECHOD_ROLE_PASSED, len) == 0 && (p[len] == ':' || p[len] == '\0'))
            return false;
    return true;
}

int echod_upgrade_take_for(const char *role, const char *text, size_t index, unsigned worker,
                           int *fd)
{
    if (up.tell_fd < 0)
        return 0;
    if (!up.layout_checked && check_count() < 0)
        return -EBADF;
    size_t slot = group_start(role, index) + (echod_is_unix(text) ? 0 : worker);
    if (slot >= up.ninherited || strcmp(up.inherited[slot].name, role) != 0 ||
        up.inherited[slot].fd < 0) {
        fprintf(stderr,
                "echod: upgrade: --%s %s: the old echod passed %s (not the same command line?)\n",
                role, text, slot >= up.ninherited ? "no socket for it" : "another option's");
        return -EBADF;
    }
    struct echod_passed *p = &up.inherited[slot];
    int rc = check_address(p, role, text);
    if (rc < 0)
        return rc;
    *fd = p->fd;
    p->fd = -1;
    /* Ours to remove at exit from now on, as if bound here. */
    if (echod_is_unix(text))
        echod_unix_adopted(text + 5);
    return 1;
}

int echod_upgrade_take(const char *role, const char *text, int *fd)
{
    return echod_upgrade_take_for(role, text, 0, 0, fd);
}

void echod_upgrade_ready(const struct echod_options *opt)
{
    if (up.tell_fd < 0)
        return;
    /* More than the options asked for: not ours to serve. */
    for (size_t i = 0; i < up.ninherited; i++)
        if (up.inherited[i].fd >= 0)
            close(up.inherited[i].fd);
    if (!opt->quiet)
        fprintf(stderr, "echod: upgrade: serving (pid %d), taking over from pid %d\n",
                (int)getpid(), (int)getppid());
    ssize_t n;
    do
        n = write(up.tell_fd, "R", 1);
    while (n < 0 && errno == EINTR);
    close(up.tell_fd);
    up.tell_fd = -1;
}
