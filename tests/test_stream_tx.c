/* SPDX-License-Identifier: MIT */
/*
 * test_stream_tx.c - stream.h's transports, on the backend named by
 * argv[1], with a fake transport that has TLS's awkward habits without
 * TLS: it frames bytes in records (a length byte, then the bytes xor'ed;
 * length 0 is its close_notify), reads far ahead of what it delivers (so
 * bytes wait inside it with no fd readiness), takes at most one record per
 * write and insists that a write that waited is retried with the same
 * bytes, and can make a read wait for writability or a write for
 * readability. The peer is a raw socket speaking the same framing.
 */
#include "test_util.h"

#include <poll.h>

#include <iomux/buf.h>
#include <iomux/stream.h>

static const char *backend;

/* ------------------------------------------------------ the transport */

struct fake {
    int fd;
    unsigned char in[4096]; /* taken from the fd, not decoded yet */
    size_t in_len;
    unsigned char plain[4096]; /* decoded, not delivered yet */
    size_t plain_off, plain_len;
    bool got_end, end_reported, fd_eof;
    size_t deliver_max;
    unsigned char rec[256]; /* the record being sent */
    size_t rec_len, rec_off, committed;
    unsigned char committed_bytes[255];
    /* Tests set these. */
    int read_gate;      /* reads that first wait for IOMUX_WRITE */
    int write_gate;     /* writes that first wait for IOMUX_READ */
    bool write_blocked; /* every write waits for IOMUX_WRITE */
    bool gate_waited, end_queued;
    /* What happened. */
    int read_calls, write_calls, read_gated, write_gated, from_pending, retry_violations;
    int close_writes, releases;
};

#define KEY 0x5a

/* Moves the complete records of in[] into plain[]. */
static void decode(struct fake *f)
{
    if (f->plain_off > 0) {
        memmove(f->plain, f->plain + f->plain_off, f->plain_len);
        f->plain_off = 0;
    }
    size_t at = 0;
    while (at < f->in_len && !f->got_end) {
        size_t n = f->in[at];
        if (n == 0) {
            f->got_end = true;
            at++;
            break;
        }
        if (at + 1 + n > f->in_len || f->plain_len + n > sizeof f->plain)
            break;
        for (size_t i = 0; i < n; i++)
            f->plain[f->plain_len++] = f->in[at + 1 + i] ^ KEY;
        at += 1 + n;
    }
    memmove(f->in, f->in + at, f->in_len - at);
    f->in_len -= at;
}

static ssize_t f_read(void *ctx, void *buf, size_t len, unsigned *wait)
{
    struct fake *f = ctx;
    f->read_calls++;
    if (f->read_gate > 0) {
        /* As TLS does: it took the bytes, then found it must write. */
        ssize_t n = recv(f->fd, f->in + f->in_len, sizeof f->in - f->in_len, 0);
        f->in_len += n > 0 ? (size_t)n : 0;
        f->read_gate--;
        f->read_gated++;
        *wait = IOMUX_WRITE;
        return -EAGAIN;
    }
    decode(f);
    bool held = f->plain_len > 0 || (f->got_end && !f->end_reported);
    if (!held && !f->fd_eof) {
        ssize_t n = recv(f->fd, f->in + f->in_len, sizeof f->in - f->in_len, 0);
        if (n > 0)
            f->in_len += (size_t)n;
        else if (n == 0)
            f->fd_eof = true;
        else if (errno != EAGAIN)
            return -errno;
        decode(f);
    } else if (f->plain_len > 0) {
        f->from_pending++;
    }
    if (f->plain_len > 0) {
        size_t n = len < f->deliver_max ? len : f->deliver_max;
        n = n < f->plain_len ? n : f->plain_len;
        memcpy(buf, f->plain + f->plain_off, n);
        f->plain_off += n;
        f->plain_len -= n;
        return (ssize_t)n;
    }
    if (f->got_end) {
        f->end_reported = true;
        return 0;
    }
    if (f->fd_eof)
        return IOMUX_STREAM_TRUNCATED;
    *wait = IOMUX_READ;
    return -EAGAIN;
}

/* Sends the rest of the record: 1 done, 0 must wait, or -errno. */
static int send_rest(struct fake *f)
{
    while (f->rec_off < f->rec_len) {
        ssize_t n = send(f->fd, f->rec + f->rec_off, f->rec_len - f->rec_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -errno;
        f->rec_off += (size_t)n;
    }
    return 1;
}

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static ssize_t f_write(void *ctx, const void *buf, size_t len, unsigned *wait)
{
    struct fake *f = ctx;
    f->write_calls++;
    if (f->write_gate > 0 && (!f->gate_waited || !fd_readable(f->fd))) {
        f->gate_waited = true;
        f->write_gated++;
        *wait = IOMUX_READ;
        return -EAGAIN;
    }
    if (f->gate_waited) {
        f->gate_waited = false;
        f->write_gate--;
    }
    *wait = IOMUX_WRITE;
    if (f->write_blocked)
        return -EAGAIN;
    if (f->rec_off < f->rec_len) { /* a retry */
        if (len < f->committed || memcmp(buf, f->committed_bytes, f->committed) != 0)
            f->retry_violations++;
    } else {
        size_t n = len < 255 ? len : 255;
        f->rec[0] = (unsigned char)n;
        for (size_t i = 0; i < n; i++)
            f->rec[1 + i] = ((const unsigned char *)buf)[i] ^ KEY;
        memcpy(f->committed_bytes, buf, n);
        f->committed = n;
        f->rec_len = n + 1;
        f->rec_off = 0;
    }
    int rc = send_rest(f);
    return rc < 0 ? rc : rc == 0 ? -EAGAIN : (ssize_t)f->committed;
}

static int f_close_write(void *ctx, unsigned *wait)
{
    struct fake *f = ctx;
    f->close_writes++;
    *wait = IOMUX_WRITE;
    int rc = send_rest(f);
    if (rc == 1 && !f->end_queued) {
        f->rec[0] = 0;
        f->rec_len = 1;
        f->rec_off = 0;
        f->end_queued = true;
        rc = send_rest(f);
    }
    return rc < 0 ? rc : rc == 0 ? -EAGAIN : 0;
}

static int f_pending(void *ctx)
{
    struct fake *f = ctx;
    return f->plain_len > 0 || f->in_len > 0 || (f->got_end && !f->end_reported);
}

static void f_release(void *ctx)
{
    ((struct fake *)ctx)->releases++;
}

static const struct iomux_stream_transport fake_ops = {
    .read = f_read,
    .write = f_write,
    .close_write = f_close_write,
    .pending = f_pending,
    .release = f_release,
};

/* ------------------------------------------------- the rig and its peer */

struct rig {
    struct iomux_loop *loop;
    struct iomux_buf_pool *pool;
    struct iomux_stream *s;
    struct fake f;
    int peer;
    bool echo;
    int eofs, closes, close_error;
    size_t delivered;
    /* the peer's side of the framing */
    unsigned char *pout; /* records to send */
    size_t pout_len, pout_off, pout_cap;
    unsigned char pin[8192];
    size_t pin_len;
    unsigned char *got; /* decoded echo */
    size_t got_len, got_cap;
    bool peer_end, peer_eof;
};

static void on_data(struct iomux_stream *s, const char *bytes, size_t len, void *data)
{
    struct rig *r = data;
    r->delivered += len;
    if (r->echo)
        (void)iomux_stream_write(s, bytes, len);
}

static void on_eof(struct iomux_stream *s, void *data)
{
    ((struct rig *)data)->eofs++;
}

static void on_close(struct iomux_stream *s, int error, void *data)
{
    struct rig *r = data;
    r->closes++;
    r->close_error = error;
    r->s = NULL;
}

static bool rig_open(struct rig *r, size_t high, size_t low, size_t deliver_max)
{
    memset(r, 0, sizeof *r);
    r->peer = -1;
    r->echo = true;
    r->f.deliver_max = deliver_max;
    r->got_cap = 1 << 20;
    r->got = malloc(r->got_cap);
    r->pout_cap = (1 << 20) + (1 << 14);
    r->pout = malloc(r->pout_cap);
    r->loop = test_loop_new(backend, 0);
    /* Chunks of 100 bytes: a record (255) spans chunks, so the retry rule
       is tested on the queue's first chunk. */
    struct iomux_buf_pool_options po = {.chunk_size = 100};
    int sv[2];
    if (!r->loop || !CHECK(r->got != NULL && r->pout != NULL) ||
        !CHECK_OK(iomux_buf_pool_new(&r->pool, &po)) || !make_socketpair(sv))
        return false;
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    r->peer = sv[1];
    r->f.fd = sv[0];
    struct iomux_stream_options so = {.on_data = on_data,
                                      .on_eof = on_eof,
                                      .on_close = on_close,
                                      .data = r,
                                      .high_water = high,
                                      .low_water = low};
    if (!CHECK_OK(iomux_stream_new(r->loop, r->pool, sv[0], &so, &r->s))) {
        close(sv[0]);
        return false;
    }
    return CHECK_OK(iomux_stream_set_transport(r->s, &fake_ops, &r->f));
}

static void rig_close(struct rig *r)
{
    if (r->s)
        iomux_stream_close(r->s);
    if (r->peer >= 0)
        close(r->peer);
    if (r->loop)
        iomux_loop_free(r->loop);
    if (r->pool) {
        struct iomux_buf_pool_stats st;
        iomux_buf_pool_stats(r->pool, &st);
        CHECK_EQ_U64(st.chunks_in_use, 0);
        iomux_buf_pool_free(r->pool);
    }
    CHECK_EQ_INT(r->f.releases, 1);
    CHECK_EQ_INT(r->f.retry_violations, 0);
    free(r->got);
    free(r->pout);
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7u + (i >> 8));
}

/* Frames `data` in records of up to 200 bytes, to be sent by peer_pump(). */
static void peer_queue(struct rig *r, const unsigned char *data, size_t len)
{
    for (size_t done = 0; done < len;) {
        size_t n = len - done < 200 ? len - done : 200;
        if (!CHECK(r->pout_len + n + 1 <= r->pout_cap))
            return;
        r->pout[r->pout_len++] = (unsigned char)n;
        for (size_t i = 0; i < n; i++)
            r->pout[r->pout_len++] = data[done + i] ^ KEY;
        done += n;
    }
}

/* Sends what the socket takes of the queued records. */
static void peer_pump(struct rig *r)
{
    while (r->pout_off < r->pout_len) {
        ssize_t w = send(r->peer, r->pout + r->pout_off, r->pout_len - r->pout_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            CHECK(errno == EAGAIN);
            return;
        }
        r->pout_off += (size_t)w;
    }
}

/* Queues and sends what fits now; true when all of it went. */
static bool peer_send(struct rig *r, const unsigned char *data, size_t len)
{
    peer_queue(r, data, len);
    peer_pump(r);
    return r->pout_off == r->pout_len;
}

/* Reads and decodes what the peer has; notes the marker and the EOF. */
static void peer_recv(struct rig *r)
{
    for (;;) {
        ssize_t n = recv(r->peer, r->pin + r->pin_len, sizeof r->pin - r->pin_len, MSG_DONTWAIT);
        if (n == 0)
            r->peer_eof = true;
        if (n <= 0)
            break;
        r->pin_len += (size_t)n;
        size_t at = 0;
        while (at < r->pin_len) {
            size_t len = r->pin[at];
            if (len == 0) {
                CHECK(!r->peer_end);
                r->peer_end = true;
                at++;
                continue;
            }
            if (at + 1 + len > r->pin_len)
                break;
            CHECK(!r->peer_end); /* nothing after close_notify */
            for (size_t i = 0; i < len && r->got_len < r->got_cap; i++)
                r->got[r->got_len++] = r->pin[at + 1 + i] ^ KEY;
            at += 1 + len;
        }
        memmove(r->pin, r->pin + at, r->pin_len - at);
        r->pin_len -= at;
    }
}

static void peer_send_end(struct rig *r)
{
    unsigned char zero = 0;
    CHECK_EQ_INT(send(r->peer, &zero, 1, MSG_NOSIGNAL), 1);
    CHECK_OK(shutdown(r->peer, SHUT_WR));
}

/* Echoes `total` bytes of the pattern through the stream; true when all
   came back identical. */
static bool echo_total(struct rig *r, size_t total)
{
    unsigned char *data = malloc(total);
    if (!CHECK(data != NULL))
        return false;
    for (size_t i = 0; i < total; i++)
        data[i] = pattern(i);
    peer_queue(r, data, total);
    /* Ends when all is back, or after 5 s without progress. */
    uint64_t progress_ns = mono_ns();
    while (r->got_len < total && !r->closes && mono_ns() - progress_ns < (uint64_t)5000 * MS_NS) {
        size_t before = r->got_len;
        peer_pump(r);
        CHECK_COUNT(iomux_loop_run_once(r->loop, 10));
        peer_recv(r);
        if (r->got_len != before)
            progress_ns = mono_ns();
    }
    bool ok = CHECK_EQ_U64(r->got_len, total) && CHECK(memcmp(r->got, data, total) == 0);
    free(data);
    return ok;
}

/* ---------------------------------------------------------------- tests */

/* Echo of 256 KiB: the transport delivers 7 bytes per read out of what it
   read ahead, takes 255 per write, and the socket buffers are small, so
   writes wait and queue. Then the peer's close_notify and FIN: the stream
   answers with its own after the last byte, then its FIN, and ends with 0. */
static void test_echo_and_half_close(void)
{
    struct rig r;
    if (rig_open(&r, 0, 0, 7) && echo_total(&r, 256 * 1024)) {
        CHECK_INT(r.f.from_pending, >, 0);
        peer_send_end(&r);
        for (int i = 0; i < 1000 && !(r.closes && r.peer_eof); i++) {
            CHECK_COUNT(iomux_loop_run_once(r.loop, 10));
            peer_recv(&r);
        }
        CHECK_EQ_INT(r.eofs, 1);
        CHECK_EQ_INT(r.closes, 1);
        CHECK_EQ_INT(r.close_error, 0);
        CHECK(r.peer_end && r.peer_eof);
        CHECK_INT(r.f.close_writes, >=, 1);
    }
    rig_close(&r);
}

/* The fd's end without the transport's marker is a truncation; the bytes
   before it are delivered first. */
static void test_truncation(void)
{
    struct rig r;
    if (rig_open(&r, 0, 0, 1000)) {
        r.echo = false;
        unsigned char data[600];
        memset(data, 'x', sizeof data);
        CHECK(peer_send(&r, data, sizeof data));
        CHECK_OK(shutdown(r.peer, SHUT_WR));
        run_until(r.loop, &r.closes, 1, 1000, 10);
        CHECK_EQ_INT(r.close_error, IOMUX_STREAM_TRUNCATED);
        CHECK_EQ_U64(r.delivered, sizeof data);
        CHECK_EQ_INT(r.eofs, 0);
    }
    rig_close(&r);
}

/* A read that waits for writability is retried on it; a write that waits
   for readability is not retried before the fd is readable (the loop
   would spin otherwise), and is once it is. */
static void test_cross_waits(void)
{
    struct rig r;
    if (rig_open(&r, 0, 0, 1000)) {
        r.echo = false;
        r.f.read_gate = 1;
        CHECK(peer_send(&r, (const unsigned char *)"abc", 3));
        for (int i = 0; i < 100 && r.delivered < 3; i++)
            CHECK_COUNT(iomux_loop_run_once(r.loop, 10));
        CHECK_EQ_U64(r.delivered, 3);
        CHECK_EQ_INT(r.f.read_gated, 1);
        int reads = r.f.read_calls;
        for (int i = 0; i < 5; i++)
            CHECK_COUNT(iomux_loop_run_once(r.loop, 5));
        CHECK_INT(r.f.read_calls, <=, reads + 1); /* back to waiting for READ */

        r.f.write_gate = 1;
        CHECK_OK(iomux_stream_write(r.s, "hello", 5));
        CHECK_EQ_U64(iomux_stream_queued(r.s), 5);
        for (int i = 0; i < 5; i++)
            CHECK_COUNT(iomux_loop_run_once(r.loop, 5));
        CHECK_EQ_INT(r.f.write_calls, 1); /* waits for READ, not WRITE */
        CHECK(peer_send(&r, (const unsigned char *)"x", 1));
        for (int i = 0; i < 100 && r.got_len < 5; i++) {
            CHECK_COUNT(iomux_loop_run_once(r.loop, 10));
            peer_recv(&r);
        }
        CHECK_EQ_U64(r.got_len, 5);
        CHECK(memcmp(r.got, "hello", 5) == 0);
        CHECK_EQ_U64(r.delivered, 4);
    }
    rig_close(&r);
}

/* Backpressure while the transport holds bytes: when the queue drains
   below low water, reading resumes from the transport although the fd
   will never be readable again for those bytes. */
static void test_backpressure_with_pending(void)
{
    struct rig r;
    if (rig_open(&r, 512, 128, 50)) {
        unsigned char data[3000];
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = pattern(i);
        r.f.write_blocked = true;
        CHECK(peer_send(&r, data, sizeof data));
        for (int i = 0; i < 1000 && !iomux_stream_backpressured(r.s); i++)
            CHECK_COUNT(iomux_loop_run_once(r.loop, 1));
        CHECK(iomux_stream_backpressured(r.s));
        CHECK(f_pending(&r.f));
        r.f.write_blocked = false;
        for (int i = 0; i < 2000 && r.got_len < sizeof data; i++) {
            CHECK_COUNT(iomux_loop_run_once(r.loop, 10));
            peer_recv(&r);
        }
        CHECK_EQ_U64(r.got_len, sizeof data);
        CHECK(memcmp(r.got, data, sizeof data) == 0);
    }
    rig_close(&r);
}

/* end(): queued bytes, then the marker, then the FIN; a peer that then
   closes without its own marker ends the stream cleanly (input after
   end() is dropped anyway). */
static void test_end(void)
{
    struct rig r;
    if (rig_open(&r, 0, 0, 1000)) {
        r.f.write_blocked = true;
        CHECK_OK(iomux_stream_write(r.s, "bye", 3));
        iomux_stream_end(r.s);
        CHECK_EQ_INT(iomux_stream_write(r.s, "x", 1), -EPIPE);
        r.f.write_blocked = false;
        for (int i = 0; i < 200 && !r.peer_eof; i++) {
            CHECK_COUNT(iomux_loop_run_once(r.loop, 10));
            peer_recv(&r);
        }
        CHECK(r.peer_end && r.peer_eof);
        CHECK_EQ_U64(r.got_len, 3);
        CHECK_OK(shutdown(r.peer, SHUT_WR));
        run_until(r.loop, &r.closes, 1, 1000, 10);
        CHECK_EQ_INT(r.close_error, 0);
    }
    rig_close(&r);
}

/* Bad calls, and release() on iomux_stream_close(). */
static void test_set_and_close(void)
{
    struct rig r;
    if (rig_open(&r, 0, 0, 1000)) {
        CHECK_EQ_INT(iomux_stream_set_transport(r.s, &fake_ops, &r.f), -EINVAL);
        struct iomux_stream_transport partial = fake_ops;
        partial.pending = NULL;
        CHECK_EQ_INT(iomux_stream_set_transport(r.s, &partial, &r.f), -EINVAL);
        iomux_stream_close(r.s);
        r.s = NULL;
        CHECK_EQ_INT(r.f.releases, 1);
    }
    rig_close(&r);
}

/* Bytes the transport holds when it is set are delivered without the fd
   ever becoming readable. */
static void test_pending_at_start(void)
{
    struct rig r;
    if (rig_open(&r, 0, 0, 1000)) {
        r.echo = false;
        /* A second stream whose transport already holds bytes. */
        int sv[2];
        if (make_socketpair(sv)) {
            struct fake f = {.fd = sv[0], .deliver_max = 10};
            memcpy(f.plain, "early bytes", 11);
            f.plain_len = 11;
            struct iomux_stream *s2;
            struct iomux_stream_options so = {.on_data = on_data, .on_close = on_close, .data = &r};
            if (CHECK_OK(iomux_stream_new(r.loop, r.pool, sv[0], &so, &s2))) {
                CHECK_OK(iomux_stream_set_transport(s2, &fake_ops, &f));
                for (int i = 0; i < 10 && r.delivered < 11; i++)
                    CHECK_COUNT(iomux_loop_run_once(r.loop, 10));
                CHECK_EQ_U64(r.delivered, 11);
                iomux_stream_close(s2);
                CHECK_EQ_INT(f.releases, 1);
            } else {
                close(sv[0]);
            }
            close(sv[1]);
        }
    }
    rig_close(&r);
}

int main(int argc, char **argv)
{
    backend = test_backend(argc, argv);
    test_echo_and_half_close();
    test_truncation();
    test_cross_waits();
    test_backpressure_with_pending();
    test_end();
    test_set_and_close();
    test_pending_at_start();
    return check_exit();
}
