/* SPDX-License-Identifier: MIT */
/*
 * test_echod_faults.c - the fault keys of echod's --listen and --udp-drop
 * (apps/echod/faults_parse.c, listen_opts.c): good values as parsed, bad
 * ones refused as usage errors whose one line names the key, and the
 * generator's draws (the same seed, the same draws; a share near the one
 * asked for).
 */
#include "check.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"
#include "options.h"

/* Parses "echod --listen LISTEN [MORE]"; the usage error's first line (if
   any) goes into err. */
static int parse_listen(struct echod_options *o, const char *listen, const char *more,
                        const char *more_value, char *err, size_t size)
{
    char *argv[] = {"echod", "--listen", (char *)listen, (char *)more, (char *)more_value, NULL};
    int argc = more ? 5 : 3;
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    if (!CHECK(tmp != NULL && saved >= 0))
        return -1;
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    int rc = echod_options_parse(argc, argv, o);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    if (!fgets(err, (int)size, tmp))
        err[0] = '\0';
    fclose(tmp);
    return rc;
}

static void test_good(void)
{
    struct echod_options o;
    char err[512];
    const char *l = "127.0.0.1:0,proxy=v1,delay=50\xc2\xb1"
                    "10,rate=100K,slice=7:20,stall-after=0,p=0.25,corrupt=1.5";
    if (!CHECK_INT(parse_listen(&o, l, NULL, NULL, err, sizeof(err)), ==, ECHOD_RUN))
        return;
    const struct fault_spec *f = &o.listen[0].faults;
    CHECK(fault_spec_active(f));
    CHECK_INT(o.listen[0].proxy, ==, ECHOD_PROXY_V1);
    CHECK_U64(f->delay_ms, ==, 50);
    CHECK_U64(f->jitter_ms, ==, 10);
    CHECK_U64(f->rate, ==, 100000);
    CHECK_U64(f->slice, ==, 7);
    CHECK_U64(f->slice_ms, ==, 20);
    CHECK_U64(f->stall_after, ==, 0);
    CHECK_U64(f->p_ppm, ==, 250000);
    CHECK_U64(f->corrupt_ppm, ==, 15000);
    char text[256];
    fault_spec_format(f, text, sizeof(text));
    CHECK_STR(text, "p=0.25,delay=50+-10,rate=100000,slice=7:20,stall-after=0,corrupt=1.5");
    if (CHECK_INT(parse_listen(&o,
                               "127.0.0.1:0,delay=5+-2,reset-after=4096,close-after=9,"
                               "slow-close=300,accept-delay=200,rate=2M",
                               NULL, NULL, err, sizeof(err)),
                  ==, ECHOD_RUN)) {
        f = &o.listen[0].faults;
        CHECK_U64(f->jitter_ms, ==, 2);
        CHECK_U64(f->reset_after, ==, 4096);
        CHECK_U64(f->close_after, ==, 9);
        CHECK_U64(f->slow_close_ms, ==, 300);
        CHECK_U64(f->accept_delay_ms, ==, 200);
        CHECK_U64(f->rate, ==, 2000000);
        CHECK_U64(f->p_ppm, ==, FAULT_PPM); /* every connection without p= */
    }
    if (CHECK_INT(parse_listen(&o, "127.0.0.1:0", NULL, NULL, err, sizeof(err)), ==, ECHOD_RUN))
        CHECK(!fault_spec_active(&o.listen[0].faults));
}

static void test_bad(void)
{
    static const struct {
        const char *setting, *named;
    } bad[] = {
        {"delay=", "delay="},
        {"delay=x", "delay="},
        {"delay=5+", "delay="},
        {"delay=-5", "delay="},
        {"delay=3600001", "delay="},
        {"delay=5+-x", "delay="},
        {"rate=0", "rate="},
        {"rate=10X", "rate="},
        {"rate=1KB", "rate="},
        {"slice=0", "slice="},
        {"slice=7:", "slice="},
        {"slice=7;5", "slice="},
        {"stall-after=-1", "stall-after="},
        {"reset-after=1e3", "reset-after="},
        {"close-after=", "close-after="},
        {"slow-close=0", "slow-close="},
        {"accept-delay=0", "accept-delay="},
        {"corrupt=0", "corrupt="},
        {"corrupt=100.5", "corrupt="},
        {"corrupt=nan", "corrupt="},
        {"p=0", "p="},
        {"p=1.5", "p="},
        {"p=0.5", "p="}, /* p= alone */
        {"delay=1,delay=2", "delay given twice"},
        {"drop=50", "unknown setting 'drop'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct echod_options o;
        char listen[128], err[512];
        snprintf(listen, sizeof(listen), "127.0.0.1:0,%s", bad[i].setting);
        CHECK_INT(parse_listen(&o, listen, NULL, NULL, err, sizeof(err)), ==, ECHOD_USAGE);
        if (!CHECK(strstr(err, bad[i].named) != NULL))
            fprintf(stderr, "  %s: %s", bad[i].setting, err);
    }
    struct echod_options o;
    char err[512];
    CHECK_INT(parse_listen(&o, "127.0.0.1:0", "--fault-seed", "5", err, sizeof(err)), ==,
              ECHOD_USAGE); /* no fault to seed */
    CHECK(strstr(err, "--fault-seed") != NULL);
    CHECK_INT(parse_listen(&o, "127.0.0.1:0", "--udp-drop", "50", err, sizeof(err)), ==,
              ECHOD_USAGE); /* no --udp */
    CHECK(strstr(err, "--udp-drop") != NULL);
    CHECK_INT(parse_listen(&o, "127.0.0.1:0,delay=1", "--fault-seed", "5", err, sizeof(err)), ==,
              ECHOD_RUN);
    CHECK(o.fault_seed_given);
    CHECK_U64(o.fault_seed, ==, 5);
}

static void test_draws(void)
{
    uint64_t a = 42, b = 42, c = 7, hits = 0;
    for (int i = 0; i < 1000; i++)
        CHECK_U64(fault_rand(&a), ==, fault_rand(&b));
    for (int i = 0; i < 100000; i++)
        hits += fault_chance(&c, FAULT_PPM / 2);
    CHECK_U64(hits, >, 49000);
    CHECK_U64(hits, <, 51000);
    CHECK(fault_chance(&a, FAULT_PPM));
    CHECK(!fault_chance(&a, 0));
}

int main(void)
{
    test_good();
    test_bad();
    test_draws();
    return check_exit();
}
