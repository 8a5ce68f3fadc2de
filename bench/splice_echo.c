/* SPDX-License-Identifier: MIT */
/*
 * splice_echo - what echoing a message costs the server on loopback TCP when
 * the bytes are copied through user space (recv/send) and when they never
 * leave the kernel (splice socket -> pipe -> socket, readiness style, and
 * IORING_OP_SPLICE on io_uring). The groundwork for `echod --splice`
 * (issue 28); docs/splice.md has the results.
 *
 * One cell = one mode x one message size: the parent process is a minimal
 * single-connection echo server, a forked child is the client. The client
 * sends one message, reads it back whole, and repeats for --duration ms
 * (ping-pong, one connection), then reports its message count and elapsed
 * time through a pipe. The server takes getrusage() around the connection:
 * RUSAGE_THREAD (its own thread) and RUSAGE_SELF (its thread plus any
 * io_uring worker threads, which do the blocking part of IORING_OP_SPLICE).
 * Both are divided by the client's message count.
 *
 * Rounds: every round runs each size with all modes back to back, in the
 * opposite order on odd rounds, so slow drifts of the machine's load hit
 * every mode alike; the summary gives medians and the min-max spread, and
 * the median of the per-round ratio of each mode to `copy` (the paired
 * comparison, which is what survives a noisy machine).
 *
 * --pipe-cost N creates N pipes at each measured F_SETPIPE_SZ and reports
 * the descriptors and the kernel memory (Slab, then pages once filled) per
 * pipe, read from /proc/meminfo deltas.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* splice, pipe2, accept4, F_SETPIPE_SZ */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef SPLICE_ECHO_URING
#include <liburing.h>
#endif

static const char *progname = "splice_echo";

/* System calls the server made for the current cell (io_uring: submits). */
static unsigned long server_syscalls;

enum engine { ENG_COPY, ENG_SPLICE, ENG_URING };

struct mode {
    const char *name;
    enum engine engine;
    int pipe_size; /* F_SETPIPE_SZ; for copy, the recv() size (0: SERVER_BUF) */
    int optional;  /* run only when named in --modes */
};

static const struct mode all_modes[] = {
    {"copy", ENG_COPY, 0, 0},
    {"splice64", ENG_SPLICE, 65536, 0},
    {"splice256", ENG_SPLICE, 262144, 0},
    {"uring64", ENG_URING, 65536, 0},
    {"uring256", ENG_URING, 262144, 0},
    {"copy64", ENG_COPY, 65536, 1},
};
#define NMODES (sizeof all_modes / sizeof all_modes[0])

static const size_t default_sizes[] = {64, 1024, 4096, 16384, 65536, 262144};
#define MAX_SIZES  16
#define MAX_ROUNDS 64
#define SERVER_BUF (256 * 1024)

struct cell_result {
    double msgs_per_s;
    double thread_us_per_msg;
    double proc_us_per_msg;
    unsigned long link_breaks; /* io_uring: linked splice-out cancelled */
    double syscalls_per_msg;
};

struct config {
    size_t sizes[MAX_SIZES];
    unsigned nsizes;
    int mode_on[NMODES];
    unsigned rounds;
    unsigned duration_ms;
};

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", progname, what, strerror(errno));
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        die("getrusage");
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- server side: one connection, nonblocking, poll() for readiness ---- */

static void wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    server_syscalls++;
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            die("poll");
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        server_syscalls++;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            wait_fd(fd, POLLOUT);
        } else {
            die("server send");
        }
    }
}

static void serve_copy(int fd, char *buf, size_t cap)
{
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        server_syscalls++;
        if (n > 0)
            send_all(fd, buf, (size_t)n);
        else if (n == 0)
            return;
        else if (errno == EAGAIN)
            wait_fd(fd, POLLIN);
        else
            die("server recv");
    }
}

static void drain_pipe(int pipe_rd, int fd, size_t len)
{
    while (len > 0) {
        ssize_t n = splice(pipe_rd, NULL, fd, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        server_syscalls++;
        if (n > 0)
            len -= (size_t)n;
        else if (n < 0 && errno == EAGAIN)
            wait_fd(fd, POLLOUT);
        else
            die("splice pipe->socket");
    }
}

static void serve_splice(int fd, const int pipefd[2], size_t pipe_size)
{
    for (;;) {
        ssize_t n = splice(fd, NULL, pipefd[1], NULL, pipe_size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        server_syscalls++;
        if (n > 0)
            drain_pipe(pipefd[0], fd, (size_t)n);
        else if (n == 0)
            return;
        else if (errno == EAGAIN)
            wait_fd(fd, POLLIN);
        else
            die("splice socket->pipe");
    }
}

#ifdef SPLICE_ECHO_URING
/* Waits for one completion and returns its result and user_data. */
static int uring_reap(struct io_uring *ring, uint64_t *tag)
{
    struct io_uring_cqe *cqe;
    int rc;
    while ((rc = io_uring_wait_cqe(ring, &cqe)) == -EINTR)
        ;
    if (rc < 0) {
        errno = -rc;
        die("io_uring_wait_cqe");
    }
    int res = cqe->res;
    *tag = cqe->user_data;
    io_uring_cqe_seen(ring, cqe);
    return res;
}

static void uring_splice_out(struct io_uring *ring, const int pipefd[2], int fd, size_t len)
{
    while (len > 0) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        io_uring_prep_splice(sqe, pipefd[0], -1, fd, -1, (unsigned)len, SPLICE_F_MOVE);
        sqe->user_data = 2;
        io_uring_submit(ring);
        server_syscalls++;
        uint64_t tag;
        int res = uring_reap(ring, &tag);
        if (res <= 0) {
            errno = res < 0 ? -res : EPIPE;
            die("IORING_OP_SPLICE pipe->socket");
        }
        len -= (size_t)res;
    }
}

/*
 * A chain POLL_ADD(POLLIN) -> SPLICE(socket->pipe) -> SPLICE(pipe->socket).
 * io_uring never runs a splice inline: it always hands it to an io-wq
 * worker thread (whose CPU only RUSAGE_SELF sees); the poll keeps that
 * worker from sleeping in a blocking splice on an empty socket. io_uring
 * fails a splice that moves fewer bytes than asked, which cancels the rest
 * of the chain; then the pipe is drained by dependent requests of the exact
 * length. link_breaks counts those.
 */
static void serve_uring(int fd, const int pipefd[2], size_t pipe_size, struct cell_result *r)
{
    struct io_uring ring;
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) {
        errno = -rc;
        die("io_uring_queue_init");
    }
    for (;;) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_poll_add(sqe, fd, POLLIN);
        sqe->flags |= IOSQE_IO_LINK;
        sqe->user_data = 0;
        sqe = io_uring_get_sqe(&ring);
        io_uring_prep_splice(sqe, fd, -1, pipefd[1], -1, (unsigned)pipe_size, SPLICE_F_MOVE);
        sqe->flags |= IOSQE_IO_LINK;
        sqe->user_data = 1;
        sqe = io_uring_get_sqe(&ring);
        io_uring_prep_splice(sqe, pipefd[0], -1, fd, -1, (unsigned)pipe_size, SPLICE_F_MOVE);
        sqe->user_data = 2;
        io_uring_submit(&ring);
        server_syscalls++;
        int res[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) {
            uint64_t tag;
            int v = uring_reap(&ring, &tag);
            res[tag < 3 ? tag : 0] = v;
        }
        if (res[0] < 0 || res[1] < 0) {
            errno = -(res[0] < 0 ? res[0] : res[1]);
            die("IORING_OP_SPLICE socket->pipe");
        }
        if (res[1] == 0)
            break; /* EOF: the out splice was cancelled or moved nothing */
        if (res[2] == -ECANCELED)
            r->link_breaks++;
        else if (res[2] < 0)
            errno = -res[2], die("IORING_OP_SPLICE pipe->socket");
        uring_splice_out(&ring, pipefd, fd, (size_t)res[1] - (size_t)(res[2] > 0 ? res[2] : 0));
    }
    io_uring_queue_exit(&ring);
}
#endif

static void make_pipe(int pipefd[2], int size)
{
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        die("pipe2");
    if (fcntl(pipefd[1], F_SETPIPE_SZ, size) < 0)
        die("F_SETPIPE_SZ");
}

static void serve(int fd, const struct mode *m, char *buf, struct cell_result *r)
{
    int pipefd[2] = {-1, -1};
    if (m->engine != ENG_COPY)
        make_pipe(pipefd, m->pipe_size);
    if (m->engine == ENG_COPY)
        serve_copy(fd, buf, m->pipe_size ? (size_t)m->pipe_size : SERVER_BUF);
    else if (m->engine == ENG_SPLICE)
        serve_splice(fd, pipefd, (size_t)m->pipe_size);
#ifdef SPLICE_ECHO_URING
    else
        serve_uring(fd, pipefd, (size_t)m->pipe_size, r);
#else
    (void)r;
#endif
    if (pipefd[0] >= 0) {
        close(pipefd[0]);
        close(pipefd[1]);
    }
}

/* ---- client side: a forked process, blocking socket, ping-pong ---- */

struct client_report {
    uint64_t msgs;
    double elapsed;
    int failed;
};

static int io_full(int fd, char *buf, size_t len, int sending)
{
    while (len > 0) {
        ssize_t n = sending ? send(fd, buf, len, MSG_NOSIGNAL) : recv(fd, buf, len, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Each message carries its sequence number; every 64th is compared whole. */
static int client_run(int fd, size_t size, unsigned duration_ms, struct client_report *rep)
{
    char *out = malloc(size), *in = malloc(size);
    if (!out || !in)
        return -1;
    for (size_t i = 0; i < size; i++)
        out[i] = (char)('a' + i % 26);
    double start = now_s(), end = start + duration_ms / 1000.0, t = start;
    uint64_t seq = 0;
    int rc = 0;
    while (t < end && rc == 0) {
        memcpy(out, &seq, size < sizeof seq ? size : sizeof seq);
        if (io_full(fd, out, size, 1) != 0 || io_full(fd, in, size, 0) != 0)
            rc = -1;
        else if (seq % 64 == 0 ? memcmp(in, out, size) != 0 : memcmp(in, out, 1) != 0)
            rc = -1;
        seq++;
        if (seq % 16 == 0 || size >= 16384)
            t = now_s();
    }
    rep->msgs = seq;
    rep->elapsed = now_s() - start;
    free(out);
    free(in);
    return rc;
}

static _Noreturn void client_main(uint16_t port, size_t size, unsigned duration_ms, int report_fd)
{
    prctl(PR_SET_NAME, "se-client");
    struct client_report rep = {0, 0, 1};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
        connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        rep.failed = client_run(fd, size, duration_ms, &rep) != 0;
    if (fd >= 0)
        close(fd);
    ssize_t w = write(report_fd, &rep, sizeof rep);
    _exit(w == (ssize_t)sizeof rep && !rep.failed ? 0 : 1);
}

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die("listen on 127.0.0.1");
    *port = ntohs(sa.sin_port);
    return fd;
}

static void run_cell(const struct mode *m, size_t size, unsigned duration_ms, char *buf,
                     struct cell_result *r)
{
    uint16_t port;
    int lfd = listen_loopback(&port), rep[2];
    if (pipe2(rep, O_CLOEXEC) != 0)
        die("pipe2");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(lfd);
        close(rep[0]);
        client_main(port, size, duration_ms, rep[1]);
    }
    close(rep[1]);
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        die("accept");
    close(lfd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(r, 0, sizeof *r);
    server_syscalls = 0;
    double t0 = cpu_s(RUSAGE_THREAD), p0 = cpu_s(RUSAGE_SELF);
    serve(fd, m, buf, r);
    double t1 = cpu_s(RUSAGE_THREAD), p1 = cpu_s(RUSAGE_SELF);
    close(fd);
    struct client_report cr;
    int status = 0;
    ssize_t got = read(rep[0], &cr, sizeof cr);
    close(rep[0]);
    if (waitpid(pid, &status, 0) != pid || got != (ssize_t)sizeof cr || cr.failed || cr.msgs == 0 ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: client failed in mode %s, size %zu\n", progname, m->name, size);
        exit(1);
    }
    r->msgs_per_s = (double)cr.msgs / cr.elapsed;
    r->thread_us_per_msg = (t1 - t0) * 1e6 / (double)cr.msgs;
    r->proc_us_per_msg = (p1 - p0) * 1e6 / (double)cr.msgs;
    r->syscalls_per_msg = (double)server_syscalls / (double)cr.msgs;
}

/* ---- summary ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, min and max of n values (sorted in place). */
static void stats(double *v, unsigned n, double out[3])
{
    qsort(v, n, sizeof *v, cmp_double);
    out[0] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    out[1] = v[0];
    out[2] = v[n - 1];
}

enum metric { M_RATE, M_THREAD, M_PROC, M_SYSCALLS };

static double metric_of(const struct cell_result *c, enum metric m)
{
    switch (m) {
    case M_RATE:
        return c->msgs_per_s;
    case M_THREAD:
        return c->thread_us_per_msg;
    case M_PROC:
        return c->proc_us_per_msg;
    default:
        return c->syscalls_per_msg;
    }
}

/* One summary row: medians [min-max] and the median paired ratio to copy. */
static void print_summary_row(size_t size, const struct mode *m, const struct cell_result *cells,
                              const struct cell_result *copy, unsigned rounds)
{
    double v[MAX_ROUNDS], s[4][3], ratio[2][3];
    for (int k = 0; k < 4; k++) {
        for (unsigned i = 0; i < rounds; i++)
            v[i] = metric_of(&cells[i], (enum metric)k);
        stats(v, rounds, s[k]);
    }
    for (int k = 0; k < 2; k++) {
        for (unsigned i = 0; i < rounds; i++)
            v[i] = copy ? metric_of(&cells[i], k ? M_PROC : M_RATE) /
                              metric_of(&copy[i], k ? M_PROC : M_RATE)
                        : 1.0;
        stats(v, rounds, ratio[k]);
    }
    printf("| %6zu | %-9s | %8.0f [%.0f-%.0f] | %6.2f [%.2f-%.2f] | %6.2f [%.2f-%.2f] | %5.2f | "
           "%5.2f [%.2f-%.2f] | %5.1f |\n",
           size, m->name, s[0][0], s[0][1], s[0][2], s[1][0], s[1][1], s[1][2], s[2][0], s[2][1],
           s[2][2], ratio[0][0], ratio[1][0], ratio[1][1], ratio[1][2], s[3][0]);
}

static void print_summary(const struct config *cfg, struct cell_result (*res)[NMODES][MAX_ROUNDS])
{
    printf("\n| size B | mode      | msgs/s median [min-max] | server thread us/msg | "
           "server process us/msg | rate/copy | cpu/copy (process) | syscalls/msg |\n"
           "|---|---|---|---|---|---|---|---|\n");
    for (unsigned si = 0; si < cfg->nsizes; si++)
        for (unsigned mi = 0; mi < NMODES; mi++)
            if (cfg->mode_on[mi])
                print_summary_row(cfg->sizes[si], &all_modes[mi], res[si][mi],
                                  cfg->mode_on[0] ? res[si][0] : NULL, cfg->rounds);
}

static void run_all(const struct config *cfg)
{
    static struct cell_result res[MAX_SIZES][NMODES][MAX_ROUNDS];
    char *buf = malloc(SERVER_BUF);
    if (!buf)
        die("malloc");
    printf("# "
           "round\tsize\tmode\tmsgs_per_s\tthread_us_per_msg\tproc_us_per_msg\tlink_"
           "breaks\tsyscalls_per_msg\n");
    for (unsigned r = 0; r < cfg->rounds; r++)
        for (unsigned si = 0; si < cfg->nsizes; si++)
            for (unsigned k = 0; k < NMODES; k++) {
                unsigned mi = r % 2 ? (unsigned)NMODES - 1 - k : k;
                if (!cfg->mode_on[mi])
                    continue;
                struct cell_result *c = &res[si][mi][r];
                run_cell(&all_modes[mi], cfg->sizes[si], cfg->duration_ms, buf, c);
                printf("%u\t%zu\t%s\t%.0f\t%.3f\t%.3f\t%lu\t%.2f\n", r, cfg->sizes[si],
                       all_modes[mi].name, c->msgs_per_s, c->thread_us_per_msg, c->proc_us_per_msg,
                       c->link_breaks, c->syscalls_per_msg);
                fflush(stdout);
            }
    print_summary(cfg, res);
    free(buf);
}

/* ---- pipe cost ---- */

static long meminfo_kb(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            v = strtol(line + klen + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/*
 * Creates n pipes at `size` and prints what each costs: two descriptors and
 * the kernel memory of an empty pipe (Slab delta: the pipe's inode, files,
 * and its array of pipe_buffer slots). The data pages come on top only while
 * the pipe holds data: written data gets new pages, spliced socket data
 * references the skb's pages (already counted as the socket's memory). The
 * Slab delta is noisy on a shared machine: use a large n and repeat.
 */
static void pipe_cost(unsigned n, int size)
{
    int(*p)[2] = calloc(n, sizeof *p);
    if (!p)
        die("calloc");
    long slab0 = meminfo_kb("Slab");
    for (unsigned i = 0; i < n; i++)
        make_pipe(p[i], size);
    long slab1 = meminfo_kb("Slab");
    int got = fcntl(p[0][1], F_GETPIPE_SZ);
    printf("F_SETPIPE_SZ %7d: 2 fds, %d slots, empty: %+.2f KiB slab per pipe (n=%u), "
           "full: + %d KiB of pages\n",
           size, got / 4096, (double)(slab1 - slab0) / n, n, got / 1024);
    for (unsigned i = 0; i < n; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
    free(p);
}

/* ---- options ---- */

static _Noreturn void usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: %s [--rounds N] [--duration MS] [--sizes A,B,..] [--modes M,..]\n"
            "       %s --pipe-cost N\n"
            "modes: copy splice64 splice256 uring64 uring256 (uring* need liburing),\n"
            "       copy64 (recv() at most 64 KiB; only when named)\n",
            progname, progname);
    exit(rc);
}

static unsigned parse_uint(const char *s, unsigned lo, unsigned hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "%s: bad number '%s' (%u..%u)\n", progname, s, lo, hi);
        exit(2);
    }
    return (unsigned)v;
}

static void parse_modes(struct config *cfg, char *list)
{
    memset(cfg->mode_on, 0, sizeof cfg->mode_on);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        unsigned i = 0;
        while (i < NMODES && strcmp(all_modes[i].name, tok) != 0)
            i++;
        if (i == NMODES) {
            fprintf(stderr, "%s: unknown mode '%s'\n", progname, tok);
            exit(2);
        }
        cfg->mode_on[i] = 1;
    }
}

static void parse_sizes(struct config *cfg, char *list)
{
    cfg->nsizes = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (cfg->nsizes == MAX_SIZES)
            usage(2);
        cfg->sizes[cfg->nsizes++] = parse_uint(tok, 1, 16u << 20);
    }
}

int main(int argc, char **argv)
{
    struct config cfg = {.rounds = 7, .duration_ms = 400};
    memcpy(cfg.sizes, default_sizes, sizeof default_sizes);
    cfg.nsizes = sizeof default_sizes / sizeof default_sizes[0];
    for (unsigned i = 0; i < NMODES; i++)
        cfg.mode_on[i] = !all_modes[i].optional;
#ifndef SPLICE_ECHO_URING
    cfg.mode_on[3] = cfg.mode_on[4] = 0;
#endif
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0)
            usage(0);
        if (!v)
            usage(2);
        i++;
        if (strcmp(a, "--rounds") == 0)
            cfg.rounds = parse_uint(v, 1, MAX_ROUNDS);
        else if (strcmp(a, "--duration") == 0)
            cfg.duration_ms = parse_uint(v, 10, 600000);
        else if (strcmp(a, "--sizes") == 0)
            parse_sizes(&cfg, argv[i]);
        else if (strcmp(a, "--modes") == 0)
            parse_modes(&cfg, argv[i]);
        else if (strcmp(a, "--pipe-cost") == 0) {
            unsigned n = parse_uint(v, 1, 100000);
            pipe_cost(n, 65536);
            pipe_cost(n, 262144);
            return 0;
        } else
            usage(2);
    }
#ifndef SPLICE_ECHO_URING
    if (cfg.mode_on[3] || cfg.mode_on[4]) {
        fprintf(stderr, "%s: built without liburing: no uring modes\n", progname);
        return 2;
    }
#endif
    signal(SIGPIPE, SIG_IGN);
    run_all(&cfg);
    return 0;
}
