/* SPDX-License-Identifier: MIT */
/*
 * listen_opts.h - parsers of --listen ADDR[,KEY=VALUE]..., --proxy-from
 * CIDR and --workers, as the option table's CLI_CALL callbacks (opts.h).
 */
#ifndef ECHOD_LISTEN_OPTS_H
#define ECHOD_LISTEN_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"

/* Adds one listener and its settings to the struct echod_options `opts`. */
int echod_parse_listen(void *opts, const char *opt, const char *value, char *err, size_t errsize);

/* --workers N|auto: auto is 0 (server.c counts the CPUs). */
int echod_parse_workers(void *opts, const char *opt, const char *value, char *err, size_t errsize);

/* Adds one allowed sender of PROXY headers. */
int echod_parse_proxy_from(void *opts, const char *opt, const char *value, char *err,
                           size_t errsize);

/* --udp-drop P: a percentage of datagrams. */
int echod_parse_udp_drop(void *opts, const char *opt, const char *value, char *err, size_t errsize);

#endif /* ECHOD_LISTEN_OPTS_H */
