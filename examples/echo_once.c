/* SPDX-License-Identifier: MIT */
/*
 * echo_once.c - a client on the stream API: connects, sends a message,
 * and checks that exactly the same bytes come back. Exit 0 on a byte-exact echo, 1 otherwise; a
 * timer bounds the whole exchange, so it never hangs.
 *
 *   ./echo_once HOST:PORT [MESSAGE]
 */
#include <errno.h>
#include <iomux/loop.h>
#include <iomux/net.h>
#include <iomux/stream.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct client {
    const char *message;
    size_t len;
    size_t received; /* bytes of the echo so far, all matching */
    int result;      /* 0 ok, -errno, or 1 for a mismatch */
    int done;
    uint64_t deadline;
};

static void on_data(struct iomux_stream *stream, const char *bytes, size_t len, void *data)
{
    struct client *c = data;
    /* An echo may come back in any number of pieces: compare as we go. */
    if (c->received + len > c->len || memcmp(c->message + c->received, bytes, len) != 0) {
        c->result = 1;
        iomux_stream_close(stream); /* on_close is not called after this */
        c->done = 1;
        return;
    }
    c->received += len;
    if (c->received == c->len) {
        c->result = 0;
        iomux_stream_close(stream); /* all back: we are done */
        c->done = 1;
    }
}

static void on_close(struct iomux_stream *stream, int error, void *data)
{
    struct client *c = data;
    c->result = error < 0 ? error : 1; /* closed before the whole echo came */
    c->done = 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: echo_once HOST:PORT [MESSAGE]\n");
        return 2;
    }
    struct client c = {.message = argc > 2 ? argv[2] : "hello, iomux"};
    c.len = strlen(c.message);

    struct iomux_addr addr;
    struct iomux_loop *loop = NULL;
    struct iomux_buf_pool *pool = NULL;
    struct iomux_stream *stream = NULL;
    int fd = -1;
    int rc = iomux_addr_parse(argv[1], &addr);
    if (rc == 0)
        rc = iomux_loop_new(&loop, NULL);
    if (rc == 0)
        rc = iomux_buf_pool_new(&pool, NULL);
    if (rc == 0) {
        rc = iomux_tcp_connect(&addr, &fd);
        if (rc == -EINPROGRESS) /* the stream waits for the connect */
            rc = 0;
    }
    if (rc == 0) {
        struct iomux_stream_options opts = {.on_data = on_data, .on_close = on_close, .data = &c};
        rc = iomux_stream_new(loop, pool, fd, &opts, &stream);
        if (rc < 0)
            close(fd);
    }
    if (rc == 0) {
        iomux_stream_write(stream, c.message, c.len); /* queued until connected */
        /* Bounded: five seconds of no answer is a failure, not a hang. */
        uint64_t deadline = iomux_loop_now(loop) + 5000;
        while (!c.done && iomux_loop_now(loop) < deadline && rc >= 0)
            rc = iomux_loop_run_once(loop, 100);
        if (!c.done) {
            iomux_stream_close(stream);
            c.result = -ETIMEDOUT;
        }
        rc = rc < 0 ? rc : c.result;
    }
    iomux_buf_pool_free(pool);
    iomux_loop_free(loop);
    if (rc == 1)
        fprintf(stderr, "echo_once: the echo differs from what was sent\n");
    else if (rc < 0)
        fprintf(stderr, "echo_once: %s\n", strerror(-rc));
    else
        printf("echoed %zu bytes: %s\n", c.len, c.message);
    return rc == 0 ? 0 : 1;
}
