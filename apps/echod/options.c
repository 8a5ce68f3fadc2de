/* SPDX-License-Identifier: MIT */
/*
 * options.c - echod's command line, declared once: the table below drives
 * both the parser (apps/common/opts.h) and --help, so an option cannot be
 * parsed one way and documented another. What a table row cannot say (a
 * check across options) is in check_options().
 */
#include "options.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "listen_opts.h"
#include "opts.h"
#include "spin.h"
#include "udp.h"
#include <iomux/stream.h>

#ifndef ECHOD_VERSION
#define ECHOD_VERSION "unknown"
#endif

const char *const echod_engine_names[] = {"auto", "loop", "uring", NULL};
const char *const echod_spin_names[] = {"auto", "on", "off", NULL};
const char *const echod_splice_names[] = {"auto", "on", "off", NULL};
const char *const echod_steer_names[] = {"none", "cpu", NULL};

/* The defaults --help shows are written out in the table: these keep them
   true. */
_Static_assert(ECHOD_UDP_RATE == 100 && ECHOD_UDP_BURST == 200, "--udp-rate/--udp-burst help");
_Static_assert(ECHOD_URING_BUFFERS == 256, "--uring-buffers help");
_Static_assert(ECHOD_BATCH_WAIT_US == 200 && ECHOD_BATCH_WAIT_MAX_US == 1000, "--batch-wait help");
_Static_assert(ECHOD_BUSY_POLL_MAX_US == 10000, "--busy-poll help");
_Static_assert(SPIN_MAX_CONNS == 32, "--spin-receive help");
_Static_assert(ECHOD_DEFAULT_GRACE_MS == 2000, "--grace help");
_Static_assert(ECHOD_SHED_AFTER_MS == 5000 && ECHOD_MAX_BUFFERED_CAP == 1024 * 1024 * 1024,
               "--shed-after/--max-buffered help");
_Static_assert(IOMUX_STREAM_HIGH_WATER == 256 * 1024 && IOMUX_STREAM_LOW_WATER == 64 * 1024,
               "--high-water/--low-water help");

static int parse_backend(void *opts, const char *opt, const char *value, char *err, size_t errsize)
{
    if (cli_check_backend(value, err, errsize) < 0)
        return -1;
    ((struct echod_options *)opts)->backend = value;
    return 0;
}

static int parse_keepalive(void *opts, const char *opt, const char *value, char *err,
                           size_t errsize)
{
    return sock_tuning_parse_keepalive(opt, value, &((struct echod_options *)opts)->tuning, err,
                                       errsize);
}

#define F(field)  offsetof(struct echod_options, field)
#define BYTES_MAX ((uint64_t)1 << 40)
#define SECS_MAX  1000000

static const struct cli_spec specs[] = {
    {.name = "listen",
     .arg = "ADDR[,KEY=VALUE]...",
     .kind = CLI_CALL,
     .call = echod_parse_listen,
     .help = "address to listen on; repeatable (default\n" ECHOD_DEFAULT_LISTEN
             ", unless --udp is given). ADDR is\n"
             "HOST:PORT, HOST an IPv4 address, [IPV6] in brackets,\n"
             "or a name; port 0 picks a free port and prints\n"
             "HOST:PORT on stdout. unix:PATH listens on a\n"
             "Unix-domain stream socket (PATH without commas).\n"
             "Settings of this listener, after commas:\n"
             "proxy=v1|v2|any: every connection must start with a\n"
             "PROXY protocol header of that version, whose client\n"
             "address is then the client's.\n"
             "tls-cert=FILE: TLS 1.2 or 1.3 with this certificate\n"
             "chain, tls-key=FILE its key (unset: in tls-cert),\n"
             "tls-ca=FILE: require a client certificate from these\n"
             "CAs (mutual TLS), alpn=P1:P2: ALPN protocols\n"
             "accepted (':'-separated), tls-version=1.2|1.3|any.\n"
             "SIGHUP reads the files again.\n"
             "Fault modes, to test\n"
             "proxies and clients (echod(1), docs/echod.md):\n"
             "delay=MS[+-JITTER] rate=BYTES_PER_S slice=N[:MS]\n"
             "stall-after=N reset-after=N close-after=N\n"
             "slow-close=MS accept-delay=MS corrupt=P p=PROB"},
    {.name = "fault-seed",
     .arg = "N",
     .kind = CLI_U64,
     .field = F(fault_seed),
     .max = UINT64_MAX,
     .help = "seed of the fault modes' random draws (p=, corrupt=,\n"
             "jitter, --udp-drop): the same seed, the same faults",
     .def = "random, printed at start-up"},
    {.name = "proxy-from",
     .arg = "CIDR",
     .kind = CLI_CALL,
     .call = echod_parse_proxy_from,
     .help = "accept PROXY headers only from these addresses\n"
             "(ADDR/BITS or ADDR; repeatable; Unix-domain clients\n"
             "always); others are closed at once",
     .def = "127.0.0.0/8 and ::1"},
    {.name = "proxy-timeout",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(proxy_timeout_ms),
     .max = SECS_MAX,
     .help = "close a connection whose PROXY header is not\n"
             "complete after SECS seconds (above 0)",
     .def = "5"},
    {.name = "tls-timeout",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(tls_timeout_ms),
     .max = SECS_MAX,
     .help = "close a connection to a TLS listener whose\n"
             "handshake is not done after SECS seconds (above 0)",
     .def = "10"},
    {.name = "udp",
     .arg = "HOST:PORT",
     .kind = CLI_LIST,
     .field = F(udp),
     .count_field = F(nudp),
     .max = ECHOD_MAX_LISTEN,
     .help = "echo datagrams on this UDP address (or unix:PATH, a\n"
             "Unix datagram socket); repeatable; off by default.\n"
             "Port-0 addresses are printed after the --listen ones"},
    {.name = "udp-rate",
     .arg = "PPS",
     .kind = CLI_U64,
     .field = F(udp_rate),
     .max = 100000000,
     .help = "answer at most PPS datagrams per second per source\naddress",
     .def = "100; 0: no limit"},
    {.name = "udp-burst",
     .arg = "N",
     .kind = CLI_U64,
     .field = F(udp_burst),
     .min = 1,
     .max = 100000000,
     .help = "let a source send N datagrams at once before the\n"
             "rate applies (default 200, or PPS if larger)"},
    {.name = "udp-drop",
     .arg = "P",
     .kind = CLI_CALL,
     .call = echod_parse_udp_drop,
     .help = "drop P percent of datagrams (a fault mode: test a\n"
             "client's retries)",
     .def = "0"},
    {.name = "udp-any-port",
     .kind = CLI_FLAG,
     .field = F(udp_any_port),
     .help = "also answer the loop-prone source ports refused by\n"
             "default (listed below), and echod's own UDP ports\n"
             "(source port 0 is never answered)"},
    {.name = "max-conns-per-ip",
     .arg = "N",
     .kind = CLI_U64,
     .field = F(max_conns_per_ip),
     .max = 1000000000,
     .help = "serve at most N TCP clients from one address at\nonce",
     .def = "0: no limit"},
    {.name = "inetd",
     .kind = CLI_FLAG,
     .field = F(inetd),
     .help = "serve the one TCP connection on stdin/stdout (inetd\n'nowait' style), then exit"},
    {.name = "user",
     .arg = "NAME",
     .kind = CLI_STRING,
     .field = F(user),
     .help = "after binding, switch to the user NAME and its group;\n"
             "refuses to run on as root if that fails"},
    {.name = "agent",
     .arg = "HOST:PORT",
     .kind = CLI_STRING,
     .field = F(agent),
     .help = "answer HAProxy's agent-check on this address: one\n"
             "line per connection, 'up ready' ('up ready N%' with\n"
             "--max-conns, N the share still free), 'maint' at\n"
             "--max-conns, 'drain' once shutting down. Port 0:\n"
             "printed on stdout after the --listen and --udp ones"},
    {.name = "metrics",
     .arg = "HOST:PORT",
     .kind = CLI_STRING,
     .field = F(metrics),
     .help = "serve Prometheus metrics at http://HOST:PORT/metrics\n"
             "(text format 0.0.4): connections, bytes, refusals,\n"
             "resets, errors, agent state. Port 0: printed on\n"
             "stdout after --agent's"},
    {.name = "backend",
     .arg = "NAME",
     .kind = CLI_CALL,
     .call = parse_backend,
     .help = "auto, epoll, poll, select or uring (uring: when built\n"
             "with liburing); auto: the first of epoll, poll and\n"
             "select that works",
     .def = "auto"},
    {.name = "engine",
     .arg = "NAME",
     .kind = CLI_CHOICE,
     .field = F(engine),
     .choices = echod_engine_names,
     .help = "loop: the event loop of --backend does the TCP I/O;\n"
             "uring: io_uring does it (multishot accept and\n"
             "receive, provided buffers), when built with liburing.\n"
             "Timers, signals and --udp stay on the --backend loop\n"
             "(epoll, poll or select). auto: uring where it is built\n"
             "and the kernel allows it, else loop (the start-up\n"
             "line says which, and why); loop when --backend is\n"
             "given, uring when an option of its own is",
     .def = "auto"},
    {.name = "uring-buffers",
     .arg = "N",
     .kind = CLI_U64,
     .field = F(uring_buffers),
     .min = 1,
     .max = 32768,
     .help = "--engine uring: receive buffers shared by all\n"
             "clients (16 KiB each), a power of two from 1 to\n"
             "32768",
     .def = "256"},
    {.name = "busy-poll",
     .arg = "USEC",
     .kind = CLI_U64,
     .field = F(busy_poll_us),
     .max = ECHOD_BUSY_POLL_MAX_US,
     .help = "--engine uring: before sleeping, spin up to USEC\n"
             "microseconds (at most 10000) watching for work: lower\n"
             "latency, and clients do not pay to wake echod, for\n"
             "more CPU",
     .def = "0: sleep at once"},
    {.name = "batch-wait",
     .arg = "USEC",
     .kind = CLI_U64,
     .field = F(batch_wait_us),
     .max = ECHOD_BATCH_WAIT_MAX_US,
     .help = "--engine uring: when completions have been coming in\n"
             "batches, sleep until a batch is full or USEC\n"
             "microseconds pass (a batch of under 16, its share of\n"
             "USEC; at most 1000; 0: off; kernel 6.12 or later):\n"
             "fewer wake-ups to pay for",
     .def = "200"},
    {.name = "spin-receive",
     .arg = "MODE",
     .kind = CLI_CHOICE,
     .field = F(spin_receive),
     .choices = echod_spin_names,
     .help = "--engine uring: auto: while echod's CPU is saturated\n"
             "and it has at most 32 clients, receive by trying each\n"
             "client's socket in turn instead of being woken for\n"
             "data, which costs the senders less; on: always\n"
             "(spins, 100% CPU; not with --trace); off: never.\n"
             "--trace turns auto off",
     .def = "auto"},
    {.name = "splice",
     .arg = "MODE",
     .kind = CLI_CHOICE,
     .field = F(splice),
     .choices = echod_splice_names,
     .help = "echo through kernel pipes with splice(), never copying\n"
             "the bytes into echod: on: every connection; auto: a\n"
             "connection from its first read of 64 KiB (below,\n"
             "splice saves nothing), and never with --engine uring\n"
             "(its splices cost more CPU than copying); off: never.\n"
             "--trace turns it off; --splice on with --engine auto\n"
             "means --engine loop",
     .def = "auto"},
    {.name = "max-conns",
     .arg = "N",
     .kind = CLI_U64,
     .field = F(max_conns),
     .max = 1000000000,
     .help = "serve at most N clients at once; more are accepted\nand closed at once",
     .def = "0: no limit"},
    {.name = "idle-timeout",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(idle_timeout_ms),
     .max = SECS_MAX,
     .help = "close a connection with no traffic for SECS seconds;\n"
             "any value but 0 is at least 1 ms",
     .def = "0: never"},
    {.name = "tick",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(tick_ms),
     .max = SECS_MAX,
     .help = "wake up every SECS seconds at least, even when idle;\n"
             "with --trace, say so. Any value but 0 is at least\n"
             "1 ms",
     .def = "0: no tick"},
    {.name = "grace",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(grace_ms),
     .max = SECS_MAX,
     .help = "on SIGINT/SIGTERM, the time connections get to take\n"
             "what is queued for them before being cut",
     .def = "2"},
    {.name = "drain-delay",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(drain_delay_ms),
     .max = SECS_MAX,
     .help = "on SIGINT/SIGTERM, keep accepting and serving this\n"
             "long while --agent says drain, then stop",
     .def = "0"},
    {.name = "high-water",
     .arg = "BYTES",
     .kind = CLI_BYTES,
     .field = F(high_water),
     .min = 1,
     .max = BYTES_MAX,
     .help = "stop reading from a client with more than BYTES\n"
             "waiting to be sent to it; K, M, G suffixes\n"
             "allowed",
     .def = "256K"},
    {.name = "low-water",
     .arg = "BYTES",
     .kind = CLI_BYTES,
     .field = F(low_water),
     .min = 1,
     .max = BYTES_MAX,
     .help = "read from it again once that is down to BYTES\n"
             "(default 64K, or high-water / 4 if that is smaller)"},
    {.name = "max-buffered",
     .arg = "BYTES",
     .kind = CLI_BYTES,
     .field = F(max_buffered),
     .max = BYTES_MAX,
     .help = "hold at most BYTES for all clients together (their\n"
             "queues; --engine uring's receive buffers; --udp's\n"
             "batch); at it, clients with echoes waiting are not\n"
             "read from until they take them. K, M, G suffixes\n"
             "allowed; 0: no limit",
     .def = "1/8 of RAM, at most 1G"},
    {.name = "shed-after",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(shed_after_ms),
     .max = SECS_MAX,
     .help = "when --max-buffered stays reached that long, close\n"
             "the clients holding the most that took nothing for\n"
             "half that time (\"shed for memory\")",
     .def = "5"},
    {.name = "keepalive",
     .arg = "IDLE[:INTVL:CNT]",
     .kind = CLI_CALL,
     .call = parse_keepalive,
     .help = "TCP keepalive on every client: probe after IDLE\n"
             "seconds without traffic, then every INTVL seconds,\n"
             "and give up after CNT probes (the kernel's interval\n"
             "and count if not given); a dead peer is then\n"
             "closed",
     .def = "off"},
    SOCK_SPEC_SNDBUF(F(tuning), "every TCP client"),
    SOCK_SPEC_RCVBUF(F(tuning), "every TCP client"),
    {.name = "workers",
     .arg = "N|auto",
     .kind = CLI_CALL,
     .call = echod_parse_workers,
     .help = "serve from N threads (1 to 256), each with its own\n"
             "loop, engine and SO_REUSEPORT listening socket per\n"
             "address; auto: one per CPU echod may run on. 1 by\n"
             "default: the seed's single-threaded story, and one\n"
             "thread is enough below a core's worth of traffic.\n"
             "Limits and --max-buffered hold for the whole process\n"
             "(each worker gets 1/N of --max-buffered); --inetd\n"
             "and socket-activated sockets use one worker",
     .def = "1"},
    {.name = "steer",
     .arg = "none|cpu",
     .kind = CLI_CHOICE,
     .field = F(steer),
     .choices = echod_steer_names,
     .help = "with --workers: cpu pins worker K to the K-th CPU\n"
             "of the mask and sends each TCP connection to the\n"
             "worker on its CPU; none: the SO_REUSEPORT hash",
     .def = "none"},
    {.name = "trace",
     .kind = CLI_FLAG,
     .field = F(trace),
     .help = "tell every event on stderr, in the words of the\nPython select/poll echo server"},
    {.name = "quiet",
     .kind = CLI_FLAG,
     .field = F(quiet),
     .help = "log errors only (no start-up and shutdown lines)"},
    {.name = "help", .short_name = 'h', .kind = CLI_HELP, .help = "show this help and exit"},
    {.name = "version", .kind = CLI_VERSION, .help = "show the version and exit"},
    {.name = NULL},
};

static void usage(FILE *f)
{
    fputs("Usage: echod [OPTION]...\n"
          "An echo server (RFC 862): every byte a client sends is sent back to it.\n"
          "\n",
          f);
    cli_usage(f, specs);
    fprintf(f,
            "\n"
            "UDP source ports refused unless --udp-any-port:\n"
            "  %s\n"
            "\n"
            "Signals: SIGINT/SIGTERM stop accepting, let connections drain for the grace\n"
            "period, then exit 0 (a second one exits at once); SIGQUIT exits at once,\n"
            "cutting connections (exit 0); SIGUSR1 prints statistics on stderr; SIGHUP is\n"
            "logged (unless --quiet) and otherwise ignored: there is nothing to reload;\n"
            "SIGUSR2 upgrades: the binary echod was started from is run again with the\n"
            "same arguments and every listening socket; once it serves, this one stops\n"
            "accepting and exits 0 when its connections end (cut after the grace\n"
            "period); if it fails, this one keeps serving and says so;\n"
            "SIGPIPE is ignored. Unix socket files are removed on every exit but a kill.\n"
            "Exit status: 0 after a signal, 1 on a runtime failure (address in use, ...),\n"
            "2 on a usage error.\n"
            "\n"
            "Socket activation: with LISTEN_FDS/LISTEN_PID set (systemd), echod serves the\n"
            "sockets it is given (stream: echo connections; datagram: echo datagrams)\n"
            "instead of --listen and --udp.\n"
            "\n"
            "Examples:\n"
            "  echod                                   # localhost:10000, like the seed\n"
            "  echod --listen 127.0.0.1:0 --quiet      # any free port, printed on stdout\n"
            "  echod --listen [::1]:7000 --backend poll --max-conns 1000 --idle-timeout 30\n"
            "  echod --trace --tick 1                  # the seed's story, with timeouts\n"
            "  echod --listen [::]:7 --udp [::]:7 --user nobody   # as root: port 7, then drop\n"
            "  echod --listen unix:/run/echod.sock --udp unix:/run/echod.dgram\n"
            "  echod --listen 127.0.0.1:10000,proxy=v2 --listen 127.0.0.1:10001  # behind "
            "HAProxy\n"
            "\n"
            "PROXY protocol: on a proxy= listener, a header not valid or not complete within\n"
            "--proxy-timeout, or from a peer outside --proxy-from, closes the connection\n"
            "(counted on the SIGUSR1 line). Socket-activated listeners are plain. PROXY over\n"
            "UDP is not supported.\n",
            echod_udp_refused_ports_text);
}

void echod_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("echod: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'echod --help' for more information.\n", stderr);
    va_end(ap);
}

/* An eighth of physical memory, so clients who never read cannot push the
   machine into swap or the OOM killer; at most 1 GiB (4,096 clients at the
   default high water: past that, memory holds echoes nobody reads). */
static uint64_t default_max_buffered(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0)
        return ECHOD_MAX_BUFFERED_CAP;
    uint64_t eighth = (uint64_t)pages / 8 * (uint64_t)size;
    return eighth < ECHOD_MAX_BUFFERED_CAP ? eighth : ECHOD_MAX_BUFFERED_CAP;
}

/* --engine auto, when another option decides it: a readiness backend
   named (--backend) means the loop engine, the one that runs on it; an
   option of the io_uring engine's own means that engine. Otherwise auto
   stays, for echod_engine_start() to try io_uring and fall back. */
static void resolve_auto_engine(struct echod_options *o, const bool *given)
{
    static const char *const uring_own[] = {"uring-buffers", "busy-poll", "batch-wait",
                                            "spin-receive"};
    if (o->engine != ECHOD_ENGINE_AUTO)
        return;
    if (strcmp(o->backend, "auto") != 0 || o->splice == ECHOD_SPLICE_ON) {
        o->engine = ECHOD_ENGINE_LOOP;
        o->engine_given = o->splice == ECHOD_SPLICE_ON ? "splice" : "backend";
        return;
    }
    for (size_t i = 0; i < sizeof(uring_own) / sizeof(uring_own[0]); i++) {
        if (cli_given(specs, given, uring_own[i])) {
            o->engine = ECHOD_ENGINE_URING;
            o->engine_given = uring_own[i];
            return;
        }
    }
}

/* Checks across options, once all are parsed; 0 or -1 with the reason. */
static int check_options(const struct echod_options *o, const bool *given, char *err,
                         size_t errsize)
{
    bool uring = o->engine == ECHOD_ENGINE_URING;
    if (o->uring_buffers & (o->uring_buffers - 1))
        return cli_fail(err, errsize, "--uring-buffers: not a power of two");
    /* Wake-ups get lost when one ring waits on another's fd. */
    if (uring && strcmp(o->backend, "uring") == 0)
        return cli_fail(
            err, errsize,
            "--engine uring: its loop must be --backend epoll, poll or select, not uring");
    /* The readiness loop would need a system call per look. */
    if (!uring && o->busy_poll_us)
        return cli_fail(err, errsize, "--busy-poll: only with --engine uring");
    if (!uring && o->spin_receive != ECHOD_SPIN_OFF && cli_given(specs, given, "spin-receive"))
        return cli_fail(err, errsize, "--spin-receive: only with --engine uring");
    /* The trace prints every turn of the loop, and a spinning one turns
       all the time. */
    if (o->trace && o->spin_receive == ECHOD_SPIN_ON)
        return cli_fail(err, errsize, "--spin-receive on: not with --trace");
    if (!uring && o->batch_wait_us && cli_given(specs, given, "batch-wait"))
        return cli_fail(err, errsize, "--batch-wait: only with --engine uring");
    if (o->steer == ECHOD_STEER_CPU && o->workers == 1)
        return cli_fail(err, errsize, "--steer cpu: only with --workers N (N > 1) or auto");
    if (o->inetd && (o->nlisten || o->nudp))
        return cli_fail(err, errsize, "--inetd serves stdin: it takes no --listen or --udp");
    if (o->inetd && (o->agent || o->metrics))
        return cli_fail(err, errsize,
                        "--inetd serves one connection: it takes no --agent or --metrics");
    if (o->proxy_timeout_ms == 0)
        return cli_fail(err, errsize, "--proxy-timeout: must be above 0");
    if (o->tls_timeout_ms == 0)
        return cli_fail(err, errsize, "--tls-timeout: must be above 0");
    bool proxied = false;
    for (size_t i = 0; i < o->nlisten; i++)
        proxied |= o->listen[i].proxy != ECHOD_PROXY_OFF;
    if (!proxied && (o->nproxy_from || cli_given(specs, given, "proxy-timeout")))
        return cli_fail(err, errsize,
                        "--proxy-from and --proxy-timeout need a --listen ADDR,proxy=...");
    bool faulty = o->udp_drop_ppm != 0;
    for (size_t i = 0; i < o->nlisten; i++)
        faulty |= fault_spec_active(&o->listen[i].faults);
    if (!faulty && cli_given(specs, given, "fault-seed"))
        return cli_fail(err, errsize, "--fault-seed needs a fault mode (--listen ADDR,delay=...)");
    if (o->udp_drop_ppm && o->nudp == 0)
        return cli_fail(err, errsize, "--udp-drop needs a --udp address");
    /* A lone --low-water is checked against the real high water. */
    if (o->low_water > o->high_water) {
        return cli_fail(err, errsize, "--low-water (%llu) is above --high-water (%llu)",
                        (unsigned long long)o->low_water, (unsigned long long)o->high_water);
    }
    return 0;
}

int echod_options_parse(int argc, char **argv, struct echod_options *o)
{
    bool given[sizeof(specs) / sizeof(specs[0])] = {false};
    char err[256] = "";
    memset(o, 0, sizeof(*o));
    o->backend = "auto";
    o->engine = ECHOD_ENGINE_AUTO;
    o->uring_buffers = ECHOD_URING_BUFFERS;
    o->batch_wait_us = ECHOD_BATCH_WAIT_US;
    o->spin_receive = ECHOD_SPIN_AUTO;
    o->grace_ms = ECHOD_DEFAULT_GRACE_MS;
    o->udp_rate = ECHOD_UDP_RATE;
    o->high_water = IOMUX_STREAM_HIGH_WATER;
    o->max_buffered = default_max_buffered();
    o->shed_after_ms = ECHOD_SHED_AFTER_MS;
    o->tuning.nodelay = SOCK_NODELAY_KEEP;
    o->proxy_timeout_ms = ECHOD_PROXY_TIMEOUT_MS;
    o->tls_timeout_ms = ECHOD_TLS_TIMEOUT_MS;
    o->workers = 1;

    int rc = cli_parse(specs, argc, argv, o, given, NULL, err, sizeof(err));
    if (rc == CLI_PARSE_HELP) {
        usage(stdout);
        return ECHOD_DONE;
    }
    if (rc == CLI_PARSE_VERSION) {
        printf("echod (iomux) %s\n", ECHOD_VERSION);
        return ECHOD_DONE;
    }
    /* The stream layer's rule for a low water not given; at least 1 byte,
       the least --low-water takes, even for a high water under 4. */
    if (!cli_given(specs, given, "low-water")) {
        o->low_water =
            IOMUX_STREAM_LOW_WATER < o->high_water / 4 ? IOMUX_STREAM_LOW_WATER : o->high_water / 4;
        if (o->low_water == 0)
            o->low_water = 1;
    }
    if (rc == CLI_PARSE_OK)
        resolve_auto_engine(o, given);
    o->fault_seed_given = cli_given(specs, given, "fault-seed");
    if (rc != CLI_PARSE_OK || check_options(o, given, err, sizeof(err)) < 0) {
        echod_usage_error("%s", err);
        return ECHOD_USAGE;
    }
    if (o->udp_rate && !o->udp_burst)
        o->udp_burst = o->udp_rate > ECHOD_UDP_BURST ? o->udp_rate : ECHOD_UDP_BURST;
    /* The default TCP address only when nothing at all was asked for: a
       UDP-only server must not also take localhost:10000. */
    if (o->nlisten == 0 && o->nudp == 0 && !o->inetd)
        snprintf(o->listen[o->nlisten++].addr, sizeof(o->listen[0].addr), "%s",
                 ECHOD_DEFAULT_LISTEN);
    /* Loopback only, unless told: the balancer on the same machine. */
    if (o->nproxy_from == 0) {
        (void)cidr_parse("127.0.0.0/8", &o->proxy_from[o->nproxy_from++]);
        (void)cidr_parse("::1/128", &o->proxy_from[o->nproxy_from++]);
    }
    return ECHOD_RUN;
}
