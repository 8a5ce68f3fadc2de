/* SPDX-License-Identifier: MIT */
/*
 * uv_echo.c - an echo server written the way libuv's documentation and
 * its own benchmarks suggest, as a user who picks libuv would write it.
 *
 * Reads go into one shared buffer (alloc_cb hands out the same 64 KiB
 * every time: the loop is single-threaded and read_cb is done with it
 * before the next read). Echoing tries uv_try_write() first, which in the
 * common case sends everything with no request and no copy; only the
 * unsent tail is copied into a uv_write_t. Backpressure: while libuv's
 * write queue holds more than HIGH_WATER bytes we stop reading, and start
 * again from the write callback once it has drained.
 *
 * usage: uv_echo [PORT]   (127.0.0.1, 0 = any; prints HOST:PORT)
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "peer_common.h"

#define HIGH_WATER (256 * 1024)

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
};

static char rbuf[65536];
static uv_loop_t *loop;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    uv_stream_t *s = req->handle;
    free(w);
    if (status < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    if (uv_stream_get_write_queue_size(s) == 0 && !uv_is_closing((uv_handle_t *)s))
        uv_read_start(s, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    if (n == 0)
        return;
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
    int sent = uv_stream_get_write_queue_size(s) == 0 ? uv_try_write(s, &out, 1) : 0;
    if (sent == n)
        return;
    if (sent < 0 && sent != UV_EAGAIN) {
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    size_t off = sent > 0 ? (size_t)sent : 0;
    size_t rest = (size_t)n - off;
    struct write_req *w = malloc(sizeof(*w) + rest);
    if (!w) {
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    memcpy(w + 1, buf->base + off, rest);
    w->buf = uv_buf_init((char *)(w + 1), (unsigned)rest);
    if (uv_write(&w->req, s, &w->buf, 1, on_written) < 0) {
        free(w);
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    if (uv_stream_get_write_queue_size(s) > HIGH_WATER)
        uv_read_stop(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) < 0) {
        uv_close((uv_handle_t *)c, on_closed);
        return;
    }
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    int fd = peer_listen(argc > 1 ? argv[1] : "0");
    if (fd < 0)
        return 1;
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_open(&server, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (rc < 0) {
        fprintf(stderr, "uv_echo: listen: %s\n", uv_strerror(rc));
        return 1;
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}
