/* SPDX-License-Identifier: MIT */
/* bench_args.c - echo-bench's option parsing; see bench_args.h. */
#include "bench_args.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

const char bench_usage[] =
    "usage: echo-bench [--connect HOST:PORT] [--conns N] [--size BYTES] [--depth K]\n"
    "                  [--duration S] [--warmup S] [--rate MSGS_PER_S] [--idle N]\n"
    "                  [--threads T] [--connect-rate N] [--read-delay MS]\n"
    "                  [--never-read] [--udp] [--json] [--backend NAME] [--help]\n"
    "                  [--version]\n"
    "Load generator for echo servers; checks every echoed byte.\n"
    "  --connect HOST:PORT  server (default localhost:10000)\n"
    "  --conns N            connections carrying traffic (default 1)\n"
    "  --size BYTES         message size (default 64)\n"
    "  --depth K            closed loop: messages in flight per connection (default 1)\n"
    "  --duration S         measured seconds (default 10)\n"
    "  --warmup S           seconds of traffic before measuring (default 1)\n"
    "  --rate N             open loop: N messages/s over all connections, latency\n"
    "                       measured from the scheduled send time\n"
    "  --idle N             extra connections held open without traffic\n"
    "  --threads T          T loops in T threads, connections spread among them\n"
    "  --connect-rate N     open at most N connections per second (default: all at once)\n"
    "  --read-delay MS      pause MS milliseconds after every read (slow reader)\n"
    "  --never-read         send without reading; report how much the server took\n"
    "  --udp                UDP datagram echo: each message is one datagram of --size\n"
    "                       bytes (16 to 65507, 65527 over IPv6) and its echo; each\n"
    "                       connection is a UDP socket with --depth in flight; loss\n"
    "                       (no answer within 1 s) is counted and reported, corrupt or\n"
    "                       unknown datagrams are errors. Closed loop only\n"
    "  --json               print one JSON object instead of the text report\n"
    "  --backend NAME       loop backend: auto, epoll, poll, select, uring (if built)\n"
    "  -h, --help           print this help and exit\n"
    "  --version            print the version and exit\n"
    "Exit status: 0 when every byte came back right, 1 on any error, 2 on bad usage.\n";

enum {
    OPT_CONNECT = 1,
    OPT_CONNS,
    OPT_SIZE,
    OPT_DEPTH,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_RATE,
    OPT_IDLE,
    OPT_THREADS,
    OPT_UDP,
    OPT_JSON,
    OPT_BACKEND,
    OPT_CONNECT_RATE,
    OPT_READ_DELAY,
    OPT_NEVER_READ,
    OPT_HELP,
    OPT_VERSION,
};

static const struct cli_option options[] = {
    {"connect", 1, OPT_CONNECT},
    {"conns", 1, OPT_CONNS},
    {"size", 1, OPT_SIZE},
    {"depth", 1, OPT_DEPTH},
    {"duration", 1, OPT_DURATION},
    {"warmup", 1, OPT_WARMUP},
    {"rate", 1, OPT_RATE},
    {"idle", 1, OPT_IDLE},
    {"threads", 1, OPT_THREADS},
    {"udp", 0, OPT_UDP},
    {"json", 0, OPT_JSON},
    {"backend", 1, OPT_BACKEND},
    {"connect-rate", 1, OPT_CONNECT_RATE},
    {"read-delay", 1, OPT_READ_DELAY},
    {"never-read", 0, OPT_NEVER_READ},
    {"help", 0, OPT_HELP},
    {"version", 0, OPT_VERSION},
    {NULL, 0, 0},
};

/* Bounds that keep every product in the engine far from overflow. */
#define MAX_CONNS   1000000u
#define MAX_SIZE    (64u << 20) /* 64 MiB per message */
#define MAX_DEPTH   4096u
#define MAX_SECONDS 86400.0
#define MAX_THREADS 256u

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
    };
    int depth_given = 0;
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
            return BENCH_ARGS_ERROR;
        case CLI_OPERAND:
            snprintf(err, errsize, "unexpected argument '%s'", v);
            return BENCH_ARGS_ERROR;
        case OPT_CONNECT:
            if (v[0] == '\0' || strrchr(v, ':') == NULL) {
                snprintf(err, errsize, "--connect: '%s' is not HOST:PORT", v);
                return BENCH_ARGS_ERROR;
            }
            o->connect = v;
            break;
        case OPT_CONNS:
            rc = cli_parse_u64("--conns", v, 1, MAX_CONNS, &n, err, errsize);
            o->conns = (unsigned)n;
            break;
        case OPT_SIZE:
            rc = cli_parse_u64("--size", v, 1, MAX_SIZE, &o->size, err, errsize);
            break;
        case OPT_DEPTH:
            rc = cli_parse_u64("--depth", v, 1, MAX_DEPTH, &n, err, errsize);
            o->depth = (unsigned)n;
            depth_given = 1;
            break;
        case OPT_DURATION:
            rc = cli_parse_seconds("--duration", v, MAX_SECONDS, &o->duration_us, err, errsize);
            if (rc == 0 && o->duration_us < 1000) {
                snprintf(err, errsize, "--duration: '%s' is shorter than 1 ms", v);
                rc = -1;
            }
            break;
        case OPT_WARMUP:
            rc = cli_parse_seconds("--warmup", v, MAX_SECONDS, &o->warmup_us, err, errsize);
            break;
        case OPT_RATE:
            rc = cli_parse_u64("--rate", v, 1, 100000000, &o->rate, err, errsize);
            break;
        case OPT_IDLE:
            rc = cli_parse_u64("--idle", v, 0, MAX_CONNS, &n, err, errsize);
            o->idle = (unsigned)n;
            break;
        case OPT_THREADS:
            rc = cli_parse_u64("--threads", v, 1, MAX_THREADS, &n, err, errsize);
            o->threads = (unsigned)n;
            break;
        case OPT_UDP:
            o->udp = 1;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_BACKEND:
            rc = cli_check_backend(v, err, errsize);
            o->backend = v;
            break;
        case OPT_CONNECT_RATE:
            rc = cli_parse_u64("--connect-rate", v, 1, 10000000, &o->connect_rate, err, errsize);
            break;
        case OPT_READ_DELAY:
            rc = cli_parse_u64("--read-delay", v, 1, 3600000, &o->read_delay_ms, err, errsize);
            break;
        case OPT_NEVER_READ:
            o->never_read = 1;
            break;
        case OPT_HELP:
            return BENCH_ARGS_HELP;
        case OPT_VERSION:
            return BENCH_ARGS_VERSION;
        default:
            snprintf(err, errsize, "internal error: option %d", id);
            return BENCH_ARGS_ERROR;
        }
        if (rc != 0)
            return BENCH_ARGS_ERROR;
    }
done:
    /* Combinations that would measure something other than what was asked. */
    if (o->threads > o->conns) {
        snprintf(err, errsize, "--threads: %u threads for %u connections; use at most --conns",
                 o->threads, o->conns);
        return BENCH_ARGS_ERROR;
    }
    if (o->rate != 0 && depth_given) {
        snprintf(err, errsize, "--depth: applies to the closed loop only, not with --rate");
        return BENCH_ARGS_ERROR;
    }
    if (o->never_read && (o->rate != 0 || o->read_delay_ms != 0)) {
        snprintf(err, errsize, "--never-read: cannot be combined with --rate or --read-delay");
        return BENCH_ARGS_ERROR;
    }
    if (o->udp && (o->rate || o->never_read || o->read_delay_ms || o->idle)) {
        snprintf(err, errsize,
                 "--udp: closed loop only (no --rate, --never-read, --read-delay or --idle)");
        return BENCH_ARGS_ERROR;
    }
    if (o->udp && (o->size < 16 || o->size > 65527)) {
        snprintf(err, errsize, "--udp: --size must be 16 to 65527 bytes (one datagram)");
        return BENCH_ARGS_ERROR;
    }
    return BENCH_ARGS_OK;
}
