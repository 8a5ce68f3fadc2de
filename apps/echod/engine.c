/* SPDX-License-Identifier: MIT */
/*
 * engine.c - the engines echod can run, by name: the one place that names
 * them, as src/loop.c's backends[] does for the loop's backends. An engine
 * that is not built here is still listed: its create() says so (-ENOENT).
 */
#include "engine.h"

#include <string.h>

static const struct engine_ops *const engines[] = {
    &engine_stream_ops,
    &engine_uring_ops,
};

const struct engine_ops *engine_find(const char *name)
{
    for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++)
        if (strcmp(engines[i]->name, name) == 0)
            return engines[i];
    return NULL;
}
