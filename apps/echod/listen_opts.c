/* SPDX-License-Identifier: MIT */
/*
 * listen_opts.c - the settings a --listen carries after its address
 * (--listen ADDR[,KEY=VALUE]...), and --proxy-from: the one per-listener
 * form that PROXY, TLS and fault settings share, kept apart from the
 * option table so that each new key is one row of the key table here.
 * Also --workers, whose "auto" the table's number kind cannot say.
 */
#include "listen_opts.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#ifdef IOMUX_HAVE_TLS
#include "tls.h"
#endif

static const char *const proxy_names[] = {"v1", "v2", "any", NULL};

/* ---- --listen ADDR[,KEY=VALUE]... ---------------------------------------- */

static int parse_proxy_key(struct listener_opts *l, const char *value)
{
    for (int i = 0; proxy_names[i]; i++) {
        if (strcmp(value, proxy_names[i]) == 0) {
            l->proxy = ECHOD_PROXY_V1 + i;
            return 0;
        }
    }
    return -1;
}

/* A file name of tls-cert=, tls-key= or tls-ca=, copied. */
static int copy_path(char *dst, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n >= ECHOD_TLS_PATH_MAX)
        return -1;
    memcpy(dst, value, n + 1);
    return 0;
}

static int parse_tls_cert(struct listener_opts *l, const char *value)
{
    return copy_path(l->tls_cert, value);
}

static int parse_tls_key(struct listener_opts *l, const char *value)
{
    return copy_path(l->tls_key, value);
}

static int parse_tls_ca(struct listener_opts *l, const char *value)
{
    return copy_path(l->tls_ca, value);
}

/* alpn=a:b (commas separate a --listen's settings): kept as "a,b", the
   form of tls.h, and checked there once the listener is complete. */
static int parse_alpn(struct listener_opts *l, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n >= sizeof(l->alpn))
        return -1;
    for (size_t i = 0; i <= n; i++)
        l->alpn[i] = value[i] == ':' ? ',' : value[i];
    return 0;
}

static int parse_tls_version(struct listener_opts *l, const char *value)
{
    static const struct {
        const char *name;
        int version; /* enum tls_version's values */
    } versions[] = {{"any", 0}, {"1.2", 12}, {"1.3", 13}};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (strcmp(value, versions[i].name) == 0) {
            l->tls_version = versions[i].version;
            return 0;
        }
    }
    return -1;
}

/* The settings a --listen may carry after its address. A new one (TLS
   files, fault modes) is a field of struct listener_opts and a row here. */
static const struct listener_key {
    const char *name;
    const char *values; /* what the usage error says is expected */
    int (*parse)(struct listener_opts *l, const char *value); /* 0 or -1 */
} listener_keys[] = {
    {"proxy", "v1, v2 or any", parse_proxy_key},
    {"tls-cert", "a file name (PEM certificate chain)", parse_tls_cert},
    {"tls-key", "a file name (PEM private key)", parse_tls_key},
    {"tls-ca", "a file name (PEM client CA certificates)", parse_tls_ca},
    {"alpn", "protocols separated by ':'", parse_alpn},
    {"tls-version", "any, 1.2 or 1.3", parse_tls_version},
};
#define NKEYS (sizeof(listener_keys) / sizeof(listener_keys[0]))

/* One KEY=VALUE of `text` (the whole --listen value, for messages). */
static int parse_setting(struct listener_opts *l, char *kv, bool *seen, const char *text, char *err,
                         size_t errsize)
{
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return cli_fail(err, errsize, "--listen %s: '%s': expected KEY=VALUE", text, kv);
    *eq = '\0';
    for (size_t k = 0; k < NKEYS; k++) {
        if (strcmp(kv, listener_keys[k].name) != 0)
            continue;
        if (seen[k])
            return cli_fail(err, errsize, "--listen %s: %s given twice", text, kv);
        seen[k] = true;
        if (listener_keys[k].parse(l, eq + 1) == 0)
            return 0;
        return cli_fail(err, errsize, "--listen %s: %s='%s': expected %s", text, kv, eq + 1,
                        listener_keys[k].values);
    }
    int fk = fault_key_find(kv);
    if (fk >= 0) {
        int rc = fault_key_parse(&l->faults, fk, eq + 1);
        if (rc == 0)
            return 0;
        if (rc == -2)
            return cli_fail(err, errsize, "--listen %s: %s given twice", text, kv);
        return cli_fail(err, errsize, "--listen %s: %s='%s': expected %s", text, kv, eq + 1,
                        fault_key_values(fk));
    }
    char known[256] = "";
    for (size_t k = 0; k < NKEYS; k++)
        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s, ",
                 listener_keys[k].name);
    snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s", fault_key_list());
    return cli_fail(err, errsize, "--listen %s: unknown setting '%s' (known: %s)", text, kv, known);
}

/* The TLS keys of one listener agree, and this build has TLS. */
static int check_tls_keys(const struct listener_opts *l, const char *text, char *err,
                          size_t errsize)
{
    bool other = l->tls_key[0] || l->tls_ca[0] || l->alpn[0] || l->tls_version;
    if (!l->tls_cert[0]) {
        if (other)
            return cli_fail(err, errsize,
                            "--listen %s: tls-key, tls-ca, alpn and tls-version need tls-cert",
                            text);
        return 0;
    }
#ifdef IOMUX_HAVE_TLS
    char why[200];
    if (l->alpn[0] && tls_alpn_check(l->alpn, why, sizeof(why)) < 0)
        return cli_fail(err, errsize, "--listen %s: alpn: %s", text, why);
    return 0;
#else
    return cli_fail(err, errsize,
                    "--listen %s: tls-cert: echod is built without TLS (no OpenSSL 3)", text);
#endif
}

/* The address ends at the first comma (so a unix:PATH cannot hold one);
   each comma after it starts a KEY=VALUE. */
int echod_parse_listen(void *opts, const char *opt, const char *value, char *err, size_t errsize)
{
    struct echod_options *o = opts;
    if (o->nlisten == ECHOD_MAX_LISTEN)
        return cli_fail(err, errsize, "--listen: at most 16 are allowed");
    struct listener_opts *l = &o->listen[o->nlisten];
    memset(l, 0, sizeof(*l));
    size_t n = strcspn(value, ",");
    if (n == 0)
        return cli_fail(err, errsize, "--listen '%s': the address is empty", value);
    if (n >= sizeof(l->addr))
        return cli_fail(err, errsize, "--listen '%.40s...': the address is too long", value);
    memcpy(l->addr, value, n);
    char rest[4 * ECHOD_TLS_PATH_MAX + 256];
    if (snprintf(rest, sizeof(rest), "%s", value + n) >= (int)sizeof(rest))
        return cli_fail(err, errsize, "--listen %s: the settings are too long", l->addr);
    bool seen[NKEYS] = {false};
    for (char *kv = rest; *kv == ',';) {
        char *next = strchr(kv + 1, ',');
        if (next)
            *next = '\0';
        if (parse_setting(l, kv + 1, seen, value, err, errsize) < 0)
            return -1;
        if (!next)
            break;
        *next = ',';
        kv = next;
    }
    const char *why;
    if (fault_spec_check(&l->faults, &why) < 0)
        return cli_fail(err, errsize, "--listen %s: %s", value, why);
    if (check_tls_keys(l, value, err, errsize) < 0)
        return -1;
    /* Both pass the bytes through a stream transport of their own. */
    if (l->tls_cert[0] && fault_spec_active(&l->faults))
        return cli_fail(err, errsize,
                        "--listen %s: fault modes on a TLS listener are not supported", value);
    o->nlisten++;
    return 0;
}

int echod_parse_proxy_from(void *opts, const char *opt, const char *value, char *err,
                           size_t errsize)
{
    struct echod_options *o = opts;
    if (o->nproxy_from == ECHOD_MAX_PROXY_FROM)
        return cli_fail(err, errsize, "--proxy-from: at most 32 are allowed");
    if (cidr_parse(value, &o->proxy_from[o->nproxy_from]) < 0)
        return cli_fail(err, errsize,
                        "--proxy-from '%s': expected ADDR/BITS or ADDR (numeric, no host bits set)",
                        value);
    o->nproxy_from++;
    return 0;
}

int echod_parse_udp_drop(void *opts, const char *opt, const char *value, char *err, size_t errsize)
{
    struct echod_options *o = opts;
    if (fault_parse_percent(value, &o->udp_drop_ppm) < 0)
        return cli_fail(err, errsize, "--udp-drop '%s': expected a percentage from 0 to 100",
                        value);
    return 0;
}

/* --workers N|auto: auto is 0 here (server.c counts the CPUs). */
int echod_parse_workers(void *opts, const char *opt, const char *value, char *err, size_t errsize)
{
    struct echod_options *o = opts;
    if (strcmp(value, "auto") == 0) {
        o->workers = 0;
        return 0;
    }
    uint64_t n;
    if (cli_parse_u64(opt, value, 1, ECHOD_MAX_WORKERS, &n, err, errsize) < 0)
        return -1;
    o->workers = (unsigned)n;
    return 0;
}
