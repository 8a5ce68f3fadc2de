/* SPDX-License-Identifier: MIT */
/*
 * fuzz_options.c - libFuzzer target for echod's command line parser: the
 * input, split at NUL bytes, is argv. Any argv must be accepted or refused
 * with a message, never crash; an accepted one must be self-consistent.
 * The parser prints help and errors: run with -close_fd_mask=3 (make fuzz
 * does) to keep the fuzzer's own output readable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *args[MAX_ARGS + 2];
    int argc = 0;
    args[argc++] = "echod";
    for (char *p = copy; p < copy + size + 1 && argc <= MAX_ARGS; p += strlen(p) + 1)
        args[argc++] = p;
    args[argc] = NULL;

    struct echod_options o;
    int rc = echod_options_parse(argc, args, &o);
    if (rc == ECHOD_RUN) {
        if (o.nlisten > ECHOD_MAX_LISTEN || o.nudp > ECHOD_MAX_LISTEN || !o.backend)
            abort();
        if (!o.high_water || !o.low_water || o.low_water > o.high_water)
            abort();
        for (size_t i = 0; i < o.nlisten; i++)
            if (!o.listen[i].addr[0] || o.listen[i].proxy < ECHOD_PROXY_OFF ||
                o.listen[i].proxy > ECHOD_PROXY_ANY)
                abort();
        if (o.nproxy_from == 0 || o.nproxy_from > ECHOD_MAX_PROXY_FROM || !o.proxy_timeout_ms)
            abort();
        if ((o.engine != ECHOD_ENGINE_LOOP && o.engine != ECHOD_ENGINE_URING) ||
            (o.spin_receive != ECHOD_SPIN_AUTO && o.spin_receive != ECHOD_SPIN_ON &&
             o.spin_receive != ECHOD_SPIN_OFF))
            abort();
    } else if (rc != ECHOD_DONE && rc != ECHOD_USAGE) {
        abort();
    }
    free(copy);
    return 0;
}
