/* SPDX-License-Identifier: MIT */
/*
 * faults_parse.c - the fault keys of a --listen, as text: one row each
 * (name, what a value looks like, parser), which listen_opts.c consults
 * for the keys it does not know itself. Values are strict: a number with
 * trailing junk, a zero where zero means nothing, or an out-of-range one
 * is a usage error that names the key.
 */
#include "faults.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "strbuf.h"

const char *const fault_names[FAULT_KINDS] = {
    "delay",       "rate",       "slice",        "stall-after", "reset-after",
    "close-after", "slow-close", "accept-delay", "corrupt",     "drop",
};

/* The longest delay or pause: an hour, far beyond any proxy's timeout. */
#define FAULT_MAX_MS 3600000u

/* A decimal number with nothing after it but `*end` (may be NULL: the
   whole text). -1 if not one, or above `max`. */
static int parse_u64(const char *text, uint64_t max, const char **end, uint64_t *out)
{
    if (*text < '0' || *text > '9')
        return -1;
    char *stop;
    errno = 0;
    unsigned long long v = strtoull(text, &stop, 10);
    if (errno || v > max || (!end && *stop != '\0'))
        return -1;
    if (end)
        *end = stop;
    *out = v;
    return 0;
}

static int parse_ms(const char *text, const char **end, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(text, FAULT_MAX_MS, end, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int fault_parse_percent(const char *text, uint32_t *ppm)
{
    char *stop;
    if ((*text < '0' || *text > '9') && *text != '.')
        return -1;
    double v = strtod(text, &stop);
    if (*stop != '\0' || !(v >= 0.0 && v <= 100.0))
        return -1;
    *ppm = (uint32_t)lround(v * (FAULT_PPM / 100));
    return 0;
}

/* delay=MS[±JITTER]: "±" as UTF-8, or "+-" for keyboards without it. */
static int parse_delay(struct fault_spec *f, const char *v)
{
    const char *rest;
    if (parse_ms(v, &rest, &f->delay_ms) < 0)
        return -1;
    f->jitter_ms = 0;
    if (*rest == '\0')
        return 0;
    if (strncmp(rest, "\xc2\xb1", 2) == 0 || strncmp(rest, "+-", 2) == 0)
        return parse_ms(rest + 2, NULL, &f->jitter_ms);
    return -1;
}

/* rate=BYTES_PER_S with K, M or G (powers of 1000, as network rates). */
static int parse_rate(struct fault_spec *f, const char *v)
{
    const char *rest;
    uint64_t n, unit = 1;
    if (parse_u64(v, UINT64_MAX / 1000000000u, &rest, &n) < 0 || n == 0)
        return -1;
    if (*rest == 'K' || *rest == 'k')
        unit = 1000;
    else if (*rest == 'M' || *rest == 'm')
        unit = 1000000;
    else if (*rest == 'G' || *rest == 'g')
        unit = 1000000000;
    else if (*rest != '\0')
        return -1;
    if (unit > 1 && rest[1] != '\0')
        return -1;
    f->rate = n * unit;
    return 0;
}

/* slice=N[:MS] */
static int parse_slice(struct fault_spec *f, const char *v)
{
    const char *rest;
    uint64_t n;
    if (parse_u64(v, UINT32_MAX, &rest, &n) < 0 || n == 0)
        return -1;
    f->slice = (uint32_t)n;
    f->slice_ms = 0;
    if (*rest == '\0')
        return 0;
    return *rest == ':' ? parse_ms(rest + 1, NULL, &f->slice_ms) : -1;
}

static int parse_stall(struct fault_spec *f, const char *v)
{
    return parse_u64(v, UINT64_MAX - 1, NULL, &f->stall_after);
}

static int parse_reset(struct fault_spec *f, const char *v)
{
    return parse_u64(v, UINT64_MAX - 1, NULL, &f->reset_after);
}

static int parse_close(struct fault_spec *f, const char *v)
{
    return parse_u64(v, UINT64_MAX - 1, NULL, &f->close_after);
}

static int parse_slow_close(struct fault_spec *f, const char *v)
{
    return parse_ms(v, NULL, &f->slow_close_ms) < 0 || f->slow_close_ms == 0 ? -1 : 0;
}

static int parse_accept_delay(struct fault_spec *f, const char *v)
{
    return parse_ms(v, NULL, &f->accept_delay_ms) < 0 || f->accept_delay_ms == 0 ? -1 : 0;
}

static int parse_corrupt(struct fault_spec *f, const char *v)
{
    return fault_parse_percent(v, &f->corrupt_ppm) < 0 || f->corrupt_ppm == 0 ? -1 : 0;
}

/* p=PROB: a fraction of connections, above 0 and at most 1. */
static int parse_p(struct fault_spec *f, const char *v)
{
    char *stop;
    if ((*v < '0' || *v > '9') && *v != '.')
        return -1;
    double p = strtod(v, &stop);
    if (*stop != '\0' || !(p > 0.0 && p <= 1.0))
        return -1;
    long ppm = lround(p * FAULT_PPM);
    f->p_ppm = ppm < 1 ? 1 : (uint32_t)ppm;
    return 0;
}

static const struct fault_key {
    const char *name;
    const char *values;
    int (*parse)(struct fault_spec *f, const char *value);
} fault_keys[] = {
    /* The first nine in enum fault_kind's order: a key's bit in `given`
       is its index, so FAULT_DELAY's bit is delay='s. */
    {"delay", "MS[+-JITTER] (milliseconds, at most 3600000)", parse_delay},
    {"rate", "BYTES_PER_S above 0 (K, M, G: thousands, millions, billions)", parse_rate},
    {"slice", "N[:MS] (N above 0: the largest piece; MS: the pause between pieces)", parse_slice},
    {"stall-after", "N (bytes echoed before stalling)", parse_stall},
    {"reset-after", "N (bytes echoed before a reset)", parse_reset},
    {"close-after", "N (bytes echoed before a clean close)", parse_close},
    {"slow-close", "MS above 0 (milliseconds, at most 3600000)", parse_slow_close},
    {"accept-delay", "MS above 0 (milliseconds, at most 3600000)", parse_accept_delay},
    {"corrupt", "P, a percentage of echoed chunks above 0 and at most 100", parse_corrupt},
    {"p", "PROB, a fraction of connections above 0 and at most 1 (0.1: one in ten)", parse_p},
};
#define NFAULT_KEYS (sizeof(fault_keys) / sizeof(fault_keys[0]))
/* The index of p=: it says how often, and is no fault by itself. */
#define KEY_P ((int)NFAULT_KEYS - 1)

int fault_key_find(const char *name)
{
    for (size_t k = 0; k < NFAULT_KEYS; k++)
        if (strcmp(fault_keys[k].name, name) == 0)
            return (int)k;
    return -1;
}

const char *fault_key_list(void)
{
    return "delay, rate, slice, stall-after, reset-after, close-after, slow-close, "
           "accept-delay, corrupt, p";
}

const char *fault_key_values(int k)
{
    return fault_keys[k].values;
}

int fault_key_parse(struct fault_spec *f, int k, const char *value)
{
    if (f->given & (1u << k))
        return -2;
    if (!(f->given & (1u << KEY_P)))
        f->p_ppm = FAULT_PPM;
    if (fault_keys[k].parse(f, value) < 0)
        return -1;
    f->given |= 1u << k;
    return 0;
}

int fault_spec_check(const struct fault_spec *f, const char **why)
{
    if (f->given == (1u << KEY_P)) {
        *why = "p= needs a fault setting to apply to (p=0.1,reset-after=4096)";
        return -1;
    }
    return 0;
}

static bool has(const struct fault_spec *f, int k)
{
    return (f->given & (1u << k)) != 0;
}

void fault_spec_format(const struct fault_spec *f, char *buf, size_t size)
{
    struct strbuf out;
    strbuf_init(&out, buf, size);
    if (has(f, KEY_P))
        strbuf_appendf(&out, "p=%g,", (double)f->p_ppm / FAULT_PPM);
    if (has(f, FAULT_DELAY))
        strbuf_appendf(&out, "delay=%u+-%u,", f->delay_ms, f->jitter_ms);
    if (f->rate)
        strbuf_appendf(&out, "rate=%llu,", (unsigned long long)f->rate);
    if (f->slice)
        strbuf_appendf(&out, "slice=%u:%u,", f->slice, f->slice_ms);
    if (has(f, FAULT_STALL))
        strbuf_appendf(&out, "stall-after=%llu,", (unsigned long long)f->stall_after);
    if (has(f, FAULT_RESET))
        strbuf_appendf(&out, "reset-after=%llu,", (unsigned long long)f->reset_after);
    if (has(f, FAULT_CLOSE))
        strbuf_appendf(&out, "close-after=%llu,", (unsigned long long)f->close_after);
    if (f->slow_close_ms)
        strbuf_appendf(&out, "slow-close=%u,", f->slow_close_ms);
    if (f->accept_delay_ms)
        strbuf_appendf(&out, "accept-delay=%u,", f->accept_delay_ms);
    if (f->corrupt_ppm)
        strbuf_appendf(&out, "corrupt=%g,", (double)f->corrupt_ppm / (FAULT_PPM / 100));
    if (!out.truncated && out.len > 0)
        buf[out.len - 1] = '\0'; /* the last comma */
}

uint64_t fault_new_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
}
