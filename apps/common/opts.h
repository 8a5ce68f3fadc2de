/* SPDX-License-Identifier: MIT */
/*
 * opts.h - options declared once: each tool describes its options in one
 * table of struct cli_spec (name, argument, kind, where the value lands,
 * help text, default), and both the parser and --help are driven from it,
 * so an option cannot be parsed one way and documented another. The value
 * parsers are cli.h's strict ones; what a table cannot say (a check that
 * spans options, an address) is a CLI_CALL hook or a check after parsing.
 */
#ifndef IOMUX_APPS_OPTS_H
#define IOMUX_APPS_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What an option's value is, and so the type of the field it lands in. */
enum cli_kind {
    CLI_FLAG,       /* no value; bool field set to true */
    CLI_U64,        /* whole number in [min, max]; uint64_t field */
    CLI_UNSIGNED,   /* whole number in [min, max] (max <= UINT_MAX); unsigned field */
    CLI_SECONDS_US, /* seconds with decimals, at most max; uint64_t microseconds */
    CLI_SECONDS_MS, /* the same, stored in milliseconds rounded up; uint64_t */
    CLI_BYTES,      /* bytes with an optional K, M or G suffix, in [min, max]; uint64_t */
    CLI_STRING,     /* any non-empty text; const char * field, borrowed from argv */
    CLI_LIST,       /* repeatable text: const char *field[max], count at count_field */
    CLI_CHOICE,     /* one of choices[] (NULL-terminated); int field = its index */
    CLI_CALL,       /* call(opts, value) parses it; the field is unused */
    CLI_HELP,       /* --help: cli_parse() returns CLI_PARSE_HELP */
    CLI_VERSION,    /* --version: cli_parse() returns CLI_PARSE_VERSION */
};

/* A hook for values a kind does not cover; 0 or -1 with a reason in err. */
typedef int cli_call_fn(void *opts, const char *opt, const char *value, char *err, size_t errsize);

struct cli_spec {
    const char *name; /* without "--"; NULL ends the table */
    char short_name;  /* e.g. 'h' for -h, or 0 */
    const char *arg;  /* the value's name in --help ("HOST:PORT"); NULL: no value */
    enum cli_kind kind;
    size_t field;               /* offsetof() the field in the tool's options struct */
    size_t count_field;         /* CLI_LIST: offsetof() its size_t count */
    uint64_t min, max;          /* numbers: the range; seconds: max in seconds; list: capacity */
    const char *const *choices; /* CLI_CHOICE */
    cli_call_fn *call;          /* CLI_CALL */
    const char *help;           /* one line a '\n'; continuation lines are indented */
    const char *def;            /* shown as "(default DEF)" after the help, or NULL */
};

enum {
    CLI_PARSE_OK = 0,      /* run with the options */
    CLI_PARSE_HELP = 1,    /* --help was given */
    CLI_PARSE_VERSION = 2, /* --version was given */
    CLI_PARSE_ERROR = -1,  /* one-line reason in err: a usage error */
};

/* The operands (non-option arguments), in order, borrowed from argv. */
struct cli_operands {
    const char **items; /* room for argc pointers, the caller's */
    size_t count;
};

/*
 * Parses argv[1..] into the struct at `opts` (defaults already set by the
 * caller) as `specs` describes. given[i], when given is not NULL, is set for
 * each specs[i] that appeared. Operands go to *operands; NULL there makes
 * an operand a usage error. Returns one of the CLI_PARSE_ values.
 */
int cli_parse(const struct cli_spec *specs, int argc, char **argv, void *opts, bool *given,
              struct cli_operands *operands, char *err, size_t errsize);

/* Whether the option named `name` was given (see cli_parse's `given`). */
bool cli_given(const struct cli_spec *specs, const bool *given, const char *name);

/* Parses bytes with an optional K, M or G suffix (powers of 1024) in [min, max]. */
int cli_parse_bytes(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out,
                    char *err, size_t errsize);

/* Writes "  --name ARG  help (default DEF)" for every spec, aligned. */
void cli_usage(FILE *out, const struct cli_spec *specs);

#endif /* IOMUX_APPS_OPTS_H */
