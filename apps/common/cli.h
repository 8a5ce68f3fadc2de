/* SPDX-License-Identifier: MIT */
/*
 * cli.h - strict command-line parsing shared by the apps: a long-option
 * walker and number parsers that accept exactly what they document, so a
 * typo is a one-line usage error instead of a silently different run.
 * Every parser writes a one-line reason into `err` on failure.
 */
#ifndef IOMUX_APPS_CLI_H
#define IOMUX_APPS_CLI_H

#include <stddef.h>
#include <stdint.h>

/* One long option: "--name" (and "--name=value" when it takes a value). */
struct cli_option {
    const char *name; /* without the leading "--" */
    int takes_value;  /* 1: needs a value, 0: a flag */
    int id;           /* returned by cli_next(); must be > 0 */
};

/* Walks argv; create with {.argc, .argv, .index = 1}. */
struct cli_iter {
    int argc;
    char **argv;
    int index;         /* next argv element to look at */
    int only_operands; /* set after "--": the rest are operands */
};

enum {
    CLI_END = 0,      /* no more arguments */
    CLI_OPERAND = -1, /* *value is an operand (a non-option argument) */
    CLI_ERROR = -2,   /* unknown option or missing value; see err */
};

/*
 * Returns the id of the next option (with its value in *value, or NULL for
 * a flag), CLI_OPERAND, CLI_END or CLI_ERROR. "-h" is reported as the
 * option named "help" when the table has one. "-" alone is an operand.
 */
int cli_next(struct cli_iter *it, const struct cli_option *opts, const char **value, char *err,
             size_t errsize);

/* Parses a decimal integer in [min, max]: digits only, no sign, no spaces. */
int cli_parse_u64(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out,
                  char *err, size_t errsize);

/*
 * Parses a non-negative decimal number of seconds ("1", "1.5", ".25") up to
 * `max_s` and stores it in microseconds, rounded to the nearest. No sign,
 * exponent, "inf" or "nan".
 */
int cli_parse_seconds(const char *opt, const char *text, double max_s, uint64_t *out_us, char *err,
                      size_t errsize);

/* Writes a one-line reason (printf-style) into err; returns -1, so a
   parser can `return cli_fail(err, errsize, ...)`. */
int cli_fail(char *err, size_t errsize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checks a --backend value: "auto" or one of iomux_backend_names(). */
int cli_check_backend(const char *text, char *err, size_t errsize);

#endif /* IOMUX_APPS_CLI_H */
