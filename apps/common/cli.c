/* SPDX-License-Identifier: MIT */
/*
 * cli.c - the option walker and strict number parsers of cli.h. Written by
 * hand rather than with getopt_long() because getopt keeps global state
 * (which makes the parsers hard to unit-test) and prints its own messages.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <iomux/loop.h>

int cli_fail(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

int cli_next(struct cli_iter *it, const struct cli_option *opts, const char **value, char *err,
             size_t errsize)
{
    *value = NULL;
    if (it->index >= it->argc)
        return CLI_END;
    const char *arg = it->argv[it->index++];
    if (it->only_operands || arg[0] != '-' || strcmp(arg, "-") == 0) {
        *value = arg;
        return CLI_OPERAND;
    }
    if (strcmp(arg, "--") == 0) {
        it->only_operands = 1;
        return cli_next(it, opts, value, err, errsize);
    }
    const char *name;
    size_t name_len;
    const char *inline_value = NULL;
    if (strcmp(arg, "-h") == 0) {
        name = "help";
        name_len = 4;
    } else if (arg[1] != '-') {
        cli_fail(err, errsize, "unknown option '%s'", arg);
        return CLI_ERROR;
    } else {
        name = arg + 2;
        const char *eq = strchr(name, '=');
        name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (eq != NULL)
            inline_value = eq + 1;
    }
    for (const struct cli_option *o = opts; o->name != NULL; o++) {
        if (strlen(o->name) != name_len || strncmp(o->name, name, name_len) != 0)
            continue;
        if (!o->takes_value) {
            if (inline_value != NULL) {
                cli_fail(err, errsize, "option '--%s' takes no value", o->name);
                return CLI_ERROR;
            }
            return o->id;
        }
        if (inline_value == NULL) {
            if (it->index >= it->argc) {
                cli_fail(err, errsize, "option '--%s' needs a value", o->name);
                return CLI_ERROR;
            }
            inline_value = it->argv[it->index++];
        }
        *value = inline_value;
        return o->id;
    }
    cli_fail(err, errsize, "unknown option '%s'", arg);
    return CLI_ERROR;
}

int cli_parse_u64(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out,
                  char *err, size_t errsize)
{
    uint64_t v = 0;
    const char *p = text;
    if (*p == '\0')
        goto bad;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            goto range;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        goto range;
    *out = v;
    return 0;
bad:
    return cli_fail(err, errsize, "%s: '%s' is not a whole number", opt, text);
range:
    return cli_fail(err, errsize, "%s: '%s' is out of range %llu..%llu", opt, text,
                    (unsigned long long)min, (unsigned long long)max);
}

int cli_parse_seconds(const char *opt, const char *text, double max_s, uint64_t *out_us, char *err,
                      size_t errsize)
{
    /* Digits, then optionally a point and digits; at least one digit. The
       value is accumulated exactly in microseconds where it can be, so
       "1.5" is 1,500,000 us and not 1,499,999. */
    const char *p = text;
    double whole = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        whole = whole * 10 + (*p - '0');
    double frac = 0, scale = 1;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            scale /= 10;
            frac += (*p - '0') * scale;
        }
    }
    if (digits == 0 || *p != '\0')
        return cli_fail(err, errsize, "%s: '%s' is not a number of seconds", opt, text);
    double s = whole + frac;
    if (s > max_s)
        return cli_fail(err, errsize, "%s: '%s' is more than %g seconds", opt, text, max_s);
    *out_us = (uint64_t)(s * 1e6 + 0.5);
    return 0;
}

int cli_check_backend(const char *text, char *err, size_t errsize)
{
    if (strcmp(text, "auto") == 0)
        return 0;
    char names[128] = "auto";
    for (const char *const *b = iomux_backend_names(); *b != NULL; b++) {
        if (strcmp(text, *b) == 0)
            return 0;
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, ", %s", *b);
    }
    return cli_fail(err, errsize, "--backend: '%s' is not one of: %s", text, names);
}
