/* SPDX-License-Identifier: MIT */
/*
 * upgrade.c - SIGUSR2: the old echod starts the new binary with its
 * sockets and waits for it to say it serves (upgrade.h); the new one takes
 * the sockets instead of binding, then says so.
 */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <iomux/loop.h>
#include <iomux/net.h>

#include "echod_internal.h"
#include "sideport.h"
#include "udp.h"

extern char **environ;

#define ENV_READY_FD "ECHOD_UPGRADE_FD"

static struct {
    /* This process: how to start it again. */
    const char *path; /* NULL: not known */
    char **argv;
    bool activated; /* systemd passed the sockets: hand them over plain */
    /* The new echod of an upgrade: the sockets it was handed, the pipe to
       say it serves. */
    int tell_fd; /* -1: not an upgrade */
    struct echod_passed inherited[ECHOD_MAX_PASSED];
    size_t ninherited, next;
    /* The old echod during an upgrade. */
    struct echod *d;
    pid_t child; /* not reaped yet; 0: none */
    bool starting, handed_over, sigchld_watched;
    int ready_fd; /* read end; -1 */
    uint64_t timer;
    struct timespec started;
} up = {.tell_fd = -1, .ready_fd = -1};

/* ------------------------------------------------------------------------
 * Start-up: the path to start again; the new echod's side.
 */

/* The binary as an absolute path in `out`, resolved now: the working
   directory and $PATH are the ones it was started with. Symbolic links
   are kept: a package that swaps a link's target is upgraded through it.
   A static buffer, not the heap: nothing to free at exit. False if it
   cannot be found. */
static bool resolve_self(const char *argv0, char *out, size_t size)
{
    if (argv0[0] == '/')
        return (size_t)snprintf(out, size, "%s", argv0) < size;
    if (strchr(argv0, '/')) {
        while (strncmp(argv0, "./", 2) == 0)
            argv0 += 2;
        if (!getcwd(out, size))
            return false;
        size_t n = strlen(out);
        return (size_t)snprintf(out + n, size - n, "/%s", argv0) < size - n;
    }
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        int n = snprintf(out, size, "%.*s/%s", (int)len, p, argv0);
        if (len && out[0] == '/' && n > 0 && (size_t)n < size && access(out, X_OK) == 0)
            return true;
        p = colon ? colon + 1 : NULL;
    }
    return false;
}

int echod_upgrade_init(int argc, char **argv)
{
    (void)argc;
    up.argv = argv;
    /* Without a path SIGUSR2 says so; serving does not need it. */
    static char self[4096];
    up.path = argv[0] && resolve_self(argv[0], self, sizeof(self)) ? self : NULL;
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

int echod_upgrade_take(const char *role, const char *text, int *fd)
{
    if (up.tell_fd < 0)
        return 0;
    if (up.next == up.ninherited || strcmp(up.inherited[up.next].name, role) != 0) {
        fprintf(stderr,
                "echod: upgrade: --%s %s: the old echod passed %s (not the same command line?)\n",
                role, text, up.next == up.ninherited ? "no socket for it" : "another option's");
        return -EBADF;
    }
    struct echod_passed *p = &up.inherited[up.next];
    int rc = check_address(p, role, text);
    if (rc < 0)
        return rc;
    up.next++;
    *fd = p->fd;
    p->fd = -1;
    /* Ours to remove at exit from now on, as if bound here. */
    if (echod_is_unix(text))
        echod_unix_adopted(text + 5);
    return 1;
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

/* ------------------------------------------------------------------------
 * The old echod: the child, between fork and exec (async-signal-safe
 * calls only).
 */

/* What the child is given; made before fork(). */
struct plan {
    int fds[ECHOD_MAX_PASSED];
    size_t n;
    int ready_w;
    char **envp;
    char pid_var[32]; /* "LISTEN_PID=": the child writes its pid after it */
    char fds_var[32], ready_var[48];
    char names_var[16 + ECHOD_MAX_PASSED * 8];
    sigset_t mask; /* the signal mask to give back */
};

static void child_write(const char *text)
{
    ssize_t ignored = write(2, text, strlen(text));
    (void)ignored;
}

/* Writes getpid() after "LISTEN_PID=": only now is it known. */
static void put_pid(char *var)
{
    char digits[16];
    size_t n = 0;
    for (unsigned long v = (unsigned long)getpid(); n == 0 || v; v /= 10)
        digits[n++] = (char)('0' + v % 10);
    char *p = var + strlen("LISTEN_PID=");
    while (n)
        *p++ = digits[--n];
    *p = '\0';
}

static _Noreturn void run_child(struct plan *p)
{
    /* The loop's handlers would write to the old echod's self-pipe. */
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN) {
            sa.sa_handler = SIG_DFL;
            sa.sa_flags = 0;
            (void)sigaction(s, &sa, NULL);
        }
    }
    sigprocmask(SIG_SETMASK, &p->mask, NULL);
    /* Copies above every target first, so that no move overwrites a
       socket not moved yet; dup2() leaves the targets without
       FD_CLOEXEC. */
    int base = ECHOD_LISTEN_FDS_START + (int)p->n + 1, high[ECHOD_MAX_PASSED + 1];
    for (size_t i = 0; i <= p->n; i++) {
        high[i] = fcntl(i < p->n ? p->fds[i] : p->ready_w, F_DUPFD, base);
        if (high[i] < 0)
            _exit(126);
    }
    for (size_t i = 0; i <= p->n; i++)
        if (dup2(high[i], ECHOD_LISTEN_FDS_START + (int)i) < 0)
            _exit(126);
    put_pid(p->pid_var);
    /* Everything else is close-on-exec already; this is the belt. */
#ifdef SYS_close_range
    (void)syscall(SYS_close_range, (unsigned)base, ~0u, 0u);
#endif
    execve(up.path, up.argv, p->envp);
    child_write("echod: upgrade: cannot execute ");
    child_write(up.path);
    child_write("\n");
    _exit(127);
}

/* ------------------------------------------------------------------------
 * The old echod: the plan, the fork, the wait for "ready".
 */

static bool is_activation_var(const char *var)
{
    static const char *const names[] = {
        "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", ENV_READY_FD "="};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(var, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

static void add_socket(struct plan *p, int fd, const char *role)
{
    if (p->n == ECHOD_MAX_PASSED) {
        p->n++; /* too many: said by the caller */
        return;
    }
    size_t len = strlen(p->names_var);
    snprintf(p->names_var + len, sizeof(p->names_var) - len, "%s%s", p->n ? ":" : "", role);
    p->fds[p->n++] = fd;
}

/* Every socket, in the order of upgrade.h. */
static void collect_sockets(const struct echod *d, struct plan *p)
{
    snprintf(p->names_var, sizeof(p->names_var), "LISTEN_FDNAMES=");
    for (size_t i = 0; i < d->nlisteners; i++)
        add_socket(p, d->listeners[i].fd, up.activated ? ECHOD_ROLE_PASSED : ECHOD_ROLE_LISTEN);
    for (size_t i = 0; i < echod_udp_count(d->udp); i++)
        add_socket(p, echod_udp_fd(d->udp, i), up.activated ? ECHOD_ROLE_PASSED : ECHOD_ROLE_UDP);
    if (d->agent)
        add_socket(p, sideport_fd(d->agent), ECHOD_ROLE_AGENT);
    if (d->metrics)
        add_socket(p, sideport_fd(d->metrics), ECHOD_ROLE_METRICS);
}

/* The child's environment: ours, with the activation variables replaced.
   0 or -ENOMEM. */
static int make_env(struct plan *p)
{
    size_t n = 0;
    while (environ[n])
        n++;
    p->envp = calloc(n + 5, sizeof(*p->envp));
    if (!p->envp)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_activation_var(environ[i]))
            p->envp[k++] = environ[i];
    snprintf(p->pid_var, sizeof(p->pid_var), "LISTEN_PID=0");
    snprintf(p->fds_var, sizeof(p->fds_var), "LISTEN_FDS=%zu", p->n);
    snprintf(p->ready_var, sizeof(p->ready_var), "%s=%d", ENV_READY_FD,
             ECHOD_LISTEN_FDS_START + (int)p->n);
    p->envp[k++] = p->pid_var;
    p->envp[k++] = p->fds_var;
    p->envp[k++] = p->names_var;
    p->envp[k++] = p->ready_var;
    p->envp[k] = NULL;
    return 0;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void stop_reading(struct iomux_loop *loop)
{
    if (up.ready_fd < 0)
        return;
    iomux_fd_unwatch(loop, up.ready_fd);
    close(up.ready_fd);
    up.ready_fd = -1;
}

static void stop_timer(struct iomux_loop *loop)
{
    if (up.timer)
        iomux_timer_cancel(loop, up.timer);
    up.timer = 0;
}

/* Reads the pipe: the byte that says the new echod serves, or its end
   (the new echod is gone, or going: SIGCHLD says how). */
static void read_ready(struct iomux_loop *loop)
{
    char byte;
    ssize_t n = up.ready_fd >= 0 ? read(up.ready_fd, &byte, 1) : -1;
    if (n < 0 && (up.ready_fd < 0 || errno == EAGAIN || errno == EINTR))
        return;
    stop_reading(loop);
    if (n != 1)
        return;
    stop_timer(loop);
    up.starting = false;
    up.handed_over = true;
    struct echod *d = up.d;
    if (!d->opt->quiet)
        fprintf(stderr,
                "echod: upgrade: new echod (pid %d) serving after %.1f ms; draining %" PRIu64
                " connections\n",
                (int)up.child, ms_since(&up.started), d->open);
    echod_hand_over(d);
}

static void on_ready(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    (void)fd, (void)events, (void)data;
    read_ready(loop);
}

static void on_ready_timeout(struct iomux_loop *loop, uint64_t id, void *data)
{
    (void)id, (void)data;
    up.timer = 0;
    if (!up.starting)
        return;
    stop_reading(loop);
    up.starting = false;
    kill(up.child, SIGKILL); /* reaped by on_child() */
    fprintf(stderr,
            "echod: upgrade failed: new echod (pid %d) did not say it serves within %u s "
            "(killed); still serving\n",
            (int)up.child, ECHOD_UPGRADE_READY_MS / 1000);
}

static void on_child(struct iomux_loop *loop, int signo, void *data)
{
    (void)signo, (void)data;
    int status;
    if (!up.child || waitpid(up.child, &status, WNOHANG) <= 0)
        return;
    /* A byte written just before the exit is still a start that worked. */
    if (up.starting)
        read_ready(loop);
    pid_t pid = up.child;
    up.child = 0;
    char how[64];
    if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
    if (up.starting) {
        stop_reading(loop);
        stop_timer(loop);
        up.starting = false;
        fprintf(stderr, "echod: upgrade failed: new echod (pid %d) %s; still serving\n", (int)pid,
                how);
    } else if (up.handed_over) {
        fprintf(stderr, "echod: upgrade: new echod (pid %d) %s\n", (int)pid, how);
    }
}

/* Why SIGUSR2 cannot start an upgrade now, or NULL. */
static const char *refusal(const struct echod *d, char *buf, size_t size)
{
    if (d->opt->inetd)
        return "--inetd has no listening socket to hand over";
    if (up.handed_over)
        snprintf(buf, size, "already handed over to pid %d", (int)up.child);
    else if (up.starting)
        snprintf(buf, size, "an upgrade is in progress (new echod pid %d)", (int)up.child);
    else if (up.child)
        snprintf(buf, size, "the last new echod (pid %d) is not reaped yet", (int)up.child);
    else if (d->draining || d->stopping)
        return "shutting down";
    else if (!up.path)
        return "the path echod was started from is not known";
    else
        return NULL;
    return buf;
}

/* Forks the new echod with the plan; 0 or -errno (said). */
static int start_child(struct plan *p)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &p->mask);
    pid_t pid = fork();
    if (pid == 0)
        run_child(p);
    int err = errno;
    sigprocmask(SIG_SETMASK, &p->mask, NULL);
    if (pid < 0) {
        fprintf(stderr, "echod: upgrade failed: fork: %s; still serving\n", strerror(err));
        return -err;
    }
    up.child = pid;
    return 0;
}

static int watch_child(struct echod *d, int ready_fd)
{
    int rc = 0;
    if (!up.sigchld_watched && (rc = iomux_signal_watch(d->loop, SIGCHLD, on_child, NULL)) == 0)
        up.sigchld_watched = true;
    if (rc == 0)
        rc = iomux_fd_watch(d->loop, ready_fd, IOMUX_READ, on_ready, NULL);
    if (rc == 0)
        rc = iomux_timer_add(d->loop, ECHOD_UPGRADE_READY_MS, 0, on_ready_timeout, NULL, &up.timer);
    if (rc < 0)
        fprintf(stderr, "echod: upgrade failed: %s; still serving\n", strerror(-rc));
    return rc;
}

void echod_upgrade_start(struct echod *d)
{
    char buf[96];
    const char *why = refusal(d, buf, sizeof(buf));
    if (why) {
        fprintf(stderr, "echod: SIGUSR2 refused: %s\n", why);
        return;
    }
    static struct plan plan; /* one upgrade at a time; large for the stack */
    struct plan *p = &plan;
    memset(p, 0, sizeof(*p));
    collect_sockets(d, p);
    if (p->n > ECHOD_MAX_PASSED) {
        fprintf(stderr, "echod: SIGUSR2 refused: more than %d sockets to hand over\n",
                ECHOD_MAX_PASSED);
        return;
    }
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "echod: upgrade failed: pipe: %s; still serving\n", strerror(errno));
        return;
    }
    p->ready_w = pipe_fds[1];
    up.d = d;
    clock_gettime(CLOCK_MONOTONIC, &up.started);
    int rc = make_env(p);
    if (rc < 0)
        fprintf(stderr, "echod: upgrade failed: %s; still serving\n", strerror(-rc));
    else
        rc = watch_child(d, pipe_fds[0]);
    if (rc == 0)
        rc = start_child(p);
    free(p->envp);
    close(pipe_fds[1]);
    if (rc < 0) {
        stop_timer(d->loop);
        iomux_fd_unwatch(d->loop, pipe_fds[0]);
        close(pipe_fds[0]);
        return;
    }
    up.ready_fd = pipe_fds[0];
    up.starting = true;
    if (!d->opt->quiet)
        fprintf(stderr, "echod: SIGUSR2: starting %s (pid %d) with %zu sockets\n", up.path,
                (int)up.child, p->n);
}
