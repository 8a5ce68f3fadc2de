/* SPDX-License-Identifier: MIT */
/*
 * bench_args.c - echo-bench's options, declared once in `specs`: the table
 * drives both the parser (cli_parse) and --help (cli_usage). What a table
 * cannot say (an address, options that exclude each other) is checked
 * after parsing.
 */
#include "bench_args.h"

#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "opts.h"
#include "tls_opts.h"

/* Bounds that keep every product in the engine far from overflow. */
#define MAX_CONNS   1000000u
#define MAX_SIZE    (64u << 20) /* 64 MiB per message */
#define MAX_DEPTH   4096u
#define MAX_SECONDS 86400u
#define MAX_THREADS 256u
#define MAX_RATE    100000000u /* messages per second */
#define MAX_SOURCES 65536u
#define MAX_CHURN   1000000u /* connections per second */
#define CHURN_POOL  1000u    /* --churn: default --conns, the most open at once */

#define F(name) offsetof(struct bench_options, name)

/* HOST:PORT is resolved later (main.c); here only its shape is checked. */
static int parse_connect(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    if (strncmp(v, "unix:", 5) == 0 ? v[5] == '\0' : strrchr(v, ':') == NULL) {
        snprintf(err, errsize, "%s: '%s' is not HOST:PORT or unix:PATH", opt, v);
        return -1;
    }
    ((struct bench_options *)opts)->connect = v;
    return 0;
}

/* One IPv4 address of --source into host order; 0 or -1. */
static int parse_ipv4(const char *text, size_t len, uint32_t *out)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

static int parse_proxy_version(void *opts, const char *opt, const char *v, char *err,
                               size_t errsize)
{
    return proxy_cli_version(&((struct bench_options *)opts)->proxy_version, opt, v, err, errsize);
}

static int parse_proxy_source(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    return proxy_cli_source(&((struct bench_options *)opts)->proxy_source, opt, v, err, errsize);
}

/* --source ADDR or ADDR-ADDR: a range of local IPv4 addresses. */
static int parse_source(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    struct bench_options *o = opts;
    const char *dash = strchr(v, '-');
    uint32_t first, last;
    if (parse_ipv4(v, dash ? (size_t)(dash - v) : strlen(v), &first) < 0 ||
        parse_ipv4(dash ? dash + 1 : v, dash ? strlen(dash + 1) : strlen(v), &last) < 0) {
        snprintf(err, errsize, "%s: '%s' is not an IPv4 address or ADDR-ADDR range", opt, v);
        return -1;
    }
    if (last < first || last - first >= MAX_SOURCES) {
        snprintf(err, errsize, "%s: '%s': the range must go up, %u addresses at most", opt, v,
                 MAX_SOURCES);
        return -1;
    }
    o->source_first = first;
    o->source_count = last - first + 1;
    return 0;
}

unsigned bench_usable_cpus(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* --threads T or auto (resolved once --conns is known). */
static int parse_threads(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    struct bench_options *o = opts;
    uint64_t n;
    if (strcmp(v, "auto") == 0) {
        o->threads_auto = true;
        return 0;
    }
    if (cli_parse_u64(opt, v, 1, MAX_THREADS, &n, err, errsize) < 0)
        return -1;
    o->threads = (unsigned)n;
    o->threads_auto = false;
    return 0;
}

/* The number in the first `len` bytes of v, in [1, max]. */
static int parse_count(const char *opt, const char *v, size_t len, uint64_t max, uint64_t *out,
                       char *err, size_t errsize)
{
    char num[32];
    if (len == 0 || len >= sizeof num) {
        snprintf(err, errsize, "%s: '%s' is not a number", opt, v);
        return -1;
    }
    memcpy(num, v, len);
    num[len] = '\0';
    return cli_parse_u64(opt, num, 1, max, out, err, errsize);
}

/* --rate N or A:B (a ramp). */
static int parse_rate(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    struct bench_options *o = opts;
    const char *colon = strchr(v, ':');
    o->rate_to = 0;
    if (parse_count(opt, v, colon ? (size_t)(colon - v) : strlen(v), MAX_RATE, &o->rate, err,
                    errsize) < 0)
        return -1;
    return colon ? cli_parse_u64(opt, colon + 1, 1, MAX_RATE, &o->rate_to, err, errsize) : 0;
}

/* --churn N or N/s: connections per second. */
static int parse_churn(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    size_t len = strlen(v);
    if (len > 2 && strcmp(v + len - 2, "/s") == 0)
        len -= 2;
    return parse_count(opt, v, len, MAX_CHURN, &((struct bench_options *)opts)->churn, err,
                       errsize);
}

/* The backends are those this build of the library has: not a fixed list. */
static int parse_backend(void *opts, const char *opt, const char *v, char *err, size_t errsize)
{
    if (cli_check_backend(v, err, errsize) < 0)
        return -1;
    ((struct bench_options *)opts)->backend = v;
    return 0;
}

static const struct cli_spec specs[] = {
    {"connect", 0, "HOST:PORT", CLI_CALL, 0, 0, 0, 0, NULL, parse_connect, "server, or unix:PATH",
     "localhost:10000"},
    {"conns", 0, "N", CLI_UNSIGNED, F(conns), 0, 1, MAX_CONNS, NULL, NULL,
     "connections carrying traffic", "1"},
    {"size", 0, "BYTES", CLI_BYTES, F(size), 0, 1, MAX_SIZE, NULL, NULL,
     "message size; K and M suffixes allowed", "64"},
    {"depth", 0, "K", CLI_UNSIGNED, F(depth), 0, 1, MAX_DEPTH, NULL, NULL,
     "closed loop: in flight per connection", "1"},
    {"duration", 0, "SECS", CLI_SECONDS_US, F(duration_us), 0, 0, MAX_SECONDS, NULL, NULL,
     "measured seconds (at least 0.001)", "10"},
    {"warmup", 0, "SECS", CLI_SECONDS_US, F(warmup_us), 0, 0, MAX_SECONDS, NULL, NULL,
     "seconds of traffic before measuring", "1"},
    {"rate", 0, "N|A:B", CLI_CALL, 0, 0, 0, 0, NULL, parse_rate,
     "open loop: N messages/s over all connections, latency\n"
     "measured from the scheduled send time; A:B ramps\n"
     "from A to B over --duration (A during --warmup)",
     NULL},
    {"slo", 0, "MS", CLI_U64, F(slo_ms), 0, 1, 3600000, NULL, NULL,
     "with --rate: report the knee, the rate at which an\n"
     "interval's p99 first exceeds MS milliseconds",
     NULL},
    {"timeout", 0, "SECS", CLI_SECONDS_US, F(timeout_us), 0, 0, MAX_SECONDS, NULL, NULL,
     "a message not echoed within SECS fails the run\n"
     "(outstanding at the end included)",
     "5"},
    {"idle", 0, "N", CLI_UNSIGNED, F(idle), 0, 0, MAX_CONNS, NULL, NULL,
     "extra connections held open, no traffic", "0"},
    {"threads", 0, "T|auto", CLI_CALL, 0, 0, 0, 0, NULL, parse_threads,
     "T threads, each with its own loop; auto: one per\n"
     "CPU in the affinity mask (at most --conns)",
     "1"},
    {"connect-rate", 0, "N", CLI_U64, F(connect_rate), 0, 1, 10000000, NULL, NULL,
     "at most N connects per second", "all at once"},
    {"connect-timeout", 0, "SECS", CLI_SECONDS_US, F(connect_timeout_us), 0, 0, MAX_SECONDS, NULL,
     NULL, "connects not done within SECS (after the\n--connect-rate pacing) have failed", "10"},
    {"churn", 0, "N[/s]", CLI_CALL, 0, 0, 0, 0, NULL, parse_churn,
     "connection churn: open N connections per second,\n"
     "echo --per-conn messages on each, close it; report\n"
     "connects/s, connect latency and failures by kind\n"
     "(refused, reset, timed out, closed early); --conns\n"
     "is then the most open at once (default 1000)",
     NULL},
    {"per-conn", 0, "K", CLI_U64, F(per_conn), 0, 1, 1000000000, NULL, NULL,
     "--churn: messages echoed on each connection", "1"},
    TLS_CLI_SPECS(F(tls)),
    {"tls-resume", 0, NULL, CLI_FLAG, F(tls_resume), 0, 0, 0, NULL, NULL,
     "--tls --churn: each thread offers the session of\n"
     "its last connection on the next one (a TLS 1.3\n"
     "ticket or a 1.2 session) and reports the handshakes\n"
     "that resumed",
     NULL},
    {"read-delay", 0, "MS", CLI_U64, F(read_delay_ms), 0, 1, 3600000, NULL, NULL,
     "pause MS milliseconds after every read (slow reader)", NULL},
    {"never-read", 0, NULL, CLI_FLAG, F(never_read), 0, 0, 0, NULL, NULL,
     "send without reading; report how much the server took", NULL},
    {"udp", 0, NULL, CLI_FLAG, F(udp), 0, 0, 0, NULL, NULL,
     "UDP datagram echo: each message is one datagram\n"
     "of --size bytes (16 to 65507, 65527 over IPv6)\n"
     "and its echo; each connection is a UDP socket\n"
     "with --depth in flight; loss (no answer within\n"
     "1 s) is counted and reported, corrupt or unknown\n"
     "datagrams are errors. With --rate, the open loop:\n"
     "datagrams leave on the schedule, latency counts\n"
     "from the scheduled send time",
     NULL},
    {"source", 0, "ADDR[-ADDR]", CLI_CALL, 0, 0, 0, 0, NULL, parse_source,
     "bind connections round-robin to the local IPv4\n"
     "addresses ADDR to ADDR (127.0.0.2-127.0.0.9 on\n"
     "loopback): each has its own ephemeral ports",
     "the kernel's choice"},
    {"proxy-protocol", 0, "v1|v2", CLI_CALL, 0, 0, 0, 0, NULL, parse_proxy_version,
     PROXY_CLI_VERSION_HELP ",\nchurn's included (TCP and Unix only)", NULL},
    {"proxy-source", 0, "ADDR:PORT", CLI_CALL, 0, 0, 0, 0, NULL, parse_proxy_source,
     PROXY_CLI_SOURCE_HELP, NULL},
    SOCK_SPEC_NODELAY(F(tuning), "every connection", "on"),
    SOCK_SPEC_SNDBUF(F(tuning), "every connection"),
    SOCK_SPEC_RCVBUF(F(tuning), "every connection"),
    SOCK_SPEC_TOS(F(tuning), "every connection"),
    {"interval", 0, "SECS", CLI_SECONDS_US, F(interval_us), 0, 0, MAX_SECONDS, NULL, NULL,
     "a line per SECS interval: messages/s, p50, p99,\n"
     "p99.9 and max latency of the interval, errors,\n"
     "outstanding; text on stderr, or with --json a\n"
     "JSON line each on stdout before the summary",
     "1 on a terminal, else none"},
    {"hdr-log", 0, "FILE", CLI_STRING, F(hdr_log), 0, 0, 0, NULL, NULL,
     "write an HdrHistogram interval log (format 1.3)\n"
     "to FILE: a line per --interval (1 s if not given),\n"
     "warm-up included, latencies in ns; HdrHistogram's\n"
     "own tools read, merge and plot it",
     NULL},
    {"json", 0, NULL, CLI_FLAG, F(json), 0, 0, 0, NULL, NULL,
     "print one JSON object instead of the text report", NULL},
    {"backend", 0, "NAME", CLI_CALL, 0, 0, 0, 0, NULL, parse_backend,
     "loop backend: auto, epoll, poll, select, or\nuring (if built)", NULL},
    {"help", 'h', NULL, CLI_HELP, 0, 0, 0, 0, NULL, NULL, "print this help and exit", NULL},
    {"version", 0, NULL, CLI_VERSION, 0, 0, 0, 0, NULL, NULL, "print the version and exit", NULL},
    {NULL, 0, NULL, CLI_FLAG, 0, 0, 0, 0, NULL, NULL, NULL, NULL},
};

void bench_usage(FILE *out)
{
    fputs("usage: echo-bench [OPTION]...\n"
          "Load generator for echo servers; checks every echoed byte.\n",
          out);
    cli_usage(out, specs);
    fputs("Exit status: 0 when every byte came back right, 1 on any error (including a\n"
          "message unanswered for --timeout), 2 on bad usage.\n",
          out);
}

void bench_usage_error(const char *reason)
{
    fprintf(stderr, "echo-bench: %s\nTry 'echo-bench --help' for more information.\n", reason);
}

/* Combinations that would measure something other than what was asked;
   0 or -1 with the reason. */
static int check_combinations(const struct bench_options *o, bool depth_given, bool interval_given,
                              char *err, size_t errsize)
{
    const char *why = NULL;
    if (o->duration_us < 1000)
        why = "--duration: shorter than 1 ms";
    else if (o->timeout_us == 0 || o->connect_timeout_us == 0)
        why = o->timeout_us == 0 ? "--timeout: must be more than 0"
                                 : "--connect-timeout: must be more than 0";
    else if (interval_given && o->interval_us < 10000)
        why = "--interval: shorter than 10 ms";
    else if (o->churn &&
             (o->rate || o->never_read || o->read_delay_ms || o->idle || o->udp || o->connect_rate))
        why = "--churn: cannot be combined with --rate, --never-read, --read-delay, --idle, "
              "--udp or --connect-rate";
#ifndef ECHO_BENCH_HAVE_ZLIB
    else if (o->hdr_log)
        why = "--hdr-log: this echo-bench was built without zlib";
#endif
    else if (o->slo_ms && !o->rate)
        why = "--slo: applies to the open loop (--rate) only";
    else if (o->rate != 0 && depth_given)
        why = "--depth: applies to the closed loop only, not with --rate";
    else if (o->never_read && (o->rate != 0 || o->read_delay_ms != 0))
        why = "--never-read: cannot be combined with --rate or --read-delay";
    else if (o->udp && (o->never_read || o->read_delay_ms || o->idle))
        why = "--udp: cannot be combined with --never-read, --read-delay or --idle";
    else if (o->udp && o->tls.on)
        why = "--tls: TCP only, not with --udp";
    else if (o->tls_resume && (!o->tls.on || !o->churn))
        why = "--tls-resume needs --tls and --churn";
    else if (o->udp && o->source_count)
        why = "--source: TCP only, not with --udp";
    else if (o->udp && o->proxy_version)
        why = "--proxy-protocol: TCP only, not with --udp";
    else if (!o->proxy_version && o->proxy_source.kind != PROXY_SOURCE_REAL)
        why = "--proxy-source needs --proxy-protocol";
    else if (o->udp && (o->size < 16 || o->size > 65527))
        why = "--udp: --size must be 16 to 65527 bytes (one datagram)";
    if (why != NULL) {
        snprintf(err, errsize, "%s", why);
        return -1;
    }
    if (o->threads > o->conns) {
        snprintf(err, errsize, "--threads: %u threads for %u connections; use at most --conns",
                 o->threads, o->conns);
        return -1;
    }
    return 0;
}

int bench_args_parse(int argc, char **argv, struct bench_options *o, char *err, size_t errsize)
{
    *o = (struct bench_options){
        .connect = "localhost:10000",
        .conns = 1,
        .size = 64,
        .depth = 1,
        .duration_us = 10000000,
        .warmup_us = 1000000,
        .threads = 1,
        .timeout_us = 5000000,
        .connect_timeout_us = 10000000,
        .per_conn = 1,
        .tuning = {.nodelay = SOCK_NODELAY_ON},
    };
    bool given[sizeof specs / sizeof specs[0]] = {false};
    int rc = cli_parse(specs, argc, argv, o, given, NULL, err, errsize);
    if (rc == CLI_PARSE_HELP)
        return BENCH_ARGS_HELP;
    if (rc == CLI_PARSE_VERSION)
        return BENCH_ARGS_VERSION;
    if (rc != CLI_PARSE_OK)
        return BENCH_ARGS_ERROR;
    if (o->churn && !cli_given(specs, given, "conns"))
        o->conns = CHURN_POOL;
    if (o->threads_auto) {
        unsigned cpus = bench_usable_cpus();
        cpus = cpus < MAX_THREADS ? cpus : MAX_THREADS;
        o->threads = cpus < o->conns ? cpus : o->conns;
    }
    if (tls_cli_check(&o->tls, specs, given, "echo-bench", err, errsize) < 0)
        return BENCH_ARGS_ERROR;
    if (!o->churn && cli_given(specs, given, "per-conn")) {
        snprintf(err, errsize, "--per-conn: applies to --churn only");
        return BENCH_ARGS_ERROR;
    }
    if (check_combinations(o, cli_given(specs, given, "depth"), cli_given(specs, given, "interval"),
                           err, errsize) < 0)
        return BENCH_ARGS_ERROR;
    return BENCH_ARGS_OK;
}
