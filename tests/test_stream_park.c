/* SPDX-License-Identifier: MIT */
/*
 * test_stream_park.c - a transport's read or write that waits for its
 * owner (*wait = 0), on the backend named by argv[1]: the stream then
 * watches the fd for nothing in that direction (no busy loop, nothing
 * moves), and iomux_stream_resume() lets it go on. What echod's fault
 * modes (apps/echod/faults.c) pace and delay with.
 */
#include "test_util.h"

#include <errno.h>

#include <iomux/buf.h>
#include <iomux/stream.h>

static const char *backend;

struct gate {
    bool read_open, write_open;
    int fd;
    unsigned reads, writes; /* calls of the operations */
};

static ssize_t gate_read(void *ctx, void *buf, size_t len, unsigned *wait)
{
    struct gate *g = ctx;
    g->reads++;
    if (!g->read_open) {
        *wait = 0;
        return -EAGAIN;
    }
    ssize_t n = recv(g->fd, buf, len, 0);
    if (n < 0)
        return errno == EAGAIN ? -EAGAIN : -errno;
    return n;
}

static ssize_t gate_write(void *ctx, const void *buf, size_t len, unsigned *wait)
{
    struct gate *g = ctx;
    g->writes++;
    if (!g->write_open) {
        *wait = 0;
        return -EAGAIN;
    }
    ssize_t n = send(g->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN ? -EAGAIN : -errno;
    return n;
}

static int gate_close_write(void *ctx, unsigned *wait)
{
    return 0;
}

static int gate_pending(void *ctx)
{
    return 0;
}

static void gate_release(void *ctx) {}

static const struct iomux_stream_transport gate_ops = {
    .read = gate_read,
    .write = gate_write,
    .close_write = gate_close_write,
    .pending = gate_pending,
    .release = gate_release,
};

static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    CHECK_OK(iomux_stream_write(s, bytes, len));
}

static void turn(struct iomux_loop *loop, int times)
{
    for (int i = 0; i < times; i++)
        CHECK_COUNT(iomux_loop_run_once(loop, 0));
}

static void test_park(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    struct iomux_buf_pool *pool = NULL;
    int fds[2];
    if (!loop || !CHECK_OK(iomux_buf_pool_new(&pool, NULL)) || !make_socketpair(fds))
        return;
    struct gate g = {.read_open = true, .write_open = false, .fd = fds[0]};
    struct iomux_stream_options so = {.on_data = on_data};
    struct iomux_stream *s;
    if (!CHECK_OK(iomux_stream_new(loop, pool, fds[0], &so, &s)) ||
        !CHECK_OK(iomux_stream_set_transport(s, &gate_ops, &g)))
        return;
    /* The write waits for us: queued, and WRITE not watched. */
    CHECK_EQ_INT((int)send(fds[1], "hello", 5, 0), 5);
    turn(loop, 5);
    CHECK_U64(iomux_stream_queued(s), ==, 5);
    CHECK(!(iomux_fd_mask(loop, fds[0]) & IOMUX_WRITE));
    unsigned writes = g.writes;
    turn(loop, 5);
    CHECK_U64(g.writes, ==, writes); /* not called again: no busy loop */
    g.write_open = true;
    iomux_stream_resume(s);
    turn(loop, 5);
    CHECK_U64(iomux_stream_queued(s), ==, 0);
    char buf[16];
    CHECK_EQ_INT((int)recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT), 5);
    /* The read waits for us: nothing delivered, READ not watched. */
    g.read_open = false;
    CHECK_EQ_INT((int)send(fds[1], "again", 5, 0), 5);
    turn(loop, 5);
    CHECK(!(iomux_fd_mask(loop, fds[0]) & IOMUX_READ));
    unsigned reads = g.reads;
    turn(loop, 5);
    CHECK_U64(g.reads, ==, reads);
    CHECK_EQ_INT((int)recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
    g.read_open = true;
    iomux_stream_resume(s);
    turn(loop, 5);
    CHECK_EQ_INT((int)recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT), 5);
    iomux_stream_resume(s); /* nothing waits: a no-op */
    iomux_stream_close(s);
    close(fds[1]);
    iomux_loop_free(loop);
    iomux_buf_pool_free(pool);
}

int main(int argc, char **argv)
{
    backend = test_backend(argc, argv);
    check_run("park", test_park);
    return check_exit();
}
