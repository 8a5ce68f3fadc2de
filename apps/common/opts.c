/* SPDX-License-Identifier: MIT */
/*
 * opts.c - the table-driven parser and --help writer of opts.h. Matching
 * follows cli_next(): "--name VALUE", "--name=VALUE", "-h" for a spec with
 * short_name 'h', "--" ends the options and "-" alone is an operand.
 */
#include "opts.h"

#include <stdarg.h>
#include <string.h>

#include "cli.h"

int cli_parse_bytes(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out,
                    char *err, size_t errsize)
{
    static const char suffixes[] = "kmg";
    char digits[32];
    size_t n = strlen(text);
    uint64_t unit = 1;
    const char *s = n > 0 ? strchr(suffixes, text[n - 1] | 0x20) : NULL;
    if (s != NULL && *s != '\0') {
        unit = (uint64_t)1 << (10 * (1 + (s - suffixes)));
        n--;
    }
    if (n == 0 || n >= sizeof digits)
        return cli_fail(err, errsize, "%s: '%s' is not a number of bytes", opt, text);
    memcpy(digits, text, n);
    digits[n] = '\0';
    uint64_t v;
    if (cli_parse_u64(opt, digits, 0, UINT64_MAX / unit, &v, err, errsize) < 0 || v * unit < min ||
        v * unit > max)
        return cli_fail(err, errsize, "%s: '%s' is not a number of bytes from %llu to %llu", opt,
                        text, (unsigned long long)min, (unsigned long long)max);
    *out = v * unit;
    return 0;
}

/* A positive number of seconds never becomes 0 ("off") by rounding. */
static int parse_time(const struct cli_spec *s, const char *opt, const char *v, uint64_t *out,
                      char *err, size_t errsize)
{
    uint64_t us;
    if (cli_parse_seconds(opt, v, (double)s->max, &us, err, errsize) < 0)
        return -1;
    if (us == 0 && strpbrk(v, "123456789") != NULL)
        us = 1;
    *out = s->kind == CLI_SECONDS_MS ? (us + 999) / 1000 : us;
    return 0;
}

/* Stores one value as the spec says; 0 or -1 with a reason. */
static int store(const struct cli_spec *s, void *opts, const char *v, char *err, size_t errsize)
{
    char opt[64];
    snprintf(opt, sizeof opt, "--%s", s->name);
    char *field = (char *)opts + s->field;
    uint64_t n;
    switch (s->kind) {
    case CLI_FLAG:
        *(bool *)field = true;
        return 0;
    case CLI_U64:
        return cli_parse_u64(opt, v, s->min, s->max, (uint64_t *)field, err, errsize);
    case CLI_UNSIGNED:
        if (cli_parse_u64(opt, v, s->min, s->max, &n, err, errsize) < 0)
            return -1;
        *(unsigned *)field = (unsigned)n;
        return 0;
    case CLI_SECONDS_US:
    case CLI_SECONDS_MS:
        return parse_time(s, opt, v, (uint64_t *)field, err, errsize);
    case CLI_BYTES:
        return cli_parse_bytes(opt, v, s->min, s->max, (uint64_t *)field, err, errsize);
    case CLI_STRING:
        if (v[0] == '\0')
            return cli_fail(err, errsize, "%s: the value is empty", opt);
        *(const char **)field = v;
        return 0;
    case CLI_LIST: {
        size_t *count = (size_t *)((char *)opts + s->count_field);
        if (v[0] == '\0')
            return cli_fail(err, errsize, "%s: the value is empty", opt);
        if (*count >= s->max)
            return cli_fail(err, errsize, "%s: at most %llu are allowed", opt,
                            (unsigned long long)s->max);
        ((const char **)field)[(*count)++] = v;
        return 0;
    }
    case CLI_CHOICE: {
        char names[160] = "";
        for (int i = 0; s->choices[i] != NULL; i++) {
            if (strcmp(v, s->choices[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
            size_t len = strlen(names);
            snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", s->choices[i]);
        }
        return cli_fail(err, errsize, "%s: '%s' is not one of: %s", opt, v, names);
    }
    case CLI_CALL:
        return s->call(opts, opt, v, err, errsize);
    case CLI_HELP:
    case CLI_VERSION:
        return 0;
    }
    return cli_fail(err, errsize, "internal error: %s has no kind", opt);
}

/* Finds the spec an argument names; *inline_value gets "=VALUE"'s value. */
static const struct cli_spec *match(const struct cli_spec *specs, const char *arg,
                                    const char **inline_value)
{
    *inline_value = NULL;
    if (arg[1] != '-') {
        for (const struct cli_spec *s = specs; s->name != NULL; s++)
            if (s->short_name != 0 && arg[1] == s->short_name && arg[2] == '\0')
                return s;
        return NULL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    if (eq != NULL)
        *inline_value = eq + 1;
    for (const struct cli_spec *s = specs; s->name != NULL; s++)
        if (strlen(s->name) == len && strncmp(s->name, name, len) == 0)
            return s;
    return NULL;
}

int cli_parse(const struct cli_spec *specs, int argc, char **argv, void *opts, bool *given,
              struct cli_operands *operands, char *err, size_t errsize)
{
    int result = CLI_PARSE_OK, only_operands = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        if (!only_operands && strcmp(arg, "--") == 0) {
            only_operands = 1;
            continue;
        }
        if (only_operands || arg[0] != '-' || arg[1] == '\0') {
            if (operands == NULL)
                return cli_fail(err, errsize, "unexpected argument '%s'", arg);
            operands->items[operands->count++] = arg;
            continue;
        }
        const struct cli_spec *s = match(specs, arg, &v);
        if (s == NULL)
            return cli_fail(err, errsize, "unknown option '%s'", arg);
        if (s->arg == NULL && v != NULL)
            return cli_fail(err, errsize, "option '--%s' takes no value", s->name);
        if (s->arg != NULL && v == NULL) {
            if (i + 1 >= argc)
                return cli_fail(err, errsize, "option '--%s' needs a value", s->name);
            v = argv[++i];
        }
        if (store(s, opts, v, err, errsize) < 0)
            return CLI_PARSE_ERROR;
        if (given != NULL)
            given[s - specs] = true;
        /* The first of --help and --version wins, but the rest must parse. */
        if (result == CLI_PARSE_OK && s->kind == CLI_HELP)
            result = CLI_PARSE_HELP;
        if (result == CLI_PARSE_OK && s->kind == CLI_VERSION)
            result = CLI_PARSE_VERSION;
    }
    return result;
}

bool cli_given(const struct cli_spec *specs, const bool *given, const char *name)
{
    for (const struct cli_spec *s = specs; s->name != NULL; s++)
        if (strcmp(s->name, name) == 0)
            return given[s - specs];
    return false;
}

/* Columns: options start at 2, help at HELP_COLUMN unless the option is
   longer, in which case its help starts on the next line. */
#define HELP_COLUMN 27

void cli_usage(FILE *out, const struct cli_spec *specs)
{
    for (const struct cli_spec *s = specs; s->name != NULL; s++) {
        char head[96];
        int len = s->short_name != 0
                      ? snprintf(head, sizeof head, "  -%c, --%s", s->short_name, s->name)
                      : snprintf(head, sizeof head, "  --%s", s->name);
        if (s->arg != NULL)
            len += snprintf(head + len, sizeof head - (size_t)len, " %s", s->arg);
        fputs(head, out);
        if (len + 2 > HELP_COLUMN)
            fprintf(out, "\n%*s", HELP_COLUMN, "");
        else
            fprintf(out, "%*s", HELP_COLUMN - len, "");
        for (const char *p = s->help; *p != '\0'; p++) {
            fputc(*p, out);
            if (*p == '\n')
                fprintf(out, "%*s", HELP_COLUMN, "");
        }
        if (s->def != NULL)
            fprintf(out, " (default %s)", s->def);
        fputc('\n', out);
    }
}
