/* SPDX-License-Identifier: MIT */
/*
 * upgrade.c - SIGUSR2: the old echod starts the new binary with its
 * sockets and waits for it to say it serves (upgrade.h); the new one's
 * side is upgrade_take.c.
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
#include "workers.h"

extern char **environ;

#define ENV_READY_FD ECHOD_UPGRADE_ENV

static struct {
    /* This process: how to start it again. */
    const char *path; /* NULL: not known */
    char **argv;
    /* The old echod during an upgrade: one worker (d) or several (s). */
    struct echod *d;
    struct echod_server *s;
    pid_t child; /* not reaped yet; 0: none */
    bool starting, handed_over, sigchld_watched;
    int ready_fd; /* read end; -1 */
    uint64_t timer;
    struct timespec started;
} up = {.ready_fd = -1};

/* ------------------------------------------------------------------------
 * Start-up: the path to start again.
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
    return echod_upgrade_init_new();
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

/* With workers: each address's sockets, worker 0 first (upgrade.h). A
   worker's listeners and datagram sockets are in option order, Unix ones
   only with the first. Read on the main thread: a worker changes them only
   once stopping or handing over, when no upgrade starts. */
static void collect_workers(const struct echod_server *s, struct plan *p)
{
    const struct echod_options *opt = s->opt;
    size_t tcp[ECHOD_MAX_WORKERS] = {0}, udp[ECHOD_MAX_WORKERS] = {0};
    for (size_t i = 0; i < opt->nlisten; i++)
        for (unsigned w = 0; w < s->nworkers; w++)
            if (w == 0 || !echod_is_unix(opt->listen[i].addr))
                add_socket(p, s->workers[w]->listeners[tcp[w]++].fd, ECHOD_ROLE_LISTEN);
    for (size_t i = 0; i < opt->nudp; i++)
        for (unsigned w = 0; w < s->nworkers; w++)
            if (w == 0 || !echod_is_unix(opt->udp[i]))
                add_socket(p, echod_udp_fd(s->workers[w]->udp, udp[w]++), ECHOD_ROLE_UDP);
    if (s->workers[0]->agent)
        add_socket(p, sideport_fd(s->workers[0]->agent), ECHOD_ROLE_AGENT);
    if (s->workers[0]->metrics)
        add_socket(p, sideport_fd(s->workers[0]->metrics), ECHOD_ROLE_METRICS);
}

/* Every socket, in the order of upgrade.h. */
static void collect_sockets(const struct echod *d, struct plan *p)
{
    snprintf(p->names_var, sizeof(p->names_var), "LISTEN_FDNAMES=");
    if (up.s) {
        collect_workers(up.s, p);
        return;
    }
    for (size_t i = 0; i < d->nlisteners; i++)
        add_socket(p, d->listeners[i].fd,
                   echod_upgrade_activated() ? ECHOD_ROLE_PASSED : ECHOD_ROLE_LISTEN);
    for (size_t i = 0; i < echod_udp_count(d->udp); i++)
        add_socket(p, echod_udp_fd(d->udp, i),
                   echod_upgrade_activated() ? ECHOD_ROLE_PASSED : ECHOD_ROLE_UDP);
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
    const struct echod_options *opt = up.s ? up.s->opt : up.d->opt;
    uint64_t open = up.s ? atomic_load(&up.s->open) : up.d->open;
    if (!opt->quiet)
        fprintf(stderr,
                "echod: upgrade: new echod (pid %d) serving after %.1f ms; draining %" PRIu64
                " connections\n",
                (int)up.child, ms_since(&up.started), open);
    if (up.s)
        echod_server_hand_over(up.s);
    else
        echod_hand_over(up.d);
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
static const char *refusal(const struct echod_options *opt, bool stopping, char *buf, size_t size)
{
    if (opt->inetd)
        return "--inetd has no listening socket to hand over";
    if (up.handed_over)
        snprintf(buf, size, "already handed over to pid %d", (int)up.child);
    else if (up.starting)
        snprintf(buf, size, "an upgrade is in progress (new echod pid %d)", (int)up.child);
    else if (up.child)
        snprintf(buf, size, "the last new echod (pid %d) is not reaped yet", (int)up.child);
    else if (stopping)
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

static int watch_child(struct iomux_loop *loop, int ready_fd)
{
    int rc = 0;
    if (!up.sigchld_watched && (rc = iomux_signal_watch(loop, SIGCHLD, on_child, NULL)) == 0)
        up.sigchld_watched = true;
    if (rc == 0)
        rc = iomux_fd_watch(loop, ready_fd, IOMUX_READ, on_ready, NULL);
    if (rc == 0)
        rc = iomux_timer_add(loop, ECHOD_UPGRADE_READY_MS, 0, on_ready_timeout, NULL, &up.timer);
    if (rc < 0)
        fprintf(stderr, "echod: upgrade failed: %s; still serving\n", strerror(-rc));
    return rc;
}

/* SIGUSR2 in the process whose signals `loop` takes (up.d or up.s set). */
static void start(struct iomux_loop *loop, const struct echod_options *opt, bool stopping)
{
    char buf[96];
    const char *why = refusal(opt, stopping, buf, sizeof(buf));
    if (why) {
        fprintf(stderr, "echod: SIGUSR2 refused: %s\n", why);
        return;
    }
    static struct plan plan; /* one upgrade at a time; large for the stack */
    struct plan *p = &plan;
    memset(p, 0, sizeof(*p));
    collect_sockets(up.d, p);
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
    clock_gettime(CLOCK_MONOTONIC, &up.started);
    int rc = make_env(p);
    if (rc < 0)
        fprintf(stderr, "echod: upgrade failed: %s; still serving\n", strerror(-rc));
    else
        rc = watch_child(loop, pipe_fds[0]);
    if (rc == 0)
        rc = start_child(p);
    free(p->envp);
    close(pipe_fds[1]);
    if (rc < 0) {
        stop_timer(loop);
        iomux_fd_unwatch(loop, pipe_fds[0]);
        close(pipe_fds[0]);
        return;
    }
    up.ready_fd = pipe_fds[0];
    up.starting = true;
    if (!opt->quiet)
        fprintf(stderr, "echod: SIGUSR2: starting %s (pid %d) with %zu sockets\n", up.path,
                (int)up.child, p->n);
}

void echod_upgrade_start(struct echod *d)
{
    up.d = d;
    start(d->loop, d->opt, d->draining || d->stopping);
}

void echod_upgrade_start_workers(struct echod_server *s, bool stopping)
{
    up.s = s;
    start(s->loop, s->opt, stopping);
}
