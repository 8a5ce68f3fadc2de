/* SPDX-License-Identifier: MIT */
/*
 * options.c - parses echod's command line with the shared strict parsers
 * (apps/common/cli.h): a typo is a one-line usage error, never a silently
 * different server.
 */
#include "options.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "spin.h"
#include "udp.h"
#include <iomux/stream.h>

#ifndef ECHOD_VERSION
#define ECHOD_VERSION "unknown"
#endif

enum {
    OPT_LISTEN = 1,
    OPT_BACKEND,
    OPT_MAX_CONNS,
    OPT_IDLE,
    OPT_TICK,
    OPT_GRACE,
    OPT_HIGH,
    OPT_LOW,
    OPT_TRACE,
    OPT_QUIET,
    OPT_HELP,
    OPT_VERSION,
    OPT_UDP,
    OPT_UDP_RATE,
    OPT_UDP_BURST,
    OPT_UDP_ANY_PORT,
    OPT_MAX_PER_IP,
    OPT_INETD,
    OPT_USER,
    OPT_ENGINE,
    OPT_URING_BUFFERS,
    OPT_BUSY_POLL,
    OPT_BATCH_WAIT,
    OPT_SPIN_RECEIVE,
};

static const struct cli_option options[] = {
    {"listen", 1, OPT_LISTEN},
    {"backend", 1, OPT_BACKEND},
    {"max-conns", 1, OPT_MAX_CONNS},
    {"idle-timeout", 1, OPT_IDLE},
    {"tick", 1, OPT_TICK},
    {"grace", 1, OPT_GRACE},
    {"high-water", 1, OPT_HIGH},
    {"low-water", 1, OPT_LOW},
    {"trace", 0, OPT_TRACE},
    {"quiet", 0, OPT_QUIET},
    {"help", 0, OPT_HELP},
    {"version", 0, OPT_VERSION},
    {"udp", 1, OPT_UDP},
    {"udp-rate", 1, OPT_UDP_RATE},
    {"udp-burst", 1, OPT_UDP_BURST},
    {"udp-any-port", 0, OPT_UDP_ANY_PORT},
    {"max-conns-per-ip", 1, OPT_MAX_PER_IP},
    {"inetd", 0, OPT_INETD},
    {"user", 1, OPT_USER},
    {"engine", 1, OPT_ENGINE},
    {"uring-buffers", 1, OPT_URING_BUFFERS},
    {"busy-poll", 1, OPT_BUSY_POLL},
    {"batch-wait", 1, OPT_BATCH_WAIT},
    {"spin-receive", 1, OPT_SPIN_RECEIVE},
    {NULL, 0, 0},
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: echod [OPTION]...\n"
        "An echo server (RFC 862): every byte a client sends is sent back to it.\n"
        "\n"
        "  --listen HOST:PORT     address to listen on; repeatable (default " ECHOD_DEFAULT_LISTEN
        ",\n"
        "                         unless --udp is given). HOST is an IPv4 address, [IPV6]\n"
        "                         in brackets, or a name; port 0 picks a free port and\n"
        "                         prints HOST:PORT on stdout. unix:PATH listens on a\n"
        "                         Unix-domain stream socket\n"
        "  --udp HOST:PORT        echo datagrams on this UDP address (or unix:PATH, a\n"
        "                         Unix datagram socket); repeatable; off by default.\n"
        "                         Port-0 addresses are printed after the --listen ones\n"
        "  --udp-rate PPS         answer at most PPS datagrams per second per source\n"
        "                         address (default %u; 0: no limit)\n"
        "  --udp-burst N          let a source send N datagrams at once before the rate\n"
        "                         applies (default %u, or PPS if larger)\n"
        "  --udp-any-port         also answer the loop-prone source ports refused by\n"
        "                         default, and echod's own UDP ports; refused are\n"
        "                         %s\n"
        "                         (source port 0 is never answered)\n"
        "  --max-conns-per-ip N   serve at most N TCP clients from one address at once\n"
        "                         (default 0: no limit)\n"
        "  --inetd                serve the one TCP connection on stdin/stdout (inetd\n"
        "                         'nowait' style), then exit\n"
        "  --user NAME            after binding, switch to the user NAME and its group;\n"
        "                         refuses to run on as root if that fails\n"
        "  --backend NAME         auto, epoll, poll, select or uring (uring: when built\n"
        "                         with liburing); default auto: the first of epoll,\n"
        "                         poll and select that works\n"
        "  --engine NAME          loop (default): the event loop of --backend does the\n"
        "                         TCP I/O; uring: io_uring does it (multishot accept and\n"
        "                         receive, provided buffers), when built with liburing.\n"
        "                         Timers, signals and --udp stay on the --backend loop\n"
        "                         (epoll, poll or select)\n"
        "  --uring-buffers N      --engine uring: receive buffers shared by all clients, a\n"
        "                         power of two from 1 to 32768 (default %u, 16 KiB each)\n"
        "  --busy-poll USEC       --engine uring: before sleeping, spin up to USEC\n"
        "                         microseconds (at most 10000) watching for work: lower\n"
        "                         latency, and clients do not pay to wake echod, for\n"
        "                         more CPU (default 0: sleep at once)\n"
        "  --batch-wait USEC      --engine uring: when completions have been coming in\n"
        "                         batches, sleep until a batch is full or USEC\n"
        "                         microseconds pass (a batch of under 16, its share of\n"
        "                         USEC; at most 1000; default %u, 0: off; kernel 6.12\n"
        "                         or later): fewer wake-ups to pay for\n"
        "  --spin-receive MODE    --engine uring: auto (default): while echod's CPU is\n"
        "                         saturated and it has at most %u clients, receive by\n"
        "                         trying each client's socket in turn instead of being\n"
        "                         woken for data, which costs the senders less; on:\n"
        "                         always (spins, 100%% CPU; not with --trace); off:\n"
        "                         never. --trace turns auto off\n"
        "  --max-conns N          serve at most N clients at once; more are accepted and\n"
        "                         closed at once (default 0: no limit)\n"
        "  --idle-timeout SECS    close a connection with no traffic for SECS seconds\n"
        "                         (default 0: never)\n"
        "  --tick SECS            wake up at least every SECS seconds even when idle; with\n"
        "                         --trace, say so (default 0: no tick)\n"
        "  --grace SECS           on SIGINT/SIGTERM, time given to connections to take what\n"
        "                         is queued for them before they are cut (default %.0f)\n"
        "  --high-water BYTES     stop reading from a client with more than BYTES waiting to\n"
        "                         be sent to it (default %u; K, M, G suffixes allowed)\n"
        "  --low-water BYTES      read from it again once that is down to BYTES\n"
        "                         (default %u, or high-water / 4 if that is smaller)\n"
        "  --trace                tell every event on stderr, in the words of the Python\n"
        "                         select/poll echo server\n"
        "  --quiet                log errors only (no start-up and shutdown lines)\n"
        "  -h, --help             show this help and exit\n"
        "  --version              show the version and exit\n"
        "\n"
        "Signals: SIGINT/SIGTERM stop accepting, let connections drain for the grace\n"
        "period, then exit 0 (a second one exits at once); SIGUSR1 prints statistics on\n"
        "stderr.\n"
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
        "  echod --listen unix:/run/echod.sock --udp unix:/run/echod.dgram\n",
        ECHOD_UDP_RATE, ECHOD_UDP_BURST, echod_udp_refused_ports_text, ECHOD_URING_BUFFERS,
        ECHOD_BATCH_WAIT_US, (unsigned)SPIN_MAX_CONNS, ECHOD_DEFAULT_GRACE_MS / 1000.0,
        IOMUX_STREAM_HIGH_WATER, IOMUX_STREAM_LOW_WATER);
}

/* BYTES: digits with an optional K, M or G (powers of 1024). */
static int parse_bytes(const char *opt, const char *text, size_t *out, char *err, size_t errsize)
{
    char digits[32];
    size_t n = strlen(text);
    uint64_t unit = 1;
    if (n > 0 && n < sizeof(digits)) {
        switch (text[n - 1]) {
        case 'k':
        case 'K':
            unit = 1024;
            break;
        case 'm':
        case 'M':
            unit = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            unit = 1024 * 1024 * 1024;
            break;
        default:
            break;
        }
    }
    if (unit > 1)
        n--;
    if (n == 0 || n >= sizeof(digits)) {
        snprintf(err, errsize, "%s: '%s' is not a number of bytes", opt, text);
        return -1;
    }
    memcpy(digits, text, n);
    digits[n] = '\0';
    uint64_t v;
    const uint64_t max = (uint64_t)1 << 40;
    if (cli_parse_u64(opt, digits, 1, max / unit, &v, err, errsize) < 0) {
        snprintf(err, errsize, "%s: '%s' is not a number of bytes from 1 to 1T", opt, text);
        return -1;
    }
    *out = (size_t)(v * unit);
    return 0;
}

/* Seconds to milliseconds, rounded up so a short timeout never becomes 0
   ("off"). */
static int parse_ms(const char *opt, const char *text, uint64_t *out, char *err, size_t errsize)
{
    uint64_t us;
    if (cli_parse_seconds(opt, text, 1e6, &us, err, errsize) < 0)
        return -1;
    *out = (us + 999) / 1000;
    return 0;
}

int echod_options_parse(int argc, char **argv, struct echod_options *o)
{
    struct cli_iter it = {.argc = argc, .argv = argv, .index = 1};
    char err[256] = "";
    const char *value;
    int id, bad = 0;

    memset(o, 0, sizeof(*o));
    o->backend = "auto";
    o->engine = "loop";
    o->uring_buffers = ECHOD_URING_BUFFERS;
    o->batch_wait_us = ECHOD_BATCH_WAIT_US;
    o->spin_receive = "auto";
    o->grace_ms = ECHOD_DEFAULT_GRACE_MS;
    o->udp_rate = ECHOD_UDP_RATE;

    while (!bad && (id = cli_next(&it, options, &value, err, sizeof(err))) != CLI_END) {
        switch (id) {
        case CLI_ERROR:
            bad = 1;
            break;
        case CLI_OPERAND:
            snprintf(err, sizeof(err), "unexpected argument '%s'", value);
            bad = 1;
            break;
        case OPT_LISTEN:
            if (o->nlisten == ECHOD_MAX_LISTEN) {
                snprintf(err, sizeof(err), "--listen: at most %d addresses", ECHOD_MAX_LISTEN);
                bad = 1;
            } else {
                o->listen[o->nlisten++] = value;
            }
            break;
        case OPT_BACKEND:
            bad = cli_check_backend(value, err, sizeof(err)) < 0;
            o->backend = value;
            break;
        case OPT_ENGINE:
            if (strcmp(value, "loop") != 0 && strcmp(value, "uring") != 0) {
                snprintf(err, sizeof(err), "--engine: '%s': expected loop or uring", value);
                bad = 1;
            }
            o->engine = value;
            break;
        case OPT_URING_BUFFERS:
            bad = cli_parse_u64("--uring-buffers", value, 1, 32768, &o->uring_buffers, err,
                                sizeof(err)) < 0;
            if (!bad && (o->uring_buffers & (o->uring_buffers - 1))) {
                snprintf(err, sizeof(err), "--uring-buffers: %s is not a power of two", value);
                bad = 1;
            }
            break;
        case OPT_BUSY_POLL:
            bad = cli_parse_u64("--busy-poll", value, 0, ECHOD_BUSY_POLL_MAX_US, &o->busy_poll_us,
                                err, sizeof(err)) < 0;
            break;
        case OPT_BATCH_WAIT:
            bad = cli_parse_u64("--batch-wait", value, 0, ECHOD_BATCH_WAIT_MAX_US,
                                &o->batch_wait_us, err, sizeof(err)) < 0;
            o->batch_wait_given = true;
            break;
        case OPT_SPIN_RECEIVE:
            if (strcmp(value, "auto") != 0 && strcmp(value, "on") != 0 &&
                strcmp(value, "off") != 0) {
                snprintf(err, sizeof(err), "--spin-receive: '%s': expected auto, on or off", value);
                bad = 1;
            }
            o->spin_receive = value;
            o->spin_receive_given = true;
            break;
        case OPT_MAX_CONNS:
            bad = cli_parse_u64("--max-conns", value, 0, 1000000000, &o->max_conns, err,
                                sizeof(err)) < 0;
            break;
        case OPT_IDLE:
            bad = parse_ms("--idle-timeout", value, &o->idle_timeout_ms, err, sizeof(err)) < 0;
            break;
        case OPT_TICK:
            bad = parse_ms("--tick", value, &o->tick_ms, err, sizeof(err)) < 0;
            break;
        case OPT_GRACE:
            bad = parse_ms("--grace", value, &o->grace_ms, err, sizeof(err)) < 0;
            break;
        case OPT_HIGH:
            bad = parse_bytes("--high-water", value, &o->high_water, err, sizeof(err)) < 0;
            break;
        case OPT_LOW:
            bad = parse_bytes("--low-water", value, &o->low_water, err, sizeof(err)) < 0;
            break;
        case OPT_TRACE:
            o->trace = true;
            break;
        case OPT_QUIET:
            o->quiet = true;
            break;
        case OPT_UDP:
            if (o->nudp == ECHOD_MAX_LISTEN) {
                snprintf(err, sizeof(err), "--udp: at most %d addresses", ECHOD_MAX_LISTEN);
                bad = 1;
            } else {
                o->udp[o->nudp++] = value;
            }
            break;
        case OPT_UDP_RATE:
            bad = cli_parse_u64("--udp-rate", value, 0, 100000000, &o->udp_rate, err, sizeof(err)) <
                  0;
            break;
        case OPT_UDP_BURST:
            bad = cli_parse_u64("--udp-burst", value, 1, 100000000, &o->udp_burst, err,
                                sizeof(err)) < 0;
            break;
        case OPT_UDP_ANY_PORT:
            o->udp_any_port = true;
            break;
        case OPT_MAX_PER_IP:
            bad = cli_parse_u64("--max-conns-per-ip", value, 0, 1000000000, &o->max_conns_per_ip,
                                err, sizeof(err)) < 0;
            break;
        case OPT_INETD:
            o->inetd = true;
            break;
        case OPT_USER:
            if (value[0] == '\0') {
                snprintf(err, sizeof(err), "--user: empty user name");
                bad = 1;
            }
            o->user = value;
            break;
        case OPT_HELP:
            usage(stdout);
            return ECHOD_DONE;
        case OPT_VERSION:
            printf("echod (iomux) %s\n", ECHOD_VERSION);
            return ECHOD_DONE;
        default:
            break;
        }
    }
    if (!bad && strcmp(o->engine, "uring") == 0 && strcmp(o->backend, "uring") == 0) {
        /* Wake-ups get lost when one ring waits on another's fd. */
        snprintf(err, sizeof(err),
                 "--engine uring: its loop must be --backend epoll, poll or "
                 "select, not uring");
        bad = 1;
    }
    if (!bad && o->busy_poll_us && strcmp(o->engine, "uring") != 0) {
        /* The readiness loop would need a system call per look. */
        snprintf(err, sizeof(err), "--busy-poll: only with --engine uring");
        bad = 1;
    }
    if (!bad && o->spin_receive_given && strcmp(o->spin_receive, "off") != 0 &&
        strcmp(o->engine, "uring") != 0) {
        snprintf(err, sizeof(err), "--spin-receive: only with --engine uring");
        bad = 1;
    }
    if (!bad && o->trace && strcmp(o->spin_receive, "on") == 0) {
        /* The trace prints every turn of the loop, and a spinning one
           turns all the time. */
        snprintf(err, sizeof(err), "--spin-receive on: not with --trace");
        bad = 1;
    }
    if (!bad && o->batch_wait_given && o->batch_wait_us && strcmp(o->engine, "uring") != 0) {
        snprintf(err, sizeof(err), "--batch-wait: only with --engine uring");
        bad = 1;
    }
    if (!bad && o->tick_ms > (uint64_t)1 << 30) {
        snprintf(err, sizeof(err), "--tick: too long");
        bad = 1;
    }
    if (!bad) {
        /* Fill in the watermarks the way the stream layer would, so that
           a lone --low-water is checked against the real high water. */
        size_t high = o->high_water ? o->high_water : IOMUX_STREAM_HIGH_WATER;
        size_t low = o->low_water;
        if (!low) {
            low = IOMUX_STREAM_LOW_WATER < high / 4 ? IOMUX_STREAM_LOW_WATER : high / 4;
        }
        if (low > high) {
            snprintf(err, sizeof(err), "--low-water (%zu) is above --high-water (%zu)", low, high);
            bad = 1;
        }
        o->high_water = high;
        o->low_water = low;
    }
    if (bad) {
        fprintf(stderr, "echod: %s\nTry 'echod --help' for more information.\n", err);
        return ECHOD_USAGE;
    }
    if (o->udp_rate && !o->udp_burst)
        o->udp_burst = o->udp_rate > ECHOD_UDP_BURST ? o->udp_rate : ECHOD_UDP_BURST;
    if (o->inetd && (o->nlisten || o->nudp)) {
        fprintf(stderr, "echod: --inetd serves stdin: it takes no --listen or --udp\n"
                        "Try 'echod --help' for more information.\n");
        return ECHOD_USAGE;
    }
    /* The default TCP address only when nothing at all was asked for: a
       UDP-only server must not also take localhost:10000. */
    if (o->nlisten == 0 && o->nudp == 0 && !o->inetd)
        o->listen[o->nlisten++] = ECHOD_DEFAULT_LISTEN;
    return ECHOD_RUN;
}
