/* SPDX-License-Identifier: MIT */
/*
 * echo_server.c - a TCP echo server on the stream API, in under 100 lines.
 *
 * The stream does the hard parts: short writes, backpressure (it stops
 * reading a client whose echo is not being read), half-close (everything
 * received is sent back before it closes), and resets. What is left for
 * us is "write back what you read". It leaves out what echod adds:
 * connection limits, idle timeouts, graceful shutdown, statistics.
 *
 *   ./echo_server [HOST:PORT]     (default 127.0.0.1:0; prints the address)
 */
#include <iomux/loop.h>
#include <iomux/net.h>
#include <iomux/stream.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct server {
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool; /* buffers shared by every stream */
    int listen_fd;
};

static void on_data(struct iomux_stream *stream, const char *bytes, size_t len, void *data)
{
    /* Copies the bytes in; a failure ends the stream through on_close. */
    iomux_stream_write(stream, bytes, len);
}

static void on_close(struct iomux_stream *stream, int error, void *data)
{
    if (error < 0)
        fprintf(stderr, "echo_server: client: %s\n", strerror(-error));
}

static void on_accept(struct iomux_loop *loop, int fd, unsigned events, void *data)
{
    struct server *s = data;
    int client;
    /* Take every pending connection; -EAGAIN means there are no more. */
    while (iomux_tcp_accept(fd, NULL, &client) == 0) {
        struct iomux_stream_options opts = {.on_data = on_data, .on_close = on_close};
        struct iomux_stream *stream;
        if (iomux_stream_new(s->loop, s->pool, client, &opts, &stream) < 0)
            close(client); /* still ours when iomux_stream_new fails */
    }
}

/* Stop accepting and stop watching signals: run() then returns as soon as
   the last client has gone, because nothing else is left to wait for. */
static void on_signal(struct iomux_loop *loop, int signo, void *data)
{
    struct server *s = data;
    iomux_fd_unwatch(loop, s->listen_fd);
    iomux_signal_unwatch(loop, SIGINT);
    iomux_signal_unwatch(loop, SIGTERM);
}

int main(int argc, char **argv)
{
    struct server s = {.listen_fd = -1};
    struct iomux_addr addr;
    char text[IOMUX_ADDR_STRLEN];
    int rc = iomux_addr_parse(argc > 1 ? argv[1] : "127.0.0.1:0", &addr);
    if (rc == 0)
        rc = iomux_tcp_listen(&addr, 0, &s.listen_fd);
    if (rc == 0)
        rc = iomux_loop_new(&s.loop, NULL);
    if (rc == 0)
        rc = iomux_buf_pool_new(&s.pool, NULL);
    if (rc == 0)
        rc = iomux_fd_watch(s.loop, s.listen_fd, IOMUX_READ, on_accept, &s);
    if (rc == 0)
        rc = iomux_signal_watch(s.loop, SIGINT, on_signal, &s);
    if (rc == 0)
        rc = iomux_signal_watch(s.loop, SIGTERM, on_signal, &s);
    if (rc == 0 && (rc = iomux_socket_local(s.listen_fd, &addr)) == 0 &&
        (rc = iomux_addr_format(&addr, text, sizeof text)) == 0) {
        printf("%s\n", text); /* port 0: tell the user which port we got */
        fflush(stdout);
        signal(SIGPIPE, SIG_IGN); /* streams use MSG_NOSIGNAL; this is belt and braces */
        rc = iomux_loop_run(s.loop);
    }
    if (rc < 0)
        fprintf(stderr, "echo_server: %s\n", strerror(-rc));
    if (s.loop && s.listen_fd >= 0)
        iomux_fd_unwatch(s.loop, s.listen_fd); /* unwatch before close */
    if (s.listen_fd >= 0)
        close(s.listen_fd);
    iomux_buf_pool_free(s.pool);
    iomux_loop_free(s.loop);
    return rc < 0 ? 1 : 0;
}
