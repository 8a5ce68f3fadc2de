/* SPDX-License-Identifier: MIT */
/*
 * test_stream_hold.c - what a memory budget over many streams needs from
 * the library, on the backend named by argv[1]: iomux_stream_hold() stops
 * reading until the queue is empty (and refuses with nothing queued), and
 * iomux_buf_pool_set_read_cap() bounds every read of the pool's streams.
 */
#include "test_util.h"

#include <stdlib.h>

#include <iomux/buf.h>
#include <iomux/stream.h>

static const char *backend;

struct rig {
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool;
    struct iomux_stream *s;
    int peer;         /* the test's end of the socket pair */
    size_t got;       /* bytes the stream delivered */
    size_t max_chunk; /* the largest single delivery */
};

static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct rig *r = data;
    r->got += len;
    if (len > r->max_chunk)
        r->max_chunk = len;
    CHECK_OK(iomux_stream_write(s, bytes, len));
}

static bool rig_open(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    r->peer = -1;
    r->loop = test_loop_new(backend, 0);
    int fds[2];
    if (!r->loop || !CHECK_OK(iomux_buf_pool_new(&r->pool, NULL)) || !make_socketpair(fds))
        return false;
    r->peer = fds[1];
    /* Small kernel buffers: echoes the peer does not read queue soon. */
    int small = 4096;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct iomux_stream_options so = {.on_data = on_data, .data = r, .high_water = 1u << 20};
    return CHECK_OK(iomux_stream_new(r->loop, r->pool, fds[0], &so, &r->s));
}

static void rig_close(struct rig *r)
{
    if (r->s)
        iomux_stream_close(r->s);
    if (r->peer >= 0)
        close(r->peer);
    iomux_loop_free(r->loop);
    iomux_buf_pool_free(r->pool);
}

/* Sends `len` bytes from the peer and turns the loop until the stream has
   them or takes no more (held); returns how many it delivered. */
static size_t push(struct rig *r, size_t len)
{
    static char block[8192];
    size_t before = r->got, sent = 0;
    for (int i = 0; i < 200 && sent < len; i++) {
        size_t n = len - sent < sizeof(block) ? len - sent : sizeof(block);
        ssize_t k = send(r->peer, block, n, MSG_DONTWAIT);
        if (k > 0)
            sent += (size_t)k;
        CHECK_COUNT(iomux_loop_run_once(r->loop, 0));
    }
    for (int i = 0; i < 20; i++)
        CHECK_COUNT(iomux_loop_run_once(r->loop, 0));
    return r->got - before;
}

/* Reads everything the peer has been sent back, turning the loop. */
static void drain_peer(struct rig *r)
{
    char buf[65536];
    for (int i = 0; i < 1000 && iomux_stream_queued(r->s) > 0; i++) {
        while (recv(r->peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            ;
        CHECK_COUNT(iomux_loop_run_once(r->loop, 1));
    }
    while (recv(r->peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

static void test_hold(void)
{
    struct rig r;
    if (!rig_open(&r))
        goto out;
    /* Nothing queued: nothing to wait for, so no hold. */
    CHECK_EQ_INT(iomux_stream_hold(r.s), 0);
    push(&r, 256 * 1024);
    if (!CHECK_U64(iomux_stream_queued(r.s), >, 0))
        goto out;
    CHECK_EQ_INT(iomux_stream_hold(r.s), 1);
    /* Held: what the peer sends now is not read, however far below the
       high water the queue is. */
    CHECK_EQ_U64(push(&r, 64 * 1024), 0);
    /* The peer takes its echoes: reading resumes by itself. */
    drain_peer(&r);
    CHECK_EQ_U64(iomux_stream_queued(r.s), 0);
    CHECK_U64(push(&r, 0), >, 0);
out:
    rig_close(&r);
}

static void test_read_cap(void)
{
    struct rig r;
    if (!rig_open(&r))
        goto out;
    iomux_buf_pool_set_read_cap(r.pool, 1000);
    push(&r, 20000);
    CHECK_U64(r.got, >, 0);
    CHECK_U64(r.max_chunk, <=, 1000);
    /* 0: the whole read buffer again. */
    iomux_buf_pool_set_read_cap(r.pool, 0);
    size_t size;
    CHECK(iomux_buf_pool_read_buffer(r.pool, &size) != NULL);
    CHECK_EQ_U64(size, IOMUX_BUF_READ_SIZE);
out:
    rig_close(&r);
}

int main(int argc, char **argv)
{
    backend = test_backend(argc, argv);
    check_run("hold", test_hold);
    check_run("read_cap", test_read_cap);
    return check_exit();
}
