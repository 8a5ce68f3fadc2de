/* SPDX-License-Identifier: MIT */
/*
 * event_echo.c - an echo server on libevent 2.1 bufferevents, the API
 * libevent's book recommends for stream servers.
 *
 * evconnlistener accepts; each connection is a socket bufferevent. The
 * read callback moves the whole input buffer to the output buffer
 * (evbuffer_add_buffer() relinks chunks, it does not copy), and libevent
 * writes it out. Backpressure: when the output holds more than HIGH_WATER
 * bytes we disable reading, and the write callback, which the low
 * watermark makes fire once the output has drained to LOW_WATER, turns it
 * back on.
 *
 * usage: event_echo [PORT]   (127.0.0.1, 0 = any; prints HOST:PORT)
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include "peer_common.h"

#define HIGH_WATER (256 * 1024)
#define LOW_WATER  (64 * 1024)

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evbuffer_add_buffer(out, bufferevent_get_input(bev));
    if (evbuffer_get_length(out) > HIGH_WATER)
        bufferevent_disable(bev, EV_READ);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    /* Called when the output is at or below the low watermark. */
    bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct event_base *base = evconnlistener_get_base(l);
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, on_write, on_event, NULL);
    bufferevent_setwatermark(bev, EV_WRITE, LOW_WATER, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    int fd = peer_listen(argc > 1 ? argv[1] : "0");
    if (fd < 0)
        return 1;
    struct event_base *base = event_base_new();
    if (!base)
        return 1;
    struct evconnlistener *l =
        evconnlistener_new(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!l) {
        fprintf(stderr, "event_echo: listener failed\n");
        return 1;
    }
    event_base_dispatch(base);
    evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
