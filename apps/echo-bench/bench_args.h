/* SPDX-License-Identifier: MIT */
/*
 * bench_args.h - echo-bench's command line, parsed into a plain struct.
 * Separate from main.c so the tests can feed it bad values.
 */
#ifndef ECHO_BENCH_ARGS_H
#define ECHO_BENCH_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proxy_client.h"
#include "sockopt.h"
#include "tls_opts.h"

struct bench_options {
    const char *connect;              /* "HOST:PORT" or "unix:PATH" (borrowed from argv) */
    unsigned conns;                   /* connections carrying traffic */
    uint64_t size;                    /* bytes per message */
    unsigned depth;                   /* closed loop: messages in flight per connection */
    uint64_t duration_us;             /* measured time */
    uint64_t warmup_us;               /* traffic before the measurement starts */
    uint64_t rate;                    /* open loop: messages per second, all connections
                                         together; 0 = closed loop */
    uint64_t rate_to;                 /* --rate A:B: the ramp's end (rate is A); 0: none */
    uint64_t slo_ms;                  /* --slo: the knee is where interval p99 passes it */
    unsigned idle;                    /* extra connections held open without traffic */
    unsigned threads;                 /* loops, one per thread */
    bool threads_auto;                /* --threads auto: one per CPU it may run on */
    uint64_t connect_rate;            /* connects per second; 0 = all at once */
    uint64_t read_delay_ms;           /* pause after every read (slow reader) */
    uint64_t timeout_us;              /* a message unanswered this long fails the run */
    uint64_t connect_timeout_us;      /* connects not done by then have failed */
    uint64_t churn;                   /* connections opened per second; 0: none */
    uint64_t per_conn;                /* --churn: messages echoed per connection */
    uint32_t source_first;            /* --source: first local IPv4 address (host order) */
    uint32_t source_count;            /* addresses in the range; 0: the kernel's choice */
    unsigned proxy_version;           /* --proxy-protocol: 1 or 2; 0 = no header */
    struct proxy_source proxy_source; /* --proxy-source: the client it names */
    uint64_t interval_us;             /* a progress line per interval; 0: on a terminal */
    const char *hdr_log;              /* --hdr-log: HdrHistogram interval log; NULL: none */
    bool never_read;                  /* send without ever reading */
    bool json;                        /* one JSON object on stdout */
    bool udp;                         /* datagrams instead of a byte stream */
    struct sock_tuning tuning;        /* --nodelay, --sndbuf, --rcvbuf, --tos */
    struct tls_cli tls;               /* --tls and its settings, as echo-client's */
    bool tls_resume;                  /* --tls-resume: offer the last session again */
    const char *backend;              /* NULL = the loop's default */
};

enum {
    BENCH_ARGS_OK = 0,
    BENCH_ARGS_HELP = 1,    /* --help: print the usage, exit 0 */
    BENCH_ARGS_VERSION = 2, /* --version: print the version, exit 0 */
    BENCH_ARGS_ERROR = -1,  /* one-line reason in err; exit 2 */
};

/* Parses argv into *o (defaults first). Returns a BENCH_ARGS_ value. */
int bench_args_parse(int argc, char **argv, struct bench_options *o, char *err, size_t errsize);

/* The CPUs this process may run on (its affinity mask), at least 1. */
unsigned bench_usable_cpus(void);

/* Writes --help: the usage line, what echo-bench does, every option (from
   the same table the parser uses) and the exit status. */
void bench_usage(FILE *out);

/* Writes a usage error the way all the tools do: "echo-bench: REASON" and
   a line pointing at --help. */
void bench_usage_error(const char *reason);

#endif /* ECHO_BENCH_ARGS_H */
