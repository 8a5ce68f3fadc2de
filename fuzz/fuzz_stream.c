/* SPDX-License-Identifier: MIT */
/*
 * fuzz_stream.c - libFuzzer target for the buffer and stream code. The
 * input is a program of operations:
 *   - on a bare iomux_buf, checked against a flat copy: append, consume,
 *     peek, iov (small chunks, so every boundary case comes up);
 *   - on an echo stream over a socket pair with small socket buffers:
 *     the peer writes N bytes, reads up to N bytes, or the loop runs once,
 *     so the stream meets short writes, a full queue and backpressure in
 *     every order.
 * At the end the peer half-closes and drains: the echo must equal what was
 * sent, byte for byte, and the stream must end cleanly.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iomux/buf.h>
#include <iomux/loop.h>
#include <iomux/stream.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MODEL_MAX 65536
#define SEND_MAX  (256u * 1024u)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 167u + (i >> 11) + 1);
}

/* The input, consumed a byte at a time; zeros once it runs out. */
struct input {
    const uint8_t *p;
    size_t left;
};

static unsigned next(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static void fuzz_buf(struct input *in, struct iomux_buf_pool *pool)
{
    static unsigned char model[MODEL_MAX], tmp[MODEL_MAX];
    size_t mlen = 0, total = 0;
    struct iomux_buf b;
    iomux_buf_init(&b, pool);
    unsigned nops = next(in) % 64;
    for (unsigned op = 0; op < nops; op++) {
        unsigned kind = next(in) % 4;
        size_t n = (size_t)next(in) * (1 + next(in) % 8);
        if (kind == 0) {
            if (mlen + n > MODEL_MAX)
                continue;
            for (size_t i = 0; i < n; i++)
                tmp[i] = pattern(total + i);
            if (iomux_buf_append(&b, tmp, n) != 0)
                abort();
            memcpy(model + mlen, tmp, n);
            mlen += n;
            total += n;
        } else if (kind == 1) {
            if (n > mlen)
                n = mlen;
            iomux_buf_consume(&b, n);
            memmove(model, model + n, mlen - n);
            mlen -= n;
        } else if (kind == 2) {
            size_t got = iomux_buf_peek(&b, tmp, n);
            if (got != (n < mlen ? n : mlen) || memcmp(tmp, model, got) != 0)
                abort();
        } else {
            struct iovec iov[8];
            int k = iomux_buf_iov(&b, iov, 1 + (int)(n % 8));
            size_t off = 0;
            for (int i = 0; i < k; i++) {
                if (off + iov[i].iov_len > mlen ||
                    memcmp(iov[i].iov_base, model + off, iov[i].iov_len) != 0)
                    abort();
                off += iov[i].iov_len;
            }
        }
        if (iomux_buf_len(&b) != mlen)
            abort();
    }
    iomux_buf_clear(&b);
}

struct echo {
    int closed, error;
};

static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    (void)iomux_stream_write(s, bytes, len);
}

static void on_close(struct iomux_stream *s, int error, void *data)
{
    struct echo *e = data;
    e->closed = 1;
    e->error = error;
}

static void peer_read(int fd, size_t max, size_t *recvd, int *eof)
{
    unsigned char buf[16384];
    while (max > 0 && !*eof) {
        size_t want = max < sizeof(buf) ? max : sizeof(buf);
        ssize_t r = recv(fd, buf, want, 0);
        if (r == 0) {
            *eof = 1;
            break;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                abort();
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern(*recvd + (size_t)i))
                abort(); /* lost, duplicated or reordered byte */
        *recvd += (size_t)r;
        max -= (size_t)r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct iomux_buf_pool_options po = {.chunk_size = 1 + next(&in) % 64,
                                        .read_size = 1 + next(&in) * 16,
                                        .cache_bytes = next(&in) * 8};
    struct iomux_buf_pool *pool;
    if (iomux_buf_pool_new(&pool, &po) != 0)
        abort();
    fuzz_buf(&in, pool);

    struct iomux_loop *loop;
    int sv[2];
    if (iomux_loop_new(&loop, NULL) != 0)
        abort();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    int small = 1024;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct echo e = {0, 0};
    struct iomux_stream_options so = {.on_data = on_data,
                                      .on_close = on_close,
                                      .data = &e,
                                      .high_water = 1 + next(&in) * 64,
                                      .read_max = next(&in)};
    so.low_water = so.high_water / 2;
    struct iomux_stream *s;
    if (iomux_stream_new(loop, pool, sv[0], &so, &s) != 0)
        abort();

    size_t per_read = so.read_max && so.read_max < po.read_size ? so.read_max : po.read_size;
    size_t send_max = per_read * 1024u < SEND_MAX ? per_read * 1024u : SEND_MAX;
    size_t sent = 0, recvd = 0;
    int eof = 0;
    unsigned char buf[4096];
    while (in.left && !e.closed) {
        unsigned kind = next(&in) % 3;
        size_t n = (size_t)next(&in) * (1 + next(&in) % 16);
        if (kind == 0) {
            if (n > sizeof(buf))
                n = sizeof(buf);
            /* Small reads make the drain one loop iteration per few
               bytes: keep those runs short so the fuzzer stays fast. */
            if (sent + n > send_max)
                break;
            for (size_t i = 0; i < n; i++)
                buf[i] = pattern(sent + i);
            ssize_t w = send(sv[1], buf, n, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                abort();
            if (w > 0)
                sent += (size_t)w;
        } else if (kind == 1) {
            peer_read(sv[1], n, &recvd, &eof);
        } else if (iomux_loop_run_once(loop, 0) < 0) {
            abort();
        }
    }
    /* Half-close and drain: every byte must come back, then the end. */
    shutdown(sv[1], SHUT_WR);
    /* With read_max 1 this takes one iteration per byte: the bound is on
       iterations without progress (5 s of them), not on iterations. */
    for (int stalled = 0; !eof && stalled < 50;) {
        size_t before = recvd;
        peer_read(sv[1], SIZE_MAX, &recvd, &eof);
        int ran = eof ? 0 : iomux_loop_run_once(loop, 100);
        if (ran < 0)
            abort();
        stalled = recvd > before || ran > 0 ? 0 : stalled + 1;
    }
    if (!eof || recvd != sent)
        abort();
    for (int i = 0; i < 100 && !e.closed; i++)
        if (iomux_loop_run_once(loop, 10) < 0)
            abort();
    if (!e.closed || e.error != 0)
        abort();
    close(sv[1]);
    iomux_loop_free(loop);
    iomux_buf_pool_free(pool);
    return 0;
}
