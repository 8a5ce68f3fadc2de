/* SPDX-License-Identifier: MIT */
/*
 * test_client_args.c - the command lines of echo-client and echo-bench: the
 * defaults reproduce the seed, good values land in the right fields, and
 * every bad value is refused with a one-line reason (the tools then exit
 * 2). Also the shared number parsers and Python's bytes repr().
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_args.h"
#include "cli.h"
#include "client_args.h"
#include "repr.h"

#define MAX_ARGS 32

/* Parses a NULL-terminated list of words as echo-client's argv. */
static int parse_client(struct client_options *o, char *err, size_t errsize, const char *words[])
{
    char *argv[MAX_ARGS];
    int argc = 0;
    argv[argc++] = (char *)"echo-client";
    for (; words[argc - 1] != NULL && argc < MAX_ARGS - 1; argc++)
        argv[argc] = (char *)words[argc - 1];
    argv[argc] = NULL;
    static const char *store[MAX_ARGS];
    err[0] = '\0';
    return client_args_parse(argc, argv, o, store, err, errsize);
}

static int parse_bench(struct bench_options *o, char *err, size_t errsize, const char *words[])
{
    char *argv[MAX_ARGS];
    int argc = 0;
    argv[argc++] = (char *)"echo-bench";
    for (; words[argc - 1] != NULL && argc < MAX_ARGS - 1; argc++)
        argv[argc] = (char *)words[argc - 1];
    argv[argc] = NULL;
    err[0] = '\0';
    return bench_args_parse(argc, argv, o, err, errsize);
}

static void test_client_defaults(void)
{
    struct client_options o;
    char err[256];
    const char *none[] = {NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, none), CLIENT_ARGS_OK);
    CHECK_STR(o.connect, "localhost:10000");
    CHECK_EQ_INT(o.sockets, 2);
    CHECK_EQ_U64(o.delay_us, 0);
    CHECK_EQ_U64(o.timeout_us, 10000000);
    CHECK_EQ_INT(o.backend, CLIENT_BACKEND_AUTO);
    CHECK(client_backend_name(&o) == NULL);
    CHECK_EQ_INT(o.quiet, 0);
    CHECK_EQ_INT(o.tuning.nodelay, SOCK_NODELAY_ON);
    CHECK_EQ_U64(o.tuning.sndbuf, 0);
    CHECK_EQ_U64(o.tuning.rcvbuf, 0);
    CHECK_EQ_INT(o.tuning.tos, 0);
    if (CHECK_EQ_U64(o.n_parts, 3)) {
        CHECK_STR(o.parts[0], "This is the message. ");
        CHECK_STR(o.parts[1], "It will be sent ");
        CHECK_STR(o.parts[2], "in parts.");
    }
}

/* The slow client of the seed, as the issue spells it. */
static void test_client_slow_seed(void)
{
    struct client_options o;
    char err[256];
    const char *w[] = {"--sockets", "1",   "--connect-delay",          "1",
                       "--delay",   "1.5", "Part one of the message.", "Part two of the message.",
                       NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w), CLIENT_ARGS_OK);
    CHECK_EQ_INT(o.sockets, 1);
    CHECK_EQ_U64(o.connect_delay_us, 1000000);
    CHECK_EQ_U64(o.delay_us, 1500000);
    if (CHECK_EQ_U64(o.n_parts, 2)) {
        CHECK_STR(o.parts[0], "Part one of the message.");
        CHECK_STR(o.parts[1], "Part two of the message.");
    }
}

static void test_client_forms(void)
{
    struct client_options o;
    char err[256];
    const char *w1[] = {"--connect=[::1]:7", "--timeout=0.25",
                        "--backend",         "poll",
                        "--quiet",           "--",
                        "--not-an-option",   NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w1), CLIENT_ARGS_OK);
    CHECK_STR(o.connect, "[::1]:7");
    CHECK_EQ_U64(o.timeout_us, 250000);
    CHECK_EQ_INT(o.backend, CLIENT_BACKEND_POLL);
    CHECK_STR(client_backend_name(&o), "poll");
    CHECK_EQ_INT(o.quiet, 1);
    if (CHECK_EQ_U64(o.n_parts, 1))
        CHECK_STR(o.parts[0], "--not-an-option");

    const char *w_unix[] = {"--connect", "unix:/run/echo.sock", NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w_unix), CLIENT_ARGS_OK);
    CHECK_STR(o.connect, "unix:/run/echo.sock");

    const char *w_file[] = {"--file", "data.bin", NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w_file), CLIENT_ARGS_OK);
    CHECK_STR(o.file, "data.bin");
    CHECK_EQ_INT(o.sockets, 1);
    const char *w_stdin[] = {"--file", "-", "--sockets", "1", "--connect-delay", "0.5", NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w_stdin), CLIENT_ARGS_OK);
    CHECK_STR(o.file, "-");
    CHECK_EQ_U64(o.connect_delay_us, 500000);

    const char *w_sock[] = {"--nodelay", "off",   "--sndbuf", "1M", "--rcvbuf",
                            "65536",     "--tos", "184",      NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w_sock), CLIENT_ARGS_OK);
    CHECK_EQ_INT(o.tuning.nodelay, SOCK_NODELAY_OFF);
    CHECK_EQ_U64(o.tuning.sndbuf, 1048576);
    CHECK_EQ_U64(o.tuning.rcvbuf, 65536);
    CHECK_EQ_INT(o.tuning.tos, 184);

    const char *w2[] = {"-", NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w2), CLIENT_ARGS_OK);
    CHECK_EQ_INT(o.parts_from_stdin, 1);

    const char *w3[] = {"--help", NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w3), CLIENT_ARGS_HELP);
    const char *w4[] = {"-h", NULL};
    CHECK_EQ_INT(parse_client(&o, err, sizeof err, w4), CLIENT_ARGS_HELP);
}

/* Each bad command line must fail with a message naming the culprit. */
static void test_client_bad(void)
{
    static const struct {
        const char *words[6];
        const char *needle; /* must appear in the one-line reason */
    } cases[] = {
        {{"--sockets", "0", NULL}, "--sockets"},
        {{"--sockets", "10001", NULL}, "out of range"},
        {{"--sockets", "2x", NULL}, "not a whole number"},
        {{"--sockets", "-1", NULL}, "--sockets"},
        {{"--sockets", "", NULL}, "--sockets"},
        {{"--sockets", NULL}, "needs a value"},
        {{"--delay", "-1", NULL}, "--delay"},
        {{"--delay", "1e3", NULL}, "not a number of seconds"},
        {{"--delay", "nan", NULL}, "--delay"},
        {{"--delay", ".", NULL}, "--delay"},
        {{"--delay", "100000", NULL}, "more than"},
        {{"--connect-delay", "x", NULL}, "--connect-delay"},
        {{"--timeout", "1s", NULL}, "--timeout"},
        {{"--connect", "nocolon", NULL}, "HOST:PORT"},
        {{"--connect", "unix:", NULL}, "unix:PATH"},
        {{"--backend", "kqueue", NULL}, "kqueue"},
        {{"--quiet=1", NULL}, "takes no value"},
        {{"--frobnicate", NULL}, "unknown option"},
        {{"-x", NULL}, "unknown option"},
        {{"", NULL}, "empty"},
        {{"a", "-", NULL}, "only part"},
        {{"--file", "f", "part", NULL}, "PART does not apply"},
        {{"--file", "f", "--sockets", "2", NULL}, "--sockets does not apply"},
        {{"--file", "f", "--delay", "1", NULL}, "--delay does not apply"},
        {{"--file", "", NULL}, "--file"},
        {{"--file", NULL}, "needs a value"},
        {{"--nodelay", "yes", NULL}, "not one of: off, on"},
        {{"--tos", "256", NULL}, "--tos"},
        {{"--tos", "0x10", NULL}, "--tos"},
        {{"--sndbuf", "0", NULL}, "--sndbuf"},
        {{"--rcvbuf", "2G", NULL}, "--rcvbuf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct client_options o;
        char err[256];
        int rc = parse_client(&o, err, sizeof err, (const char **)cases[i].words);
        if (!CHECK_EQ_INT(rc, CLIENT_ARGS_ERROR)) {
            fprintf(stderr, "  case %zu (%s) was accepted\n", i, cases[i].words[0]);
            continue;
        }
        if (!CHECK(strstr(err, cases[i].needle) != NULL))
            fprintf(stderr, "  case %zu: '%s' lacks '%s'\n", i, err, cases[i].needle);
        CHECK(strchr(err, '\n') == NULL);
    }
}

static void test_bench_defaults(void)
{
    struct bench_options o;
    char err[256];
    const char *none[] = {NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, none), BENCH_ARGS_OK);
    CHECK_STR(o.connect, "localhost:10000");
    CHECK_EQ_INT(o.conns, 1);
    CHECK_EQ_U64(o.size, 64);
    CHECK_EQ_INT(o.depth, 1);
    CHECK_EQ_U64(o.duration_us, 10000000);
    CHECK_EQ_U64(o.warmup_us, 1000000);
    CHECK_EQ_U64(o.rate, 0);
    CHECK_EQ_INT(o.threads, 1);
    CHECK_EQ_INT(o.json, 0);
    CHECK_EQ_INT(o.never_read, 0);
    CHECK_EQ_U64(o.timeout_us, 5000000);
    CHECK_EQ_U64(o.connect_timeout_us, 10000000);
    CHECK_EQ_INT(o.tuning.nodelay, SOCK_NODELAY_ON);
    CHECK_EQ_U64(o.tuning.sndbuf, 0);
    CHECK_EQ_U64(o.tuning.rcvbuf, 0);
    CHECK_EQ_INT(o.tuning.tos, 0);
}

static void test_bench_values(void)
{
    struct bench_options o;
    char err[256];
    const char *w[] = {"--connect",
                       "127.0.0.1:9",
                       "--conns",
                       "100",
                       "--size=4096",
                       "--depth",
                       "8",
                       "--duration",
                       "2.5",
                       "--warmup",
                       "0",
                       "--idle",
                       "50",
                       "--threads",
                       "2",
                       "--json",
                       "--backend",
                       "select",
                       "--connect-rate",
                       "500",
                       "--read-delay",
                       "20",
                       NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w), BENCH_ARGS_OK);
    CHECK_STR(o.connect, "127.0.0.1:9");
    CHECK_EQ_INT(o.conns, 100);
    CHECK_EQ_U64(o.size, 4096);
    CHECK_EQ_INT(o.depth, 8);
    CHECK_EQ_U64(o.duration_us, 2500000);
    CHECK_EQ_U64(o.warmup_us, 0);
    CHECK_EQ_U64(o.rate, 0);
    CHECK_EQ_INT(o.idle, 50);
    CHECK_EQ_INT(o.threads, 2);
    CHECK_EQ_INT(o.json, 1);
    CHECK_STR(o.backend, "select");
    CHECK_EQ_U64(o.connect_rate, 500);
    CHECK_EQ_U64(o.read_delay_ms, 20);

    const char *w2[] = {"--rate", "10000", "--never-read", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w2), BENCH_ARGS_ERROR);
    const char *w3[] = {"--rate", "10000", "--conns", "3", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w3), BENCH_ARGS_OK);
    CHECK_EQ_U64(o.rate, 10000);
    const char *w4[] = {"--never-read", "--help", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w4), BENCH_ARGS_HELP);
    const char *w5[] = {"-h", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w5), BENCH_ARGS_HELP);
    const char *w6[] = {"--version", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w6), BENCH_ARGS_VERSION);
    /* Sizes take K and M; unix:PATH is an address like HOST:PORT. */
    const char *w7[] = {"--size", "4K", "--connect", "unix:/tmp/e.sock", "--udp", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w7), BENCH_ARGS_OK);
    CHECK_EQ_U64(o.size, 4096);
    CHECK_STR(o.connect, "unix:/tmp/e.sock");
    CHECK_EQ_INT(o.udp, 1);
    const char *w8[] = {"--timeout", "0.25", "--connect-timeout=2.5", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w8), BENCH_ARGS_OK);
    CHECK_EQ_U64(o.timeout_us, 250000);
    CHECK_EQ_U64(o.connect_timeout_us, 2500000);
    const char *w9[] = {"--nodelay", "off", "--sndbuf", "64K", "--rcvbuf=1M", "--tos", "32", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w9), BENCH_ARGS_OK);
    CHECK_EQ_INT(o.tuning.nodelay, SOCK_NODELAY_OFF);
    CHECK_EQ_U64(o.tuning.sndbuf, 65536);
    CHECK_EQ_U64(o.tuning.rcvbuf, 1048576);
    CHECK_EQ_INT(o.tuning.tos, 32);
    /* The open loop over UDP, and an interval log (without zlib, a usage
       error). */
    const char *w10[] = {"--udp", "--rate", "500:900", NULL};
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w10), BENCH_ARGS_OK);
    CHECK_EQ_U64(o.rate, 500);
    CHECK_EQ_U64(o.rate_to, 900);
    const char *w11[] = {"--hdr-log", "run.hlog", NULL};
#ifdef ECHO_BENCH_HAVE_ZLIB
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w11), BENCH_ARGS_OK);
    CHECK_STR(o.hdr_log, "run.hlog");
#else
    CHECK_EQ_INT(parse_bench(&o, err, sizeof err, w11), BENCH_ARGS_ERROR);
    CHECK(strstr(err, "without zlib") != NULL);
#endif
}

static void test_bench_bad(void)
{
    static const struct {
        const char *words[6];
        const char *needle;
    } cases[] = {
        {{"--conns", "0", NULL}, "--conns"},
        {{"--conns", "abc", NULL}, "not a whole number"},
        {{"--size", "0", NULL}, "--size"},
        {{"--size", "99999999999", NULL}, "from 1 to 67108864"},
        {{"--depth", "0", NULL}, "--depth"},
        {{"--duration", "0", NULL}, "--duration"},
        {{"--duration", "-3", NULL}, "--duration"},
        {{"--warmup", "x", NULL}, "--warmup"},
        {{"--rate", "0.5", NULL}, "--rate"},
        {{"--threads", "0", NULL}, "--threads"},
        {{"--threads", "4", "--conns", "2", NULL}, "--threads"},
        {{"--idle", "-1", NULL}, "--idle"},
        {{"--backend", "bogus", NULL}, "bogus"},
        {{"--connect", "x", NULL}, "HOST:PORT"},
        {{"--rate", "10", "--depth", "2", NULL}, "--depth"},
        {{"--never-read", "--read-delay", "5", NULL}, "--never-read"},
        {{"--never-read", "--rate", "5", NULL}, "--never-read"},
        {{"--json=yes", NULL}, "takes no value"},
        {{"stray", NULL}, "stray"},
        {{"--bogus", NULL}, "unknown option"},
        {{"--conns", NULL}, "needs a value"},
        {{"--size", "2X", NULL}, "--size"},
        {{"--size", "65M", NULL}, "--size"},
        {{"--connect", "unix:", NULL}, "unix:PATH"},
        {{"--timeout", "0", NULL}, "--timeout"},
        {{"--connect-timeout", "0", NULL}, "--connect-timeout"},
        {{"--connect-timeout", "soon", NULL}, "--connect-timeout"},
        {{"--nodelay", "yes", NULL}, "not one of: off, on"},
        {{"--sndbuf", "0", NULL}, "--sndbuf"},
        {{"--rcvbuf", "2G", NULL}, "--rcvbuf"},
        {{"--tos", "256", NULL}, "--tos"},
        {{"--udp", "--idle", "3", NULL}, "--udp"},
        {{"--hdr-log", "", NULL}, "--hdr-log"},
        {{"--udp", "--never-read", NULL}, "--udp"},
        {{"--udp", "--size", "15", NULL}, "--udp"},
        {{"--udp", "--size", "65528", NULL}, "--udp"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bench_options o;
        char err[256];
        int rc = parse_bench(&o, err, sizeof err, (const char **)cases[i].words);
        if (!CHECK_EQ_INT(rc, BENCH_ARGS_ERROR)) {
            fprintf(stderr, "  case %zu (%s) was accepted\n", i, cases[i].words[0]);
            continue;
        }
        if (!CHECK(strstr(err, cases[i].needle) != NULL))
            fprintf(stderr, "  case %zu: '%s' lacks '%s'\n", i, err, cases[i].needle);
        CHECK(strchr(err, '\n') == NULL);
    }
}

static void test_parsers(void)
{
    char err[128];
    uint64_t v = 0;
    CHECK_EQ_INT(cli_parse_u64("--n", "18446744073709551615", 0, UINT64_MAX, &v, err, sizeof err),
                 0);
    CHECK_EQ_U64(v, UINT64_MAX);
    CHECK_EQ_INT(cli_parse_u64("--n", "18446744073709551616", 0, UINT64_MAX, &v, err, sizeof err),
                 -1);
    CHECK_EQ_INT(cli_parse_u64("--n", " 1", 0, 10, &v, err, sizeof err), -1);
    CHECK_EQ_INT(cli_parse_u64("--n", "+1", 0, 10, &v, err, sizeof err), -1);
    CHECK_EQ_INT(cli_parse_seconds("--s", "1.5", 10, &v, err, sizeof err), 0);
    CHECK_EQ_U64(v, 1500000);
    CHECK_EQ_INT(cli_parse_seconds("--s", ".001", 10, &v, err, sizeof err), 0);
    CHECK_EQ_U64(v, 1000);
    CHECK_EQ_INT(cli_parse_seconds("--s", "3.", 10, &v, err, sizeof err), 0);
    CHECK_EQ_U64(v, 3000000);
    CHECK_EQ_INT(cli_parse_seconds("--s", "inf", 10, &v, err, sizeof err), -1);
    CHECK_EQ_INT(cli_parse_seconds("--s", "", 10, &v, err, sizeof err), -1);
    CHECK_EQ_INT(cli_parse_seconds("--s", "10.000001", 10, &v, err, sizeof err), -1);
}

/* repr() of bytes the way Python 3 prints it. */
static void check_repr(const char *data, size_t len, const char *want)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!CHECK(f != NULL))
        return;
    bytes_repr_write(f, data, len);
    fclose(f);
    CHECK_STR(text, want);
    free(text);
}

static void test_repr(void)
{
    check_repr("This is the message. ", 21, "b'This is the message. '");
    check_repr("", 0, "b''");
    check_repr("it's", 4, "b\"it's\"");
    check_repr("'\"", 2, "b'\\'\"'");
    check_repr("a\tb\nc\rd\\", 8, "b'a\\tb\\nc\\rd\\\\'");
    check_repr("\x00\x1f\x7f\xff", 4, "b'\\x00\\x1f\\x7f\\xff'");
}

int main(void)
{
    test_client_defaults();
    test_client_slow_seed();
    test_client_forms();
    test_client_bad();
    test_bench_defaults();
    test_bench_values();
    test_bench_bad();
    test_parsers();
    test_repr();
    return check_exit();
}
