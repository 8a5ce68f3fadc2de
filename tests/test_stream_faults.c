/* SPDX-License-Identifier: MIT */
/*
 * test_stream_faults.c - allocation-failure sweep of the whole stream path
 * on the backend named by argv[1]: loop, pool, stream, read buffer, queue
 * chunks. One scenario (an echo stream carrying 256 KiB through a socket
 * pair with small buffers, so writes come up short and queue, then a
 * half-close) is run with allocation N failing, for N = 1, 2, ... until it
 * runs through without reaching N. Every run must end in -ENOMEM from the
 * call that allocated, or in on_close(-ENOMEM) with a correct prefix of the
 * echo; afterwards no block and no descriptor may be left. The sanitizer
 * build checks the same for invalid accesses and leaks.
 */
#include "fail_alloc.h"
#include "test_util.h"

#include <iomux/buf.h>
#include <iomux/stream.h>

static const char *backend;

#define TOTAL (256u * 1024u)

struct echo {
    int closed;
    int error;
};

static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    /* A failed write ends the stream; on_close tells the reason. */
    (void)iomux_stream_write(s, bytes, len);
}

static void on_close(struct iomux_stream *s, int error, void *data)
{
    struct echo *e = data;
    e->closed = 1;
    e->error = error;
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 131u + (i >> 9));
}

/* Why a scenario run ended. */
enum outcome { RAN_THROUGH, FAILED_CLEANLY, BROKEN };

/* One run; allocation failures are expected, anything else is a check. */
static enum outcome scenario(void)
{
    struct iomux_loop *loop = NULL;
    struct iomux_loop_options lo = {.backend = backend};
    int rc = iomux_loop_new(&loop, &lo);
    if (rc == -ENOSYS || rc == -EPERM)
        check_skip("backend %s not available", backend);
    if (rc == -ENOMEM && failed_at)
        return FAILED_CLEANLY;
    if (!CHECK_OK(rc))
        return BROKEN;

    enum outcome out = BROKEN;
    struct iomux_buf_pool *pool = NULL;
    struct iomux_stream *stream = NULL;
    int sv[2] = {-1, -1};
    struct echo e = {0};

    rc = iomux_buf_pool_new(&pool, NULL);
    if (rc == -ENOMEM && failed_at) {
        out = FAILED_CLEANLY;
        goto done;
    }
    if (!CHECK_OK(rc) || !make_socketpair(sv))
        goto done;
    /* Small buffers: the stream's writes come up short and queue. */
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

    struct iomux_stream_options so = {
        .on_data = on_data, .on_close = on_close, .data = &e, .high_water = 32768};
    rc = iomux_stream_new(loop, pool, sv[0], &so, &stream);
    if (rc == -ENOMEM && failed_at) {
        close(sv[0]);
        sv[0] = -1;
        out = FAILED_CLEANLY;
        goto done;
    }
    if (!CHECK_OK(rc)) {
        close(sv[0]);
        sv[0] = -1;
        goto done;
    }
    sv[0] = -1; /* the stream owns it now */

    static unsigned char got[TOTAL];
    size_t sent = 0, recvd = 0;
    bool shut = false, eof = false;
    for (int iter = 0; iter < 100000 && !eof; iter++) {
        while (sent < TOTAL) {
            unsigned char buf[8192];
            size_t n = TOTAL - sent < sizeof(buf) ? TOTAL - sent : sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = pattern(sent + i);
            ssize_t w = send(sv[1], buf, n, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
        if (sent == TOTAL && !shut) {
            shutdown(sv[1], SHUT_WR);
            shut = true;
        }
        for (;;) {
            ssize_t r = recv(sv[1], got + recvd, TOTAL - recvd, 0);
            if (r > 0) {
                recvd += (size_t)r;
                continue;
            }
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                eof = true;
            break;
        }
        if (eof || (e.closed && recvd == 0 && sent == 0))
            break;
        if (!CHECK_COUNT(iomux_loop_run_once(loop, 1000)))
            break;
    }
    /* Whatever came back is the start of what was sent, in order. */
    bool prefix_ok = true;
    for (size_t i = 0; i < recvd && prefix_ok; i++)
        prefix_ok = got[i] == pattern(i);
    CHECK(prefix_ok);
    CHECK(eof);
    CHECK(e.closed);
    if (e.closed && e.error == 0) {
        CHECK_EQ_U64(recvd, TOTAL);
        out = failed_at ? BROKEN : RAN_THROUGH;
        if (failed_at)
            check_fail(__FILE__, __LINE__, "a failed allocation went unnoticed");
        stream = NULL; /* freed after on_close */
    } else if (e.closed) {
        if (CHECK_ERRNO(e.error, -ENOMEM) && CHECK(failed_at != 0))
            out = FAILED_CLEANLY;
        stream = NULL;
    }

done:
    if (stream)
        iomux_stream_close(stream);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    iomux_buf_pool_free(pool);
    iomux_loop_free(loop);
    return out;
}

static void t_sweep(void)
{
    int fds_before = count_open_fds();
    unsigned long n, clean = 0;
    for (n = 1; n <= 1000; n++) {
        fail_at = n;
        failed_at = 0;
        unsigned long calls_before = n_calls;
        n_calls = 0;
        enum outcome o = scenario();
        unsigned long made = n_calls;
        n_calls = calls_before;
        if (!CHECK_EQ_INT(outstanding, 0) || !CHECK_EQ_INT(count_open_fds(), fds_before) ||
            !CHECK(o != BROKEN)) {
            fprintf(stderr, "  with allocation %lu of the run failing\n", n);
            return;
        }
        if (o == RAN_THROUGH) {
            fprintf(stderr,
                    "  %s: the scenario makes %lu allocation(s); failing each in turn gave "
                    "-ENOMEM or on_close(-ENOMEM) %lu time(s), nothing leaked\n",
                    backend ? backend : "default", made, clean);
            CHECK_INT(clean, >, 3); /* loop, pool, stream, buffers were all reached */
            return;
        }
        clean++;
    }
    check_fail(__FILE__, __LINE__, "the scenario never ran through");
}

int main(int argc, char **argv)
{
    backend = test_backend(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (iomux_set_allocator(count_malloc, count_realloc, count_free) != 0)
        return 1;
    check_run("stream_alloc_sweep", t_sweep);
    return check_exit();
}
