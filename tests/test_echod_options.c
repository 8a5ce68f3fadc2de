/* SPDX-License-Identifier: MIT */
/*
 * test_echod_options.c - echod's command line (apps/echod/options.c):
 * defaults, choices stored as enums, a positive time that never rounds to
 * 0 ("off"), checks across options refused as usage errors, --listen's
 * per-listener settings, --proxy-from's ranges (cidr.c), --workers and --steer.
 */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "cidr.h"
#include "options.h"

/* Parses the words of `args` (NULL-terminated) after "echod". */
static int parse(struct echod_options *o, const char *const *args)
{
    char *argv[32] = {"echod"};
    int argc = 1;
    while (args[argc - 1] != NULL && argc < 31) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    argv[argc] = NULL;
    return echod_options_parse(argc, argv, o);
}

#define PARSE(o, ...) parse(o, (const char *const[]){__VA_ARGS__, NULL})

static void test_defaults(void)
{
    struct echod_options o;
    if (!CHECK_INT(PARSE(&o, "--quiet"), ==, ECHOD_RUN))
        return;
    CHECK_INT(o.engine, ==, ECHOD_ENGINE_AUTO);
    CHECK(o.engine_given == NULL);
    CHECK_INT(o.spin_receive, ==, ECHOD_SPIN_AUTO);
    CHECK_STR(o.backend, "auto");
    CHECK_U64(o.nlisten, ==, 1);
    CHECK_U64(o.grace_ms, ==, ECHOD_DEFAULT_GRACE_MS);
    CHECK_U64(o.idle_timeout_ms, ==, 0);
    CHECK_U64(o.tick_ms, ==, 0);
    CHECK_U64(o.low_water, <=, o.high_water);
    /* The memory budget: an eighth of physical memory, at most 1 GiB. */
    CHECK_U64(o.max_buffered, >, 0);
    CHECK_U64(o.max_buffered, <=, ECHOD_MAX_BUFFERED_CAP);
    CHECK_U64(o.shed_after_ms, ==, ECHOD_SHED_AFTER_MS);
}

static void test_budget(void)
{
    struct echod_options o;
    if (CHECK_INT(PARSE(&o, "--max-buffered", "16M", "--shed-after", "0.5"), ==, ECHOD_RUN)) {
        CHECK_U64(o.max_buffered, ==, 16u << 20);
        CHECK_U64(o.shed_after_ms, ==, 500);
    }
    if (CHECK_INT(PARSE(&o, "--max-buffered", "0", "--shed-after", "0"), ==, ECHOD_RUN)) {
        CHECK_U64(o.max_buffered, ==, 0); /* no budget */
        CHECK_U64(o.shed_after_ms, ==, 0);
    }
    CHECK_INT(PARSE(&o, "--max-buffered", "16Q"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--shed-after", "-1"), ==, ECHOD_USAGE);
}

/* --workers N|auto: 1 by default, auto stored as 0 (counted at start), 1..256. */
static void test_workers(void)
{
    struct echod_options o;
    if (CHECK_INT(PARSE(&o, "--quiet"), ==, ECHOD_RUN))
        CHECK_U64(o.workers, ==, 1);
    if (CHECK_INT(PARSE(&o, "--workers", "4"), ==, ECHOD_RUN))
        CHECK_U64(o.workers, ==, 4);
    if (CHECK_INT(PARSE(&o, "--workers", "auto"), ==, ECHOD_RUN))
        CHECK_U64(o.workers, ==, 0);
    if (CHECK_INT(PARSE(&o, "--workers", "256"), ==, ECHOD_RUN))
        CHECK_U64(o.workers, ==, ECHOD_MAX_WORKERS);
    CHECK_INT(PARSE(&o, "--workers", "0"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--workers", "257"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--workers", "two"), ==, ECHOD_USAGE);
}

/* --steer none|cpu: none by default; cpu only with more than one worker (or auto, counted at
   start, where more workers than CPUs is refused). */
static void test_steer(void)
{
    struct echod_options o;
    if (CHECK_INT(PARSE(&o, "--workers", "2"), ==, ECHOD_RUN))
        CHECK_INT(o.steer, ==, ECHOD_STEER_NONE);
    if (CHECK_INT(PARSE(&o, "--steer", "cpu", "--workers", "2"), ==, ECHOD_RUN))
        CHECK_INT(o.steer, ==, ECHOD_STEER_CPU);
    if (CHECK_INT(PARSE(&o, "--workers", "auto", "--steer", "cpu"), ==, ECHOD_RUN))
        CHECK_INT(o.steer, ==, ECHOD_STEER_CPU);
    CHECK_INT(PARSE(&o, "--steer", "none"), ==, ECHOD_RUN);
    CHECK_INT(PARSE(&o, "--steer", "cpu"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--steer", "cpu", "--workers", "1"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--steer", "numa", "--workers", "2"), ==, ECHOD_USAGE);
}

static void test_choices(void)
{
    struct echod_options o;
    if (CHECK_INT(PARSE(&o, "--engine", "uring", "--spin-receive", "off"), ==, ECHOD_RUN)) {
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_URING);
        CHECK_INT(o.spin_receive, ==, ECHOD_SPIN_OFF);
    }
    if (CHECK_INT(PARSE(&o, "--engine=uring", "--spin-receive=on"), ==, ECHOD_RUN))
        CHECK_INT(o.spin_receive, ==, ECHOD_SPIN_ON);
    CHECK_INT(PARSE(&o, "--engine", "ring"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--engine", "loop", "--spin-receive", "on"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--engine", "loop", "--spin-receive", "off"), ==, ECHOD_RUN); /* harmless */
    CHECK_INT(PARSE(&o, "--engine", "loop", "--busy-poll", "10"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--engine", "uring", "--backend", "uring"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--engine", "uring", "--uring-buffers", "100"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--engine", "uring", "--spin-receive", "on", "--trace"), ==, ECHOD_USAGE);
}

/* --engine auto (the default) is decided by the options where they say
   which engine is meant: a --backend means the loop engine that runs on
   it, an option of io_uring's own means that engine; else it stays auto,
   for the start to try io_uring and fall back. */
static void test_engine_auto(void)
{
    struct echod_options o;
    if (CHECK_INT(PARSE(&o, "--backend", "poll"), ==, ECHOD_RUN)) {
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_LOOP);
        CHECK_STR(o.engine_given, "backend");
    }
    if (CHECK_INT(PARSE(&o, "--engine", "auto", "--backend", "auto"), ==, ECHOD_RUN))
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_AUTO);
    if (CHECK_INT(PARSE(&o, "--busy-poll", "10"), ==, ECHOD_RUN)) {
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_URING);
        CHECK_STR(o.engine_given, "busy-poll");
    }
    if (CHECK_INT(PARSE(&o, "--spin-receive", "off"), ==, ECHOD_RUN))
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_URING);
    if (CHECK_INT(PARSE(&o, "--engine", "loop", "--backend", "poll"), ==, ECHOD_RUN)) {
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_LOOP);
        CHECK(o.engine_given == NULL);
    }
    if (CHECK_INT(PARSE(&o, "--engine", "uring", "--busy-poll", "10"), ==, ECHOD_RUN))
        CHECK(o.engine_given == NULL);
    /* Both: the backend wins, and the loop engine has no --busy-poll. */
    CHECK_INT(PARSE(&o, "--backend", "epoll", "--busy-poll", "10"), ==, ECHOD_USAGE);
}

/* --splice: auto by default; on means the readiness engine, and is a
   usage error with io_uring's, which copies. */
static void test_splice(void)
{
    struct echod_options o;
    if (CHECK_INT(PARSE(&o, "--quiet"), ==, ECHOD_RUN))
        CHECK_INT(o.splice, ==, ECHOD_SPLICE_AUTO);
    if (CHECK_INT(PARSE(&o, "--splice", "on"), ==, ECHOD_RUN)) {
        CHECK_INT(o.splice, ==, ECHOD_SPLICE_ON);
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_LOOP);
        CHECK_STR(o.engine_given, "splice");
    }
    if (CHECK_INT(PARSE(&o, "--splice", "off"), ==, ECHOD_RUN)) {
        CHECK_INT(o.splice, ==, ECHOD_SPLICE_OFF);
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_AUTO);
    }
    CHECK_INT(PARSE(&o, "--engine", "uring", "--splice", "auto"), ==, ECHOD_RUN);
    /* The io_uring engine splices too (engine_uring_splice.c). */
    if (CHECK_INT(PARSE(&o, "--engine", "uring", "--splice", "on"), ==, ECHOD_RUN)) {
        CHECK_INT(o.splice, ==, ECHOD_SPLICE_ON);
        CHECK_INT(o.engine, ==, ECHOD_ENGINE_URING);
    }
    CHECK_INT(PARSE(&o, "--splice", "yes"), ==, ECHOD_USAGE);
}

/* Defect 8: a time under half a microsecond was rounded to 0, which means
   "off" for all three. */
static void test_short_times(void)
{
    static const char *const names[] = {"--idle-timeout", "--tick", "--grace"};
    for (size_t i = 0; i < 3; i++) {
        struct echod_options o;
        if (!CHECK_INT(PARSE(&o, names[i], "0.0000001"), ==, ECHOD_RUN))
            continue;
        uint64_t v = i == 0 ? o.idle_timeout_ms : i == 1 ? o.tick_ms : o.grace_ms;
        CHECK_U64(v, ==, 1);
        if (CHECK_INT(PARSE(&o, names[i], "0"), ==, ECHOD_RUN)) {
            v = i == 0 ? o.idle_timeout_ms : i == 1 ? o.tick_ms : o.grace_ms;
            CHECK_U64(v, ==, 0);
        }
        if (CHECK_INT(PARSE(&o, names[i], "1.0005"), ==, ECHOD_RUN)) {
            v = i == 0 ? o.idle_timeout_ms : i == 1 ? o.tick_ms : o.grace_ms;
            CHECK_U64(v, ==, 1001); /* rounded up */
        }
    }
}

static void test_others(void)
{
    struct echod_options o;
    CHECK_INT(PARSE(&o, "--inetd", "--listen", "127.0.0.1:0"), ==, ECHOD_USAGE);
    /* A high water under 4 bytes still gets a low water of at least 1
       (found by fuzz_options: the derived one was 0). */
    for (const char *const *h = (const char *const[]){"1", "3", "4", NULL}; *h; h++)
        if (CHECK_INT(PARSE(&o, "--high-water", *h), ==, ECHOD_RUN))
            CHECK(o.low_water >= 1 && o.low_water <= o.high_water);
    CHECK_INT(PARSE(&o, "--low-water", "1M"), ==, ECHOD_USAGE); /* above 256K */
    if (CHECK_INT(PARSE(&o, "--high-water", "1K"), ==, ECHOD_RUN))
        CHECK_U64(o.low_water, ==, 256);
    if (CHECK_INT(PARSE(&o, "--udp", "127.0.0.1:0"), ==, ECHOD_RUN)) {
        CHECK_U64(o.nlisten, ==, 0); /* no default TCP address with --udp */
        CHECK_U64(o.udp_burst, ==, 200);
    }
    CHECK_INT(PARSE(&o, "--user", ""), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "stray"), ==, ECHOD_USAGE);
}

/* --listen ADDR[,KEY=VALUE]...: the address apart, each key parsed,
   unknown keys and bad values refused. */
static void test_listen_settings(void)
{
    struct echod_options o;
    if (CHECK_INT(PARSE(&o, "--listen", "127.0.0.1:0,proxy=v2", "--listen", "[::1]:7,proxy=any",
                        "--listen", "unix:/tmp/x", "--listen", "localhost:9,proxy=v1"),
                  ==, ECHOD_RUN)) {
        CHECK_U64(o.nlisten, ==, 4);
        CHECK_STR(o.listen[0].addr, "127.0.0.1:0");
        CHECK_INT(o.listen[0].proxy, ==, ECHOD_PROXY_V2);
        CHECK_STR(o.listen[1].addr, "[::1]:7");
        CHECK_INT(o.listen[1].proxy, ==, ECHOD_PROXY_ANY);
        CHECK_STR(o.listen[2].addr, "unix:/tmp/x");
        CHECK_INT(o.listen[2].proxy, ==, ECHOD_PROXY_OFF);
        CHECK_INT(o.listen[3].proxy, ==, ECHOD_PROXY_V1);
        CHECK_U64(o.proxy_timeout_ms, ==, 5000);
        CHECK_U64(o.nproxy_from, ==, 2); /* loopback: 127.0.0.0/8 and ::1 */
    }
    static const char *const bad[] = {
        "127.0.0.1:0,proxy=v3", "127.0.0.1:0,proxy=",
        "127.0.0.1:0,proxy",    "127.0.0.1:0,",
        "127.0.0.1:0,=v1",      ",proxy=v1",
        "127.0.0.1:0,tls=x",    "127.0.0.1:0,proxy=v1,proxy=v1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(PARSE(&o, "--listen", bad[i]), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--proxy-from", "10.0.0.0/8"), ==, ECHOD_USAGE); /* no proxy= */
    CHECK_INT(PARSE(&o, "--listen", "127.0.0.1:0,proxy=v1", "--proxy-timeout", "0"), ==,
              ECHOD_USAGE);
    if (CHECK_INT(PARSE(&o, "--listen", "127.0.0.1:0,proxy=v1", "--proxy-timeout", "0.5",
                        "--proxy-from", "10.0.0.0/8", "--proxy-from", "2001:db8::/32"),
                  ==, ECHOD_RUN)) {
        CHECK_U64(o.proxy_timeout_ms, ==, 500);
        CHECK_U64(o.nproxy_from, ==, 2); /* no loopback once some are given */
    }
}

static struct iomux_addr ip(const char *text)
{
    struct iomux_addr a;
    memset(&a, 0, sizeof(a));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
        s6->sin6_family = AF_INET6;
        CHECK_INT(inet_pton(AF_INET6, text, &s6->sin6_addr), ==, 1);
        a.len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
        s4->sin_family = AF_INET;
        CHECK_INT(inet_pton(AF_INET, text, &s4->sin_addr), ==, 1);
        a.len = sizeof(*s4);
    }
    return a;
}

static void test_cidr(void)
{
    struct echod_cidr r[4];
    CHECK_OK(cidr_parse("10.0.0.0/8", &r[0]));
    CHECK_OK(cidr_parse("192.0.2.128/25", &r[1]));
    CHECK_OK(cidr_parse("2001:db8::/32", &r[2]));
    CHECK_OK(cidr_parse("198.51.100.7", &r[3])); /* itself alone */
    static const char *const in[] = {"10.1.2.3", "192.0.2.200", "2001:db8::5", "198.51.100.7",
                                     "::ffff:10.9.9.9"};
    static const char *const out[] = {"11.0.0.1",     "192.0.2.127", "2001:db9::1",
                                      "198.51.100.8", "::1",         "::ffff:11.0.0.1"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct iomux_addr a = ip(in[i]);
        CHECK(cidr_match(r, 4, &a));
    }
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        struct iomux_addr a = ip(out[i]);
        CHECK(!cidr_match(r, 4, &a));
    }
    struct echod_cidr all;
    CHECK_OK(cidr_parse("0.0.0.0/0", &all));
    struct iomux_addr any4 = ip("203.0.113.1");
    CHECK(cidr_match(&all, 1, &any4));
    static const char *const bad[] = {"10.0.0.1/8", "10.0.0.0/33", "::/129",
                                      "10.0.0.0/",  "10.0.0.0/08", "/8",
                                      "host/8",     "10.0.0.0/8x", "[::1]/128"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(cidr_parse(bad[i], &all), ==, -EINVAL);
}

int main(void)
{
    test_defaults();
    test_choices();
    test_engine_auto();
    test_short_times();
    test_others();
    test_listen_settings();
    test_cidr();
    test_budget();
    test_splice();
    test_workers();
    test_steer();
    return check_exit();
}
