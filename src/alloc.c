/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - the allocator the library uses, replaceable as a whole (as
 * libuv's uv_replace_allocator) so that tests can fail the Nth allocation
 * and count what is still outstanding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop_internal.h"

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

int iomux_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                        void (*free_fn)(void *))
{
    if (!malloc_fn || !realloc_fn || !free_fn)
        return -EINVAL;
    alloc_malloc = malloc_fn;
    alloc_realloc = realloc_fn;
    alloc_free = free_fn;
    return 0;
}

void *iomux__malloc(size_t size)
{
    return alloc_malloc(size);
}

void *iomux__calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    /* The system's calloc knows when memory is fresh from the kernel and
       already zero, and then leaves its pages untouched (unbacked). */
    if (alloc_malloc == malloc)
        return calloc(count, size);
    void *p = alloc_malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *iomux__realloc(void *ptr, size_t size)
{
    return alloc_realloc(ptr, size);
}

void *iomux__reallocarray(void *ptr, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    return alloc_realloc(ptr, count * size);
}

void iomux__free(void *ptr)
{
    if (ptr)
        alloc_free(ptr);
}
