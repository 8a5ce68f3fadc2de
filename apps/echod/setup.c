/* SPDX-License-Identifier: MIT */
/*
 * setup.c - echod's start: what can be checked before anything is bound
 * (addresses, duplicates, the --user), then the loop and signals, the
 * sockets (bound from --listen and --udp, passed by systemd, or stdin for
 * --inetd), the privilege drop and the engine. What it has to say is kept
 * until serving is certain, so a start that fails says only why.
 */
#include "echod_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iomux/buf.h>
#include <iomux/loop.h>
#include <iomux/net.h>

#include "agent.h"
#include "check_addr.h"
#include "daemon.h"
#include "metrics.h"
#include "sideport.h"
#include "sockopt.h"
#include "steer.h"
#include "strbuf.h"
#include "udp.h"
#include "upgrade.h"

/* A start-up line (listening on, running as), kept until serving is
   certain: a server that fails to start says only why. */
static void say_later(struct echod *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say_later(struct echod *d, const char *fmt, ...)
{
    if ((d->opt->quiet && !d->opt->trace) || d->worker)
        return;
    /* Cut short rather than overflow; once full, later lines are dropped. */
    struct strbuf sb = {.buf = d->startup, .size = sizeof(d->startup), .len = d->startup_len};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vappendf(&sb, fmt, ap);
    va_end(ap);
    d->startup_len = sb.len;
}

/* Keeps a bound port-0 address for the stdout line that says the server
   is serving (print_startup()). */
static void announce(struct echod *d, const char *addr)
{
    if (!d->worker && d->nannounced < sizeof(d->announced) / sizeof(d->announced[0]))
        snprintf(d->announced[d->nannounced++], sizeof(d->announced[0]), "%s", addr);
}

/* Only once everything is set up: whoever reads an address may connect. */
static void print_startup(struct echod *d)
{
    char label[48];
    echod_serving_label(d, label, sizeof(label));
    for (const char *p = d->startup; *p;) {
        const char *later = strchr(p, ECHOD_LABEL_LATER);
        size_t n = later ? (size_t)(later - p) : strlen(p);
        fwrite(p, 1, n, stderr);
        if (!later)
            break;
        fputs(label, stderr);
        p = later + 1;
    }
    for (size_t i = 0; i < d->nannounced; i++)
        printf("%s\n", d->announced[i]);
    if (d->nannounced)
        fflush(stdout);
}

/* Makes `fd` (listening) a listener and sets --keepalive, --sndbuf and
   --rcvbuf on it if it is TCP: Linux copies them to every socket accept()
   returns (keepalive's timer included), so clients cost no system call
   for them. A Unix socket's clients are new sockets, not copies: they are
   not set there. Takes fd; 0 or -errno. */
static int add_listener(struct echod *d, int fd, const char *shown)
{
    const char *what = "listen";
    int rc = d->nlisteners == ECHOD_MAX_LISTEN ? -EMFILE : 0;
    struct listener *l = &d->listeners[d->nlisteners];
    if (rc == 0)
        rc = iomux_socket_local(fd, &l->addr);
    if (rc == 0 && l->addr.ss.ss_family != AF_UNIX)
        rc = sock_tuning_apply(fd, &d->opt->tuning, &what);
    if (rc < 0) {
        fprintf(stderr, "echod: %s on %s: %s\n", what, shown,
                rc == -EMFILE ? "too many listening sockets" : strerror(-rc));
        close(fd);
        return rc;
    }
    l->d = d;
    l->fd = fd;
    d->nlisteners++;
    return 0;
}

/* Serves a socket that is already listening (a Unix-domain one, or one
   passed by systemd); takes `fd`. 0 or -errno. */
static int adopt_listener(struct echod *d, int fd, const char *shown)
{
    char label[48];
    int rc = add_listener(d, fd, shown);
    if (rc == 0)
        say_later(d, "echod: listening on %s (%s)\n", shown,
                  echod_serving_label(d, label, sizeof(label)));
    return rc;
}

/* --trace: the seed prints the host as it was given ('localhost'). */
static void say_starting_up(struct echod *d, const char *text, unsigned port)
{
    char host[IOMUX_ADDR_STRLEN];
    const char *colon = strrchr(text, ':');
    size_t n = (size_t)(colon - text);
    if (text[0] == '[' && n >= 2) {
        text++;
        n -= 2;
    }
    if (n >= sizeof(host))
        n = sizeof(host) - 1;
    memcpy(host, text, n);
    host[n] = '\0';
    say_later(d, "starting up on %s port %u\n", host, port);
}

static int bind_listener(struct echod *d, const char *text, size_t index)
{
    struct iomux_addr addr;
    int fd;
    /* An upgrade's new echod is handed the old one's socket instead. */
    int taken = echod_upgrade_take_for(ECHOD_ROLE_LISTEN, text, index, d->worker, &fd);
    if (taken < 0)
        return taken;
    if (echod_is_unix(text)) {
        int rc = taken ? 0 : echod_unix_bind("--listen", text, SOCK_STREAM, &fd);
        return rc < 0 ? rc : adopt_listener(d, fd, text);
    }
    int rc = echod_parse_address("--listen", text, &addr);
    if (rc < 0)
        return rc;
    char shown[IOMUX_ADDR_STRLEN], bound[IOMUX_ADDR_STRLEN], label[48];
    if (iomux_addr_format(&addr, shown, sizeof(shown)) < 0)
        snprintf(shown, sizeof(shown), "%s", text);
    if (d->server)
        echod_worker_addr(d, false, index, &addr);
    rc = taken       ? 0
         : d->server ? echod_reuseport_socket(&addr, SOCK_STREAM, !d->worker, &fd)
                     : iomux_tcp_listen(&addr, 0, &fd);
    if (rc < 0) {
        fprintf(stderr, "echod: listen on %s: %s%s\n", shown, strerror(-rc),
                echod_bind_hint(-rc, iomux_addr_port(&addr)));
        return rc;
    }
    if (d->server && (rc = echod_steer_listener(d, fd, shown)) < 0) {
        close(fd);
        return rc;
    }
    rc = add_listener(d, fd, shown);
    if (rc < 0)
        return rc;
    const struct listener *l = &d->listeners[d->nlisteners - 1];
    if (iomux_addr_format(&l->addr, bound, sizeof(bound)) < 0)
        snprintf(bound, sizeof(bound), "%s", shown);
    /* Port 0: say which port we got, on stdout, so that scripts and tests
       can connect without guessing or sleeping (once serving). */
    if (iomux_addr_port(&addr) == 0)
        announce(d, bound);
    if (d->opt->trace)
        say_starting_up(d, text, iomux_addr_port(&l->addr));
    else
        say_later(d, "echod: listening on %s (%s)\n", bound,
                  echod_serving_label(d, label, sizeof(label)));
    return 0;
}

/* A --listen: bound, and its settings (proxy=, the TLS files, read
   here, before privileges are dropped) given to the listener. */
static int setup_listener(struct echod *d, const struct listener_opts *lo)
{
    /* Workers share a Unix socket's path only through the first. */
    if (d->worker && echod_is_unix(lo->addr))
        return 0;
    int rc = bind_listener(d, lo->addr, (size_t)(lo - d->opt->listen));
    if (rc < 0)
        return rc;
    struct listener *l = &d->listeners[d->nlisteners - 1];
    l->opts = lo;
    if (lo->proxy != ECHOD_PROXY_OFF) {
        l->proxy = lo->proxy;
        d->proxy_listeners = true;
    }
    if (fault_spec_active(&lo->faults)) {
        l->faults = &lo->faults;
        d->fault_listeners = true;
    }
    if (!lo->tls_cert[0])
        return 0;
    rc = echod_tls_load(d, l);
    char shown[ECHOD_LISTEN_ADDR_MAX];
    if (l->addr.ss.ss_family == AF_UNIX || iomux_addr_format(&l->addr, shown, sizeof(shown)) < 0)
        snprintf(shown, sizeof(shown), "%s", lo->addr);
    if (rc == 0)
        say_later(d, "echod: TLS on %s: certificate %s%s%s%s\n", shown, lo->tls_cert,
                  lo->tls_ca[0] ? ", client certificates required" : "",
                  lo->alpn[0] ? ", ALPN " : "", lo->alpn);
    return rc;
}

/* The datagram service, made on first use. */
static int udp_service(struct echod *d)
{
    if (d->udp)
        return 0;
    struct echod_udp_config cfg = {
        .rate = d->opt->udp_rate,
        .burst = d->opt->udp_burst,
        .any_port = d->opt->udp_any_port,
        .trace = d->opt->trace,
        .drop_ppm = d->opt->udp_drop_ppm,
        .drop_seed = d->fault_seed,
        .dropped = &d->faults_fired[FAULT_DROP],
    };
    int rc = echod_udp_new(d->loop, &cfg, &d->udp);
    if (rc < 0)
        fprintf(stderr, "echod: udp: %s\n", strerror(-rc));
    return rc;
}

/* Serves the bound datagram socket `fd` (taken). */
static int adopt_udp(struct echod *d, int fd, const char *shown)
{
    int rc = udp_service(d);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    rc = echod_udp_add(d->udp, fd);
    if (rc < 0) {
        fprintf(stderr, "echod: udp %s: %s\n", shown,
                rc == -ENOSPC ? "too many datagram sockets" : strerror(-rc));
        close(fd);
        return rc;
    }
    say_later(d, "echod: echoing datagrams on %s (rate limit %s)\n", shown,
              d->opt->udp_rate ? "on" : "off");
    return 0;
}

static int setup_udp(struct echod *d, const char *text, size_t index)
{
    int fd;
    if (d->worker && echod_is_unix(text))
        return 0;
    int taken = echod_upgrade_take_for(ECHOD_ROLE_UDP, text, index, d->worker, &fd);
    if (taken < 0)
        return taken;
    if (echod_is_unix(text)) {
        int rc = taken ? 0 : echod_unix_bind("--udp", text, SOCK_DGRAM, &fd);
        return rc < 0 ? rc : adopt_udp(d, fd, text);
    }
    struct iomux_addr addr, bound;
    int rc = echod_parse_address("--udp", text, &addr);
    if (rc < 0)
        return rc;
    char shown[IOMUX_ADDR_STRLEN];
    if (iomux_addr_format(&addr, shown, sizeof(shown)) < 0)
        snprintf(shown, sizeof(shown), "%s", text);
    if (d->server)
        echod_worker_addr(d, true, index, &addr);
    rc = taken       ? 0
         : d->server ? echod_reuseport_socket(&addr, SOCK_DGRAM, !d->worker, &fd)
                     : iomux_udp_bind(&addr, &fd);
    if (rc < 0) {
        fprintf(stderr, "echod: udp %s: %s%s\n", shown, strerror(-rc),
                echod_bind_hint(-rc, iomux_addr_port(&addr)));
        return rc;
    }
    if (d->server)
        echod_udp_steer(d, fd);
    if (iomux_socket_local(fd, &bound) == 0) {
        iomux_addr_format(&bound, shown, sizeof(shown));
        d->udp_bound[index] = bound;
    }
    if (iomux_addr_port(&addr) == 0) {
        /* As for --listen: the port we got, on stdout, after the TCP ones. */
        announce(d, shown);
    }
    char label[IOMUX_ADDR_STRLEN + 8];
    snprintf(label, sizeof(label), "udp %s", shown);
    return adopt_udp(d, fd, label);
}

/* Sockets passed by systemd, instead of --listen and --udp. */
static int setup_activated(struct echod *d, const struct echod_passed *p, size_t n)
{
    const struct echod_options *opt = d->opt;
    /* Passed sockets are plain listeners: a --listen's settings (proxy=)
       are not carried over to them. */
    if (opt->nudp || (opt->nlisten && strcmp(opt->listen[0].addr, ECHOD_DEFAULT_LISTEN) != 0))
        fprintf(stderr, "echod: socket-activated: --listen (with its settings) and --udp are "
                        "ignored\n");
    for (size_t i = 0; i < n; i++) {
        struct iomux_addr a;
        char addr[IOMUX_ADDR_STRLEN + 40], shown[sizeof(addr) + 96];
        if (iomux_socket_local(p[i].fd, &a) < 0 || iomux_addr_format(&a, addr, sizeof(addr)) < 0)
            snprintf(addr, sizeof(addr), "?");
        snprintf(shown, sizeof(shown), "%s %s (fd %d%s%s)",
                 p[i].type == SOCK_STREAM ? "stream" : "datagram", addr, p[i].fd,
                 p[i].name[0] ? ", " : "", p[i].name);
        int rc;
        if (p[i].type == SOCK_STREAM) {
            rc = adopt_listener(d, p[i].fd, shown);
        } else {
            rc = p[i].family == AF_UNIX ? 0 : iomux_udp_enable_pktinfo(p[i].fd);
            if (rc < 0) {
                fprintf(stderr, "echod: %s: %s\n", shown, strerror(-rc));
                close(p[i].fd);
                return rc;
            }
            rc = adopt_udp(d, p[i].fd, shown);
        }
        if (rc < 0)
            return rc; /* the ones not reached yet are closed by exit */
    }
    return 0;
}

/* The one connection of --inetd. */
static int setup_inetd(struct echod *d)
{
    int fd;
    struct iomux_addr peer;
    int rc = echod_inetd_setup(&fd, &peer);
    if (rc < 0)
        return rc;
    d->inetd_fd = fd; /* admitted by start_serving() */
    d->inetd_peer = peer;
    return 0;
}

/* The run's seed, said so that a run can be replayed (--fault-seed). */
static void say_fault_seed(struct echod *d)
{
    d->fault_listeners = true;
    if (!d->opt->trace)
        say_later(d, "echod: fault seed %" PRIu64 "%s\n", d->fault_seed,
                  d->opt->fault_seed_given ? "" : " (replay with --fault-seed)");
}

/* Once privileges are dropped: makes the engine and starts accepting (or serves the --inetd
 * connection). 0 or -errno. */
static int start_serving(struct echod *d)
{
    char why[160];
    if (d->fault_listeners || d->opt->udp_drop_ppm)
        say_fault_seed(d);
    int rc = echod_engine_start(d, why, sizeof(why));
    if (rc == 0)
        rc = echod_side_start(d);
    if (rc < 0)
        return rc;
    /* --trace's lines are the seed's. */
    if (why[0] && !d->opt->trace)
        say_later(d, "echod: %s\n", why);
    for (size_t i = 0; i < d->nlisteners; i++) {
        struct listener *l = &d->listeners[i];
        rc = d->engine_ops->listen(d->engine, l->fd, &l->addr, l);
        if (rc < 0) {
            fprintf(stderr, "echod: accepting: %s\n", strerror(-rc));
            return rc;
        }
    }
    if (d->inetd_fd >= 0) {
        int fd = d->inetd_fd;
        d->inetd_fd = -1;
        echod_admit(d, fd, &d->inetd_peer);
        if (d->open == 0)
            return -ECONNABORTED; /* admit() said why */
    }
    return 0;
}

/* Listening and datagram sockets: passed by systemd, stdin for --inetd,
   or bound from --listen and --udp. 0 or -errno. */
static int setup_sockets(struct echod *d)
{
    const struct echod_options *opt = d->opt;
    struct echod_passed passed[ECHOD_MAX_PASSED];
    size_t npassed;
    int rc = echod_activation(passed, &npassed);
    if (rc < 0)
        return rc;
    echod_upgrade_adopt(passed, &npassed);
    if (npassed)
        return setup_activated(d, passed, npassed);
    if (opt->inetd)
        return setup_inetd(d);
    for (size_t i = 0; i < opt->nlisten && rc == 0; i++)
        rc = setup_listener(d, &opt->listen[i]);
    for (size_t i = 0; i < opt->nudp && rc == 0; i++)
        rc = setup_udp(d, opt->udp[i], i);
    return rc;
}

/* --agent or --metrics on `text`, served by start() from now on; a port
   0 is announced after the --listen and --udp ones. 0 or -errno. */
static int setup_side_port(struct echod *d, const char *opt, const char *text,
                           int (*start)(struct echod *d, int fd))
{
    int fd;
    struct iomux_addr bound;
    char shown[IOMUX_ADDR_STRLEN];
    int asked = sideport_bind(opt, text, &fd, &bound);
    if (asked < 0)
        return asked;
    if (iomux_addr_format(&bound, shown, sizeof(shown)) < 0)
        snprintf(shown, sizeof(shown), "%s", text);
    int rc = start(d, fd);
    if (rc < 0) {
        fprintf(stderr, "echod: %s %s: %s\n", opt, shown, strerror(-rc));
        return rc;
    }
    if (asked == 0)
        announce(d, shown);
    say_later(d, "echod: %s on %s\n", opt + 2, shown);
    return 0;
}

/* The loop, the buffers and the signals; 0 or -errno (-EINVAL: a
   --backend not built). */
static int make_loop(struct echod *d)
{
    const struct echod_options *opt = d->opt;
    struct iomux_loop_options lo = {.backend = opt->backend};
    int rc = iomux_loop_new(&d->loop, &lo);
    if (rc == -ENOENT) {
        echod_usage_error("--backend %s: not compiled in", opt->backend);
        return -EINVAL;
    }
    if (rc == -ENOSYS || rc == -EPERM)
        fprintf(stderr, "echod: --backend %s: not available on this system\n", opt->backend);
    else if (rc < 0)
        fprintf(stderr, "echod: event loop: %s\n", strerror(-rc));
    if (rc < 0)
        return rc;
    rc = iomux_buf_pool_new(&d->pool, NULL);
    if (rc < 0) {
        fprintf(stderr, "echod: buffers: %s\n", strerror(-rc));
        return rc;
    }
    static const int signals[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};
    /* With workers, the main thread takes the signals (server.c). */
    for (size_t i = 0; !d->server && i < sizeof(signals) / sizeof(signals[0]); i++) {
        rc = iomux_signal_watch(d->loop, signals[i], echod_on_signal, d);
        if (rc < 0) {
            fprintf(stderr, "echod: signal %s: %s\n", strsignal(signals[i]), strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Timers and the spare descriptor, once serving; 0 or -errno. */
static int finish_setup(struct echod *d)
{
    if (d->opt->idle_timeout_ms) {
        /* A sweep a few times per timeout: a connection is cut between
           the timeout and a quarter more, without a timer per client. */
        uint64_t every = d->opt->idle_timeout_ms / 4;
        every = every < 10 ? 10 : every > 1000 ? 1000 : every;
        int rc = iomux_timer_add(d->loop, every, every, echod_on_idle_sweep, d, &d->idle_timer);
        if (rc < 0) {
            fprintf(stderr, "echod: idle timer: %s\n", strerror(-rc));
            return rc;
        }
    }
    /* Not fatal without it: descriptor exhaustion then pauses accepting. */
    int fd = iomux_reserve_fd();
    d->reserve_fd = fd >= 0 ? fd : -1;
    return 0;
}

int echod_setup_bind(const struct echod_options *opt, struct echod_server *srv, unsigned worker,
                     struct echod **out)
{
    struct echod *d = calloc(1, sizeof(*d));
    if (!d) {
        fprintf(stderr, "echod: start-up: %s\n", strerror(ENOMEM));
        return -ENOMEM;
    }
    d->opt = opt;
    d->server = srv;
    d->worker = worker;
    d->conns.next = d->conns.prev = &d->conns;
    d->side_conns.next = d->side_conns.prev = &d->side_conns;
    /* With workers, the server drew each worker's (server_alloc). */
    d->fault_seed = opt->fault_seed_given || srv ? opt->fault_seed : fault_new_seed();
    d->pending.next = d->pending.prev = &d->pending;
    d->tls_pending.next = d->tls_pending.prev = &d->tls_pending;
    d->reserve_fd = -1;
    d->inetd_fd = -1;
    int rc = worker ? 0 : echod_check_before_binding(d);
    if (rc == 0)
        rc = make_loop(d);
    if (rc == 0 && opt->max_conns_per_ip && !srv &&
        (rc = echod_perip_new(opt->max_conns_per_ip, &d->perip)) < 0)
        fprintf(stderr, "echod: start-up: %s\n", strerror(-rc));
    if (rc == 0)
        rc = setup_sockets(d);
    if (rc == 0 && opt->agent && !worker)
        rc = setup_side_port(d, "--agent", opt->agent, echod_agent_start);
    if (rc == 0 && opt->metrics && !worker)
        rc = setup_side_port(d, "--metrics", opt->metrics, echod_metrics_start);
    if (rc < 0) {
        echod_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* Everything that needs privileges is done: drop them before the first byte from a client is
   read (for the whole process: every thread's credentials change). */
int echod_setup_user(struct echod *d)
{
    int rc = d->opt->user ? echod_user_switch(&d->user) : 0;
    if (rc == 0 && d->opt->user)
        say_later(d, "echod: running as %s (uid %u, gid %u)\n", d->user.name, (unsigned)d->user.uid,
                  (unsigned)d->user.gid);
    return rc;
}

int echod_setup_serve(struct echod *d)
{
    int rc = start_serving(d);
    if (rc == 0)
        rc = finish_setup(d);
    return rc;
}

void echod_setup_announce(struct echod *d)
{
    print_startup(d);
}

int echod_new(const struct echod_options *opt, struct echod **out)
{
    struct echod *d;
    int rc = echod_setup_bind(opt, NULL, 0, &d);
    if (rc < 0)
        return rc;
    rc = echod_setup_user(d);
    if (rc == 0)
        rc = echod_setup_serve(d);
    if (rc < 0) {
        echod_free(d);
        return rc;
    }
    print_startup(d);
    *out = d;
    return 0;
}
