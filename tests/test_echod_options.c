/* SPDX-License-Identifier: MIT */
/*
 * test_echod_options.c - echod's command line (apps/echod/options.c):
 * defaults, choices stored as enums, a positive time that never rounds to
 * 0 ("off"), and checks across options refused as usage errors.
 */
#include "check.h"

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
    CHECK_INT(o.engine, ==, ECHOD_ENGINE_LOOP);
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
    CHECK_INT(PARSE(&o, "--spin-receive", "on"), ==, ECHOD_USAGE); /* loop engine */
    CHECK_INT(PARSE(&o, "--spin-receive", "off"), ==, ECHOD_RUN);  /* harmless */
    CHECK_INT(PARSE(&o, "--busy-poll", "10"), ==, ECHOD_USAGE);    /* loop engine */
    CHECK_INT(PARSE(&o, "--engine", "uring", "--backend", "uring"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--engine", "uring", "--uring-buffers", "100"), ==, ECHOD_USAGE);
    CHECK_INT(PARSE(&o, "--engine", "uring", "--spin-receive", "on", "--trace"), ==, ECHOD_USAGE);
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

int main(void)
{
    test_defaults();
    test_choices();
    test_short_times();
    test_others();
    test_budget();
    return check_exit();
}
