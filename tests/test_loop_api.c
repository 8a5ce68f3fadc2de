/* SPDX-License-Identifier: MIT */
/*
 * test_loop_api.c - the backend-independent parts of the loop API: the list
 * of backends, choosing one by name (unknown names, NULL and "auto"),
 * arguments that are refused before any backend is involved, and the
 * embedding calls (backend fd, timeout).
 */
#include "test_util.h"

#include <poll.h>

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

static void on_byte(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    char c;
    if (read(fd, &c, 1) == 1)
        (*(int *)data)++;
}

static void on_timer(struct iomux_loop *loop, uint64_t id, void *data)
{
    (*(int *)data)++;
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0);
}

/* Embedding: the backend fd is readable exactly while run_once(0) has I/O
   to dispatch, and the timeout says when the next timer is due. */
static void t_embedding(void)
{
    const char *const *names = iomux_backend_names();
    for (size_t i = 0; names[i]; i++) {
        struct iomux_loop_options o = {.backend = names[i]};
        struct iomux_loop *loop;
        if (iomux_loop_new(&loop, &o) < 0)
            continue; /* not available here: t_each_backend says so */
        fprintf(stderr, "  %s\n", names[i]);
        int bfd = iomux_loop_backend_fd(loop);
        if (strcmp(names[i], "epoll") == 0)
            CHECK_INT(bfd, >=, 0);
        else
            CHECK_EQ_INT(bfd, -ENOTSUP);

        CHECK_EQ_INT(iomux_loop_timeout(loop), -1); /* no timer */
        int fired = 0;
        uint64_t id;
        CHECK_OK(iomux_timer_add(loop, 5000, 0, on_timer, &fired, &id));
        int t = iomux_loop_timeout(loop);
        CHECK_INT(t, >, 4000);
        CHECK_INT(t, <=, 5000);
        CHECK_OK(iomux_timer_cancel(loop, id));
        CHECK_OK(iomux_timer_add(loop, 0, 0, on_timer, &fired, &id));
        CHECK_EQ_INT(iomux_loop_timeout(loop), 0); /* due now */
        CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 1);
        CHECK_EQ_INT(fired, 1);

        int p[2];
        if (!CHECK_OK(pipe(p))) {
            iomux_loop_free(loop);
            continue;
        }
        int got = 0;
        CHECK_OK(iomux_fd_watch(loop, p[0], IOMUX_READ, on_byte, &got));
        if (bfd >= 0) {
            iomux_loop_run_once(loop, 0); /* settle any start-up state */
            CHECK_EQ_INT(readable(bfd), 0);
            CHECK_EQ_INT(write(p[1], "ab", 2), 2);
            CHECK_EQ_INT(readable(bfd), 1);
            CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 1);
            CHECK_EQ_INT(got, 1);
            CHECK_EQ_INT(readable(bfd), 1); /* level: one byte is left */
            CHECK_EQ_INT(iomux_loop_run_once(loop, 0), 1);
            CHECK_EQ_INT(readable(bfd), 0);
            CHECK_EQ_INT(got, 2);
        }
        iomux_fd_unwatch(loop, p[0]);
        close(p[0]);
        close(p[1]);
        iomux_loop_free(loop);
    }
    CHECK_EQ_INT(iomux_loop_backend_fd(NULL), -ENOTSUP);
}

int main(void)
{
    alarm(30);
    check_run("backend names", t_backend_names);
    check_run("each backend by name", t_each_backend);
    check_run("default backend", t_default_backend);
    check_run("unknown backend names", t_unknown_backend);
    check_run("misc", t_misc);
    check_run("embedding", t_embedding);
    return check_exit();
}
