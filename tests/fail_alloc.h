/* SPDX-License-Identifier: MIT */
/*
 * fail_alloc.h - the counting allocator of the allocation-failure tests,
 * installed with iomux_set_allocator(): it fails attempt number `fail_at`
 * (1-based; 0 = none) and counts the blocks still handed out, so a test
 * can check that every failure path freed what it took. One per program.
 */
#ifndef IOMUX_TEST_FAIL_ALLOC_H
#define IOMUX_TEST_FAIL_ALLOC_H

#include <stdlib.h>

static unsigned long n_calls;   /* allocation attempts (malloc and realloc) */
static unsigned long fail_at;   /* the attempt that fails; 0 = none */
static unsigned long failed_at; /* the attempt that did fail, 0 = none yet */
static long outstanding;        /* blocks handed out and not yet freed */

static inline void *count_malloc(size_t n)
{
    if (++n_calls == fail_at) {
        failed_at = n_calls;
        return NULL;
    }
    void *p = malloc(n);
    outstanding += p != NULL;
    return p;
}

static inline void *count_realloc(void *old, size_t n)
{
    if (++n_calls == fail_at) {
        failed_at = n_calls;
        return NULL;
    }
    void *p = realloc(old, n);
    if (!old)
        outstanding += p != NULL;
    return p;
}

static inline void count_free(void *p)
{
    outstanding -= p != NULL;
    free(p);
}

/* Makes the k-th allocation from now fail (k >= 1). */
static inline void fail_after(unsigned long k)
{
    fail_at = n_calls + k;
}

#endif /* IOMUX_TEST_FAIL_ALLOC_H */
