/* SPDX-License-Identifier: MIT */
/*
 * test_stream.c - buf.h and stream.h on the backend named by argv[1]:
 * chunked queues, echo through a stream, backpressure, half-close, reset,
 * end(), close() from a callback, errors reported once, no allocation
 * per message once warm, and the owner's extra bytes.
 */
#include "test_util.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>

#include <iomux/buf.h>
#include <iomux/net.h>
#include <iomux/stream.h>

static const char *backend;

/* Counting allocator: tests check that the steady state allocates nothing
   and can make the Nth allocation fail. */
static long allocs, frees;
static long fail_after = -1; /* allocations left before failing; -1 = never */

static void *count_malloc(size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    allocs++;
    return malloc(n);
}

static void *count_realloc(void *p, size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    if (!p)
        allocs++;
    return realloc(p, n);
}

static void count_free(void *p)
{
    if (p)
        frees++;
    free(p);
}

/* ---------------------------------------------------------------- buf */

static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(seed + i * 7 + (i >> 8));
}

static void test_buf_basics(void)
{
    struct iomux_buf_pool *pool;
    struct iomux_buf_pool_options po = {.chunk_size = 8, .cache_bytes = 32};
    if (!CHECK_OK(iomux_buf_pool_new(&pool, &po)))
        return;
    struct iomux_buf b;
    iomux_buf_init(&b, pool);
    CHECK_EQ_U64(iomux_buf_len(&b), 0);

    char in[100], out[100];
    fill(in, sizeof(in), 1);
    CHECK_OK(iomux_buf_append(&b, in, 5));
    CHECK_OK(iomux_buf_append(&b, in + 5, 20)); /* fills the tail, then 2 more chunks */
    CHECK_EQ_U64(iomux_buf_len(&b), 25);
    struct iomux_buf_pool_stats st;
    iomux_buf_pool_stats(pool, &st);
    CHECK_EQ_U64(st.chunks_in_use, 4);

    struct iovec iov[8];
    int n = iomux_buf_iov(&b, iov, 8);
    CHECK_EQ_INT(n, 4);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    CHECK_EQ_U64(total, 25);
    CHECK_EQ_INT(iomux_buf_iov(&b, iov, 2), 2);

    CHECK_EQ_U64(iomux_buf_peek(&b, out, sizeof(out)), 25);
    CHECK(memcmp(in, out, 25) == 0);

    iomux_buf_consume(&b, 3); /* inside the first chunk */
    CHECK_EQ_U64(iomux_buf_len(&b), 22);
    CHECK_EQ_U64(iomux_buf_peek(&b, out, 22), 22);
    CHECK(memcmp(in + 3, out, 22) == 0);
    iomux_buf_consume(&b, 13); /* across chunk boundaries */
    iomux_buf_pool_stats(pool, &st);
    CHECK_EQ_U64(st.chunks_in_use, 2);
    CHECK_EQ_U64(iomux_buf_peek(&b, out, 9), 9);
    CHECK(memcmp(in + 16, out, 9) == 0);

    /* Appending after partial consumption keeps the order. */
    CHECK_OK(iomux_buf_append(&b, in + 25, 75));
    CHECK_EQ_U64(iomux_buf_len(&b), 84);
    CHECK_EQ_U64(iomux_buf_peek(&b, out, 84), 84);
    CHECK(memcmp(in + 16, out, 84) == 0);

    /* Emptying returns every chunk; the cache keeps 32/8 = 4 of them. */
    iomux_buf_clear(&b);
    CHECK_EQ_U64(iomux_buf_len(&b), 0);
    CHECK_EQ_INT(iomux_buf_iov(&b, iov, 8), 0);
    iomux_buf_pool_stats(pool, &st);
    CHECK_EQ_U64(st.chunks_in_use, 0);
    CHECK_EQ_U64(st.chunks_cached, 4);

    /* Reuse: no new chunk from the system for what the cache holds. */
    size_t before = st.chunk_allocs;
    CHECK_OK(iomux_buf_append(&b, in, 32));
    iomux_buf_pool_stats(pool, &st);
    CHECK_EQ_U64(st.chunk_allocs, before);
    iomux_buf_clear(&b);
    iomux_buf_pool_trim(pool);
    iomux_buf_pool_stats(pool, &st);
    CHECK_EQ_U64(st.chunks_cached, 0);

    size_t rsize = 0;
    CHECK(iomux_buf_pool_read_buffer(pool, &rsize) != NULL);
    CHECK_EQ_U64(rsize, IOMUX_BUF_READ_SIZE);
    iomux_buf_pool_free(pool);
}

static void test_buf_enomem(void)
{
    struct iomux_buf_pool *pool;
    struct iomux_buf_pool_options po = {.chunk_size = 8, .cache_bytes = 8};
    if (!CHECK_OK(iomux_buf_pool_new(&pool, &po)))
        return;
    struct iomux_buf b;
    iomux_buf_init(&b, pool);
    char in[64];
    fill(in, sizeof(in), 3);
    CHECK_OK(iomux_buf_append(&b, in, 4));
    /* The third chunk of this append fails: all or nothing. */
    fail_after = 2;
    CHECK_ERRNO(iomux_buf_append(&b, in + 4, 40), -ENOMEM);
    fail_after = -1;
    CHECK_EQ_U64(iomux_buf_len(&b), 4);
    struct iomux_buf_pool_stats st;
    iomux_buf_pool_stats(pool, &st);
    CHECK_EQ_U64(st.chunks_in_use, 1);
    CHECK_OK(iomux_buf_append(&b, in + 4, 40));
    char out[64];
    CHECK_EQ_U64(iomux_buf_peek(&b, out, sizeof(out)), 44);
    CHECK(memcmp(in, out, 44) == 0);
    iomux_buf_clear(&b);
    iomux_buf_pool_free(pool);
}

/* ------------------------------------------------------------- stream */

/* What the callbacks saw. The test's stream echoes unless told not to. */
struct probe {
    struct iomux_stream *s;
    bool echo;
    bool close_in_data;    /* iomux_stream_close() from on_data */
    bool may_fail;         /* writes may fail (the peer resets) */
    const char *eof_reply; /* written from on_eof */
    size_t got;
    int closes;
    int close_error;
    int eofs;
    int drains;
    int in_write; /* set while the test calls iomux_stream_write() */
    bool closed_inside_write;
};

static void p_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct probe *p = data;
    p->got += len;
    if (p->close_in_data) {
        iomux_stream_close(s);
        p->s = NULL;
        return;
    }
    if (p->echo) {
        int rc = iomux_stream_write(s, bytes, len);
        if (!p->may_fail) /* after a reset the echo may be refused */
            CHECK_OK(rc);
    }
}

static void p_eof(struct iomux_stream *s, void *data)
{
    struct probe *p = data;
    p->eofs++;
    if (p->eof_reply)
        CHECK_OK(iomux_stream_write(s, p->eof_reply, strlen(p->eof_reply)));
}

static void p_drain(struct iomux_stream *s, void *data)
{
    struct probe *p = data;
    p->drains++;
}

static void p_close(struct iomux_stream *s, int error, void *data)
{
    struct probe *p = data;
    CHECK(s == p->s);
    p->closes++;
    p->close_error = error;
    if (p->in_write)
        p->closed_inside_write = true;
    p->s = NULL;
}

struct rig {
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool;
    int peer; /* the test's end */
    struct probe p;
};

/* A stream on one end of a socket pair (or of a TCP connection when `tcp`),
   the test holding the other end. */
static bool rig_open(struct rig *r, bool tcp, size_t high, size_t low)
{
    memset(r, 0, sizeof(*r));
    r->peer = -1;
    r->p.echo = true;
    r->loop = test_loop_new(backend, 0);
    if (!r->loop)
        return false;
    if (!CHECK_OK(iomux_buf_pool_new(&r->pool, NULL)))
        return false;
    int fds[2];
    if (tcp) {
        struct iomux_addr a, bound;
        int lfd, cfd, afd;
        if (!CHECK_OK(iomux_addr_parse("127.0.0.1:0", &a)) ||
            !CHECK_OK(iomux_tcp_listen(&a, 0, &lfd)))
            return false;
        CHECK_OK(iomux_socket_local(lfd, &bound));
        int rc = iomux_tcp_connect(&bound, &cfd);
        CHECK(rc == 0 || rc == -EINPROGRESS);
        struct pollfd pf = {.fd = lfd, .events = POLLIN};
        CHECK_EQ_INT(poll(&pf, 1, 5000), 1);
        rc = iomux_tcp_accept(lfd, NULL, &afd);
        close(lfd);
        if (!CHECK_OK(rc))
            return false;
        fds[0] = afd;
        fds[1] = cfd;
        /* Small kernel buffers, so that output queues up in the stream
           after a few hundred KiB instead of many MiB. */
        int small = 65536;
        setsockopt(afd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    } else if (!make_socketpair(fds)) {
        return false;
    }
    r->peer = fds[1];
    struct iomux_stream_options so = {
        .on_data = p_data,
        .on_eof = p_eof,
        .on_drain = p_drain,
        .on_close = p_close,
        .data = &r->p,
        .high_water = high,
        .low_water = low,
    };
    if (!CHECK_OK(iomux_stream_new(r->loop, r->pool, fds[0], &so, &r->p.s))) {
        close(fds[0]);
        return false;
    }
    return true;
}

static void rig_close(struct rig *r)
{
    if (r->p.s)
        iomux_stream_close(r->p.s);
    if (r->peer >= 0)
        close(r->peer);
    iomux_loop_free(r->loop);
    if (r->pool) {
        struct iomux_buf_pool_stats st;
        iomux_buf_pool_stats(r->pool, &st);
        CHECK_EQ_U64(st.chunks_in_use, 0);
    }
    iomux_buf_pool_free(r->pool);
}

/* Runs the loop without blocking long until `done` returns true. */
static bool spin(struct rig *r, bool (*done)(struct rig *), int max_iter)
{
    for (int i = 0; i < max_iter; i++) {
        if (done(r))
            return true;
        if (!CHECK_COUNT(iomux_loop_run_once(r->loop, 10)))
            return false;
    }
    return done(r);
}

static bool is_closed(struct rig *r)
{
    return r->p.closes > 0;
}

/* Reads what is available from the peer into dst (up to cap). */
static size_t peer_read(struct rig *r, char *dst, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t k = recv(r->peer, dst + n, cap - n, MSG_DONTWAIT);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    return n;
}

/* Runs the loop (at most max_iter turns) until `want` bytes have reached
   the peer, read into dst (room for cap); returns how many came. */
static size_t peer_collect(struct rig *r, char *dst, size_t cap, size_t want, int max_iter)
{
    size_t got = 0;
    for (int i = 0; i < max_iter && got < want; i++) {
        CHECK_COUNT(iomux_loop_run_once(r->loop, 10));
        got += peer_read(r, dst + got, cap - got);
    }
    return got;
}

/* Sends what the socket takes now of src[*sent..total), adding it to *sent;
   returns send()'s result. */
static ssize_t peer_send_some(struct rig *r, const char *src, size_t total, size_t *sent)
{
    ssize_t k = send(r->peer, src + *sent, total - *sent, MSG_DONTWAIT);
    if (k > 0)
        *sent += (size_t)k;
    return k;
}

static void test_stream_echo(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    char msg[1000], back[1000];
    fill(msg, sizeof(msg), 9);
    for (int round = 0; round < 50; round++) {
        CHECK_EQ_INT(send(r.peer, msg, sizeof(msg), 0), (int)sizeof(msg));
        size_t got = peer_collect(&r, back, sizeof(back), sizeof(msg), 100);
        if (!CHECK_EQ_U64(got, sizeof(msg)))
            break;
        CHECK(memcmp(msg, back, sizeof(msg)) == 0);
    }
    CHECK_EQ_INT(r.p.closes, 0);
    CHECK_EQ_U64(iomux_stream_queued(r.p.s), 0);
    struct iomux_buf_pool_stats st;
    iomux_buf_pool_stats(r.pool, &st);
    CHECK_EQ_U64(st.chunks_in_use, 0); /* idle: nothing held */
out:
    rig_close(&r);
}

/* Once warm, echoing messages allocates nothing. */
static void test_stream_no_alloc_steady(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    char msg[4096], back[4096];
    fill(msg, sizeof(msg), 5);
    long before = 0;
    for (int round = 0; round < 200; round++) {
        if (round == 10)
            before = allocs; /* read buffer and timers exist by now */
        CHECK_EQ_INT(send(r.peer, msg, sizeof(msg), 0), (int)sizeof(msg));
        size_t got = peer_collect(&r, back, sizeof(back), sizeof(msg), 100);
        if (!CHECK_EQ_U64(got, sizeof(msg)))
            break;
    }
    CHECK_EQ_INT(allocs - before, 0);
out:
    rig_close(&r);
}

static bool is_backpressured(struct rig *r)
{
    return r->p.s && iomux_stream_backpressured(r->p.s);
}

/* The peer writes and does not read: the stream stops reading above the
   high watermark, so its queue stays bounded; when the peer reads, it
   resumes and every byte comes back in order. */
static void test_stream_backpressure(void)
{
    struct rig r;
    const size_t high = 64 * 1024, low = 16 * 1024;
    if (!rig_open(&r, false, high, low))
        goto out;
    const size_t total = 8u << 20;
    char *src = malloc(total), *dst = malloc(total);
    if (!CHECK(src && dst))
        goto free;
    fill(src, total, 11);
    size_t sent = 0, got = 0, max_queued = 0;
    bool saw_pressure = false;
    /* Phase 1: send until nothing more is taken; never read. */
    for (int i = 0; i < 2000; i++) {
        ssize_t k = peer_send_some(&r, src, total, &sent);
        CHECK_COUNT(iomux_loop_run_once(r.loop, 0));
        if (r.p.s && iomux_stream_queued(r.p.s) > max_queued)
            max_queued = iomux_stream_queued(r.p.s);
        if (is_backpressured(&r))
            saw_pressure = true;
        if (k <= 0 && saw_pressure)
            break;
    }
    CHECK(saw_pressure);
    CHECK_U64(sent, <, total);
    /* Bounded by high water plus one read. */
    CHECK_U64(max_queued, <=, high + IOMUX_BUF_READ_SIZE);
    /* Phase 2: read everything while sending the rest. */
    for (int i = 0; i < 100000 && got < total; i++) {
        if (sent < total)
            (void)peer_send_some(&r, src, total, &sent);
        CHECK_COUNT(iomux_loop_run_once(r.loop, 1));
        got += peer_read(&r, dst + got, total - got);
        if (r.p.s && iomux_stream_queued(r.p.s) > max_queued)
            max_queued = iomux_stream_queued(r.p.s);
    }
    CHECK_EQ_U64(got, total);
    CHECK(memcmp(src, dst, total) == 0);
    CHECK_U64(max_queued, <=, high + IOMUX_BUF_READ_SIZE);
    CHECK(!is_backpressured(&r));
    CHECK_EQ_INT(r.p.closes, 0);
free:
    free(src);
    free(dst);
out:
    rig_close(&r);
}

/* The peer sends, then shuts down its write side without reading: the
   stream still sends back every byte, then ends with error 0 (once). */
static void test_stream_half_close(void)
{
    struct rig r;
    if (!rig_open(&r, false, 1u << 20, 0))
        goto out;
    const size_t total = 600000;
    char *src = malloc(total), *dst = malloc(total);
    if (!CHECK(src && dst))
        goto free;
    fill(src, total, 13);
    size_t sent = 0, got = 0;
    for (int i = 0; i < 10000 && sent < total; i++) {
        (void)peer_send_some(&r, src, total, &sent);
        CHECK_COUNT(iomux_loop_run_once(r.loop, 0));
    }
    CHECK_EQ_U64(sent, total);
    CHECK_EQ_INT(shutdown(r.peer, SHUT_WR), 0);
    bool eof = false;
    for (int i = 0; i < 100000 && !eof; i++) {
        CHECK_COUNT(iomux_loop_run_once(r.loop, 1));
        got += peer_read(&r, dst + got, total - got);
        char c;
        if (got == total && recv(r.peer, &c, 1, MSG_DONTWAIT) == 0)
            eof = true;
    }
    CHECK(eof);
    CHECK_EQ_U64(got, total);
    CHECK(memcmp(src, dst, total) == 0);
    spin(&r, is_closed, 100);
    CHECK_EQ_INT(r.p.eofs, 1);
    CHECK_EQ_INT(r.p.closes, 1);
    CHECK_EQ_INT(r.p.close_error, 0);
free:
    free(src);
    free(dst);
out:
    rig_close(&r);
}

/* A reset (RST) with output queued: the owner hears of it once, with the
   error. */
static void test_stream_reset(void)
{
    struct rig r;
    if (!rig_open(&r, true, 4u << 20, 0))
        goto out;
    r.p.may_fail = true;
    /* Queue output in the stream: send a lot without reading. */
    static char big[1 << 20];
    fill(big, sizeof(big), 17);
    for (int i = 0; i < 10000; i++) {
        (void)send(r.peer, big, sizeof(big), MSG_DONTWAIT);
        CHECK_COUNT(iomux_loop_run_once(r.loop, 0));
        if (r.p.s && iomux_stream_queued(r.p.s) > 0)
            break;
    }
    CHECK(r.p.s && iomux_stream_queued(r.p.s) > 0);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    CHECK_EQ_INT(setsockopt(r.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(r.peer);
    r.peer = -1;
    spin(&r, is_closed, 1000);
    CHECK_EQ_INT(r.p.closes, 1);
    CHECK(r.p.close_error == -ECONNRESET || r.p.close_error == -EPIPE);
    for (int i = 0; i < 5; i++)
        CHECK_COUNT(iomux_loop_run_once(r.loop, 0));
    CHECK_EQ_INT(r.p.closes, 1);
out:
    rig_close(&r);
}

/* A write to a stream whose peer is gone: -EPIPE returned, on_close runs
   later from the loop (never inside the write), exactly once. */
static void test_stream_write_error(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    close(r.peer);
    r.peer = -1;
    r.p.in_write = 1;
    int rc = iomux_stream_write(r.p.s, "abc", 3);
    r.p.in_write = 0;
    CHECK_ERRNO(rc, -EPIPE);
    CHECK(!r.p.closed_inside_write);
    CHECK_EQ_INT(r.p.closes, 0);
    if (r.p.s)
        CHECK_ERRNO(iomux_stream_write(r.p.s, "abc", 3), -EPIPE);
    spin(&r, is_closed, 100);
    CHECK_EQ_INT(r.p.closes, 1);
    CHECK(r.p.close_error == -EPIPE || r.p.close_error == -ECONNRESET);
out:
    rig_close(&r);
}

/* end(): queued output still goes out, then the write side is shut; the
   stream ends (error 0) when the peer closes. */
static void test_stream_end(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    static char big[300000];
    fill(big, sizeof(big), 19);
    CHECK_OK(iomux_stream_write(r.p.s, big, sizeof(big)));
    CHECK(iomux_stream_queued(r.p.s) > 0); /* more than a socket pair holds */
    iomux_stream_end(r.p.s);
    iomux_stream_end(r.p.s); /* idempotent */
    CHECK_ERRNO(iomux_stream_write(r.p.s, "x", 1), -EPIPE);
    CHECK_EQ_INT(r.p.closes, 0);
    static char back[sizeof(big)];
    size_t got = 0;
    bool eof = false;
    for (int i = 0; i < 100000 && !eof; i++) {
        CHECK_COUNT(iomux_loop_run_once(r.loop, 1));
        got += peer_read(&r, back + got, sizeof(back) - got);
        /* Input sent now is dropped, and never stalls the stream. */
        (void)send(r.peer, "zz", 2, MSG_DONTWAIT);
        char c;
        if (got == sizeof(big) && recv(r.peer, &c, 1, MSG_DONTWAIT) == 0)
            eof = true;
    }
    CHECK(eof);
    CHECK_EQ_U64(got, sizeof(big));
    CHECK(memcmp(big, back, sizeof(big)) == 0);
    CHECK_EQ_INT(r.p.closes, 0); /* waits for the peer's end */
    close(r.peer);
    r.peer = -1;
    spin(&r, is_closed, 100);
    CHECK_EQ_INT(r.p.closes, 1);
    CHECK_EQ_INT(r.p.close_error, 0);
out:
    rig_close(&r);
}

/* close() from the stream's own on_data: no on_close, fd closed, memory
   freed after the callback (ASan checks the rest). */
static void test_stream_close_in_callback(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    r.p.close_in_data = true;
    int fd = iomux_stream_fd(r.p.s);
    CHECK_EQ_INT(send(r.peer, "hi", 2, 0), 2);
    for (int i = 0; i < 100 && r.p.got == 0; i++)
        CHECK_COUNT(iomux_loop_run_once(r.loop, 10));
    CHECK(r.p.s == NULL);
    CHECK_EQ_INT(r.p.closes, 0);
    CHECK(!fd_is_open(fd) || fd == r.peer);
    char c;
    CHECK_EQ_INT(recv(r.peer, &c, 1, 0), 0); /* the peer sees the end */
out:
    rig_close(&r);
}

/* A stream closed by the owner while output is queued drops it quietly. */
static void test_stream_close_with_queue(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    static char big[400000];
    CHECK_OK(iomux_stream_write(r.p.s, big, sizeof(big)));
    CHECK(iomux_stream_queued(r.p.s) > 0);
    iomux_stream_close(r.p.s);
    r.p.s = NULL;
    for (int i = 0; i < 3; i++)
        CHECK_COUNT(iomux_loop_run_once(r.loop, 0));
    CHECK_EQ_INT(r.p.closes, 0);
out:
    rig_close(&r);
}

/* Writes made in on_eof still go out before the stream ends. */
static void test_stream_eof_reply(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    r.p.eof_reply = "bye";
    CHECK_EQ_INT(send(r.peer, "hello", 5, 0), 5);
    CHECK_EQ_INT(shutdown(r.peer, SHUT_WR), 0);
    spin(&r, is_closed, 100);
    CHECK_EQ_INT(r.p.closes, 1);
    CHECK_EQ_INT(r.p.close_error, 0);
    char back[16];
    size_t got = peer_read(&r, back, sizeof(back));
    CHECK_EQ_U64(got, 8);
    CHECK(memcmp(back, "hellobye", 8) == 0);
out:
    rig_close(&r);
}

/* Out of memory while queueing: write() says -ENOMEM, the stream fails and
   on_close reports -ENOMEM once, from the loop. */
static void test_stream_write_enomem(void)
{
    struct rig r;
    if (!rig_open(&r, false, 0, 0))
        goto out;
    static char big[400000];
    fail_after = 0;
    r.p.in_write = 1;
    int rc = iomux_stream_write(r.p.s, big, sizeof(big));
    r.p.in_write = 0;
    fail_after = -1;
    CHECK_ERRNO(rc, -ENOMEM);
    CHECK_EQ_INT(r.p.closes, 0);
    spin(&r, is_closed, 100);
    CHECK_EQ_INT(r.p.closes, 1);
    CHECK_EQ_INT(r.p.close_error, -ENOMEM);
out:
    rig_close(&r);
}

/* Every allocation of iomux_stream_new() failing in turn: -ENOMEM, nothing
   leaked, the fd still the caller's. */
static void test_stream_new_enomem(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    struct iomux_buf_pool *pool = NULL;
    int sp[2] = {-1, -1};
    if (!loop || !CHECK_OK(iomux_buf_pool_new(&pool, NULL)) || !make_socketpair(sp))
        goto out;
    struct iomux_stream_options so = {.on_data = p_data};
    for (long n = 0; n < 10; n++) {
        struct iomux_stream *s = NULL;
        fail_after = n;
        int rc = iomux_stream_new(loop, pool, sp[0], &so, &s);
        fail_after = -1;
        if (rc == 0) {
            iomux_stream_close(s); /* closes sp[0] */
            sp[0] = -1;
            break;
        }
        CHECK_ERRNO(rc, -ENOMEM);
        CHECK(fd_is_open(sp[0]));
    }
    CHECK_EQ_INT(sp[0], -1); /* it succeeded at last */
out:
    if (sp[0] >= 0)
        close(sp[0]);
    if (sp[1] >= 0)
        close(sp[1]);
    iomux_buf_pool_free(pool);
    iomux_loop_free(loop);
}

/* A stream on a connect still in progress: queued bytes go out once it
   completes; a refused connect ends the stream with -ECONNREFUSED. */
static void test_stream_connecting(void)
{
    struct rig r;
    memset(&r, 0, sizeof(r));
    r.peer = -1;
    r.loop = test_loop_new(backend, 0);
    if (!r.loop || !CHECK_OK(iomux_buf_pool_new(&r.pool, NULL)))
        goto out;
    struct iomux_addr a, bound;
    int lfd = -1, cfd = -1;
    if (!CHECK_OK(iomux_addr_parse("127.0.0.1:0", &a)) || !CHECK_OK(iomux_tcp_listen(&a, 0, &lfd)))
        goto out;
    CHECK_OK(iomux_socket_local(lfd, &bound));
    int rc = iomux_tcp_connect(&bound, &cfd);
    CHECK(rc == 0 || rc == -EINPROGRESS);
    struct iomux_stream_options so = {.on_data = p_data, .on_close = p_close, .data = &r.p};
    if (!CHECK_OK(iomux_stream_new(r.loop, r.pool, cfd, &so, &r.p.s))) {
        close(cfd);
        close(lfd);
        goto out;
    }
    CHECK_OK(iomux_stream_write(r.p.s, "early", 5));
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    CHECK_EQ_INT(poll(&pf, 1, 5000), 1);
    CHECK_OK(iomux_tcp_accept(lfd, NULL, &r.peer));
    char back[8];
    size_t got = peer_collect(&r, back, sizeof(back), 5, 200);
    CHECK_EQ_U64(got, 5);
    CHECK(memcmp(back, "early", 5) == 0);
    iomux_stream_close(r.p.s);
    r.p.s = NULL;

    /* Nobody listens any more: refused. */
    close(lfd);
    rc = iomux_tcp_connect(&bound, &cfd);
    if (rc == -ECONNREFUSED)
        goto out; /* refused at once: nothing for a stream to do */
    CHECK_ERRNO(rc, -EINPROGRESS);
    if (!CHECK_OK(iomux_stream_new(r.loop, r.pool, cfd, &so, &r.p.s))) {
        close(cfd);
        goto out;
    }
    spin(&r, is_closed, 500);
    CHECK_EQ_INT(r.p.closes, 1);
    CHECK_EQ_INT(r.p.close_error, -ECONNREFUSED);
out:
    rig_close(&r);
}

static void test_stream_bad_args(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    struct iomux_buf_pool *pool = NULL;
    struct iomux_stream *s = NULL;
    if (!loop || !CHECK_OK(iomux_buf_pool_new(&pool, NULL)))
        goto out;
    struct iomux_stream_options so = {.on_data = p_data};
    CHECK_ERRNO(iomux_stream_new(loop, pool, -1, &so, &s), -EINVAL);
    struct iomux_stream_options none = {0};
    CHECK_ERRNO(iomux_stream_new(loop, pool, 0, &none, &s), -EINVAL);
    struct iomux_stream_options bad = {.on_data = p_data, .high_water = 10, .low_water = 20};
    CHECK_ERRNO(iomux_stream_new(loop, pool, 0, &bad, &s), -EINVAL);
    /* A watch failure is passed on and the fd stays the caller's. */
    int sp[2];
    if (make_socketpair(sp)) {
        struct iomux_loop_options lo = {.backend = backend, .max_fds = 4};
        struct iomux_loop *small = NULL;
        if (CHECK_OK(iomux_loop_new(&small, &lo))) {
            int high = fcntl(sp[0], F_DUPFD_CLOEXEC, 64);
            CHECK_ERRNO(iomux_stream_new(small, pool, high, &so, &s), -ERANGE);
            CHECK(fd_is_open(high));
            close(high);
            iomux_loop_free(small);
        }
        close(sp[0]);
        close(sp[1]);
    }
out:
    iomux_buf_pool_free(pool);
    iomux_loop_free(loop);
}

/* The owner's extra bytes: allocated with the stream, zeroed, found back
   from either side; none without extra_size. Streams with the same options
   share one config, whose allocation goes with the last of them. */
static void test_stream_extra(void)
{
    struct iomux_loop *loop = test_loop_new(backend, 0);
    struct iomux_buf_pool *pool = NULL;
    int a[2] = {-1, -1}, b[2] = {-1, -1}, c[2] = {-1, -1};
    if (!loop || !CHECK_OK(iomux_buf_pool_new(&pool, NULL)) || !make_socketpair(a) ||
        !make_socketpair(b) || !make_socketpair(c))
        goto out;
    struct iomux_stream_options so = {.on_data = p_data, .extra_size = 20};
    struct iomux_stream *s1 = NULL, *s2 = NULL, *s3 = NULL;
    long before = allocs;
    if (!CHECK_OK(iomux_stream_new(loop, pool, a[0], &so, &s1)))
        goto out;
    a[0] = -1;
    long first = allocs - before; /* the config, the stream, maybe the table */
    before = allocs;
    if (!CHECK_OK(iomux_stream_new(loop, pool, b[0], &so, &s2)))
        goto out;
    b[0] = -1;
    CHECK_EQ_INT(allocs - before, 1); /* the stream alone: the config is shared */
    CHECK(first >= 2);
    unsigned char *x1 = iomux_stream_extra(s1), *x2 = iomux_stream_extra(s2);
    CHECK(x1 != NULL && x2 != NULL && x1 != x2);
    if (x1 && x2) {
        for (size_t i = 0; i < 20; i++)
            CHECK_EQ_INT(x1[i] | x2[i], 0);
        memset(x1, 0xab, 20); /* ours to use: the stream must not mind */
        CHECK(iomux_stream_of_extra(x1) == s1);
        CHECK(iomux_stream_of_extra(x2) == s2);
    }
    struct iomux_stream_options plain = {.on_data = p_data};
    if (CHECK_OK(iomux_stream_new(loop, pool, c[0], &plain, &s3))) {
        c[0] = -1;
        CHECK(iomux_stream_extra(s3) == NULL);
        iomux_stream_close(s3);
    }
    CHECK_OK(iomux_stream_write(s1, "ping", 4));
    char got[8];
    CHECK_EQ_INT(recv(a[1], got, sizeof(got), 0), 4);
    iomux_stream_close(s1);
    iomux_stream_close(s2);
out:
    for (int i = 0; i < 2; i++) {
        if (a[i] >= 0)
            close(a[i]);
        if (b[i] >= 0)
            close(b[i]);
        if (c[i] >= 0)
            close(c[i]);
    }
    iomux_buf_pool_free(pool); /* asserts that no config is left */
    iomux_loop_free(loop);
}

int main(int argc, char **argv)
{
    backend = test_backend(argc, argv);
    CHECK_OK(iomux_set_allocator(count_malloc, count_realloc, count_free));
    check_run("buf_basics", test_buf_basics);
    check_run("buf_enomem", test_buf_enomem);
    check_run("stream_echo", test_stream_echo);
    check_run("stream_no_alloc_steady", test_stream_no_alloc_steady);
    check_run("stream_backpressure", test_stream_backpressure);
    check_run("stream_half_close", test_stream_half_close);
    check_run("stream_reset", test_stream_reset);
    check_run("stream_write_error", test_stream_write_error);
    check_run("stream_end", test_stream_end);
    check_run("stream_close_in_callback", test_stream_close_in_callback);
    check_run("stream_close_with_queue", test_stream_close_with_queue);
    check_run("stream_eof_reply", test_stream_eof_reply);
    check_run("stream_write_enomem", test_stream_write_enomem);
    check_run("stream_new_enomem", test_stream_new_enomem);
    check_run("stream_connecting", test_stream_connecting);
    check_run("stream_bad_args", test_stream_bad_args);
    check_run("stream_extra", test_stream_extra);
    CHECK_EQ_INT(allocs, frees); /* everything the library took, it gave back */
    return check_exit();
}
