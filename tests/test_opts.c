/* SPDX-License-Identifier: MIT */
/*
 * test_opts.c - the table-driven option parser and --help writer of
 * apps/common/opts.h: every kind lands in its field, ranges and bad values
 * are refused with a one-line reason, a positive time never rounds to 0,
 * and --help shows every option with its argument and default.
 */
#include "check.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

struct sample {
    bool quiet;
    uint64_t count;
    unsigned small;
    uint64_t wait_us;
    uint64_t grace_ms;
    uint64_t size;
    const char *name;
    const char *listen[2];
    size_t nlisten;
    int mode;
    int odd_calls;
};

static const char *const modes[] = {"auto", "on", "off", NULL};

static int parse_odd(void *opts, const char *opt, const char *value, char *err, size_t errsize)
{
    if (strlen(value) % 2 == 0) {
        snprintf(err, errsize, "%s: '%s' has an even length", opt, value);
        return -1;
    }
    ((struct sample *)opts)->odd_calls++;
    return 0;
}

#define F(field) offsetof(struct sample, field)
static const struct cli_spec specs[] = {
    {.name = "quiet", .kind = CLI_FLAG, .field = F(quiet), .help = "say less"},
    {.name = "count",
     .arg = "N",
     .kind = CLI_U64,
     .field = F(count),
     .min = 1,
     .max = 100,
     .help = "how many",
     .def = "3"},
    {.name = "small",
     .arg = "N",
     .kind = CLI_UNSIGNED,
     .field = F(small),
     .max = 9,
     .help = "a digit"},
    {.name = "wait",
     .arg = "SECS",
     .kind = CLI_SECONDS_US,
     .field = F(wait_us),
     .max = 60,
     .help = "a wait"},
    {.name = "grace",
     .arg = "SECS",
     .kind = CLI_SECONDS_MS,
     .field = F(grace_ms),
     .max = 60,
     .help = "a grace\nover two lines",
     .def = "2"},
    {.name = "size",
     .arg = "BYTES",
     .kind = CLI_BYTES,
     .field = F(size),
     .min = 1,
     .max = (uint64_t)1 << 30,
     .help = "a size"},
    {.name = "name", .arg = "TEXT", .kind = CLI_STRING, .field = F(name), .help = "a name"},
    {.name = "listen",
     .arg = "HOST:PORT",
     .kind = CLI_LIST,
     .field = F(listen),
     .count_field = F(nlisten),
     .max = 2,
     .help = "repeatable"},
    {.name = "mode",
     .arg = "MODE",
     .kind = CLI_CHOICE,
     .field = F(mode),
     .choices = modes,
     .help = "auto, on or off"},
    {.name = "odd", .arg = "TEXT", .kind = CLI_CALL, .call = parse_odd, .help = "odd length"},
    {.name = "a-very-long-option-name",
     .arg = "VALUE",
     .kind = CLI_STRING,
     .field = F(name),
     .help = "wraps"},
    {.name = "help", .short_name = 'h', .kind = CLI_HELP, .help = "print this help"},
    {.name = "version", .kind = CLI_VERSION, .help = "print the version"},
    {.name = NULL},
};

static char err[256];
static bool given[sizeof specs / sizeof specs[0]];
static const char *operand_store[16];

/* Parses the NULL-terminated words into *o; operands allowed when `ops`. */
static int parse(struct sample *o, struct cli_operands *ops, const char *words[])
{
    char *argv[32] = {(char *)"tool"};
    int argc = 1;
    for (; words[argc - 1] != NULL && argc < 31; argc++)
        argv[argc] = (char *)words[argc - 1];
    *o = (struct sample){.count = 3};
    memset(given, 0, sizeof given);
    err[0] = '\0';
    if (ops != NULL)
        *ops = (struct cli_operands){.items = operand_store};
    return cli_parse(specs, argc, argv, o, given, ops, err, sizeof err);
}

#define PARSE(o, ops, ...) parse((o), (ops), (const char *[]){__VA_ARGS__, NULL})

static void test_every_kind_lands(void)
{
    struct sample o;
    struct cli_operands ops;
    CHECK_EQ_INT(PARSE(&o, &ops, "--quiet", "--count", "42", "--small=7", "--wait", "1.5",
                       "--grace", "0.0001", "--size", "64K", "--name", "x", "--listen", "a:1",
                       "--listen=b:2", "--mode", "off", "--odd", "abc", "part", "-", "--",
                       "--count"),
                 CLI_PARSE_OK);
    CHECK(o.quiet);
    CHECK_EQ_U64(o.count, 42);
    CHECK_EQ_U64(o.small, 7);
    CHECK_EQ_U64(o.wait_us, 1500000);
    CHECK_EQ_U64(o.grace_ms, 1); /* rounded up, never 0 */
    CHECK_EQ_U64(o.size, 65536);
    CHECK_STR(o.name, "x");
    CHECK_EQ_U64(o.nlisten, 2);
    CHECK_STR(o.listen[1], "b:2");
    CHECK_EQ_INT(o.mode, 2);
    CHECK_EQ_INT(o.odd_calls, 1);
    CHECK_EQ_U64(ops.count, 3); /* "part", "-" and, after "--", "--count" */
    CHECK_STR(ops.items[2], "--count");
    CHECK(cli_given(specs, given, "grace"));
    CHECK(cli_given(specs, given, "small"));
    CHECK(!cli_given(specs, given, "version"));
}

static void test_positive_times_stay_positive(void)
{
    struct sample o;
    CHECK_EQ_INT(PARSE(&o, NULL, "--wait", "0.0000001"), CLI_PARSE_OK);
    CHECK_EQ_U64(o.wait_us, 1);
    CHECK_EQ_INT(PARSE(&o, NULL, "--wait", "0.000"), CLI_PARSE_OK);
    CHECK_EQ_U64(o.wait_us, 0);
    CHECK_EQ_INT(PARSE(&o, NULL, "--grace", "0"), CLI_PARSE_OK);
    CHECK_EQ_U64(o.grace_ms, 0);
}

/* Each refusal is a usage error with a one-line reason naming the option. */
static void expect_refused(const char *words[], const char *reason)
{
    struct sample o;
    CHECK_EQ_INT(parse(&o, NULL, words), CLI_PARSE_ERROR);
    if (strstr(err, reason) == NULL || strchr(err, '\n') != NULL) {
        fprintf(stderr, "  for '%s': got reason '%s', want '%s'\n", words[0], err, reason);
        CHECK(0);
    }
}

#define REFUSED(reason, ...) expect_refused((const char *[]){__VA_ARGS__, NULL}, reason)

static void test_bad_values_refused(void)
{
    REFUSED("out of range", "--count", "0");
    REFUSED("out of range", "--count", "101");
    REFUSED("not a whole number", "--count", "-1");
    REFUSED("out of range", "--small", "10");
    REFUSED("more than 60 seconds", "--wait", "61");
    REFUSED("not a number of seconds", "--wait", "1e3");
    REFUSED("from 1 to 1073741824", "--size", "2G");
    REFUSED("from 1 to 1073741824", "--size", "0");
    REFUSED("not a number of bytes", "--size", "K");
    REFUSED("is empty", "--name", "");
    REFUSED("at most 2", "--listen", "a", "--listen", "b", "--listen", "c");
    REFUSED("not one of: auto, on, off", "--mode", "maybe");
    REFUSED("even length", "--odd", "ab");
    REFUSED("unknown option '--nope'", "--nope");
    REFUSED("unknown option '-x'", "-x");
    REFUSED("takes no value", "--quiet=1");
    REFUSED("needs a value", "--count");
    REFUSED("unexpected argument 'part'", "part");
}

static void test_help_and_version(void)
{
    struct sample o;
    CHECK_EQ_INT(PARSE(&o, NULL, "-h"), CLI_PARSE_HELP);
    CHECK_EQ_INT(PARSE(&o, NULL, "--version", "--help"), CLI_PARSE_VERSION);
    /* Later options must still be valid. */
    CHECK_EQ_INT(PARSE(&o, NULL, "--help", "--count", "0"), CLI_PARSE_ERROR);
}

static void test_usage_shows_every_option(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    if (f == NULL)
        return;
    cli_usage(f, specs);
    fclose(f);
    for (const struct cli_spec *s = specs; s->name != NULL; s++) {
        char want[96];
        snprintf(want, sizeof want, "--%s%s%s", s->name, s->arg ? " " : "", s->arg ? s->arg : "");
        CHECK(strstr(text, want) != NULL);
    }
    CHECK(strstr(text, "  -h, --help") != NULL);
    CHECK(strstr(text, "how many (default 3)\n") != NULL);
    /* A continuation line is indented to the help column, the default last. */
    CHECK(strstr(text, "a grace\n                           over two lines (default 2)\n") != NULL);
    /* An option too long for the column gets its help on the next line. */
    CHECK(strstr(text, "--a-very-long-option-name VALUE\n                           wraps\n") !=
          NULL);
    free(text);
}

int main(void)
{
    test_every_kind_lands();
    test_positive_times_stay_positive();
    test_bad_values_refused();
    test_help_and_version();
    test_usage_shows_every_option();
    return check_exit();
}
