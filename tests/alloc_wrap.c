/* SPDX-License-Identifier: MIT */
/*
 * alloc_wrap.c - a counting, failing allocator for a test build of echod
 * (echod_alloc_wrap, tests/alloc_sweep.cmake), linked in with the linker's
 * --wrap option: every malloc, calloc, realloc, ... and free that echod's
 * objects and the statically linked libiomux make comes here first, and
 * goes on to the real one (__real_malloc: glibc's, or the sanitizer
 * runtime's in an ASan build, whose LeakSanitizer then checks every exit
 * path). Allocations made inside the C library itself (getaddrinfo, stdio)
 * are not seen: the C library was linked long ago.
 *
 * Unlike an LD_PRELOAD shim this works in a sanitizer build, and it never
 * counts the sanitizer runtime's own allocations.
 *
 * Environment (both optional):
 *   IOMUX_FAIL_ALLOC_AT=N   allocation call N (1-based, counted from
 *                           start-up) returns NULL with errno ENOMEM
 *   IOMUX_ALLOC_REPORT=PATH at exit, write one line to PATH:
 *                             allocs=A failed=F live=L
 *                           A allocation calls, F of them failed (0 or 1),
 *                           L blocks handed out through here and not freed
 *                           through here (not a leak check: echod may free
 *                           what the C library allocated; LeakSanitizer is)
 *
 * One thread is all echod has; the counters are atomic all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* For each function: __real_NAME, the one --wrap sends on to, and
   __wrap_NAME, ours (below), which every call to NAME in the link reaches. */
#define WRAPPED(type, name, params)                                                                \
    type __real_##name params;                                                                     \
    type __wrap_##name params;
WRAPPED(void *, malloc, (size_t size))
WRAPPED(void *, calloc, (size_t count, size_t size))
WRAPPED(void *, realloc, (void *ptr, size_t size))
WRAPPED(void *, reallocarray, (void *ptr, size_t count, size_t size))
WRAPPED(char *, strdup, (const char *s))
WRAPPED(char *, strndup, (const char *s, size_t n))
WRAPPED(int, posix_memalign, (void **out, size_t align, size_t size))
WRAPPED(void *, aligned_alloc, (size_t align, size_t size))
WRAPPED(void, free, (void *ptr))
#undef WRAPPED

static atomic_ulong n_allocs; /* allocation calls so far */
static atomic_ulong n_failed; /* of them, failed on purpose */
static atomic_long live;      /* blocks handed out, not yet freed here */
static atomic_ulong fail_at;  /* the call that fails; 0 none */
static atomic_int ready;

static void setup(void)
{
    if (atomic_load(&ready))
        return;
    /* getenv does not allocate. */
    const char *at = getenv("IOMUX_FAIL_ALLOC_AT");
    unsigned long n = 0;
    if (at) {
        for (const char *p = at; *p >= '0' && *p <= '9'; p++)
            n = n * 10 + (unsigned long)(*p - '0');
    }
    atomic_store(&fail_at, n);
    atomic_store(&ready, 1);
}

/* Counts one allocation call; true if it is the one to fail. */
static int should_fail(void)
{
    setup();
    unsigned long k = atomic_fetch_add(&n_allocs, 1) + 1;
    if (k != atomic_load(&fail_at))
        return 0;
    atomic_fetch_add(&n_failed, 1);
    errno = ENOMEM;
    return 1;
}

static void *track(void *p)
{
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_malloc(size_t size)
{
    return should_fail() ? NULL : track(__real_malloc(size));
}

void *__wrap_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : track(__real_calloc(count, size));
}

void *__wrap_realloc(void *ptr, size_t size)
{
    /* realloc(p, 0) frees p: failing it would leak p, which no caller
       can be expected to handle. Not an allocation. */
    if (ptr && size == 0) {
        atomic_fetch_sub(&live, 1);
        return __real_realloc(ptr, 0);
    }
    if (should_fail())
        return NULL;
    void *p = __real_realloc(ptr, size);
    return ptr ? p : track(p);
}

void *__wrap_reallocarray(void *ptr, size_t count, size_t size)
{
    if (ptr && (count == 0 || size == 0)) {
        atomic_fetch_sub(&live, 1);
        return __real_reallocarray(ptr, count, size);
    }
    if (should_fail())
        return NULL;
    void *p = __real_reallocarray(ptr, count, size);
    return ptr ? p : track(p);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : track(__real_strdup(s));
}

char *__wrap_strndup(const char *s, size_t n)
{
    return should_fail() ? NULL : track(__real_strndup(s, n));
}

int __wrap_posix_memalign(void **out, size_t align, size_t size)
{
    if (should_fail())
        return ENOMEM;
    int rc = __real_posix_memalign(out, align, size);
    if (rc == 0)
        track(*out);
    return rc;
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    return should_fail() ? NULL : track(__real_aligned_alloc(align, size));
}

void __wrap_free(void *ptr)
{
    if (ptr)
        atomic_fetch_sub(&live, 1);
    __real_free(ptr);
}

/* After main returns or exit() is called: echod has freed what it means
   to free by then. No stdio, no allocation. */
__attribute__((destructor)) static void alloc_report(void)
{
    const char *path = getenv("IOMUX_ALLOC_REPORT");
    if (!path || !*path)
        return;
    char line[128];
    int n = snprintf(line, sizeof(line), "allocs=%lu failed=%lu live=%ld\n", atomic_load(&n_allocs),
                     atomic_load(&n_failed), atomic_load(&live));
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}
