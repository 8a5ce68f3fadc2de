/* SPDX-License-Identifier: MIT */
/*
 * test_loop_api.c - the backend-independent parts of the loop API: the list
 * of backends, choosing one by name (unknown names, NULL and "auto"), and
 * arguments that are refused before any backend is involved.
 */
#include "test_util.h"

static bool has_name(const char *const *names, const char *want)
{
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], want) == 0)
            return true;
    return false;
}

static void t_backend_names(void)
{
    const char *const *names = iomux_backend_names();
    if (!CHECK(names != NULL))
        return;
    size_t n = 0;
    while (n < 16 && names[n])
        n++;
    CHECK_INT(n, <, 16); /* NULL-terminated */
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  backend %zu: %s\n", i, names[i]);
    CHECK(has_name(names, "poll"));
    CHECK(has_name(names, "select"));
#ifdef __linux__
    CHECK(has_name(names, "epoll"));
    if (n > 0)
        CHECK_STR(names[0], "epoll"); /* preferred where it exists */
#endif
}

/* Each listed backend can be asked for by name and reports that name. */
static void t_each_backend(void)
{
    const char *const *names = iomux_backend_names();
    for (size_t i = 0; names[i]; i++) {
        struct iomux_loop_options opts = {.backend = names[i]};
        struct iomux_loop *loop = NULL;
        int rc = iomux_loop_new(&loop, &opts);
        if (rc == -ENOSYS || rc == -EPERM) {
            fprintf(stderr, "  %s: not available here (%s)\n", names[i], strerror(-rc));
            continue;
        }
        if (!CHECK_OK(rc))
            continue;
        CHECK_STR(iomux_loop_backend(loop), names[i]);
        iomux_loop_free(loop);
    }
}

/* NULL options, NULL backend and "auto" all pick the first backend that
   initialises, which here is the first of the list. */
static void t_default_backend(void)
{
    const char *first = iomux_backend_names()[0];
    struct iomux_loop *loop = NULL;
    if (CHECK_OK(iomux_loop_new(&loop, NULL))) {
        CHECK_STR(iomux_loop_backend(loop), first);
        iomux_loop_free(loop);
    }
    struct iomux_loop_options opts = {.backend = NULL};
    if (CHECK_OK(iomux_loop_new(&loop, &opts))) {
        CHECK_STR(iomux_loop_backend(loop), first);
        iomux_loop_free(loop);
    }
    opts.backend = "auto";
    if (CHECK_OK(iomux_loop_new(&loop, &opts))) {
        CHECK_STR(iomux_loop_backend(loop), first);
        iomux_loop_free(loop);
    }
}

static void t_unknown_backend(void)
{
    const char *bad[] = {"nope", "", "EPOLL", "poll ", "kqueue"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct iomux_loop_options opts = {.backend = bad[i]};
        struct iomux_loop *loop = NULL;
        int rc = iomux_loop_new(&loop, &opts);
        if (!CHECK_ERRNO(rc, -ENOENT)) {
            fprintf(stderr, "  backend name \"%s\"\n", bad[i]);
            if (rc == 0)
                iomux_loop_free(loop);
        }
    }
}

static void t_misc(void)
{
    iomux_loop_free(NULL); /* a no-op */
    CHECK_ERRNO(iomux_set_allocator(NULL, realloc, free), -EINVAL);
    CHECK_ERRNO(iomux_set_allocator(malloc, NULL, free), -EINVAL);
    CHECK_ERRNO(iomux_set_allocator(malloc, realloc, NULL), -EINVAL);
    /* The refused calls changed nothing: loops still work. */
    struct iomux_loop *loop = NULL;
    if (CHECK_OK(iomux_loop_new(&loop, NULL)))
        iomux_loop_free(loop);
}

int main(void)
{
    alarm(30);
    check_run("backend names", t_backend_names);
    check_run("each backend by name", t_each_backend);
    check_run("default backend", t_default_backend);
    check_run("unknown backend names", t_unknown_backend);
    check_run("misc", t_misc);
    return check_exit();
}
